package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const testOrigin = "test.vigil.example/ledger"

// LedgerKeys are a signer and verifier for tests.
func LedgerKeys(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

// LedgerOptions returns options for a test ledger with fresh keys.
func LedgerOptions(t testing.TB) ledger.Options {
	s, v := LedgerKeys(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return ledger.Options{Origin: testOrigin, Signer: s, Verifier: v, BodyKey: key, CheckpointInterval: 10 * time.Millisecond}
}

func testLedger(t *testing.T, st Stores) {
	ctx := context.Background()
	opts := LedgerOptions(t)
	l, err := ledger.Open(ctx, st.Ledger, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	t.Run("ConcurrentAppendsGetDenseIndices", func(t *testing.T) {
		const writers, each = 8, 50
		var mu sync.Mutex
		seen := map[int64]string{}
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					r, err := l.Record(ctx, vigil.Event{Type: "test.append", Actor: fmt.Sprintf("w%d", w), Body: []byte(fmt.Sprintf("body %d/%d", w, i))})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if prev, dup := seen[r.Index]; dup {
						t.Errorf("index %d given to %s and %s", r.Index, prev, r.ID)
					}
					seen[r.Index] = r.ID
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		size, _, err := st.Ledger.TreeState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if size != writers*each || len(seen) != writers*each {
			t.Fatalf("tree size %d with %d receipts, want %d", size, len(seen), writers*each)
		}
		for i := range int64(size) {
			if _, ok := seen[i]; !ok {
				t.Fatalf("index %d was never acknowledged", i)
			}
		}
	})

	t.Run("DuplicateIDRefused", func(t *testing.T) {
		r, err := l.Record(ctx, vigil.Event{ID: "dup-1", Type: "test.dup"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = l.Record(ctx, vigil.Event{ID: "dup-1", Type: "test.dup"})
		if !errors.Is(err, vigil.ErrConflict) {
			t.Fatalf("second Record of the same id = %v, want ErrConflict", err)
		}
		e, err := st.Ledger.EntryByID(ctx, "dup-1")
		if err != nil || e.Index != r.Index {
			t.Fatalf("EntryByID = %+v, %v; want index %d", e, err, r.Index)
		}
	})

	t.Run("CheckpointCoversTreeAndProvesInclusion", func(t *testing.T) {
		if err := l.PublishCheckpoint(ctx); err != nil {
			t.Fatal(err)
		}
		head, err := l.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		size, root, _ := st.Ledger.TreeState(ctx)
		if head.Size != size || head.Root != root {
			t.Fatalf("head = (%d, %x), tree = (%d, %x)", head.Size, head.Root, size, root)
		}
		entries, err := st.Ledger.Entries(ctx, 0, size)
		if err != nil || int64(len(entries)) != size {
			t.Fatalf("Entries = %d, %v; want %d", len(entries), err, size)
		}
		r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return st.Ledger.ReadHashes(ctx, idx) })
		for _, i := range []int64{0, size / 2, size - 1} {
			p, err := tlog.ProveRecord(size, i, r)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckRecord(p, size, head.Root, i, tlog.RecordHash(entries[i].Data)); err != nil {
				t.Errorf("inclusion of %d: %v", i, err)
			}
			if _, err := ledger.ParseEnvelope(entries[i].Data); err != nil {
				t.Errorf("entry %d: %v", i, err)
			}
		}
	})

	t.Run("PublishIsCompareAndSwap", func(t *testing.T) {
		head, err := st.Ledger.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stale := ledger.Checkpoint{Size: head.Size - 1, Note: []byte("stale")}
		err = st.Ledger.Publish(ctx, &stale, ledger.Checkpoint{Size: head.Size + 100, Note: []byte("fork"), CreatedAt: 1})
		if !errors.Is(err, vigil.ErrConflict) {
			t.Fatalf("Publish with a stale prev = %v, want ErrConflict", err)
		}
		err = st.Ledger.Publish(ctx, nil, ledger.Checkpoint{Size: head.Size + 100, Note: []byte("fork"), CreatedAt: 1})
		if !errors.Is(err, vigil.ErrConflict) {
			t.Fatalf("Publish with nil prev over an existing head = %v, want ErrConflict", err)
		}
	})

	t.Run("VerifyWhileGrowing", func(t *testing.T) {
		// An auditor, or the health check, verifies a live ledger: what is appended
		// and published while it reads must never look like tampering.
		done := make(chan error, 1)
		go func() {
			for i := range 400 {
				if _, err := l.Record(ctx, vigil.Event{Type: "test.grow", Actor: "user:t", Body: []byte("grows")}); err != nil {
					done <- err
					return
				}
				if i%3 == 0 {
					if err := l.PublishCheckpoint(ctx); err != nil {
						done <- err
						return
					}
				}
			}
			done <- nil
		}()
		vopts := ledger.VerifyOptions{Origin: opts.Origin, Verifier: opts.Verifier, BodyKey: opts.BodyKey}
		for runs := 0; ; runs++ {
			rep, err := ledger.Verify(ctx, st.Ledger, vopts)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Fatalf("verify #%d of a growing ledger failed: %s", runs+1, rep.Summary())
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				return
			default:
			}
		}
	})

	t.Run("ReopenChecksHead", func(t *testing.T) {
		l.Close()
		l2, err := ledger.Open(ctx, st.Ledger, opts)
		if err != nil {
			t.Fatalf("reopen of an intact ledger: %v", err)
		}
		l2.Close()
		other := LedgerOptions(t)
		if _, err := ledger.Open(ctx, st.Ledger, other); err == nil {
			t.Fatal("Open with a different signing key accepted a head it cannot verify")
		}
	})
}
