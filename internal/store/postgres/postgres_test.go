package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
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
