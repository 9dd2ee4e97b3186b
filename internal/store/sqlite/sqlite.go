// Package sqlite is the embedded storage driver: one SQLite file (pure Go,
// modernc.org/sqlite) in WAL mode with foreign keys on and synchronous=FULL, so every
// acknowledged write has been fsynced. It implements the Store interfaces of the
// domain packages and passes the storetest behaviour suite.
//
// Writes go through a single connection whose transactions begin IMMEDIATE (SQLite
// allows one writer; queueing in Go is cheaper than SQLITE_BUSY retries); reads use a
// separate pool and see the last committed state.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune the driver. The zero value is the safe default.
type Options struct {
	// Synchronous is the PRAGMA synchronous level: FULL (default) or EXTRA. OFF and
	// NORMAL exist only so tests can show that the crash harness catches lost commits;
	// they can lose acknowledged writes on power loss.
	Synchronous string
	// ReadConns is the size of the read pool. Default 8.
	ReadConns int
	// ReadOnly opens an existing database for reading only, as `vigil verify` and
	// `vigil ledger export` do: nothing is migrated or written (every connection is
	// query_only), and a database whose schema is not this version's is refused, so
	// that checking evidence never changes it.
	ReadOnly bool
}

// DB is an open SQLite database.
type DB struct {
	path  string
	write *sql.DB
	read  *sql.DB
	// sync is the write connection's PRAGMA synchronous level.
	sync string
	// reads and writes run the pools' statements prepared once (stmts).
	reads, writes *stmts
	// raw is the write connection as the ledger's transactions use it (rawTx).
	raw *rawConn
}

// txStatements are the statements run inside write transactions on every model
// call; Open prepares them up front because a statement cannot be prepared on the
// write pool from inside one of its transactions (stmts.prepared). The ledger's
// transactions prepare theirs on the connection itself (rawTx).
var txStatements = []string{sqlVaultPut}

// Open opens (creating if needed) the database at path and applies migrations; with
// Options.ReadOnly it opens an existing one and only checks its schema.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	sync := strings.ToUpper(opts.Synchronous)
	if sync == "" {
		sync = "FULL"
	}
	if !slices.Contains([]string{"OFF", "NORMAL", "FULL", "EXTRA"}, sync) {
		return nil, fmt.Errorf("sqlite: synchronous %q is not OFF, NORMAL, FULL or EXTRA", opts.Synchronous)
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = 8
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	if opts.ReadOnly {
		q.Add("_pragma", "query_only(1)")
		q.Set("mode", "ro") // never create the file
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	}
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous("+sync+")")
	write, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("couldn't open sqlite database %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	rq := url.Values{}
	rq.Add("_pragma", "busy_timeout(10000)")
	rq.Add("_pragma", "foreign_keys(1)")
	rq.Add("_pragma", "query_only(1)")
	if opts.ReadOnly {
		rq.Set("mode", "ro")
	}
	read, err := sql.Open("sqlite", "file:"+path+"?"+rq.Encode())
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("couldn't open sqlite database %s: %w", path, err)
	}
	read.SetMaxOpenConns(opts.ReadConns)
	// Keep every read connection: database/sql keeps two idle by default, so under
	// concurrent load the rest were closed and reopened (PRAGMAs, WAL index, prepared
	// statements) over and over.
	read.SetMaxIdleConns(opts.ReadConns)
	db := &DB{path: path, write: write, read: read, sync: sync, reads: &stmts{pool: read}, writes: &stmts{pool: write}, raw: &rawConn{}}
	if err := db.write.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't open sqlite database %s: %w", path, err)
	}
	if opts.ReadOnly {
		if err := db.checkSchema(ctx); err != nil {
			db.Close()
			return nil, err
		}
		return db, nil
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.writes.prepare(ctx, txStatements...); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't prepare statements on sqlite database %s: %w", path, err)
	}
	return db, nil
}

// Close closes both pools. Pending writes have finished when it returns.
func (db *DB) Close() error {
	db.closeRaw()
	db.reads.close()
	db.writes.close()
	return errors.Join(db.write.Close(), db.read.Close())
}

// Ping checks that the database answers (for /readyz).
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.reads.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite database %s doesn't answer: %w", db.path, err)
	}
	return nil
}

// Path is the database file.
func (db *DB) Path() string { return db.path }

