package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-gateway/vigil/internal/policy"
)

var _ policy.UsageStore = (*usageStore)(nil)

// usageStore implements policy.UsageStore. Each call is one statement, so additions
// from replicas to the same counter serialise on its row and none is lost.
type usageStore struct{ db *DB }

// Usage returns the store of policy usage counters.
func (db *DB) Usage() policy.UsageStore { return &usageStore{db} }

// usageColumns turns keys into the column arrays unnest takes.
func usageColumns(keys []policy.UsageKey) (subjects, metrics []string, windows []int32, starts []time.Time) {
	for _, k := range keys {
		subjects = append(subjects, k.Subject)
		metrics = append(metrics, k.Metric)
		windows = append(windows, int32(k.Window/time.Second))
		starts = append(starts, k.Start.UTC())
	}
	return
}

func (s *usageStore) AddUsage(ctx context.Context, deltas []policy.UsageDelta) error {
	if len(deltas) == 0 {
		return nil
	}
	keys := make([]policy.UsageKey, len(deltas))
	ns := make([]int64, len(deltas))
	for i, d := range deltas {
		keys[i], ns[i] = d.Key, d.N
	}
	subjects, metrics, windows, starts := usageColumns(keys)
	// Repeated keys are summed first (one statement may not update a row twice), and
	// rows are taken in key order so concurrent flushes lock them in the same order.
	_, err := s.db.pool.Exec(ctx, `INSERT INTO policy_usage (subject, metric, window_seconds, start_at, n)
		SELECT subject, metric, window_seconds, start_at, sum(n)
		FROM unnest($1::text[], $2::text[], $3::integer[], $4::timestamptz[], $5::bigint[])
			AS d(subject, metric, window_seconds, start_at, n)
		GROUP BY subject, metric, window_seconds, start_at
		ORDER BY subject, metric, window_seconds, start_at
		ON CONFLICT (subject, metric, window_seconds, start_at) DO UPDATE SET n = policy_usage.n + excluded.n`,
		subjects, metrics, windows, starts, ns)
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
	subjects, metrics, windows, starts := usageColumns(keys)
	rows, err := s.db.pool.Query(ctx, `SELECT k.i, coalesce(u.n, 0)
		FROM unnest($1::text[], $2::text[], $3::integer[], $4::timestamptz[])
			WITH ORDINALITY AS k(subject, metric, window_seconds, start_at, i)
		LEFT JOIN policy_usage u USING (subject, metric, window_seconds, start_at)`,
		subjects, metrics, windows, starts)
	if err != nil {
		return nil, fmt.Errorf("couldn't read usage: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var i, n int64
		if err := rows.Scan(&i, &n); err != nil {
			return nil, fmt.Errorf("couldn't read usage: %w", err)
		}
		out[i-1] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read usage: %w", err)
	}
	return out, nil
}

func (s *usageStore) PruneUsage(ctx context.Context, t time.Time) (int64, error) {
	tag, err := s.db.pool.Exec(ctx, `DELETE FROM policy_usage WHERE start_at + window_seconds * interval '1 second' <= $1`, t.UTC())
	if err != nil {
		return 0, fmt.Errorf("couldn't prune usage: %w", err)
	}
	return tag.RowsAffected(), nil
}
