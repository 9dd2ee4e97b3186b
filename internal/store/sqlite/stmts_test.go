package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/pii"
)

func open(t *testing.T, opts Options) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "vigil.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// synchronous is the write connection's PRAGMA synchronous (2 is FULL, 3 EXTRA).
func synchronous(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	if err := db.write.QueryRowContext(context.Background(), "PRAGMA synchronous").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A vault write commits without its own fsync, is visible at once, and leaves the
// write connection at the configured level for the ledger's next commit — also when
// the transaction fails.
func TestVaultPutLeavesWriterDurable(t *testing.T) {
	for _, level := range []struct {
		name string
		want int
	}{{"FULL", 2}, {"EXTRA", 3}} {
		t.Run(level.name, func(t *testing.T) {
			db := open(t, Options{Synchronous: level.name})
			ctx := context.Background()
			v := db.PIIVault()
			exp := time.Now().Add(time.Hour)
			if err := v.Put(ctx, pii.VaultEntry{AgentID: "a", SessionID: "s", ID: "abcdefghijkl", Ciphertext: []byte("ct"), ExpiresAt: exp}); err != nil {
				t.Fatal(err)
			}
			if got := synchronous(t, db); got != level.want {
				t.Errorf("synchronous after a vault write = %d, want %d", got, level.want)
			}
			if _, err := v.Get(ctx, "a", "s", "abcdefghijkl", time.Now()); err != nil {
				t.Errorf("the entry just written: %v", err)
			}
			var during int
			if err := db.txOrdered(ctx, func(tx *sql.Tx) error {
				return tx.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&during)
			}); err != nil || during != 1 {
				t.Errorf("synchronous inside an ordered transaction = %d (%v), want 1 (NORMAL: no fsync of its own)", during, err)
			}
			boom := errors.New("boom")
			if err := db.txOrdered(ctx, func(*sql.Tx) error { return boom }); !errors.Is(err, boom) {
				t.Errorf("txOrdered = %v, want the callback's error", err)
			}
			if got := synchronous(t, db); got != level.want {
				t.Errorf("synchronous after a failed ordered transaction = %d, want %d", got, level.want)
			}
		})
	}
}

// Hot statements are prepared once; a text beyond the bound runs unprepared.
func TestStatementsArePreparedOnce(t *testing.T) {
	db := open(t, Options{})
	ctx := context.Background()
	const q = "SELECT ? + 1"
	for i := range 3 {
		var n int
		if err := db.reads.QueryRowContext(ctx, q, i).Scan(&n); err != nil || n != i+1 {
			t.Fatalf("query %d = %d, %v", i, n, err)
		}
	}
	first := db.reads.prepared(ctx, q)
	if first == nil || db.reads.prepared(ctx, q) != first {
		t.Error("the statement was not kept prepared")
	}
	db.reads.n.Store(maxStmts)
	if db.reads.prepared(ctx, "SELECT 2") != nil {
		t.Error("a statement beyond the bound was prepared and kept")
	}
	var n int
	if err := db.reads.QueryRowContext(ctx, "SELECT 2").Scan(&n); err != nil || n != 2 {
		t.Errorf("unprepared query = %d, %v", n, err)
	}
}
