package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"
)

// rawTx is a write transaction driven on the write pool's connection through the
// driver's own interfaces, for the ledger's appends (two per model call).
//
// database/sql costs a model call more than its API suggests: BeginTx starts a
// goroutine per transaction (to roll back when the context ends) and every query
// inside a transaction starts another (to close its rows), and each of those
// goroutines woke an idle OS thread; BEGIN and COMMIT were parsed again on every
// transaction; each statement went through Tx.StmtContext, argument conversion and
// the pool's locks. Here BEGIN IMMEDIATE, COMMIT, ROLLBACK and the ledger's
// statements are prepared once per connection and run directly
// (docs/adr/0010-hot-path.md).
//
// The durability is the connection's: synchronous=FULL (or what Options set), as for
// every other write transaction.
type rawTx struct {
	ctx context.Context
	c   *rawConn
}

// rawConn is the driver connection of the write pool as rawTx uses it, with the
// statements prepared on it. The write pool has one connection, so rawConns never
// run concurrently; the mutex only guards against that changing.
type rawConn struct {
	mu    sync.Mutex
	conn  driver.Conn            // the connection stmts were prepared on
	stmts map[string]driver.Stmt // SQL text → statement prepared on conn
}

// Statements rawTx runs to delimit its transactions.
const (
	sqlBegin    = "BEGIN IMMEDIATE"
	sqlCommit   = "COMMIT"
	sqlRollback = "ROLLBACK"
)

// rawTx runs fn in a write transaction and commits it, or rolls it back when fn or
// the commit fails. A transaction that cannot be rolled back closes the connection
// (database/sql opens a new one), so it is never left open on the pool.
func (db *DB) rawTx(ctx context.Context, fn func(*rawTx) error) error {
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c := db.raw
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.conn != dc {
			// A new connection: the statements of the old one went with it.
			c.conn, c.stmts = dc.(driver.Conn), map[string]driver.Stmt{}
		}
		t := &rawTx{ctx: ctx, c: c}
		if _, err := t.exec(sqlBegin); err != nil {
			return err
		}
		err := fn(t)
		if err == nil {
			if _, err = t.exec(sqlCommit); err == nil {
				return nil
			}
		}
		// SQLite may have rolled back already (a failed COMMIT usually has): then
		// ROLLBACK fails with "no transaction is active", and the connection is
		// still discarded, which is safe.
		if _, rerr := t.exec(sqlRollback); rerr != nil {
			return errors.Join(err, fmt.Errorf("couldn't roll back: %w", rerr), driver.ErrBadConn)
		}
		return err
	})
}

// closeRaw closes the statements rawTx prepared, on the connection they belong to.
func (db *DB) closeRaw() {
	conn, err := db.write.Conn(context.Background())
	if err != nil {
		return
	}
	defer conn.Close()
	_ = conn.Raw(func(dc any) error {
		c := db.raw
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.conn == dc {
			for _, st := range c.stmts {
				st.Close()
			}
		}
		c.conn, c.stmts = nil, nil
		return nil
	})
}

// stmt returns q prepared on the connection, preparing it on first use, and whether
// it is kept: beyond maxStmts texts (IN lists of varying length) a statement is not
// kept and the caller closes it after use.
func (t *rawTx) stmt(q string) (driver.Stmt, bool, error) {
	if st := t.c.stmts[q]; st != nil {
		return st, true, nil
	}
	st, err := t.c.conn.(driver.ConnPrepareContext).PrepareContext(t.ctx, q)
	if err != nil {
		return nil, false, err
	}
	if len(t.c.stmts) >= maxStmts {
		return st, false, nil
	}
	t.c.stmts[q] = st
	return st, true, nil
}

// namedValues converts args as database/sql does (driver.DefaultParameterConverter):
// int64, float64, bool, []byte, string and time.Time pass as they are, other integer
// types become int64.
func namedValues(args []any) ([]driver.NamedValue, error) {
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		v, err := driver.DefaultParameterConverter.ConvertValue(a)
		if err != nil {
			return nil, fmt.Errorf("sqlite: argument %d: %w", i+1, err)
		}
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return nv, nil
}

