package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// maxStmts bounds how many statements a pool keeps prepared. Queries built with a
// varying number of placeholders (IN lists) would otherwise grow the set without
// limit; past the bound, new texts run unprepared.
const maxStmts = 256

// stmts keeps one prepared statement per SQL text for a pool. Without it SQLite
// parses and plans every statement on every call: before it, the parser alone was
// a fifth of the gateway's CPU per model call (key lookups, vault reads, ledger
// reads). database/sql prepares a Stmt again on each pool connection the first time
// it runs there, and drops it with the connection.
//
// It is safe for concurrent use.
type stmts struct {
	pool *sql.DB
	m    sync.Map // SQL text → *sql.Stmt
	n    atomic.Int64
	mu   sync.Mutex // serialises preparing, so a text is prepared once
}

// prepared returns the statement for q, preparing it on first use. It returns nil
// when q cannot be prepared or the bound is reached; callers then run q unprepared
// (which reports any error in q).
//
// It MUST NOT be called on the write pool from inside one of its transactions:
// preparing waits for the pool's one connection, which the transaction holds. Use
// txStmt there.
func (s *stmts) prepared(ctx context.Context, q string) *sql.Stmt {
	if st, ok := s.m.Load(q); ok {
		return st.(*sql.Stmt)
	}
	if s.n.Load() >= maxStmts {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m.Load(q); ok {
		return st.(*sql.Stmt)
	}
	st, err := s.pool.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	s.m.Store(q, st)
	s.n.Add(1)
	return st
}

// prepare prepares every query in qs now (outside any transaction), so txStmt finds
// them.
func (s *stmts) prepare(ctx context.Context, qs ...string) error {
	for _, q := range qs {
		s.mu.Lock()
		_, ok := s.m.Load(q)
		s.mu.Unlock()
		if ok {
			continue
		}
		st, err := s.pool.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.m.Store(q, st)
		s.n.Add(1)
		s.mu.Unlock()
	}
	return nil
}

func (s *stmts) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := s.prepared(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.pool.QueryRowContext(ctx, q, args...)
}

func (s *stmts) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := s.prepared(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.pool.QueryContext(ctx, q, args...)
}

func (s *stmts) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := s.prepared(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return s.pool.ExecContext(ctx, q, args...)
}

// txStmt returns q as prepared earlier (prepare), bound to tx, or nil when it was not
// prepared. It never prepares: see prepared.
func (s *stmts) txStmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	st, ok := s.m.Load(q)
	if !ok {
		return nil
	}
	return tx.StmtContext(ctx, st.(*sql.Stmt))
}

// close closes every statement kept.
func (s *stmts) close() {
	s.m.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
}

// txExec runs q in tx, prepared if it was prepared on the write pool before.
func (db *DB) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if st := db.writes.txStmt(ctx, tx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}
