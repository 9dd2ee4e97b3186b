package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/tlog"
)

var _ ledger.Store = (*ledgerStore)(nil)

// ledgerStore implements ledger.Store. SQLite has one writer at a time, and the write
// pool has one connection whose transactions BEGIN IMMEDIATE: that is the tree-state
// lock, across processes too.
type ledgerStore struct {
	db *DB
}

// Ledger returns the ledger's store.
func (db *DB) Ledger() ledger.Store { return &ledgerStore{db: db} }

// insertSizes are the row counts of the multi-row INSERTs, largest first: a batch of
// n rows is written with at most n/64 + 9 statements, each prepared once.
var insertSizes = []int{64, 16, 4, 1}

// insertTable is a table Sequence writes, with its INSERT statements by row count
// (insertSizes), built once.
type insertTable struct {
	cols  int
	byLen map[int]string
}

func newInsertTable(table string, cols int) insertTable {
	t := insertTable{cols: cols, byLen: map[int]string{}}
	one := "(" + placeholders(cols) + ")"
	for _, rows := range insertSizes {
		t.byLen[rows] = "INSERT INTO " + table + " VALUES " + strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
	}
	return t
}

var (
	insertHashes  = newInsertTable("ledger_hashes (id, h)", 2)
	insertEntries = newInsertTable("ledger_entries (idx, event_id, data)", 3)
	insertBodies  = newInsertTable("ledger_bodies (idx, event_id, sealed)", 3)
)

// insertRows inserts n rows into table inside t, the largest statement that fits
// first; row(i) returns the i-th row's values.
func (t *rawTx) insertRows(table insertTable, n int, row func(i int) []any) error {
	args := make([]any, 0, insertSizes[0]*table.cols)
	i := 0
	for _, size := range insertSizes {
		for ; n-i >= size; i += size {
			args = args[:0]
			for j := i; j < i+size; j++ {
				args = append(args, row(j)...)
			}
			if _, err := t.exec(table.byLen[size], args...); err != nil {
				return err
			}
		}
	}
	return nil
}

// seqTx is the ledger.SeqTx of Sequence.
type seqTx struct{ t *rawTx }

func (s seqTx) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	return readHashes(s.t.ctx, s.t, indexes)
}

// The statements Sequence runs in every batch, prepared once per connection (rawTx).
const (
	sqlTreeState  = `SELECT size, root FROM ledger_tree WHERE id = 0`
	sqlTreeUpdate = `UPDATE ledger_tree SET size = ?, root = ? WHERE id = 0 AND size = ?`
	// The ids travel as one JSON array, so one prepared statement serves any batch.
	sqlExistingIDs = `SELECT event_id FROM ledger_entries WHERE event_id IN (SELECT value FROM json_each(?))`
)

