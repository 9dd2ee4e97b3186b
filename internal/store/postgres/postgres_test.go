package postgres_test

import (
	"context"
	"testing"

	"github.com/vigil-gateway/vigil/internal/store/postgres"
	"github.com/vigil-gateway/vigil/internal/store/postgres/pgtest"
	"github.com/vigil-gateway/vigil/internal/store/storetest"
)

func openTest(t *testing.T) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		db := openTest(t)
		// One field per line, so each domain's addition merges cleanly.
		return storetest.Stores{
			Inventory: db.Inventory(),
			Auth:      db.Auth(),
			Ledger:    db.Ledger(),
			PIIVault:  db.PIIVault(),
			AIMS:      db.AIMS(),
			Usage:     db.Usage(),
			Oversight: storetest.OversightStores{Approvals: db.Oversight(), Deliveries: db.Deliveries(), Users: db.Users()},
			MCPPins:   db.MCPPins(),
		}
	})
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
