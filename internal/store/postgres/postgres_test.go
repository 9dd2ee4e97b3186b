package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/store/postgres"
	"github.com/vigil-gateway/vigil/internal/store/postgres/pgtest"
	"github.com/vigil-gateway/vigil/internal/store/storetest"
)

func openTest(t testing.TB) *postgres.DB {
	t.Helper()
	db, _ := openTestDSN(t)
	return db
}

func openTestDSN(t testing.TB) (*postgres.DB, string) {
	t.Helper()
	dsn := pgtest.DSN(t)
	db, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dsn
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		db, dsn := openTestDSN(t)
		// One field per line, so each domain's addition merges cleanly.
		return storetest.Stores{
			Inventory: db.Inventory(),
			Auth:      db.Auth(),
			Ledger:    db.Ledger(),
			PIIVault:  db.PIIVault(),
			AIMS:      db.AIMS(),
			Usage:     db.Usage(),
			Oversight: storetest.OversightStores{Approvals: db.Oversight(), Deliveries: db.Deliveries(), Users: db.Users()},
			Attacker:  newAttacker(t, dsn),
			MCPPins:   db.MCPPins(),
		}
	})
}

// attacker edits the schema through a connection of its own, as a database
// administrator would.
type attacker struct{ conn *pgx.Conn }

func newAttacker(t *testing.T, dsn string) attacker {
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return attacker{conn}
}

func (a attacker) Exec(ctx context.Context, q string, args ...any) error {
	_, err := a.conn.Exec(ctx, q, args...)
	return err
}

func (a attacker) DropProtections(ctx context.Context) error {
	for _, q := range []string{
		`DROP TRIGGER ledger_entries_append_only ON ledger_entries`,
		`DROP TRIGGER ledger_hashes_append_only ON ledger_hashes`,
		`DROP TRIGGER ledger_checkpoints_append_only ON ledger_checkpoints`,
		`ALTER TABLE ledger_bodies DROP CONSTRAINT ledger_bodies_idx_fkey`,
	} {
		if _, err := a.conn.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

func TestConcurrentMigration(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			db, err := postgres.Open(ctx, dsn)
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
	}
}

func TestUnreachableIsClearError(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
	t.Log(err)
}

// TestReadOnlyChangesNothing: `vigil verify` opens the database read-only, so
// checking evidence never migrates or writes it.
func TestReadOnlyChangesNothing(t *testing.T) {
	ctx := context.Background()
	empty := pgtest.DSN(t)
	if _, err := postgres.OpenReadOnly(ctx, empty); err == nil || !strings.Contains(err.Error(), "no Vigil schema") {
		t.Errorf("read-only Open of an empty schema = %v, want a refusal", err)
	}

	_, dsn := openTestDSN(t)
	ro, err := postgres.OpenReadOnly(ctx, dsn)
	if err != nil {
		t.Fatalf("read-only Open: %v", err)
	}
	sys := inventory.System{ID: "s1", Name: "x", Purpose: "y", Owner: "o", Lifecycle: "operation", Status: inventory.Active, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := ro.Inventory().CreateSystem(ctx, sys); err == nil {
		t.Error("a write through a read-only database succeeded")
	}
	ro.Close()

	// A database an older Vigil wrote is refused, not migrated.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var last string
	if err := conn.QueryRow(ctx, `SELECT max(name) FROM schema_migrations`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `DELETE FROM schema_migrations WHERE name = $1`, last); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.OpenReadOnly(ctx, dsn); err == nil || !strings.Contains(err.Error(), "older Vigil") {
		t.Errorf("read-only Open of an older schema = %v, want a refusal naming it", err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE name = $1`, last).Scan(&n); err != nil || n != 0 {
		t.Errorf("read-only Open migrated the database (%d, %v)", n, err)
	}
}
