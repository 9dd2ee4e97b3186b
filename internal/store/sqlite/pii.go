package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-gateway/vigil/internal/pii"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var _ pii.Vault = (*piiVault)(nil)

// sqlVaultPut stores one entry; an entry's expiry never moves earlier.
const sqlVaultPut = `INSERT INTO pii_vault (agent_id, session_id, token_id, ciphertext, expires_at)
	VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (agent_id, session_id, token_id) DO UPDATE SET
		ciphertext = excluded.ciphertext,
		expires_at = max(pii_vault.expires_at, excluded.expires_at)`

// piiVault implements pii.Vault over the pii_vault table.
type piiVault struct{ db *DB }

// PIIVault returns the store of tokenized (encrypted) PII values.
func (db *DB) PIIVault() pii.Vault { return &piiVault{db} }

func (v *piiVault) Put(ctx context.Context, entries ...pii.VaultEntry) error {
	if len(entries) == 0 {
		return nil
	}
	// Committed without an fsync of its own: the request's ledger entry, committed
	// durably after it and before the request leaves, makes it durable (txOrdered).
	err := v.db.txOrdered(ctx, func(tx *sql.Tx) error {
		for _, e := range entries {
			if _, err := v.db.txExec(ctx, tx, sqlVaultPut, e.AgentID, e.SessionID, e.ID, e.Ciphertext, micros(e.ExpiresAt)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("couldn't store %d PII vault entries: %w", len(entries), err)
	}
	return nil
}

func (v *piiVault) Get(ctx context.Context, agentID, sessionID, id string, now time.Time) (pii.VaultEntry, error) {
	e := pii.VaultEntry{AgentID: agentID, SessionID: sessionID, ID: id}
	var exp int64
	err := v.db.reads.QueryRowContext(ctx, `SELECT ciphertext, expires_at FROM pii_vault
		WHERE agent_id = ? AND session_id = ? AND token_id = ? AND expires_at > ?`,
		agentID, sessionID, id, micros(now)).Scan(&e.Ciphertext, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return pii.VaultEntry{}, vigil.NotFound("no PII vault entry %q", id)
	}
	if err != nil {
		return pii.VaultEntry{}, fmt.Errorf("couldn't read PII vault entry: %w", err)
	}
	e.ExpiresAt = fromMicros(exp)
	return e, nil
}

func (v *piiVault) Purge(ctx context.Context, now time.Time) (int64, error) {
	res, err := v.db.writes.ExecContext(ctx, `DELETE FROM pii_vault WHERE expires_at <= ?`, micros(now))
	if err != nil {
		return 0, fmt.Errorf("couldn't purge the PII vault: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