// bind returns q's statement, whether it is kept (stmt), and args converted for it.
func (t *rawTx) bind(q string, args []any) (driver.Stmt, bool, []driver.NamedValue, error) {
	st, kept, err := t.stmt(q)
	if err != nil {
		return nil, false, nil, err
	}
	nv, err := namedValues(args)
	if err != nil && !kept {
		st.Close()
	}
	return st, kept, nv, err
}

// exec runs q with args.
func (t *rawTx) exec(q string, args ...any) (driver.Result, error) {
	st, kept, nv, err := t.bind(q, args)
	if err != nil {
		return nil, err
	}
	if !kept {
		defer st.Close()
	}
	return st.(driver.StmtExecContext).ExecContext(t.ctx, nv)
}

// queryRows runs q with args; the caller closes the rows.
func (t *rawTx) queryRows(ctx context.Context, q string, args ...any) (rowIter, error) {
	st, kept, nv, err := t.bind(q, args)
	if err != nil {
		return nil, err
	}
	rows, err := st.(driver.StmtQueryContext).QueryContext(ctx, nv)
	if err != nil {
		if !kept {
			st.Close()
		}
		return nil, err
	}
	r := &rawRows{rows: rows, vals: make([]driver.Value, len(rows.Columns()))}
	if !kept {
		r.stmt = st
	}
	return r, nil
}

// rowIter is what reading a query's rows needs of *sql.Rows; rawRows is the same over
// driver rows.
type rowIter interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// rowsQuerier runs a query for a reader of rows that works inside and outside rawTx.
type rowsQuerier interface {
	queryRows(ctx context.Context, q string, args ...any) (rowIter, error)
}

// sqlQuerier is a rowsQuerier over database/sql.
type sqlQuerier struct{ q querier }

func (s sqlQuerier) queryRows(ctx context.Context, q string, args ...any) (rowIter, error) {
	return s.q.QueryContext(ctx, q, args...)
}

// rawRows reads driver rows like *sql.Rows, for the column types the ledger reads.
type rawRows struct {
	rows driver.Rows
	vals []driver.Value
	err  error
	stmt driver.Stmt // closed with the rows when it is not kept (rawTx.stmt)
}

func (r *rawRows) Next() bool {
	if r.err != nil {
		return false
	}
	if err := r.rows.Next(r.vals); err != nil {
		if err != io.EOF {
			r.err = err
		}
		return false
	}
	return true
}

// Scan copies the current row into dest: *int64, *string or *[]byte (copied, as
// database/sql does: the driver may reuse its buffers).
func (r *rawRows) Scan(dest ...any) error {
	if len(dest) != len(r.vals) {
		return fmt.Errorf("sqlite: %d destinations for %d columns", len(dest), len(r.vals))
	}
	for i, d := range dest {
		v := r.vals[i]
		ok := false
		switch d := d.(type) {
		case *int64:
			*d, ok = v.(int64)
		case *string:
			switch v := v.(type) {
			case string:
				*d, ok = v, true
			case []byte:
				*d, ok = string(v), true
			}
		case *[]byte:
			switch v := v.(type) {
			case []byte:
				*d, ok = append([]byte(nil), v...), true
			case string:
				*d, ok = []byte(v), true
			}
		}
		if !ok {
			return fmt.Errorf("sqlite: cannot scan column %d (%T) into %T", i, v, d)
		}
	}
	return nil
}

func (r *rawRows) Err() error { return r.err }

func (r *rawRows) Close() error {
	err := r.rows.Close()
	if r.stmt != nil {
		err = errors.Join(err, r.stmt.Close())
	}
	return err
}

// The row readers accept both kinds.
var (
	_ rowIter = (*sql.Rows)(nil)
	_ rowIter = (*rawRows)(nil)
)
