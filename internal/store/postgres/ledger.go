package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/tlog"
)

var _ ledger.Store = (*ledgerStore)(nil)

// ledgerStore implements ledger.Store. Sequence holds the ledger_tree row lock (FOR
// UPDATE) for the whole batch, so appenders in every replica serialise on it.
type ledgerStore struct{ db *DB }

// Ledger returns the ledger's store.
func (db *DB) Ledger() ledger.Store { return &ledgerStore{db} }

type seqTx struct {
	ctx context.Context
	tx  pgx.Tx
}

func (t seqTx) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	return readHashes(t.ctx, t.tx, indexes)
}

func (t seqTx) Existing(ids []string) (map[string]bool, error) {
	rows, err := t.tx.Query(t.ctx, `SELECT event_id FROM ledger_entries WHERE event_id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(found))
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}

type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// contiguous reports whether indexes are n consecutive ascending integers: the
// verifier reads stored hashes that way, a chunk at a time.
func contiguous(indexes []int64) bool {
	for i, x := range indexes {
		if x != indexes[0]+int64(i) {
			return false
		}
	}
	return len(indexes) > 0
}

// readHashRange reads the stored hashes start <= id < end with one range scan.
func readHashRange(ctx context.Context, q queryer, start, end int64) ([]tlog.Hash, error) {
	rows, err := q.Query(ctx, `SELECT id, h FROM ledger_hashes WHERE id >= $1 AND id < $2 ORDER BY id`, start, end)
	if err != nil {
		return nil, fmt.Errorf("couldn't read stored hashes: %w", err)
	}
	out := make([]tlog.Hash, 0, end-start)
	var id int64
	var h []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &h}, func() error {
		if want := start + int64(len(out)); id != want {
			return fmt.Errorf("stored hash %d is missing", want)
		}
		if len(h) != tlog.HashSize {
			return fmt.Errorf("stored hash %d has %d bytes", id, len(h))
		}
		out = append(out, tlog.Hash(h))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read stored hashes: %w", err)
	}
	if int64(len(out)) != end-start {
		return nil, fmt.Errorf("stored hash %d is missing", start+int64(len(out)))
	}
	return out, nil
}

func readHashes(ctx context.Context, q queryer, indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) > 16 && contiguous(indexes) {
		return readHashRange(ctx, q, indexes[0], indexes[0]+int64(len(indexes)))
	}
	rows, err := q.Query(ctx, `SELECT id, h FROM ledger_hashes WHERE id = ANY($1)`, indexes)
	if err != nil {
		return nil, fmt.Errorf("couldn't read stored hashes: %w", err)
	}
	got := make(map[int64]tlog.Hash, len(indexes))
	var id int64
	var h []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &h}, func() error {
		if len(h) != tlog.HashSize {
			return fmt.Errorf("stored hash %d has %d bytes", id, len(h))
		}
		got[id] = tlog.Hash(h)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read stored hashes: %w", err)
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		v, ok := got[x]
		if !ok {
			return nil, fmt.Errorf("stored hash %d is missing", x)
		}
		out[i] = v
	}
	return out, nil
}

func (s *ledgerStore) Sequence(ctx context.Context, fn func(tx ledger.SeqTx, size int64, root tlog.Hash) (*ledger.Batch, error)) error {
	return s.db.tx(ctx, func(tx pgx.Tx) error {
		var size int64
		var rootB []byte
		if err := tx.QueryRow(ctx, `SELECT size, root FROM ledger_tree WHERE id = 0 FOR UPDATE`).Scan(&size, &rootB); err != nil {
			return fmt.Errorf("couldn't lock tree state: %w", err)
		}
		b, err := fn(seqTx{ctx, tx}, size, tlog.Hash(rootB))
		if err != nil || b == nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger_hashes"}, []string{"id", "h"}, pgx.CopyFromSlice(len(b.Hashes), func(i int) ([]any, error) {
			return []any{b.Hashes[i].Index, b.Hashes[i].Hash[:]}, nil
		})); err != nil {
			return fmt.Errorf("couldn't write stored hashes: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger_entries"}, []string{"idx", "event_id", "data"}, pgx.CopyFromSlice(len(b.Entries), func(i int) ([]any, error) {
			return []any{b.Entries[i].Index, b.Entries[i].EventID, b.Entries[i].Data}, nil
		})); err != nil {
			return fmt.Errorf("couldn't write entries: %w", err)
		}
		if len(b.Bodies) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger_bodies"}, []string{"idx", "event_id", "sealed"}, pgx.CopyFromSlice(len(b.Bodies), func(i int) ([]any, error) {
				return []any{b.Bodies[i].Index, b.Bodies[i].EventID, b.Bodies[i].Sealed}, nil
			})); err != nil {
				return fmt.Errorf("couldn't write bodies: %w", err)
			}
		}
		tag, err := tx.Exec(ctx, `UPDATE ledger_tree SET size = $1, root = $2 WHERE id = 0 AND size = $3`, b.Size, b.Root[:], size)
		if err != nil {
			return fmt.Errorf("couldn't update tree state: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return errors.New("tree state changed during sequencing")
		}
		return nil
	})
}

func (s *ledgerStore) TreeState(ctx context.Context) (int64, tlog.Hash, error) {
	var size int64
	var rootB []byte
	if err := s.db.pool.QueryRow(ctx, `SELECT size, root FROM ledger_tree WHERE id = 0`).Scan(&size, &rootB); err != nil {
		return 0, tlog.Hash{}, fmt.Errorf("couldn't read tree state: %w", err)
	}
	return size, tlog.Hash(rootB), nil
}

func (s *ledgerStore) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	return readHashes(ctx, s.db.pool, indexes)
}

func (s *ledgerStore) Entries(ctx context.Context, start, end int64) ([]ledger.Entry, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT idx, event_id, data FROM ledger_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx`, start, end)
	if err != nil {
		return nil, fmt.Errorf("couldn't read entries: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.Entry, error) {
		var e ledger.Entry
		err := r.Scan(&e.Index, &e.EventID, &e.Data)
		return e, err
	})
}

