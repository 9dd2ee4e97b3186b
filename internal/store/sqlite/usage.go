package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-gateway/vigil/internal/policy"
)

var _ policy.UsageStore = (*usageStore)(nil)

// usageStore implements policy.UsageStore.
type usageStore struct{ db *DB }

// Usage returns the store of policy usage counters.
func (db *DB) Usage() policy.UsageStore { return &usageStore{db} }

func windowSeconds(d time.Duration) int64 { return int64(d / time.Second) }

func (s *usageStore) AddUsage(ctx context.Context, deltas []policy.UsageDelta) error {
	if len(deltas) == 0 {
		return nil
	}
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO policy_usage (subject, metric, window_seconds, start_at, n)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (subject, metric, window_seconds, start_at) DO UPDATE SET n = n + excluded.n`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, d := range deltas {
			k := d.Key
			if _, err := stmt.ExecContext(ctx, k.Subject, k.Metric, windowSeconds(k.Window), micros(k.Start), d.N); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("couldn't add usage: %w", err)
	}
	return nil
}

func (s *usageStore) ReadUsage(ctx context.Context, keys []policy.UsageKey) ([]int64, error) {
	out := make([]int64, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	tx, err := s.db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("couldn't read usage: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `SELECT n FROM policy_usage WHERE subject = ? AND metric = ? AND window_seconds = ? AND start_at = ?`)
	if err != nil {
		return nil, fmt.Errorf("couldn't read usage: %w", err)
	}
	defer stmt.Close()
	for i, k := range keys {
		err := stmt.QueryRowContext(ctx, k.Subject, k.Metric, windowSeconds(k.Window), micros(k.Start)).Scan(&out[i])
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("couldn't read usage: %w", err)
		}
	}
	return out, nil
}

func (s *usageStore) PruneUsage(ctx context.Context, t time.Time) (int64, error) {
	res, err := s.db.writes.ExecContext(ctx, `DELETE FROM policy_usage WHERE start_at + window_seconds * 1000000 <= ?`, micros(t))
	if err != nil {
		return 0, fmt.Errorf("couldn't prune usage: %w", err)
	}
	return res.RowsAffected()
}
