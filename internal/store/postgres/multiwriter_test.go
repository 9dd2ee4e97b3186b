package postgres_test

import (
	"context"
	"testing"

	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/store/postgres"
	"github.com/vigil-gateway/vigil/internal/store/postgres/pgtest"
	"github.com/vigil-gateway/vigil/internal/store/storetest"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/tlog"
)

// TestTwoProcessesAppendToOneLedger runs two OS processes, each a Vigil ledger with
// its own connection pool, appending concurrently to one schema and both
// publishing checkpoints by compare-and-swap. Indices must be exactly 0..n-1, the
// checkpoint history one consistent chain, and every acknowledged event provable.
func TestTwoProcessesAppendToOneLedger(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, dsn) // migrate once, before the children race
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := storetest.NewChildConfig(t)
	cfg.Writers, cfg.Events = 16, 60
	var children []*storetest.Child
	for _, name := range []string{"a", "b"} {
		c := cfg
		c.Name = name
		children = append(children, storetest.StartChild(t, c, "VIGIL_CHILD_DSN="+dsn))
	}
	var acks []vigil.Receipt
	for _, c := range children {
		got, err := c.Wait()
		if err != nil {
			t.Fatalf("child: %v", err)
		}
		acks = append(acks, got...)
	}
	if want := 2 * cfg.Writers * cfg.Events; len(acks) != want {
		t.Fatalf("%d acknowledgements, want %d", len(acks), want)
	}
	st := db.Ledger()
	size, _, err := st.TreeState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Heartbeats are not expected in so short a run, but would be legitimate.
	seen := map[int64]string{}
	for _, r := range acks {
		if r.Index < 0 || r.Index >= size {
			t.Fatalf("acknowledged index %d outside the tree of %d", r.Index, size)
		}
		if prev, dup := seen[r.Index]; dup {
			t.Fatalf("index %d acknowledged to %s and %s", r.Index, prev, r.ID)
		}
		seen[r.Index] = r.ID
	}
	entries, err := st.Entries(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		if e.Index != int64(i) {
			t.Fatalf("entry %d has index %d: indices are not 0..n-1", i, e.Index)
		}
	}
	opts, _ := cfg.Options()
	rep, err := ledger.Verify(ctx, st, ledger.VerifyOptions{Origin: opts.Origin, Verifier: opts.Verifier, BodyKey: opts.BodyKey})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Size != size || rep.Latest != size || rep.Checkpoints < 2 {
		t.Fatalf("verify: %s; want intact, %d entries, the last checkpoint at %d, several checkpoints", rep.Summary(), size, size)
	}
	t.Logf("%d entries, %d checkpoints published by two racing processes", size, rep.Checkpoints)
	head, err := ledger.ParseCheckpoint(mustHead(t, st), opts.Origin, opts.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return st.ReadHashes(ctx, idx) })
	for _, a := range acks {
		e := entries[a.Index]
		if e.EventID != a.ID {
			t.Fatalf("index %d holds %s, acknowledged as %s", a.Index, e.EventID, a.ID)
		}
		p, err := tlog.ProveRecord(head.Size, a.Index, r)
		if err == nil {
			err = tlog.CheckRecord(p, head.Size, head.Root, a.Index, tlog.RecordHash(e.Data))
		}
		if err != nil {
			t.Fatalf("acknowledged entry %d is not provable: %v", a.Index, err)
		}
	}
}

func mustHead(t *testing.T, st ledger.Store) []byte {
	t.Helper()
	h, err := st.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h.Note
}
