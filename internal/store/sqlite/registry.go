package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var (
	_ inventory.Store = (*registryStore)(nil)
	_ auth.Store      = (*registryStore)(nil)
)

// registryStore implements inventory.Store and auth.Store.
type registryStore struct{ db *DB }

// Inventory returns the store of systems and agents.
func (db *DB) Inventory() inventory.Store { return &registryStore{db} }

// Auth returns the store of agent keys and role tokens.
func (db *DB) Auth() auth.Store { return &registryStore{db} }

const systemCols = `id, name, purpose, owner, lifecycle, status, suspended_reason, suspended_by, suspended_at, created_at, updated_at`

func scanSystem(row interface{ Scan(...any) error }) (inventory.System, error) {
	var s inventory.System
	var susp sql.NullInt64
	var created, updated int64
	err := row.Scan(&s.ID, &s.Name, &s.Purpose, &s.Owner, &s.Lifecycle, &s.Status, &s.SuspendedReason, &s.SuspendedBy, &susp, &created, &updated)
	s.SuspendedAt, s.CreatedAt, s.UpdatedAt = fromMicrosPtr(susp), fromMicros(created), fromMicros(updated)
	return s, err
}

func (r *registryStore) CreateSystem(ctx context.Context, s inventory.System) error {
	_, err := r.db.writes.ExecContext(ctx, `INSERT INTO systems (`+systemCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		s.ID, s.Name, s.Purpose, s.Owner, s.Lifecycle, s.Status, s.SuspendedReason, s.SuspendedBy, microsPtr(s.SuspendedAt), micros(s.CreatedAt), micros(s.UpdatedAt))
	if isUnique(err) {
		return vigil.Conflict("an AI system named %q already exists", s.Name)
	}
	if err != nil {
		return fmt.Errorf("couldn't create system: %w", err)
	}
	return nil
}

