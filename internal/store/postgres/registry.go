package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
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

func utc(t time.Time) time.Time { return t.UTC() }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

const systemCols = `id, name, purpose, owner, lifecycle, status, suspended_reason, suspended_by, suspended_at, created_at, updated_at`

func scanSystem(row pgx.Row) (inventory.System, error) {
	var s inventory.System
	err := row.Scan(&s.ID, &s.Name, &s.Purpose, &s.Owner, &s.Lifecycle, &s.Status, &s.SuspendedReason, &s.SuspendedBy, &s.SuspendedAt, &s.CreatedAt, &s.UpdatedAt)
	s.SuspendedAt, s.CreatedAt, s.UpdatedAt = utcPtr(s.SuspendedAt), utc(s.CreatedAt), utc(s.UpdatedAt)
	return s, err
}

func (r *registryStore) CreateSystem(ctx context.Context, s inventory.System) error {
	_, err := r.db.pool.Exec(ctx, `INSERT INTO systems (`+systemCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`,
		s.ID, s.Name, s.Purpose, s.Owner, s.Lifecycle, s.Status, s.SuspendedReason, s.SuspendedBy, s.SuspendedAt, s.CreatedAt, s.UpdatedAt)
	if isUnique(err) {
		return vigil.Conflict("an AI system named %q already exists", s.Name)
	}
	if err != nil {
		return fmt.Errorf("couldn't create system: %w", err)
	}
	return nil
}

func (r *registryStore) UpdateSystem(ctx context.Context, s inventory.System) error {
	tag, err := r.db.pool.Exec(ctx, `UPDATE systems SET purpose=$1, owner=$2, lifecycle=$3, status=$4, suspended_reason=$5, suspended_by=$6, suspended_at=$7, updated_at=$8 WHERE id=$9`,
		s.Purpose, s.Owner, s.Lifecycle, s.Status, s.SuspendedReason, s.SuspendedBy, s.SuspendedAt, s.UpdatedAt, s.ID)
	if err != nil {
		return fmt.Errorf("couldn't update system: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return vigil.NotFound("no AI system %q", s.ID)
	}
	return nil
}

func (r *registryStore) System(ctx context.Context, id string) (inventory.System, error) {
	s, err := scanSystem(r.db.pool.QueryRow(ctx, `SELECT `+systemCols+` FROM systems WHERE id=$1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return s, vigil.NotFound("no AI system %q", id)
	}
	return s, err
}