func (s *ledgerStore) EntryByID(ctx context.Context, id string) (ledger.Entry, error) {
	var e ledger.Entry
	err := s.db.pool.QueryRow(ctx, `SELECT idx, event_id, data FROM ledger_entries WHERE event_id = $1`, id).Scan(&e.Index, &e.EventID, &e.Data)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, vigil.NotFound("no ledger event %q", id)
	}
	return e, err
}

func (s *ledgerStore) Bodies(ctx context.Context, start, end int64) ([]ledger.Body, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT idx, event_id, sealed FROM ledger_bodies WHERE idx >= $1 AND idx < $2 ORDER BY idx`, start, end)
	if err != nil {
		return nil, fmt.Errorf("couldn't read bodies: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.Body, error) {
		var b ledger.Body
		err := r.Scan(&b.Index, &b.EventID, &b.Sealed)
		return b, err
	})
}

func (s *ledgerStore) DeleteBody(ctx context.Context, index int64) error {
	tag, err := s.db.pool.Exec(ctx, `DELETE FROM ledger_bodies WHERE idx = $1`, index)
	if err != nil {
		return fmt.Errorf("couldn't erase body: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return vigil.NotFound("ledger entry %d has no body", index)
	}
	return nil
}

func (s *ledgerStore) Head(ctx context.Context) (ledger.Checkpoint, error) {
	var c ledger.Checkpoint
	err := s.db.pool.QueryRow(ctx, `SELECT h.size, h.note, COALESCE(c.created_at, 0) FROM ledger_head h LEFT JOIN ledger_checkpoints c ON c.size = h.size WHERE h.id = 0`).Scan(&c.Size, &c.Note, &c.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, vigil.NotFound("no checkpoint has been published")
	}
	if err != nil {
		return c, fmt.Errorf("couldn't read checkpoint head: %w", err)
	}
	return c, nil
}

func (s *ledgerStore) Publish(ctx context.Context, prev *ledger.Checkpoint, next ledger.Checkpoint) error {
	return s.db.tx(ctx, func(tx pgx.Tx) error {
		var n int64
		if prev == nil {
			tag, err := tx.Exec(ctx, `INSERT INTO ledger_head (id, size, note) VALUES (0, $1, $2) ON CONFLICT (id) DO NOTHING`, next.Size, next.Note)
			if err != nil {
				return fmt.Errorf("couldn't update checkpoint head: %w", err)
			}
			n = tag.RowsAffected()
		} else {
			tag, err := tx.Exec(ctx, `UPDATE ledger_head SET size = $1, note = $2 WHERE id = 0 AND size = $3 AND note = $4`, next.Size, next.Note, prev.Size, prev.Note)
			if err != nil {
				return fmt.Errorf("couldn't update checkpoint head: %w", err)
			}
			n = tag.RowsAffected()
		}
		if n != 1 {
			return vigil.Conflict("the checkpoint head changed: another writer published first")
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ledger_checkpoints (size, note, created_at) VALUES ($1, $2, $3)`, next.Size, next.Note, next.CreatedAt); err != nil {
			if isUnique(err) {
				return vigil.Conflict("a checkpoint of size %d already exists", next.Size)
			}
			return fmt.Errorf("couldn't store checkpoint: %w", err)
		}
		return nil
	})
}

func (s *ledgerStore) Checkpoints(ctx context.Context, from, to int64) ([]ledger.Checkpoint, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT size, note, created_at FROM ledger_checkpoints WHERE size >= $1 AND size <= $2 ORDER BY size`, from, to)
	if err != nil {
		return nil, fmt.Errorf("couldn't read checkpoints: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.Checkpoint, error) {
		var c ledger.Checkpoint
		err := r.Scan(&c.Size, &c.Note, &c.CreatedAt)
		return c, err
	})
}
