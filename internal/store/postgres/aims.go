package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/vigil-gateway/vigil/internal/aims"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var _ aims.Store = (*aimsStore)(nil)

// aimsStore implements aims.Store.
type aimsStore struct{ db *DB }

// AIMS returns the store of ISO/IEC 42001 management-system records.
func (db *DB) AIMS() aims.Store { return &aimsStore{db} }

const recordCols = `kind, id, system_id, data, updated_at, updated_by`

func scanRecord(row pgx.Row) (aims.StoredRecord, error) {
	var r aims.StoredRecord
	err := row.Scan(&r.Kind, &r.ID, &r.SystemID, &r.Data, &r.UpdatedAt, &r.UpdatedBy)
	r.UpdatedAt = utc(r.UpdatedAt)
	return r, err
}

func (s *aimsStore) CreateRecord(ctx context.Context, r aims.StoredRecord) error {
	_, err := s.db.pool.Exec(ctx, `INSERT INTO aims_records (`+recordCols+`) VALUES ($1,$2,$3,$4,$5,$6)`,
		r.Kind, r.ID, r.SystemID, r.Data, r.UpdatedAt, r.UpdatedBy)
	if isUnique(err) {
		return vigil.Conflict("a %s record %q already exists", r.Kind, r.ID)
	}
	if err != nil {
		return fmt.Errorf("couldn't create %s record: %w", r.Kind, err)
	}
	return nil
}

func (s *aimsStore) PutRecord(ctx context.Context, r aims.StoredRecord) error {
	_, err := s.db.pool.Exec(ctx, `INSERT INTO aims_records (`+recordCols+`) VALUES ($1,$2,$3,$4,$5,$6)
		ON CONFLICT (kind, id) DO UPDATE SET system_id=excluded.system_id, data=excluded.data, updated_at=excluded.updated_at, updated_by=excluded.updated_by`,
		r.Kind, r.ID, r.SystemID, r.Data, r.UpdatedAt, r.UpdatedBy)
	if err != nil {
		return fmt.Errorf("couldn't store %s record: %w", r.Kind, err)
	}
	return nil
}

func (s *aimsStore) Record(ctx context.Context, kind, id string) (aims.StoredRecord, error) {
	r, err := scanRecord(s.db.pool.QueryRow(ctx, `SELECT `+recordCols+` FROM aims_records WHERE kind=$1 AND id=$2`, kind, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, vigil.NotFound("no %s record %q", kind, id)
	}
	return r, err
}

func (s *aimsStore) ListRecords(ctx context.Context, kind string) ([]aims.StoredRecord, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT `+recordCols+` FROM aims_records WHERE kind=$1 ORDER BY id COLLATE "C"`, kind)
	if err != nil {
		return nil, fmt.Errorf("couldn't list %s records: %w", kind, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (aims.StoredRecord, error) { return scanRecord(row) })
	if err != nil {
		return nil, fmt.Errorf("couldn't list %s records: %w", kind, err)
	}
	return out, nil
}

func (s *aimsStore) DeleteRecord(ctx context.Context, kind, id string) error {
	tag, err := s.db.pool.Exec(ctx, `DELETE FROM aims_records WHERE kind=$1 AND id=$2`, kind, id)
	if err != nil {
		return fmt.Errorf("couldn't delete %s record: %w", kind, err)
	}
	if tag.RowsAffected() == 0 {
		return vigil.NotFound("no %s record %q", kind, id)
	}
	return nil
}

func (s *aimsStore) AddUsage(ctx context.Context, k aims.UsageKey, at time.Time, n int64) error {
	_, err := s.db.pool.Exec(ctx, `INSERT INTO aims_usage AS u (agent_id, system_id, provider, model, server, tool, source, first_seen, last_seen, count)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$8,$9)
		ON CONFLICT (agent_id, system_id, provider, model, server, tool, source) DO UPDATE SET
			first_seen=LEAST(u.first_seen, excluded.first_seen), last_seen=GREATEST(u.last_seen, excluded.last_seen), count=u.count+excluded.count`,
		k.AgentID, k.SystemID, k.Provider, k.Model, k.Server, k.Tool, k.Source, at, n)
	if err != nil {
		return fmt.Errorf("couldn't record usage: %w", err)
	}
	return nil
}

func (s *aimsStore) Usage(ctx context.Context) ([]aims.UsageAggregate, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT agent_id, system_id, provider, model, server, tool, source, first_seen, last_seen, count
		FROM aims_usage ORDER BY agent_id COLLATE "C", system_id COLLATE "C", provider COLLATE "C", model COLLATE "C", server COLLATE "C", tool COLLATE "C", source COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("couldn't read usage: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (aims.UsageAggregate, error) {
		var u aims.UsageAggregate
		err := row.Scan(&u.AgentID, &u.SystemID, &u.Provider, &u.Model, &u.Server, &u.Tool, &u.Source, &u.FirstSeen, &u.LastSeen, &u.Count)
		u.FirstSeen, u.LastSeen = utc(u.FirstSeen), utc(u.LastSeen)
		return u, err
	})
}

func (s *aimsStore) AppendHealth(ctx context.Context, results []aims.HealthResult) error {
	return s.db.tx(ctx, func(tx pgx.Tx) error {
		for _, r := range results {
			if _, err := tx.Exec(ctx, `INSERT INTO aims_health (at, check_name, pass, detail) VALUES ($1,$2,$3,$4)`, r.At, r.Check, r.Pass, r.Detail); err != nil {
				return fmt.Errorf("couldn't store health result: %w", err)
			}
		}
		return nil
	})
}

func (s *aimsStore) HealthHistory(ctx context.Context, from, to time.Time) ([]aims.HealthResult, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT at, check_name, pass, detail FROM aims_health WHERE at >= $1 AND at < $2 ORDER BY at, check_name COLLATE "C", seq`, from, to)
	if err != nil {
		return nil, fmt.Errorf("couldn't read health history: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (aims.HealthResult, error) {
		var r aims.HealthResult
		err := row.Scan(&r.At, &r.Check, &r.Pass, &r.Detail)
		r.At = utc(r.At)
		return r, err
	})
}

func (s *aimsStore) AppendVerification(ctx context.Context, v aims.Verification) error {
	_, err := s.db.pool.Exec(ctx, `INSERT INTO aims_verifications (at, ok, size, checkpoint, summary, method) VALUES ($1,$2,$3,$4,$5,$6)`,
		v.At, v.OK, v.Size, v.Checkpoint, v.Summary, v.Method)
	if err != nil {
		return fmt.Errorf("couldn't store verification: %w", err)
	}
	return nil
}

func (s *aimsStore) Verifications(ctx context.Context, from, to time.Time) ([]aims.Verification, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT at, ok, size, checkpoint, summary, method FROM aims_verifications WHERE at >= $1 AND at < $2 ORDER BY at, seq`, from, to)
	if err != nil {
		return nil, fmt.Errorf("couldn't read verifications: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (aims.Verification, error) {
		var v aims.Verification
		err := row.Scan(&v.At, &v.OK, &v.Size, &v.Checkpoint, &v.Summary, &v.Method)
		v.At = utc(v.At)
		return v, err
	})
}