func (r *registryStore) SystemByName(ctx context.Context, name string) (inventory.System, error) {
	s, err := scanSystem(r.db.pool.QueryRow(ctx, `SELECT `+systemCols+` FROM systems WHERE name=$1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return s, vigil.NotFound("no AI system named %q", name)
	}
	return s, err
}

func (r *registryStore) ListSystems(ctx context.Context) ([]inventory.System, error) {
	rows, err := r.db.pool.Query(ctx, `SELECT `+systemCols+` FROM systems ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("couldn't list systems: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (inventory.System, error) { return scanSystem(row) })
	if out == nil {
		out = []inventory.System{}
	}
	return out, err
}

const agentCols = `id, name, system_id, owner, labels, status, suspended_reason, suspended_by, suspended_at, created_at, updated_at`

func scanAgent(row pgx.Row) (inventory.Agent, error) {
	var a inventory.Agent
	err := row.Scan(&a.ID, &a.Name, &a.SystemID, &a.Owner, &a.Labels, &a.Status, &a.SuspendedReason, &a.SuspendedBy, &a.SuspendedAt, &a.CreatedAt, &a.UpdatedAt)
	a.SuspendedAt, a.CreatedAt, a.UpdatedAt = utcPtr(a.SuspendedAt), utc(a.CreatedAt), utc(a.UpdatedAt)
	if a.Labels == nil {
		a.Labels = map[string]string{}
	}
	return a, err
}

func labels(l map[string]string) map[string]string {
	if l == nil {
		return map[string]string{}
	}
	return l
}

func (r *registryStore) CreateAgent(ctx context.Context, a inventory.Agent) error {
	_, err := r.db.pool.Exec(ctx, `INSERT INTO agents (`+agentCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`,
		a.ID, a.Name, a.SystemID, a.Owner, labels(a.Labels), a.Status, a.SuspendedReason, a.SuspendedBy, a.SuspendedAt, a.CreatedAt, a.UpdatedAt)
	if isUnique(err) {
		return vigil.Conflict("an agent named %q already exists", a.Name)
	}
	if err != nil {
		return fmt.Errorf("couldn't create agent: %w", err)
	}
	return nil
}

func (r *registryStore) UpdateAgent(ctx context.Context, a inventory.Agent) error {
	tag, err := r.db.pool.Exec(ctx, `UPDATE agents SET owner=$1, labels=$2, status=$3, suspended_reason=$4, suspended_by=$5, suspended_at=$6, updated_at=$7 WHERE id=$8`,
		a.Owner, labels(a.Labels), a.Status, a.SuspendedReason, a.SuspendedBy, a.SuspendedAt, a.UpdatedAt, a.ID)
	if err != nil {
		return fmt.Errorf("couldn't update agent: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return vigil.NotFound("no agent %q", a.ID)
	}
	return nil
}

func (r *registryStore) Agent(ctx context.Context, id string) (inventory.Agent, error) {
	a, err := scanAgent(r.db.pool.QueryRow(ctx, `SELECT `+agentCols+` FROM agents WHERE id=$1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, vigil.NotFound("no agent %q", id)
	}
	return a, err
}

func (r *registryStore) AgentByName(ctx context.Context, name string) (inventory.Agent, error) {
	a, err := scanAgent(r.db.pool.QueryRow(ctx, `SELECT `+agentCols+` FROM agents WHERE name=$1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, vigil.NotFound("no agent named %q", name)
	}
	return a, err
}

func (r *registryStore) ListAgents(ctx context.Context, systemID string) ([]inventory.Agent, error) {
	rows, err := r.db.pool.Query(ctx, `SELECT `+agentCols+` FROM agents WHERE $1='' OR system_id=$1 ORDER BY name`, systemID)
	if err != nil {
		return nil, fmt.Errorf("couldn't list agents: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (inventory.Agent, error) { return scanAgent(row) })
	if out == nil {
		out = []inventory.Agent{}
	}
	return out, err
}

const keyCols = `id, agent_id, prefix, hash, created_at, expires_at, revoked_at`

func scanKey(row pgx.Row) (auth.AgentKey, error) {
	var k auth.AgentKey
	err := row.Scan(&k.ID, &k.AgentID, &k.Prefix, &k.Hash, &k.CreatedAt, &k.ExpiresAt, &k.RevokedAt)
	k.CreatedAt, k.ExpiresAt, k.RevokedAt = utc(k.CreatedAt), utcPtr(k.ExpiresAt), utcPtr(k.RevokedAt)
	return k, err
}

func (r *registryStore) CreateAgentKey(ctx context.Context, k auth.AgentKey) error {
	_, err := r.db.pool.Exec(ctx, `INSERT INTO agent_keys (`+keyCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		k.ID, k.AgentID, k.Prefix, k.Hash, k.CreatedAt, k.ExpiresAt, k.RevokedAt)
	if isUnique(err) {
		return vigil.Conflict("agent key already exists")
	}
	if err != nil {
		return fmt.Errorf("couldn't create agent key: %w", err)
	}
	return nil
}

func (r *registryStore) AgentKeyByHash(ctx context.Context, hash string) (auth.AgentKey, error) {
	k, err := scanKey(r.db.pool.QueryRow(ctx, `SELECT `+keyCols+` FROM agent_keys WHERE hash=$1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return k, vigil.NotFound("no such agent key")
	}
	return k, err
}

func (r *registryStore) ListAgentKeys(ctx context.Context, agentID string) ([]auth.AgentKey, error) {
	rows, err := r.db.pool.Query(ctx, `SELECT `+keyCols+` FROM agent_keys WHERE agent_id=$1 ORDER BY created_at, id`, agentID)
	if err != nil {
		return nil, fmt.Errorf("couldn't list agent keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (auth.AgentKey, error) { return scanKey(row) })
	if out == nil {
		out = []auth.AgentKey{}
	}
	return out, err
}

func (r *registryStore) ExpireAgentKeys(ctx context.Context, agentID, keepID string, at time.Time) error {
	_, err := r.db.pool.Exec(ctx, `UPDATE agent_keys SET expires_at = $1
		WHERE agent_id=$2 AND id<>$3 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)`, at, agentID, keepID)
	if err != nil {
		return fmt.Errorf("couldn't expire agent keys: %w", err)
	}
	return nil
}

func (r *registryStore) RevokeAgentKey(ctx context.Context, agentID, keyID string, at time.Time) error {
	tag, err := r.db.pool.Exec(ctx, `UPDATE agent_keys SET revoked_at=$1 WHERE agent_id=$2 AND id=$3 AND revoked_at IS NULL`, at, agentID, keyID)
	if err != nil {
		return fmt.Errorf("couldn't revoke agent key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return vigil.NotFound("agent has no active key %q", keyID)
	}
	return nil
}

const tokenCols = `id, name, role, prefix, hash, created_by, created_at, expires_at, revoked_at`

func scanToken(row pgx.Row) (auth.Token, error) {
	var t auth.Token
	err := row.Scan(&t.ID, &t.Name, &t.Role, &t.Prefix, &t.Hash, &t.CreatedBy, &t.CreatedAt, &t.ExpiresAt, &t.RevokedAt)
	t.CreatedAt, t.ExpiresAt, t.RevokedAt = utc(t.CreatedAt), utcPtr(t.ExpiresAt), utcPtr(t.RevokedAt)
	return t, err
}

func (r *registryStore) CreateToken(ctx context.Context, t auth.Token) error {
	_, err := r.db.pool.Exec(ctx, `INSERT INTO tokens (`+tokenCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)`,
		t.ID, t.Name, t.Role, t.Prefix, t.Hash, t.CreatedBy, t.CreatedAt, t.ExpiresAt, t.RevokedAt)
	if isUnique(err) {
		return vigil.Conflict("token already exists")
	}
	if err != nil {
		return fmt.Errorf("couldn't create token: %w", err)
	}
	return nil
}

func (r *registryStore) TokenByHash(ctx context.Context, hash string) (auth.Token, error) {
	t, err := scanToken(r.db.pool.QueryRow(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash=$1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, vigil.NotFound("no such token")
	}
	return t, err
}

func (r *registryStore) ListTokens(ctx context.Context) ([]auth.Token, error) {
	rows, err := r.db.pool.Query(ctx, `SELECT `+tokenCols+` FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("couldn't list tokens: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (auth.Token, error) { return scanToken(row) })
	if out == nil {
		out = []auth.Token{}
	}
	return out, err
}

func (r *registryStore) RevokeToken(ctx context.Context, id string, at time.Time) error {
	tag, err := r.db.pool.Exec(ctx, `UPDATE tokens SET revoked_at=$1 WHERE id=$2 AND revoked_at IS NULL`, at, id)
	if err != nil {
		return fmt.Errorf("couldn't revoke token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return vigil.NotFound("no active token %q", id)
	}
	return nil
}

func (r *registryStore) CountTokens(ctx context.Context) (int, error) {
	var n int
	err := r.db.pool.QueryRow(ctx, `SELECT count(*) FROM tokens`).Scan(&n)
	return n, err
}