func (s seqTx) Existing(ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	rows, err := s.t.queryRows(s.t.ctx, sqlExistingIDs, string(list))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
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

func readHashes(ctx context.Context, q rowsQuerier, indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) > 16 && contiguous(indexes) {
		return readHashRange(ctx, q, indexes[0], indexes[0]+int64(len(indexes)))
	}
	out := make([]tlog.Hash, len(indexes))
	pos := make(map[int64][]int, len(indexes))
	for i, x := range indexes {
		pos[x] = append(pos[x], i)
	}
	uniq := make([]any, 0, len(pos))
	for x := range pos {
		uniq = append(uniq, x)
	}
	found := 0
	for start := 0; start < len(uniq); start += 500 {
		chunk := uniq[start:min(start+500, len(uniq))]
		rows, err := q.queryRows(ctx, `SELECT id, h FROM ledger_hashes WHERE id IN (`+placeholders(len(chunk))+`)`, chunk...)
		if err != nil {
			return nil, fmt.Errorf("couldn't read stored hashes: %w", err)
		}
		for rows.Next() {
			var id int64
			var h []byte
			if err := rows.Scan(&id, &h); err != nil {
				rows.Close()
				return nil, err
			}
			if len(h) != tlog.HashSize {
				rows.Close()
				return nil, fmt.Errorf("stored hash %d has %d bytes", id, len(h))
			}
			for _, i := range pos[id] {
				copy(out[i][:], h)
			}
			found++
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	if found != len(uniq) {
		return nil, fmt.Errorf("%d of %d stored hashes are missing", len(uniq)-found, len(uniq))
	}
	return out, nil
}

// readHashRange reads the stored hashes start <= id < end with one range scan.
func readHashRange(ctx context.Context, q rowsQuerier, start, end int64) ([]tlog.Hash, error) {
	rows, err := q.queryRows(ctx, `SELECT id, h FROM ledger_hashes WHERE id >= ? AND id < ? ORDER BY id`, start, end)
	if err != nil {
		return nil, fmt.Errorf("couldn't read stored hashes: %w", err)
	}
	defer rows.Close()
	out := make([]tlog.Hash, 0, end-start)
	var id int64
	var h []byte
	for rows.Next() {
		if err := rows.Scan(&id, &h); err != nil {
			return nil, err
		}
		if want := start + int64(len(out)); id != want {
			return nil, fmt.Errorf("stored hash %d is missing", want)
		}
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("stored hash %d has %d bytes", id, len(h))
		}
		out = append(out, tlog.Hash(h))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read stored hashes: %w", err)
	}
	if int64(len(out)) != end-start {
		return nil, fmt.Errorf("stored hash %d is missing", start+int64(len(out)))
	}
	return out, nil
}

func (s *ledgerStore) Sequence(ctx context.Context, fn func(tx ledger.SeqTx, size int64, root tlog.Hash) (*ledger.Batch, error)) error {
	return s.db.rawTx(ctx, func(t *rawTx) error {
		var size int64
		var rootB []byte
		if err := queryRow(t, sqlTreeState, &size, &rootB); err != nil {
			return fmt.Errorf("couldn't read tree state: %w", err)
		}
		var root tlog.Hash
		copy(root[:], rootB)
		b, err := fn(seqTx{t}, size, root)
		if err != nil || b == nil {
			return err
		}
		if err := t.insertRows(insertHashes, len(b.Hashes), func(i int) []any {
			return []any{b.Hashes[i].Index, b.Hashes[i].Hash[:]}
		}); err != nil {
			return fmt.Errorf("couldn't write stored hashes: %w", err)
		}
		if err := t.insertRows(insertEntries, len(b.Entries), func(i int) []any {
			return []any{b.Entries[i].Index, b.Entries[i].EventID, b.Entries[i].Data}
		}); err != nil {
			return fmt.Errorf("couldn't write entries: %w", err)
		}
		if err := t.insertRows(insertBodies, len(b.Bodies), func(i int) []any {
			return []any{b.Bodies[i].Index, b.Bodies[i].EventID, b.Bodies[i].Sealed}
		}); err != nil {
			return fmt.Errorf("couldn't write bodies: %w", err)
		}
		res, err := t.exec(sqlTreeUpdate, b.Size, b.Root[:], size)
		if err != nil {
			return fmt.Errorf("couldn't update tree state: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errors.New("tree state changed during sequencing")
		}
		return nil
	})
}

// queryRow reads the one row q returns into dest.
func queryRow(t *rawTx, q string, dest ...any) error {
	rows, err := t.queryRows(t.ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	return rows.Scan(dest...)
}

func (s *ledgerStore) TreeState(ctx context.Context) (int64, tlog.Hash, error) {
	var size int64
	var rootB []byte
	var root tlog.Hash
	if err := s.db.reads.QueryRowContext(ctx, sqlTreeState).Scan(&size, &rootB); err != nil {
		return 0, root, fmt.Errorf("couldn't read tree state: %w", err)
	}
	copy(root[:], rootB)
	return size, root, nil
}

func (s *ledgerStore) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	return readHashes(ctx, sqlQuerier{s.db.read}, indexes)
}

func (s *ledgerStore) Entries(ctx context.Context, start, end int64) ([]ledger.Entry, error) {
	rows, err := s.db.reads.QueryContext(ctx, `SELECT idx, event_id, data FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx`, start, end)
	if err != nil {
		return nil, fmt.Errorf("couldn't read entries: %w", err)
	}
	defer rows.Close()
	out := make([]ledger.Entry, 0, max(0, min(end-start, 4096)))
	for rows.Next() {
		var e ledger.Entry
		if err := rows.Scan(&e.Index, &e.EventID, &e.Data); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (s *ledgerStore) EntryByID(ctx context.Context, id string) (ledger.Entry, error) {
	var e ledger.Entry
	err := s.db.reads.QueryRowContext(ctx, `SELECT idx, event_id, data FROM ledger_entries WHERE event_id = ?`, id).Scan(&e.Index, &e.EventID, &e.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return e, vigil.NotFound("no ledger event %q", id)
	}
	return e, err
}

func (s *ledgerStore) Bodies(ctx context.Context, start, end int64) ([]ledger.Body, error) {
	rows, err := s.db.reads.QueryContext(ctx, `SELECT idx, event_id, sealed FROM ledger_bodies WHERE idx >= ? AND idx < ? ORDER BY idx`, start, end)
	if err != nil {
		return nil, fmt.Errorf("couldn't read bodies: %w", err)
	}
	defer rows.Close()
	var out []ledger.Body
	for rows.Next() {
		var b ledger.Body
		if err := rows.Scan(&b.Index, &b.EventID, &b.Sealed); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

func (s *ledgerStore) DeleteBody(ctx context.Context, index int64) error {
	res, err := s.db.writes.ExecContext(ctx, `DELETE FROM ledger_bodies WHERE idx = ?`, index)
	if err != nil {
		return fmt.Errorf("couldn't erase body: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return vigil.NotFound("ledger entry %d has no body", index)
	}
	return nil
}

func (s *ledgerStore) Head(ctx context.Context) (ledger.Checkpoint, error) {
	var c ledger.Checkpoint
	err := s.db.reads.QueryRowContext(ctx, `SELECT h.size, h.note, COALESCE(c.created_at, 0) FROM ledger_head h LEFT JOIN ledger_checkpoints c ON c.size = h.size WHERE h.id = 0`).Scan(&c.Size, &c.Note, &c.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return c, vigil.NotFound("no checkpoint has been published")
	}
	if err != nil {
		return c, fmt.Errorf("couldn't read checkpoint head: %w", err)
	}
	return c, nil
}

func (s *ledgerStore) Publish(ctx context.Context, prev *ledger.Checkpoint, next ledger.Checkpoint) error {
	return s.db.tx(ctx, func(tx *sql.Tx) error {
		var res sql.Result
		var err error
		if prev == nil {
			res, err = tx.ExecContext(ctx, `INSERT INTO ledger_head (id, size, note) VALUES (0, ?, ?) ON CONFLICT (id) DO NOTHING`, next.Size, next.Note)
		} else {
			res, err = tx.ExecContext(ctx, `UPDATE ledger_head SET size = ?, note = ? WHERE id = 0 AND size = ? AND note = ?`, next.Size, next.Note, prev.Size, prev.Note)
		}
		if err != nil {
			return fmt.Errorf("couldn't update checkpoint head: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return vigil.Conflict("the checkpoint head changed: another writer published first")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_checkpoints (size, note, created_at) VALUES (?, ?, ?)`, next.Size, next.Note, next.CreatedAt); err != nil {
			if isUnique(err) {
				return vigil.Conflict("a checkpoint of size %d already exists", next.Size)
			}
			return fmt.Errorf("couldn't store checkpoint: %w", err)
		}
		return nil
	})
}

func (s *ledgerStore) Checkpoints(ctx context.Context, from, to int64) ([]ledger.Checkpoint, error) {
	rows, err := s.db.reads.QueryContext(ctx, `SELECT size, note, created_at FROM ledger_checkpoints WHERE size >= ? AND size <= ? ORDER BY size`, from, to)
	if err != nil {
		return nil, fmt.Errorf("couldn't read checkpoints: %w", err)
	}
	defer rows.Close()
	var out []ledger.Checkpoint
	for rows.Next() {
		var c ledger.Checkpoint
		if err := rows.Scan(&c.Size, &c.Note, &c.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
