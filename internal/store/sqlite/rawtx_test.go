package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// treeSize reads the ledger's tree size through the read pool (committed state).
func treeSize(t *testing.T, db *DB) int64 {
	t.Helper()
	var n int64
	if err := db.reads.QueryRowContext(context.Background(), sqlTreeState).Scan(&n, new([]byte)); err != nil {
		t.Fatal(err)
	}
	return n
}

// A rawTx commits what its callback did, durably at the connection's level; a
// failing callback rolls everything back and leaves the connection usable (no
// transaction left open for the next writer).
func TestRawTxCommitsOrRollsBack(t *testing.T) {
	db := open(t, Options{})
	ctx := context.Background()
	setSize := func(n int64) func(*rawTx) error {
		return func(tx *rawTx) error {
			_, err := tx.exec(`UPDATE ledger_tree SET size = ? WHERE id = 0`, n)
			return err
		}
	}
	if err := db.rawTx(ctx, setSize(7)); err != nil {
		t.Fatal(err)
	}
	if got := treeSize(t, db); got != 7 {
		t.Fatalf("tree size after a committed rawTx = %d, want 7", got)
	}
	boom := errors.New("boom")
	err := db.rawTx(ctx, func(tx *rawTx) error {
		if err := setSize(9)(tx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("rawTx = %v, want the callback's error", err)
	}
	if got := treeSize(t, db); got != 7 {
		t.Errorf("tree size after a failed rawTx = %d, want 7 (rolled back)", got)
	}
	// A statement error inside (a constraint) rolls back too.
	err = db.rawTx(ctx, func(tx *rawTx) error {
		if err := setSize(11)(tx); err != nil {
			return err
		}
		_, err := tx.exec(`INSERT INTO ledger_tree (id, size, root) VALUES (0, 0, zeroblob(32))`)
		return err
	})
	if err == nil {
		t.Fatal("a duplicate primary key was accepted")
	}
	if got := treeSize(t, db); got != 7 {
		t.Errorf("tree size after a failed statement = %d, want 7", got)
	}
	// Both pools' writers still work: nothing was left open.
	if _, err := db.writes.ExecContext(ctx, `UPDATE ledger_tree SET size = 8 WHERE id = 0`); err != nil {
		t.Fatalf("write through the pool after the rollbacks: %v", err)
	}
	if err := db.rawTx(ctx, setSize(10)); err != nil || treeSize(t, db) != 10 {
		t.Fatalf("rawTx after the rollbacks: %v, size %d", err, treeSize(t, db))
	}
}

// When the write connection is replaced, the statements prepared on the old one are
// dropped, not run on the new one.
func TestRawTxPreparesAgainOnANewConnection(t *testing.T) {
	db := open(t, Options{})
	ctx := context.Background()
	if err := db.rawTx(ctx, func(tx *rawTx) error { _, err := tx.exec(sqlTreeUpdate, 1, make([]byte, 32), 0); return err }); err != nil {
		t.Fatal(err)
	}
	first := db.raw.conn
	// A callback reporting a bad connection makes database/sql discard it.
	if err := db.rawTx(ctx, func(*rawTx) error { return driver.ErrBadConn }); !errors.Is(err, driver.ErrBadConn) {
		t.Fatalf("rawTx = %v, want ErrBadConn", err)
	}
	if err := db.rawTx(ctx, func(tx *rawTx) error { _, err := tx.exec(sqlTreeUpdate, 2, make([]byte, 32), 1); return err }); err != nil {
		t.Fatalf("rawTx on the new connection: %v", err)
	}
	if db.raw.conn == first {
		t.Error("the write connection was not replaced")
	}
	if got := treeSize(t, db); got != 2 {
		t.Errorf("tree size = %d, want 2", got)
	}
}

// Beyond maxStmts texts, statements run unkept (and are closed after use).
func TestRawTxBeyondTheBoundRunsUnkept(t *testing.T) {
	db := open(t, Options{})
	ctx := context.Background()
	err := db.rawTx(ctx, func(tx *rawTx) error {
		st, _, err := tx.stmt(sqlTreeState)
		if err != nil {
			return err
		}
		for i := len(tx.c.stmts); i < maxStmts; i++ {
			tx.c.stmts[fmt.Sprintf("filler %d", i)] = st
		}
		if _, err := tx.exec(`UPDATE ledger_tree SET size = ? WHERE id = 0`, 3); err != nil {
			return err
		}
		rows, err := tx.queryRows(ctx, `SELECT size FROM ledger_tree WHERE id = ?`, 0)
		if err != nil {
			return err
		}
		defer rows.Close()
		var n int64
		if !rows.Next() {
			return fmt.Errorf("no row: %v", rows.Err())
		}
		if err := rows.Scan(&n); err != nil || n != 3 {
			return fmt.Errorf("size = %d, %v; want 3", n, err)
		}
		if len(tx.c.stmts) != maxStmts {
			return fmt.Errorf("%d statements kept, want the bound %d", len(tx.c.stmts), maxStmts)
		}
		for q := range tx.c.stmts {
			if strings.HasPrefix(q, "filler") {
				delete(tx.c.stmts, q) // the filler shares a statement; closing it twice would fail
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := treeSize(t, db); got != 3 {
		t.Errorf("tree size = %d, want 3", got)
	}
}
