package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-gateway/vigil/internal/aims"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var _ aims.Store = (*aimsStore)(nil)

// aimsStore implements aims.Store.
type aimsStore struct{ db *DB }

// AIMS returns the store of ISO/IEC 42001 management-system records.
func (db *DB) AIMS() aims.Store { return &aimsStore{db} }

const recordCols = `kind, id, system_id, data, updated_at, updated_by`

func scanRecord(row interface{ Scan(...any) error }) (aims.StoredRecord, error) {
	var r aims.StoredRecord
	var at int64
	err := row.Scan(&r.Kind, &r.ID, &r.SystemID, &r.Data, &at, &r.UpdatedBy)
	r.UpdatedAt = fromMicros(at)
	return r, err
}

func (s *aimsStore) CreateRecord(ctx context.Context, r aims.StoredRecord) error {
	_, err := s.db.writes.ExecContext(ctx, `INSERT INTO aims_records (`+recordCols+`) VALUES (?,?,?,?,?,?)`,
		r.Kind, r.ID, r.SystemID, r.Data, micros(r.UpdatedAt), r.UpdatedBy)
	if isUnique(err) {
		return vigil.Conflict("a %s record %q already exists", r.Kind, r.ID)
	}
	if err != nil {
		return fmt.Errorf("couldn't create %s record: %w", r.Kind, err)
	}
	return nil
}

func (s *aimsStore) PutRecord(ctx context.Context, r aims.StoredRecord) error {
	_, err := s.db.writes.ExecContext(ctx, `INSERT INTO aims_records (`+recordCols+`) VALUES (?,?,?,?,?,?)
		ON CONFLICT (kind, id) DO UPDATE SET system_id=excluded.system_id, data=excluded.data, updated_at=excluded.updated_at, updated_by=excluded.updated_by`,
		r.Kind, r.ID, r.SystemID, r.Data, micros(r.UpdatedAt), r.UpdatedBy)
	if err != nil {
		return fmt.Errorf("couldn't store %s record: %w", r.Kind, err)
	}
	return nil
}

func (s *aimsStore) Record(ctx context.Context, kind, id string) (aims.StoredRecord, error) {
	r, err := scanRecord(s.db.reads.QueryRowContext(ctx, `SELECT `+recordCols+` FROM aims_records WHERE kind=? AND id=?`, kind, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, vigil.NotFound("no %s record %q", kind, id)
	}
	return r, err
}

func (s *aimsStore) ListRecords(ctx context.Context, kind string) ([]aims.StoredRecord, error) {
	rows, err := s.db.reads.QueryContext(ctx, `SELECT `+recordCols+` FROM aims_records WHERE kind=? ORDER BY id`, kind)
	if err != nil {
		return nil, fmt.Errorf("couldn't list %s records: %w", kind, err)
	}
	defer rows.Close()
	var out []aims.StoredRecord
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *aimsStore) DeleteRecord(ctx context.Context, kind, id string) error {
	res, err := s.db.writes.ExecContext(ctx, `DELETE FROM aims_records WHERE kind=? AND id=?`, kind, id)
	if err != nil {
		return fmt.Errorf("couldn't delete %s record: %w", kind, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return vigil.NotFound("no %s record %q", kind, id)
	}
	return nil
}

func (s *aimsStore) AddUsage(ctx context.Context, k aims.UsageKey, at time.Time, n int64) error {
	_, err := s.db.writes.ExecContext(ctx, `INSERT INTO aims_usage (agent_id, system_id, provider, model, server, tool, source, first_seen, last_seen, count)
		VALUES (?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (agent_id, system_id, provider, model, server, tool, source) DO UPDATE SET
			first_seen=min(first_seen, excluded.first_seen), last_seen=max(last_seen, excluded.last_seen), count=count+excluded.count`,
		k.AgentID, k.SystemID, k.Provider, k.Model, k.Server, k.Tool, k.Source, micros(at), micros(at), n)
	if err != nil {
		return fmt.Errorf("couldn't record usage: %w", err)
	}
	return nil
}

func (s *aimsStore) Usage(ctx context.Context) ([]aims.UsageAggregate, error) {
	rows, err := s.db.reads.QueryContext(ctx, `SELECT agent_id, system_id, provider, model, server, tool, source, first_seen, last_seen, count
		FROM aims_usage ORDER BY agent_id, system_id, provider, model, server, tool, source`)
	if err != nil {
		return nil, fmt.Errorf("couldn't read usage: %w", err)
	}
	defer rows.Close()
	var out []aims.UsageAggregate
	for rows.Next() {
		var u aims.UsageAggregate
		var first, last int64
		if err := rows.Scan(&u.AgentID, &u.SystemID, &u.Provider, &u.Model, &u.Server, &u.Tool, &u.Source, &first, &last, &u.Count); err != nil {
			return nil, err
		}
		u.FirstSeen, u.LastSeen = fromMicros(first), fromMicros(last)
		out = append(out, u)
	}
	return out, rows.Err()
}

func (s *aimsStore) AppendHealth(ctx context.Context, results []aims.HealthResult) error {
	return s.db.tx(ctx, func(tx *sql.Tx) error {
		for _, r := range results {
			if _, err := tx.ExecContext(ctx, `INSERT INTO aims_health (at, check_name, pass, detail) VALUES (?,?,?,?)`,
				micros(r.At), r.Check, r.Pass, r.Detail); err != nil {
				return fmt.Errorf("couldn't store health result: %w", err)
			}
		}
		return nil
	})
}

func (s *aimsStore) HealthHistory(ctx context.Context, from, to time.Time) ([]aims.HealthResult, error) {
	rows, err := s.db.reads.QueryContext(ctx, `SELECT at, check_name, pass, detail FROM aims_health WHERE at >= ? AND at < ? ORDER BY at, check_name, seq`, micros(from), micros(to))
	if err != nil {
		return nil, fmt.Errorf("couldn't read health history: %w", err)
	}
	defer rows.Close()
	var out []aims.HealthResult
	for rows.Next() {
		var r aims.HealthResult
		var at int64
		if err := rows.Scan(&at, &r.Check, &r.Pass, &r.Detail); err != nil {
			return nil, err
		}
		r.At = fromMicros(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *aimsStore) AppendVerification(ctx context.Context, v aims.Verification) error {
	_, err := s.db.writes.ExecContext(ctx, `INSERT INTO aims_verifications (at, ok, size, checkpoint, summary, method) VALUES (?,?,?,?,?,?)`,
		micros(v.At), v.OK, v.Size, v.Checkpoint, v.Summary, v.Method)
	if err != nil {
		return fmt.Errorf("couldn't store verification: %w", err)
	}
	return nil
}

func (s *aimsStore) Verifications(ctx context.Context, from, to time.Time) ([]aims.Verification, error) {
	rows, err := s.db.reads.QueryContext(ctx, `SELECT at, ok, size, checkpoint, summary, method FROM aims_verifications WHERE at >= ? AND at < ? ORDER BY at, seq`, micros(from), micros(to))
	if err != nil {
		return nil, fmt.Errorf("couldn't read verifications: %w", err)
	}
	defer rows.Close()
	var out []aims.Verification
	for rows.Next() {
		var v aims.Verification
		var at int64
		if err := rows.Scan(&at, &v.OK, &v.Size, &v.Checkpoint, &v.Summary, &v.Method); err != nil {
			return nil, err
		}
		v.At = fromMicros(at)
		out = append(out, v)
	}
	return out, rows.Err()
}
