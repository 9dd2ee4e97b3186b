package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var _ auth.UserStore = (*userStore)(nil)

// userStore implements auth.UserStore.
type userStore struct{ db *DB }

// Users returns the store of console users and their sessions.
func (db *DB) Users() auth.UserStore { return &userStore{db} }

const userCols = `id, name, roles, password_hash, disabled, created_by, created_at, updated_at`

func scanUser(row pgx.Row) (auth.User, error) {
	var u auth.User
	var roles []byte
	if err := row.Scan(&u.ID, &u.Name, &roles, &u.PasswordHash, &u.Disabled, &u.CreatedBy, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return u, err
	}
	u.CreatedAt, u.UpdatedAt = utc(u.CreatedAt), utc(u.UpdatedAt)
	if err := json.Unmarshal(roles, &u.Roles); err != nil {
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
	_, err := s.db.pool.Exec(ctx, `INSERT INTO users (`+userCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
		u.ID, u.Name, rolesJSON(u.Roles), u.PasswordHash, u.Disabled, u.CreatedBy, u.CreatedAt, u.UpdatedAt)
	if isUnique(err) {
		return vigil.Conflict("a user named %q already exists", u.Name)
	}
	if err != nil {
		return fmt.Errorf("couldn't create user: %w", err)
	}
	return nil
}

func (s *userStore) UpdateUser(ctx context.Context, u auth.User) error {
	tag, err := s.db.pool.Exec(ctx, `UPDATE users SET roles=$1, password_hash=$2, disabled=$3, updated_at=$4 WHERE id=$5`,
		rolesJSON(u.Roles), u.PasswordHash, u.Disabled, u.UpdatedAt, u.ID)
	if err != nil {
		return fmt.Errorf("couldn't update user: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return vigil.NotFound("no user %q", u.ID)
	}
	return nil
}

func (s *userStore) User(ctx context.Context, id string) (auth.User, error) {
	u, err := scanUser(s.db.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE id=$1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return u, vigil.NotFound("no user %q", id)
	}
	return u, err
}

func (s *userStore) UserByName(ctx context.Context, name string) (auth.User, error) {
	u, err := scanUser(s.db.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE name=$1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return u, vigil.NotFound("no user named %q", name)
	}
	return u, err
}

func (s *userStore) ListUsers(ctx context.Context) ([]auth.User, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
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
	_, err := s.db.pool.Exec(ctx, `INSERT INTO sessions (hash, user_id, created_at, last_seen, expires_at) VALUES ($1,$2,$3,$4,$5)`,
		se.Hash, se.UserID, se.CreatedAt, se.LastSeen, se.ExpiresAt)
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
	err := s.db.pool.QueryRow(ctx, `SELECT user_id, created_at, last_seen, expires_at FROM sessions WHERE hash=$1`, hash).
		Scan(&se.UserID, &se.CreatedAt, &se.LastSeen, &se.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return se, vigil.NotFound("no such session")
	}
	if err != nil {
		return se, fmt.Errorf("couldn't read session: %w", err)
	}
	se.CreatedAt, se.LastSeen, se.ExpiresAt = utc(se.CreatedAt), utc(se.LastSeen), utc(se.ExpiresAt)
	return se, nil
}

func (s *userStore) TouchSession(ctx context.Context, hash string, at time.Time) error {
	tag, err := s.db.pool.Exec(ctx, `UPDATE sessions SET last_seen=$1 WHERE hash=$2`, at, hash)
	if err != nil {
		return fmt.Errorf("couldn't touch session: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return vigil.NotFound("no such session")
	}
	return nil
}

func (s *userStore) DeleteSession(ctx context.Context, hash string) error {
	if _, err := s.db.pool.Exec(ctx, `DELETE FROM sessions WHERE hash=$1`, hash); err != nil {
		return fmt.Errorf("couldn't delete session: %w", err)
	}
	return nil
}

func (s *userStore) DeleteUserSessions(ctx context.Context, userID string) error {
	if _, err := s.db.pool.Exec(ctx, `DELETE FROM sessions WHERE user_id=$1`, userID); err != nil {
		return fmt.Errorf("couldn't delete the user's sessions: %w", err)
	}
	return nil
}

func (s *userStore) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.db.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, now)
	if err != nil {
		return 0, fmt.Errorf("couldn't delete expired sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
