package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// SessionPrefix starts every console session secret.
const SessionPrefix = "vs_"

// Defaults for Users.
const (
	DefaultSessionLifetime = 12 * time.Hour
	DefaultIdleTimeout     = 30 * time.Minute
)

// Ledger event types for people.
const (
	EventUserCreated  = "user.created"
	EventUserChanged  = "user.changed"
	EventUserSignedIn = "user.signed_in"
)

// UserNamePattern is what user names look like (they appear in the ledger as
// "user:NAME"): lowercase letters, digits and . _ @ -.
var UserNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,62}$`)

// Users manages named people, their passwords and their console sessions.
type Users struct {
	Store  UserStore
	Ledger Recorder
	// Now is the clock; tests replace it.
	Now func() time.Time
	// Password is argon2id's cost; zero means DefaultPasswordParams.
	Password PasswordParams
	// SessionLifetime bounds a session however active it is. Default 12h.
	SessionLifetime time.Duration
	// IdleTimeout ends a session nobody used for this long. Default 30m.
	IdleTimeout time.Duration
	// CSRFKey keys the CSRF tokens bound to sessions (keyring.PurposeSession).
	CSRFKey []byte

	dummyOnce sync.Once
	dummy     string
}

func (s *Users) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

func (s *Users) params() PasswordParams {
	if s.Password.Time == 0 {
		return DefaultPasswordParams
	}
	return s.Password
}

func (s *Users) lifetime() time.Duration {
	if s.SessionLifetime > 0 {
		return s.SessionLifetime
	}
	return DefaultSessionLifetime
}

func (s *Users) idle() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return DefaultIdleTimeout
}

func validRoles(roles []vigil.Role) error {
	if len(roles) == 0 {
		return vigil.Errorf(vigil.EINVALID, "a user needs at least one role: admin, reviewer, auditor or viewer")
	}
	for _, r := range roles {
		if !r.Valid() {
			return vigil.Errorf(vigil.EINVALID, "role %q is not one of admin, reviewer, auditor, viewer", r)
		}
	}
	return nil
}

func validPassword(p string) error {
	if len(p) < MinPasswordLen || len(p) > MaxPasswordLen {
		return vigil.Errorf(vigil.EINVALID, "a password must be %d to %d bytes long", MinPasswordLen, MaxPasswordLen)
	}
	return nil
}

// CreateUser adds a named user with roles and a password (stored as argon2id).
func (s *Users) CreateUser(ctx context.Context, by vigil.Actor, name string, roles []vigil.Role, password string) (User, error) {
	if !UserNamePattern.MatchString(name) {
		return User{}, vigil.Errorf(vigil.EINVALID, "user name %q must be 1-63 characters of a-z, 0-9, '.', '_', '@' or '-', starting with a letter or digit", name)
	}
	roles = slices.Compact(slices.Sorted(slices.Values(roles)))
	if err := validRoles(roles); err != nil {
		return User{}, err
	}
	if err := validPassword(password); err != nil {
		return User{}, err
	}
	hash, err := HashPassword(password, s.params())
	if err != nil {
		return User{}, err
	}
	now := s.now()
	u := User{ID: uuid.Must(uuid.NewV7()).String(), Name: name, Roles: roles, PasswordHash: hash, CreatedBy: by.String(), CreatedAt: now, UpdatedAt: now}
	if err := s.Store.CreateUser(ctx, u); err != nil {
		return User{}, err
	}
	if err := s.record(ctx, by, EventUserCreated, map[string]string{"user": u.Name, "user_id": u.ID, "roles": joinRoles(u.Roles)}); err != nil {
		return User{}, err
	}
	return u, nil
}

// UserChange is what an admin may change about a user; nil fields are left alone.
type UserChange struct {
	Roles    *[]vigil.Role `json:"roles,omitempty"`
	Password *string       `json:"password,omitempty"`
	Disabled *bool         `json:"disabled,omitempty"`
}

// UpdateUser changes a user's roles, password or disabled flag. A new password or a
// disabled account ends the user's sessions at once.
func (s *Users) UpdateUser(ctx context.Context, by vigil.Actor, idOrName string, c UserChange) (User, error) {
	u, err := s.LookupUser(ctx, idOrName)
	if err != nil {
		return User{}, err
	}
	attrs := map[string]string{"user": u.Name, "user_id": u.ID}
	if c.Roles != nil {
		roles := slices.Compact(slices.Sorted(slices.Values(*c.Roles)))
		if err := validRoles(roles); err != nil {
			return User{}, err
		}
		u.Roles, attrs["roles"] = roles, joinRoles(roles)
	}
	if c.Password != nil {
		if err := validPassword(*c.Password); err != nil {
			return User{}, err
		}
		if u.PasswordHash, err = HashPassword(*c.Password, s.params()); err != nil {
			return User{}, err
		}
		attrs["password"] = "changed"
	}
	if c.Disabled != nil {
		u.Disabled, attrs["disabled"] = *c.Disabled, fmt.Sprint(*c.Disabled)
	}
	u.UpdatedAt = s.now()
	if err := s.Store.UpdateUser(ctx, u); err != nil {
		return User{}, err
	}
	if c.Password != nil || u.Disabled {
		if err := s.Store.DeleteUserSessions(ctx, u.ID); err != nil {
			return User{}, err
		}
	}
	if err := s.record(ctx, by, EventUserChanged, attrs); err != nil {
		return User{}, err
	}
	return u, nil
}

// LookupUser finds a user by id or by name.
func (s *Users) LookupUser(ctx context.Context, idOrName string) (User, error) {
	if _, err := uuid.Parse(idOrName); err == nil {
		return s.Store.User(ctx, idOrName)
	}
	return s.Store.UserByName(ctx, idOrName)
}

var errBadSignIn = vigil.Errorf(vigil.EUNAUTHORIZED, "wrong user name or password")

// SignIn checks a user's password and starts a session. It returns the session
// secret for the cookie (shown once, stored hashed). Unknown names, wrong passwords
// and disabled accounts get the same answer and take the same time.
func (s *Users) SignIn(ctx context.Context, name, password string) (string, User, error) {
	if len(password) > MaxPasswordLen {
		return "", User{}, errBadSignIn
	}
	u, err := s.Store.UserByName(ctx, strings.TrimSpace(name))
	if errors.Is(err, vigil.ErrNotFound) {
		s.dummyOnce.Do(func() { s.dummy, _ = HashPassword("not a real password", s.params()) })
		_, _ = CheckPassword(password, s.dummy)
		return "", User{}, errBadSignIn
	}
	if err != nil {
		return "", User{}, fmt.Errorf("couldn't look up user: %w", err)
	}
	ok, err := CheckPassword(password, u.PasswordHash)
	if err != nil {
		return "", User{}, fmt.Errorf("couldn't check the password of user %s: %w", u.ID, err)
	}
	if !ok || u.Disabled {
		return "", User{}, errBadSignIn
	}
	secret := NewSecret(SessionPrefix)
	now := s.now()
	se := Session{Hash: Hash(secret), UserID: u.ID, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(s.lifetime())}
	if err := s.Store.CreateSession(ctx, se); err != nil {
		return "", User{}, err
	}
	if _, err := s.Store.DeleteExpiredSessions(ctx, now); err != nil {
		return "", User{}, err
	}
	if err := s.record(ctx, u.Actor(), EventUserSignedIn, map[string]string{"user": u.Name, "user_id": u.ID}); err != nil {
		return "", User{}, err
	}
	return secret, u, nil
}

var errNoSession = vigil.Errorf(vigil.EUNAUTHORIZED, "not signed in, or the session has ended")

// Authenticate resolves a session secret to its user's actor. Sessions end at their
// expiry, after IdleTimeout without use, and when the user is disabled.
func (s *Users) Authenticate(ctx context.Context, secret string) (vigil.Actor, error) {
	if !strings.HasPrefix(secret, SessionPrefix) {
		return vigil.Actor{}, errNoSession
	}
	se, err := s.Store.Session(ctx, Hash(secret))
	if errors.Is(err, vigil.ErrNotFound) {
		return vigil.Actor{}, errNoSession
	}
	if err != nil {
		return vigil.Actor{}, fmt.Errorf("couldn't read session: %w", err)
	}
	now := s.now()
	if !now.Before(se.ExpiresAt) || now.Sub(se.LastSeen) >= s.idle() {
		_ = s.Store.DeleteSession(ctx, se.Hash)
		return vigil.Actor{}, errNoSession
	}
	u, err := s.Store.User(ctx, se.UserID)
	if err != nil {
		return vigil.Actor{}, fmt.Errorf("couldn't load the session's user: %w", err)
	}
	if u.Disabled {
		return vigil.Actor{}, errNoSession
	}
	// Write at most once a minute per session; idle timeouts are minutes long.
	if now.Sub(se.LastSeen) >= time.Minute {
		if err := s.Store.TouchSession(ctx, se.Hash, now); err != nil && !errors.Is(err, vigil.ErrNotFound) {
			return vigil.Actor{}, err
		}
	}
	return u.Actor(), nil
}

// SignOut ends a session.
func (s *Users) SignOut(ctx context.Context, secret string) error {
	return s.Store.DeleteSession(ctx, Hash(secret))
}

// CSRFToken is the anti-forgery token for forms of the session whose secret is
// given: an HMAC of the session's hash, so it needs no storage, changes with every
// session and cannot be computed without the server's key.
func (s *Users) CSRFToken(secret string) string {
	m := hmac.New(sha256.New, s.CSRFKey)
	m.Write([]byte("csrf\x00" + Hash(secret)))
	return hex.EncodeToString(m.Sum(nil))
}

// CheckCSRF reports whether token is the session's CSRF token, in constant time.
func (s *Users) CheckCSRF(secret, token string) bool {
	if len(s.CSRFKey) == 0 || secret == "" {
		return false
	}
	return hmac.Equal([]byte(s.CSRFToken(secret)), []byte(token))
}

func (s *Users) record(ctx context.Context, by vigil.Actor, typ string, attrs map[string]string) error {
	if _, err := s.Ledger.Record(ctx, vigil.Event{Type: typ, Time: s.now(), Actor: by.String(), Attrs: attrs}); err != nil {
		return fmt.Errorf("couldn't record %s in the ledger: %w", typ, err)
	}
	return nil
}

func joinRoles(roles []vigil.Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}
