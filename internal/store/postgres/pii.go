package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/vigil-gateway/vigil/internal/pii"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var _ pii.Vault = (*piiVault)(nil)

// piiVault implements pii.Vault over the pii_vault table.
type piiVault struct{ db *DB }

// PIIVault returns the store of tokenized (encrypted) PII values.
func (db *DB) PIIVault() pii.Vault { return &piiVault{db} }

func (v *piiVault) Put(ctx context.Context, entries ...pii.VaultEntry) error {
	if len(entries) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	// Committed without waiting for its WAL flush: it is visible to every replica at
	// once, and durable as soon as the request's ledger entry is — that commit waits
	// for the WAL up to its own record, which comes after this one's, and it is made
	// before the request leaves (docs/adr/0010-hot-path.md).
	b.Queue(`SET LOCAL synchronous_commit TO OFF`)
	for _, e := range entries {
		b.Queue(`INSERT INTO pii_vault (agent_id, session_id, token_id, ciphertext, expires_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (agent_id, session_id, token_id) DO UPDATE SET
				ciphertext = excluded.ciphertext,
				expires_at = greatest(pii_vault.expires_at, excluded.expires_at)`,
			e.AgentID, e.SessionID, e.ID, e.Ciphertext, e.ExpiresAt.UTC())
	}
	err := v.db.tx(ctx, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("couldn't store %d PII vault entries: %w", len(entries), err)
	}
	return nil
}

func (v *piiVault) Get(ctx context.Context, agentID, sessionID, id string, now time.Time) (pii.VaultEntry, error) {
	e := pii.VaultEntry{AgentID: agentID, SessionID: sessionID, ID: id}
	err := v.db.pool.QueryRow(ctx, `SELECT ciphertext, expires_at FROM pii_vault
		WHERE agent_id = $1 AND session_id = $2 AND token_id = $3 AND expires_at > $4`,
		agentID, sessionID, id, now.UTC()).Scan(&e.Ciphertext, &e.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return pii.VaultEntry{}, vigil.NotFound("no PII vault entry %q", id)
	}
	if err != nil {
		return pii.VaultEntry{}, fmt.Errorf("couldn't read PII vault entry: %w", err)
	}
	e.ExpiresAt = e.ExpiresAt.UTC()
	return e, nil
}

func (v *piiVault) Purge(ctx context.Context, now time.Time) (int64, error) {
	tag, err := v.db.pool.Exec(ctx, `DELETE FROM pii_vault WHERE expires_at <= $1`, now.UTC())
	if err != nil {
		return 0, fmt.Errorf("couldn't purge the PII vault: %w", err)
	}
	return tag.RowsAffected(), nil
}