func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		return fmt.Errorf("couldn't create migrations table: %w", err)
	}
	applied, err := db.applied(ctx, db.write)
	if err != nil {
		return err
	}
	todo, err := pending(db.path, applied)
	if err != nil {
		return fmt.Errorf("%w; refusing to start", err)
	}
	for _, n := range todo {
		name := path.Base(n)
		body, err := migrations.ReadFile(n)
		if err != nil {
			return err
		}
		if err := db.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`, name, time.Now().UnixMicro())
			return err
		}); err != nil {
			return fmt.Errorf("couldn't apply migration %s: %w", name, err)
		}
	}
	return nil
}

// checkSchema refuses a database whose migrations are not exactly this version's.
func (db *DB) checkSchema(ctx context.Context) error {
	applied, err := db.applied(ctx, db.read)
	if err != nil {
		return fmt.Errorf("%s is not a Vigil database: %w", db.path, err)
	}
	todo, err := pending(db.path, applied)
	if err != nil {
		return err
	}
	if len(todo) > 0 {
		return fmt.Errorf("database %s was written by an older Vigil (%d migrations not applied): %w", db.path, len(todo), ErrOlderSchema)
	}
	return nil
}

// applied lists the migrations recorded in the database.
func (db *DB) applied(ctx context.Context, pool *sql.DB) ([]string, error) {
	rows, err := pool.QueryContext(ctx, `SELECT name FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("couldn't read migrations table: %w", err)
	}
	defer rows.Close()
	var applied []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		applied = append(applied, n)
	}
	return applied, rows.Err()
}

// pending returns the embedded migrations not in applied, in order. A migration in
// applied that this version doesn't have means a newer Vigil wrote the database.
func pending(where string, applied []string) ([]string, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	known := map[string]bool{}
	for _, n := range names {
		known[path.Base(n)] = true
	}
	for _, n := range applied {
		if !known[n] {
			return nil, fmt.Errorf("database %s has migration %q that this Vigil doesn't know: it was written by a newer version", where, n)
		}
	}
	var todo []string
	for _, n := range names {
		if !slices.Contains(applied, path.Base(n)) {
			todo = append(todo, n)
		}
	}
	return todo, nil
}

// ErrOlderSchema is the error of a read-only Open of a database an older Vigil
// wrote: it would need migrating, which read-only never does. Copy it with Snapshot
// and open the copy instead.
var ErrOlderSchema = errors.New("opened read-only it is not migrated")

// Snapshot writes a consistent copy of the database at path to dst (which must not
// exist) without changing the original: SQLite's VACUUM INTO from a read-only
// connection, so a server writing meanwhile is neither blocked for long nor seen
// half-way.
func Snapshot(ctx context.Context, path, dst string) error {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Set("mode", "ro")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("couldn't open sqlite database %s: %w", path, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		return fmt.Errorf("couldn't copy sqlite database %s to %s: %w", path, dst, err)
	}
	return nil
}

// tx runs fn in a write transaction, committing if it returns nil.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	return run(tx, err, fn)
}

// run runs fn in tx, just begun with err, and commits it, or rolls it back when fn
// fails.
func run(tx *sql.Tx, err error, fn func(*sql.Tx) error) error {
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// txOrdered is tx for writes that need to be visible at once but not durable on
// their own: the transaction commits with synchronous=NORMAL, without an fsync. WAL
// commits reach the disk in order — a later commit is durable only with every frame
// before it, and a checkpoint syncs the WAL first — so it becomes durable with the
// next commit that is (the ledger's entries are committed with synchronous=FULL).
//
// Use it only where such a commit always follows before anything relies on the write
// surviving a power loss: the PII vault, whose entries the request's ledger entry
// follows before the request is forwarded (docs/adr/0010-hot-path.md).
func (db *DB) txOrdered(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	if db.sync == "OFF" || db.sync == "NORMAL" {
		return db.tx(ctx, fn)
	}
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous=NORMAL"); err != nil {
		return err
	}
	defer func() {
		// The connection MUST NOT go back to the pool below its configured level: the
		// ledger commits on it next. If restoring fails, it is discarded instead.
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous="+db.sync); rerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			err = errors.Join(err, fmt.Errorf("couldn't restore synchronous=%s: %w", db.sync, rerr))
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	return run(tx, err, fn)
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY constraint violation.
func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// micros and fromMicros convert times to the stored form (UTC microseconds).
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(n int64) time.Time { return time.UnixMicro(n).UTC() }

func microsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

func fromMicrosPtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromMicros(n.Int64)
	return &t
}
