// Package postgres is the storage driver for several replicas sharing one PostgreSQL
// database (github.com/jackc/pgx/v5). It implements the Store interfaces of the
// domain packages and passes the storetest behaviour suite; it shares no code with
// the SQLite driver.
//
// Replicas are stateless: everything that must be seen by all of them lives here, and
// changes that waiting callers care about are announced with LISTEN/NOTIFY.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the advisory lock key held while migrating, so replicas starting
// together apply each migration once.
const migrationLock = 0x76696731 // "vig1"

// DB is a pool of connections to one PostgreSQL database.
type DB struct {
	pool *pgxpool.Pool
	dsn  string
}

// Open connects to dsn and applies migrations. The search_path parameter in the DSN,
// if any, selects the schema (tests use a fresh one per run).
func Open(ctx context.Context, dsn string) (*DB, error) { return open(ctx, dsn, false) }

// OpenReadOnly connects to dsn for reading only, as `vigil verify` and `vigil ledger
// export` do: every transaction is read-only, nothing is migrated, and a database
// whose schema is not this version's is refused, so that checking evidence never
// changes it.
func OpenReadOnly(ctx context.Context, dsn string) (*DB, error) { return open(ctx, dsn, true) }

func open(ctx context.Context, dsn string, readOnly bool) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse PostgreSQL DSN: %w", err)
	}
	if readOnly {
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	if cfg.MaxConns < 16 {
		cfg.MaxConns = 16
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("couldn't connect to PostgreSQL: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("couldn't connect to PostgreSQL at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	db := &DB{pool: pool, dsn: dsn}
	migrate := db.migrate
	if readOnly {
		migrate = db.checkSchema
	}
	if err := migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// checkSchema refuses a database whose migrations are not exactly this version's.
func (db *DB) checkSchema(ctx context.Context) error {
	var reg *string
	if err := db.pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations')::text`).Scan(&reg); err != nil {
		return fmt.Errorf("couldn't read the migrations table: %w", err)
	}
	if reg == nil {
		return errors.New("the database holds no Vigil schema (no migrations table)")
	}
	rows, err := db.pool.Query(ctx, `SELECT name FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("couldn't read the migrations table: %w", err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("couldn't read the migrations table: %w", err)
	}
	todo, err := pending(applied)
	if err != nil {
		return err
	}
	if len(todo) > 0 {
		return fmt.Errorf("database was written by an older Vigil (%d migrations not applied); opened read-only it is not migrated: run vigil serve once to migrate it, or use the version that wrote it", len(todo))
	}
	return nil
}

// pending returns the embedded migrations not in applied, in order. A migration in
// applied that this version doesn't have means a newer Vigil wrote the database.
func pending(applied []string) ([]string, error) {
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
			return nil, fmt.Errorf("database has migration %q that this Vigil doesn't know: it was written by a newer version", n)
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

// Close closes the pool, waiting for connections in use to be released.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Ping checks that the database answers (for /readyz).
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("PostgreSQL doesn't answer: %w", err)
	}
	return nil
}

// Pool exposes the connection pool to the cmd/vigil wiring (LISTEN/NOTIFY needs a
// dedicated connection).
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

func (db *DB) migrate(ctx context.Context) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("couldn't take the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("couldn't create migrations table: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT name FROM schema_migrations`)
		if err != nil {
			return err
		}
		applied, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("couldn't read migrations table: %w", err)
		}
		todo, err := pending(applied)
		if err != nil {
			return fmt.Errorf("%w; refusing to start", err)
		}
		for _, n := range todo {
			name := path.Base(n)
			body, err := migrations.ReadFile(n)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return fmt.Errorf("couldn't apply migration %s: %w", name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name) VALUES ($1)`, name); err != nil {
				return err
			}
		}
		return nil
	})
}

// tx runs fn in a transaction, committing if it returns nil.
func (db *DB) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.pool, fn)
}

// isUnique reports whether err is a unique-constraint violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
