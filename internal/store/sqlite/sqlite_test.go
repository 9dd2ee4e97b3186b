package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/store/sqlite"
	"github.com/vigil-gateway/vigil/internal/store/storetest"
)

// openTemp opens a fresh database in a test temp dir, closed at cleanup.
func openTemp(t testing.TB) *sqlite.DB {
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
			Attacker:  newAttacker(t, db.Path()),
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

// attacker edits the database file through a connection of its own, as someone
// with the file and the sqlite3 tool would (foreign keys are off by default).
type attacker struct{ db *sql.DB }

func newAttacker(t *testing.T, path string) attacker {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return attacker{db}
}

var dollar = regexp.MustCompile(`\$(\d+)`)

func (a attacker) Exec(ctx context.Context, q string, args ...any) error {
	_, err := a.db.ExecContext(ctx, dollar.ReplaceAllString(q, "?$1"), args...)
	return err
}

func (a attacker) DropProtections(ctx context.Context) error {
	for _, tr := range []string{"ledger_entries_no_update", "ledger_entries_no_delete", "ledger_hashes_no_update",
		"ledger_hashes_no_delete", "ledger_checkpoints_no_update", "ledger_checkpoints_no_delete"} {
		if _, err := a.db.ExecContext(ctx, "DROP TRIGGER "+tr); err != nil {
			return err
		}
	}
	return nil
}

// TestReadOnlyChangesNothing: `vigil verify` opens the database read-only, so
// checking evidence never creates, migrates or writes it.
func TestReadOnlyChangesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "none.db")
	if _, err := sqlite.Open(ctx, missing, sqlite.Options{ReadOnly: true}); err == nil {
		t.Error("read-only Open of a missing database succeeded")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("read-only Open created %s (%v)", missing, err)
	}

	path := filepath.Join(dir, "vigil.db")
	db, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	ro, err := sqlite.Open(ctx, path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open: %v", err)
	}
	if err := ro.Ping(ctx); err != nil {
		t.Error(err)
	}
	sys := inventory.System{ID: "s1", Name: "x", Purpose: "y", Owner: "o", Lifecycle: "operation", Status: inventory.Active, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := ro.Inventory().CreateSystem(ctx, sys); err == nil {
		t.Error("a write through a read-only database succeeded")
	}
	ro.Close()

	// A database an older Vigil wrote is refused, not migrated.
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	var last string
	if err := raw.QueryRow(`SELECT max(name) FROM schema_migrations`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`DELETE FROM schema_migrations WHERE name = ?`, last); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Open(ctx, path, sqlite.Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "older Vigil") {
		t.Errorf("read-only Open of an older schema = %v, want a refusal naming it", err)
	}
	var n int
	if err := raw.QueryRow(`SELECT count(*) FROM schema_migrations WHERE name = ?`, last).Scan(&n); err != nil || n != 0 {
		t.Errorf("read-only Open migrated the database (%d, %v)", n, err)
	}
	raw.Close()
}

// TestRefusesANewerSchema: a database a newer Vigil migrated is refused, read-write
// and read-only, rather than used with a schema this version doesn't know.
func TestRefusesANewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vigil.db")
	db, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`INSERT INTO schema_migrations (name, applied_at) VALUES ('9999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		if _, err := sqlite.Open(ctx, path, sqlite.Options{ReadOnly: ro}); err == nil || !strings.Contains(err.Error(), "newer version") {
			t.Errorf("Open(read-only %v) of a newer schema = %v, want a refusal naming it", ro, err)
		}
	}
}
