package auth_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/store/sqlite"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var cheap = auth.PasswordParams{Memory: 1024, Time: 1, Threads: 1}

func TestPasswordHash(t *testing.T) {
	h, err := auth.HashPassword("correct horse battery", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Errorf("hash %q is not an argon2id PHC string with its parameters", h)
	}
	if h2, _ := auth.HashPassword("correct horse battery", cheap); h2 == h {
		t.Error("two hashes of one password are equal: no salt")
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "correct horse batterY": false, "": false} {
		if ok, err := auth.CheckPassword(pw, h); ok != want || err != nil {
			t.Errorf("CheckPassword(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	for _, bad := range []string{"", "$2a$10$bcrypt", "$argon2id$v=19$m=x$a$b", "$argon2id$v=18$m=1,t=1,p=1$YQ$YQ", "$argon2id$v=19$m=1024,t=1,p=1$!!$YQ"} {
		if _, err := auth.CheckPassword("x", bad); err == nil {
			t.Errorf("CheckPassword accepted the malformed hash %q", bad)
		}
	}
}

type recorder struct {
	mu     sync.Mutex
	events []vigil.Event
}

func (r *recorder) Record(_ context.Context, e vigil.Event) (vigil.Receipt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return vigil.Receipt{}, nil
}

func newUsers(t *testing.T) (*auth.Users, *time.Time, *recorder) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "v.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	rec := &recorder{}
	return &auth.Users{Store: db.Users(), Ledger: rec, Now: func() time.Time { return now }, Password: cheap,
		SessionLifetime: 8 * time.Hour, IdleTimeout: 30 * time.Minute, CSRFKey: []byte("0123456789abcdef0123456789abcdef")}, &now, rec
}

var admin = vigil.Actor{Kind: vigil.ActorToken, Name: "bootstrap", Roles: []vigil.Role{vigil.RoleAdmin}}

func TestCreateUserValidates(t *testing.T) {
	u, _, rec := newUsers(t)
	ctx := context.Background()
	for name, c := range map[string]struct {
		name  string
		roles []vigil.Role
		pw    string
		msg   string
	}{
		"bad name":       {"Dana Smith", []vigil.Role{vigil.RoleReviewer}, "long enough password", "user name"},
		"no role":        {"dana", nil, "long enough password", "at least one role"},
		"unknown role":   {"dana", []vigil.Role{"boss"}, "long enough password", "not one of"},
		"short password": {"dana", []vigil.Role{vigil.RoleReviewer}, "short", "password must be"},
	} {
		if _, err := u.CreateUser(ctx, admin, c.name, c.roles, c.pw); vigil.ErrorCode(err) != vigil.EINVALID || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: CreateUser = %v, want EINVALID mentioning %q", name, err, c.msg)
		}
	}
	got, err := u.CreateUser(ctx, admin, "dana", []vigil.Role{vigil.RoleReviewer, vigil.RoleAuditor, vigil.RoleReviewer}, "long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Roles) != 2 || strings.Contains(got.PasswordHash, "long enough") {
		t.Errorf("created %+v; want two distinct roles and a hashed password", got)
	}
	if _, err := u.CreateUser(ctx, admin, "dana", []vigil.Role{vigil.RoleViewer}, "another long password"); vigil.ErrorCode(err) != vigil.ECONFLICT {
		t.Errorf("duplicate user = %v, want ECONFLICT", err)
	}
	if len(rec.events) != 1 || rec.events[0].Type != auth.EventUserCreated || rec.events[0].Actor != "token:bootstrap" {
		t.Errorf("ledger events = %+v, want one user.created by the admin", rec.events)
	}
}

func TestSessions(t *testing.T) {
	u, now, rec := newUsers(t)
	ctx := context.Background()
	dana, err := u.CreateUser(ctx, admin, "dana", []vigil.Role{vigil.RoleReviewer}, "long enough password")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{"dana", "wrong password!"}, {"nobody", "long enough password"}} {
		if _, _, err := u.SignIn(ctx, c[0], c[1]); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED || err.Error() != "unauthenticated: wrong user name or password" {
			t.Errorf("SignIn(%q) = %v, want the same refusal for every wrong pair", c[0], err)
		}
	}
	secret, _, err := u.SignIn(ctx, "dana", "long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if rec.events[len(rec.events)-1].Type != auth.EventUserSignedIn {
		t.Error("sign-in not recorded")
	}
	actor, err := u.Authenticate(ctx, secret)
	if err != nil || actor.String() != "user:dana" || !actor.Has(vigil.RoleReviewer) {
		t.Fatalf("Authenticate = %v, %v", actor, err)
	}

	// CSRF tokens are bound to the session.
	other, _, _ := u.SignIn(ctx, "dana", "long enough password")
	tok := u.CSRFToken(secret)
	if !u.CheckCSRF(secret, tok) || u.CheckCSRF(other, tok) || u.CheckCSRF(secret, "") || u.CheckCSRF("", tok) {
		t.Error("a CSRF token must pass for its own session only")
	}

	// Idle timeout, then the absolute lifetime.
	*now = now.Add(29 * time.Minute)
	if _, err := u.Authenticate(ctx, secret); err != nil {
		t.Fatalf("session used within the idle timeout: %v", err)
	}
	*now = now.Add(31 * time.Minute)
	if _, err := u.Authenticate(ctx, other); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Errorf("session idle for an hour = %v, want refused", err)
	}
	for range 16 {
		*now = now.Add(29 * time.Minute)
		if _, err := u.Authenticate(ctx, secret); err != nil {
			break
		}
	}
	if _, err := u.Authenticate(ctx, secret); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Errorf("session past its lifetime = %v, want refused", err)
	}

	// Disabling a user ends their sessions; a new password does too.
	secret, _, _ = u.SignIn(ctx, "dana", "long enough password")
	disabled := true
	if _, err := u.UpdateUser(ctx, admin, dana.ID, auth.UserChange{Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Authenticate(ctx, secret); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Errorf("session of a disabled user = %v", err)
	}
	if _, _, err := u.SignIn(ctx, "dana", "long enough password"); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Errorf("disabled user signed in: %v", err)
	}
	enabled, pw := false, "a brand new password"
	if _, err := u.UpdateUser(ctx, admin, "dana", auth.UserChange{Disabled: &enabled}); err != nil {
		t.Fatal(err)
	}
	secret, _, _ = u.SignIn(ctx, "dana", "long enough password")
	if _, err := u.UpdateUser(ctx, admin, "dana", auth.UserChange{Password: &pw}); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Authenticate(ctx, secret); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Errorf("session after a password change = %v, want ended", err)
	}
	if _, _, err := u.SignIn(ctx, "dana", pw); err != nil {
		t.Errorf("sign-in with the new password: %v", err)
	}
	if _, err := u.Authenticate(ctx, "vs_madeup"); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Errorf("made-up session = %v", err)
	}
}
