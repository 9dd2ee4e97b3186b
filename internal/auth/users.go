package auth

import (
	"context"
	"time"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// User is a named person who signs in to the console (reviewers, admins).
type User struct {
	ID    string       `json:"id"`
	Name  string       `json:"name"`
	Roles []vigil.Role `json:"roles"`
	// PasswordHash is the argon2id hash in PHC string form; never shown.
	PasswordHash string    `json:"-"`
	Disabled     bool      `json:"disabled"`
	CreatedBy    string    `json:"created_by"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Actor is the identity a user acts as.
func (u User) Actor() vigil.Actor {
	return vigil.Actor{Kind: vigil.ActorUser, ID: u.ID, Name: u.Name, Roles: u.Roles}
}

// Session is a signed-in console session. Only the hash of its secret is stored; the
// secret lives in the browser's cookie.
type Session struct {
	Hash      string    `json:"-"`
	UserID    string    `json:"user_id"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`
	ExpiresAt time.Time `json:"expires_at"`
}

// UserStore keeps users and their sessions. It is separate from Store so drivers and
// tests of keys and tokens don't need it.
//
// Lookups MUST return an error matching vigil.ErrNotFound when nothing matches;
// creating a user whose name exists MUST return one matching vigil.ErrConflict.
// Implementations MUST be safe for concurrent use.
type UserStore interface {
	CreateUser(ctx context.Context, u User) error
	// UpdateUser stores u's roles, password hash, disabled flag and UpdatedAt.
	UpdateUser(ctx context.Context, u User) error
	User(ctx context.Context, id string) (User, error)
	UserByName(ctx context.Context, name string) (User, error)
	// ListUsers lists every user by name.
	ListUsers(ctx context.Context) ([]User, error)

	CreateSession(ctx context.Context, s Session) error
	Session(ctx context.Context, hash string) (Session, error)
	// TouchSession sets a session's LastSeen.
	TouchSession(ctx context.Context, hash string, at time.Time) error
	// DeleteSession removes one session; removing a missing one is not an error.
	DeleteSession(ctx context.Context, hash string) error
	// DeleteUserSessions removes every session of a user (on disable, password change).
	DeleteUserSessions(ctx context.Context, userID string) error
	// DeleteExpiredSessions removes sessions whose ExpiresAt is not after now.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)
}
