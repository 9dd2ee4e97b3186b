package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vigil-gateway/vigil/internal/store/sqlite"
	"github.com/vigil-gateway/vigil/internal/store/storetest"
)

// openTemp opens a fresh database in a test temp dir, closed at cleanup.
func openTemp(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		db := openTemp(t)
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

func TestReopenKeepsDataAndMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		db, err := sqlite.Open(ctx, path, sqlite.Options{})
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		if err := db.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
}

func TestRefusesBadSynchronous(t *testing.T) {
	_, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), sqlite.Options{Synchronous: "sometimes"})
	if err == nil {
		t.Fatal("Open accepted synchronous=sometimes")
	}
}
