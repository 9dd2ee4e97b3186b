package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var _ auth.UserStore = (*userStore)(nil)

// userStore implements auth.UserStore.
type userStore struct{ db *DB }

// Users returns the store of console users and their sessions.
func (db *DB) Users() auth.UserStore { return &userStore{db} }

const userCols = `id, name, roles, password_hash, disabled, created_by, created_at, updated_at`

func scanUser(row rowScanner) (auth.User, error) {
	var u auth.User
	var roles string
	var created, updated int64
	if err := row.Scan(&u.ID, &u.Name, &roles, &u.PasswordHash, &u.Disabled, &u.CreatedBy, &created, &updated); err != nil {
		return u, err
	}
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	if err := json.Unmarshal([]byte(roles), &u.Roles); err != nil {
		return u, fmt.Errorf("user %s has corrupt roles: %w", u.ID, err)
	}
	return u, nil
}

func rolesJSON(r []vigil.Role) string {
	if r == nil {
		r = []vigil.Role{}
	}
	b, _ := json.Marshal(r)
	return string(b)
}

func (s *userStore) CreateUser(ctx context.Context, u auth.User) error {
	_, err := s.db.writes.ExecContext(ctx, `INSERT INTO users (`+userCols+`) VALUES (?,?,?,?,?,?,?,?)`,
		u.ID, u.Name, rolesJSON(u.Roles), u.PasswordHash, u.Disabled, u.CreatedBy, micros(u.CreatedAt), micros(u.UpdatedAt))
	if isUnique(err) {
		return vigil.Conflict("a user named %q already exists", u.Name)
	}
	if err != nil {
		return fmt.Errorf("couldn't create user: %w", err)
	}
	return nil
}

func (s *userStore) UpdateUser(ctx context.Context, u auth.User) error {
	res, err := s.db.writes.ExecContext(ctx, `UPDATE users SET roles=?, password_hash=?, disabled=?, updated_at=? WHERE id=?`,
		rolesJSON(u.Roles), u.PasswordHash, u.Disabled, micros(u.UpdatedAt), u.ID)
	if err != nil {
		return fmt.Errorf("couldn't update user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return vigil.NotFound("no user %q", u.ID)
	}
	return nil
}

func (s *userStore) User(ctx context.Context, id string) (auth.User, error) {
	u, err := scanUser(s.db.reads.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return u, vigil.NotFound("no user %q", id)
	}
	return u, err
}

func (s *userStore) UserByName(ctx context.Context, name string) (auth.User, error) {
	u, err := scanUser(s.db.reads.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE name=?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return u, vigil.NotFound("no user named %q", name)
	}
	return u, err
}

func (s *userStore) ListUsers(ctx context.Context) ([]auth.User, error) {
	rows, err := s.db.reads.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("couldn't list users: %w", err)
	}
	defer rows.Close()
	out := []auth.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (s *userStore) CreateSession(ctx context.Context, se auth.Session) error {
	_, err := s.db.writes.ExecContext(ctx, `INSERT INTO sessions (hash, user_id, created_at, last_seen, expires_at) VALUES (?,?,?,?,?)`,
		se.Hash, se.UserID, micros(se.CreatedAt), micros(se.LastSeen), micros(se.ExpiresAt))
	if isUnique(err) {
		return vigil.Conflict("session already exists")
	}
	if err != nil {
		return fmt.Errorf("couldn't create session: %w", err)
	}
	return nil
}

func (s *userStore) Session(ctx context.Context, hash string) (auth.Session, error) {
	se := auth.Session{Hash: hash}
	var created, seen, expires int64
	err := s.db.reads.QueryRowContext(ctx, `SELECT user_id, created_at, last_seen, expires_at FROM sessions WHERE hash=?`, hash).
		Scan(&se.UserID, &created, &seen, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return se, vigil.NotFound("no such session")
	}
	if err != nil {
		return se, fmt.Errorf("couldn't read session: %w", err)
	}
	se.CreatedAt, se.LastSeen, se.ExpiresAt = fromMicros(created), fromMicros(seen), fromMicros(expires)
	return se, nil
}

func (s *userStore) TouchSession(ctx context.Context, hash string, at time.Time) error {
	res, err := s.db.writes.ExecContext(ctx, `UPDATE sessions SET last_seen=? WHERE hash=?`, micros(at), hash)
	if err != nil {
		return fmt.Errorf("couldn't touch session: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return vigil.NotFound("no such session")
	}
	return nil
}

func (s *userStore) DeleteSession(ctx context.Context, hash string) error {
	if _, err := s.db.writes.ExecContext(ctx, `DELETE FROM sessions WHERE hash=?`, hash); err != nil {
		return fmt.Errorf("couldn't delete session: %w", err)
	}
	return nil
}

func (s *userStore) DeleteUserSessions(ctx context.Context, userID string) error {
	if _, err := s.db.writes.ExecContext(ctx, `DELETE FROM sessions WHERE user_id=?`, userID); err != nil {
		return fmt.Errorf("couldn't delete the user's sessions: %w", err)
	}
	return nil
}

func (s *userStore) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	res, err := s.db.writes.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, micros(now))
	if err != nil {
		return 0, fmt.Errorf("couldn't delete expired sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