func (r *registryStore) UpdateSystem(ctx context.Context, s inventory.System) error {
	res, err := r.db.writes.ExecContext(ctx, `UPDATE systems SET purpose=?, owner=?, lifecycle=?, status=?, suspended_reason=?, suspended_by=?, suspended_at=?, updated_at=? WHERE id=?`,
		s.Purpose, s.Owner, s.Lifecycle, s.Status, s.SuspendedReason, s.SuspendedBy, microsPtr(s.SuspendedAt), micros(s.UpdatedAt), s.ID)
	if err != nil {
		return fmt.Errorf("couldn't update system: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return vigil.NotFound("no AI system %q", s.ID)
	}
	return nil
}

func (r *registryStore) System(ctx context.Context, id string) (inventory.System, error) {
	s, err := scanSystem(r.db.reads.QueryRowContext(ctx, `SELECT `+systemCols+` FROM systems WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return s, vigil.NotFound("no AI system %q", id)
	}
	return s, err
}

func (r *registryStore) SystemByName(ctx context.Context, name string) (inventory.System, error) {
	s, err := scanSystem(r.db.reads.QueryRowContext(ctx, `SELECT `+systemCols+` FROM systems WHERE name=?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return s, vigil.NotFound("no AI system named %q", name)
	}
	return s, err
}

func (r *registryStore) ListSystems(ctx context.Context) ([]inventory.System, error) {
	rows, err := r.db.reads.QueryContext(ctx, `SELECT `+systemCols+` FROM systems ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("couldn't list systems: %w", err)
	}
	defer rows.Close()
	out := []inventory.System{}
	for rows.Next() {
		s, err := scanSystem(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

const agentCols = `id, name, system_id, owner, labels, status, suspended_reason, suspended_by, suspended_at, created_at, updated_at`

func scanAgent(row interface{ Scan(...any) error }) (inventory.Agent, error) {
	var a inventory.Agent
	var labels string
	var susp sql.NullInt64
	var created, updated int64
	if err := row.Scan(&a.ID, &a.Name, &a.SystemID, &a.Owner, &labels, &a.Status, &a.SuspendedReason, &a.SuspendedBy, &susp, &created, &updated); err != nil {
		return a, err
	}
	a.SuspendedAt, a.CreatedAt, a.UpdatedAt = fromMicrosPtr(susp), fromMicros(created), fromMicros(updated)
	if err := json.Unmarshal([]byte(labels), &a.Labels); err != nil {
		return a, fmt.Errorf("agent %s has corrupt labels: %w", a.ID, err)
	}
	return a, nil
}

func labelsJSON(l map[string]string) string {
	if l == nil {
		l = map[string]string{}
	}
	b, _ := json.Marshal(l)
	return string(b)
}

func (r *registryStore) CreateAgent(ctx context.Context, a inventory.Agent) error {
	_, err := r.db.writes.ExecContext(ctx, `INSERT INTO agents (`+agentCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		a.ID, a.Name, a.SystemID, a.Owner, labelsJSON(a.Labels), a.Status, a.SuspendedReason, a.SuspendedBy, microsPtr(a.SuspendedAt), micros(a.CreatedAt), micros(a.UpdatedAt))
	if isUnique(err) {
		return vigil.Conflict("an agent named %q already exists", a.Name)
	}
	if err != nil {
		return fmt.Errorf("couldn't create agent: %w", err)
	}
	return nil
}

func (r *registryStore) UpdateAgent(ctx context.Context, a inventory.Agent) error {
	res, err := r.db.writes.ExecContext(ctx, `UPDATE agents SET owner=?, labels=?, status=?, suspended_reason=?, suspended_by=?, suspended_at=?, updated_at=? WHERE id=?`,
		a.Owner, labelsJSON(a.Labels), a.Status, a.SuspendedReason, a.SuspendedBy, microsPtr(a.SuspendedAt), micros(a.UpdatedAt), a.ID)
	if err != nil {
		return fmt.Errorf("couldn't update agent: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return vigil.NotFound("no agent %q", a.ID)
	}
	return nil
}

func (r *registryStore) Agent(ctx context.Context, id string) (inventory.Agent, error) {
	a, err := scanAgent(r.db.reads.QueryRowContext(ctx, `SELECT `+agentCols+` FROM agents WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, vigil.NotFound("no agent %q", id)
	}
	return a, err
}

func (r *registryStore) AgentByName(ctx context.Context, name string) (inventory.Agent, error) {
	a, err := scanAgent(r.db.reads.QueryRowContext(ctx, `SELECT `+agentCols+` FROM agents WHERE name=?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return a, vigil.NotFound("no agent named %q", name)
	}
	return a, err
}

func (r *registryStore) ListAgents(ctx context.Context, systemID string) ([]inventory.Agent, error) {
	rows, err := r.db.reads.QueryContext(ctx, `SELECT `+agentCols+` FROM agents WHERE ?='' OR system_id=? ORDER BY name`, systemID, systemID)
	if err != nil {
		return nil, fmt.Errorf("couldn't list agents: %w", err)
	}
	defer rows.Close()
	out := []inventory.Agent{}
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

const keyCols = `id, agent_id, prefix, hash, created_at, expires_at, revoked_at`

func scanKey(row interface{ Scan(...any) error }) (auth.AgentKey, error) {
	var k auth.AgentKey
	var created int64
	var exp, rev sql.NullInt64
	err := row.Scan(&k.ID, &k.AgentID, &k.Prefix, &k.Hash, &created, &exp, &rev)
	k.CreatedAt, k.ExpiresAt, k.RevokedAt = fromMicros(created), fromMicrosPtr(exp), fromMicrosPtr(rev)
	return k, err
}

func (r *registryStore) CreateAgentKey(ctx context.Context, k auth.AgentKey) error {
	_, err := r.db.writes.ExecContext(ctx, `INSERT INTO agent_keys (`+keyCols+`) VALUES (?,?,?,?,?,?,?)`,
		k.ID, k.AgentID, k.Prefix, k.Hash, micros(k.CreatedAt), microsPtr(k.ExpiresAt), microsPtr(k.RevokedAt))
	if isUnique(err) {
		return vigil.Conflict("agent key already exists")
	}
	if err != nil {
		return fmt.Errorf("couldn't create agent key: %w", err)
	}
	return nil
}

func (r *registryStore) AgentKeyByHash(ctx context.Context, hash string) (auth.AgentKey, error) {
	k, err := scanKey(r.db.reads.QueryRowContext(ctx, `SELECT `+keyCols+` FROM agent_keys WHERE hash=?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return k, vigil.NotFound("no such agent key")
	}
	return k, err
}

func (r *registryStore) ListAgentKeys(ctx context.Context, agentID string) ([]auth.AgentKey, error) {
	rows, err := r.db.reads.QueryContext(ctx, `SELECT `+keyCols+` FROM agent_keys WHERE agent_id=? ORDER BY created_at, id`, agentID)
	if err != nil {
		return nil, fmt.Errorf("couldn't list agent keys: %w", err)
	}
	defer rows.Close()
	out := []auth.AgentKey{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

func (r *registryStore) ExpireAgentKeys(ctx context.Context, agentID, keepID string, at time.Time) error {
	_, err := r.db.writes.ExecContext(ctx, `UPDATE agent_keys SET expires_at = ?
		WHERE agent_id=? AND id<>? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)`,
		micros(at), agentID, keepID, micros(at))
	if err != nil {
		return fmt.Errorf("couldn't expire agent keys: %w", err)
	}
	return nil
}

func (r *registryStore) RevokeAgentKey(ctx context.Context, agentID, keyID string, at time.Time) error {
	res, err := r.db.writes.ExecContext(ctx, `UPDATE agent_keys SET revoked_at=? WHERE agent_id=? AND id=? AND revoked_at IS NULL`, micros(at), agentID, keyID)
	if err != nil {
		return fmt.Errorf("couldn't revoke agent key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return vigil.NotFound("agent has no active key %q", keyID)
	}
	return nil
}

const tokenCols = `id, name, role, prefix, hash, created_by, created_at, expires_at, revoked_at`

func scanToken(row interface{ Scan(...any) error }) (auth.Token, error) {
	var t auth.Token
	var created int64
	var exp, rev sql.NullInt64
	err := row.Scan(&t.ID, &t.Name, &t.Role, &t.Prefix, &t.Hash, &t.CreatedBy, &created, &exp, &rev)
	t.CreatedAt, t.ExpiresAt, t.RevokedAt = fromMicros(created), fromMicrosPtr(exp), fromMicrosPtr(rev)
	return t, err
}

func (r *registryStore) CreateToken(ctx context.Context, t auth.Token) error {
	_, err := r.db.writes.ExecContext(ctx, `INSERT INTO tokens (`+tokenCols+`) VALUES (?,?,?,?,?,?,?,?,?)`,
		t.ID, t.Name, t.Role, t.Prefix, t.Hash, t.CreatedBy, micros(t.CreatedAt), microsPtr(t.ExpiresAt), microsPtr(t.RevokedAt))
	if isUnique(err) {
		return vigil.Conflict("token already exists")
	}
	if err != nil {
		return fmt.Errorf("couldn't create token: %w", err)
	}
	return nil
}

func (r *registryStore) TokenByHash(ctx context.Context, hash string) (auth.Token, error) {
	t, err := scanToken(r.db.reads.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash=?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, vigil.NotFound("no such token")
	}
	return t, err
}

func (r *registryStore) ListTokens(ctx context.Context) ([]auth.Token, error) {
	rows, err := r.db.reads.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("couldn't list tokens: %w", err)
	}
	defer rows.Close()
	out := []auth.Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (r *registryStore) RevokeToken(ctx context.Context, id string, at time.Time) error {
	res, err := r.db.writes.ExecContext(ctx, `UPDATE tokens SET revoked_at=? WHERE id=? AND revoked_at IS NULL`, micros(at), id)
	if err != nil {
		return fmt.Errorf("couldn't revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return vigil.NotFound("no active token %q", id)
	}
	return nil
}

func (r *registryStore) CountTokens(ctx context.Context) (int, error) {
	var n int
	err := r.db.reads.QueryRowContext(ctx, `SELECT count(*) FROM tokens`).Scan(&n)
	return n, err
}
