package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Attacker is a database administrator going around Vigil: raw SQL through a
// connection of its own. Each driver's tests implement it.
type Attacker interface {
	// Exec runs one statement; placeholders are $1, $2, ….
	Exec(ctx context.Context, query string, args ...any) error
	// DropProtections removes the append-only triggers and the bodies' foreign key,
	// as an attacker would first.
	DropProtections(ctx context.Context) error
}

// tamperLedger is a ledger of 50 events (checkpoints at 11, 22, 33, 44 and 50)
// with its keys, ready to be attacked.
type tamperLedger struct {
	st   Stores
	opts ledger.Options
	ids  []string
}

func newTamperLedger(t *testing.T, open func(t *testing.T) Stores) *tamperLedger {
	t.Helper()
	st := open(t)
	if st.Attacker == nil {
		t.Skip("this driver's tests have no Attacker")
	}
	ctx := context.Background()
	tl := &tamperLedger{st: st, opts: LedgerOptions(t)}
	l, err := ledger.Open(ctx, st.Ledger, tl.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 50 {
		r, err := l.Record(ctx, vigil.Event{Type: "test.event", Actor: "user:t", SessionID: fmt.Sprintf("s%d", i%3), SessionSeq: int64(i/3 + 1),
			Attrs: map[string]string{"i": fmt.Sprint(i)}, Body: []byte(fmt.Sprintf("prompt %d", i))})
		if err != nil {
			t.Fatal(err)
		}
		tl.ids = append(tl.ids, r.ID)
		if (i+1)%11 == 0 {
			if err := l.PublishCheckpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.PublishCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Attacker.DropProtections(ctx); err != nil {
		t.Fatal(err)
	}
	return tl
}

func (tl *tamperLedger) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if err := tl.st.Attacker.Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func (tl *tamperLedger) verify(t *testing.T) *ledger.Report {
	t.Helper()
	rep, err := ledger.Verify(context.Background(), tl.st.Ledger, ledger.VerifyOptions{
		Origin: tl.opts.Origin, Verifier: tl.opts.Verifier, BodyKey: tl.opts.BodyKey})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// entry returns the leaf at idx.
func (tl *tamperLedger) entry(t *testing.T, idx int64) ledger.Entry {
	t.Helper()
	es, err := tl.st.Ledger.Entries(context.Background(), idx, idx+1)
	if err != nil || len(es) != 1 {
		t.Fatalf("entry %d: %v, %v", idx, es, err)
	}
	return es[0]
}

// recompute rewrites every stored hash and the tree state to match the entries as
// they now are: the attacker hiding their edit from the hash check.
func (tl *tamperLedger) recompute(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	es, err := tl.st.Ledger.Entries(ctx, 0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i, e := range es {
		hs, err := tlog.StoredHashes(int64(i), e.Data, r)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	root, err := tlog.TreeHash(int64(len(es)), r)
	if err != nil {
		t.Fatal(err)
	}
	tl.exec(t, `DELETE FROM ledger_hashes`)
	for i, h := range hashes {
		tl.exec(t, `INSERT INTO ledger_hashes (id, h) VALUES ($1, $2)`, int64(i), h[:])
	}
	tl.exec(t, `UPDATE ledger_tree SET size = $1, root = $2 WHERE id = 0`, int64(len(es)), root[:])
}

// shift moves entries and bodies with idx >= from by delta (negative to close a
// gap), in two steps so no primary key collides midway.
func (tl *tamperLedger) shift(t *testing.T, from, delta int64) {
	for _, table := range []string{"ledger_entries", "ledger_bodies"} {
		tl.exec(t, `UPDATE `+table+` SET idx = idx + 1000000 WHERE idx >= $1`, from)
		tl.exec(t, `UPDATE `+table+` SET idx = idx - 1000000 + $1 WHERE idx >= 1000000`, delta)
	}
}

// wantFailure checks the report failed at index (or -1) and checkpoint (or -1) with
// a reason containing phrase.
func wantFailure(t *testing.T, rep *ledger.Report, index, checkpoint int64, phrase string) {
	t.Helper()
	if rep.OK() {
		t.Fatalf("tampering went unnoticed: %s", rep.Summary())
	}
	f := rep.Failure
	if f.Index != index || f.Checkpoint != checkpoint || !strings.Contains(f.Reason, phrase) {
		t.Errorf("failure = %s; want index %d, checkpoint %d and %q", f, index, checkpoint, phrase)
	}
}

// wantOpenRefuses checks that the startup self-check refuses the store with err.
func (tl *tamperLedger) wantOpenRefuses(t *testing.T, want error) {
	t.Helper()
	l, err := ledger.Open(context.Background(), tl.st.Ledger, tl.opts)
	if err == nil {
		l.Close()
		t.Fatalf("Open accepted the tampered store; want %v", want)
	}
	if !errors.Is(err, want) {
		t.Errorf("Open = %v; want %v", err, want)
	}
}

// testLedgerTampering is the adversarial suite at the store level: a database
// administrator changes the ledger's tables, and the verifier (and, where the
// change reaches the signed head, the startup self-check) must say where.
func testLedgerTampering(t *testing.T, open func(t *testing.T) Stores) {
	ctx := context.Background()
	editUser := func(t *testing.T, tl *tamperLedger, idx int64) {
		e := tl.entry(t, idx)
		tl.exec(t, `UPDATE ledger_entries SET data = $1 WHERE idx = $2`, []byte(strings.Replace(string(e.Data), `"user:t"`, `"user:x"`, 1)), idx)
	}

	t.Run("IntactVerifies", func(t *testing.T) {
		tl := newTamperLedger(t, open)
		if rep := tl.verify(t); !rep.OK() || rep.Size != 50 || rep.Checkpoints != 5 || rep.Bodies != 50 {
			t.Errorf("intact ledger: %s", rep.Summary())
		}
	})
	t.Run("EditedEntry", func(t *testing.T) {
		tl := newTamperLedger(t, open)
		editUser(t, tl, 17)
		wantFailure(t, tl.verify(t), 17, -1, "leaf was edited")
	})
	t.Run("EditedEntryAndRecomputedEveryHash", func(t *testing.T) {
		tl := newTamperLedger(t, open)
		editUser(t, tl, 17)
		tl.recompute(t)
		wantFailure(t, tl.verify(t), 11, 22, "changed after it was signed")
		tl.wantOpenRefuses(t, ledger.ErrFork)
	})
	t.Run("DeletedMiddleRow", func(t *testing.T) {
		tl := newTamperLedger(t, open)
		tl.exec(t, `DELETE FROM ledger_bodies WHERE idx = 30`)
		tl.exec(t, `DELETE FROM ledger_entries WHERE idx = 30`)
		wantFailure(t, tl.verify(t), 30, -1, "a row was deleted")
	})
	t.Run("DeletedAndRenumbered", func(t *testing.T) {
		tl := newTamperLedger(t, open)
		tl.exec(t, `DELETE FROM ledger_bodies WHERE idx = 30`)
		tl.exec(t, `DELETE FROM ledger_entries WHERE idx = 30`)
		tl.shift(t, 31, -1)
		tl.recompute(t)
		wantFailure(t, tl.verify(t), 22, 33, "changed after it was signed")
		tl.wantOpenRefuses(t, ledger.ErrBehind)
	})
	t.Run("DeletedAndRenumberedByHand", func(t *testing.T) {
		// As with the sqlite3 tool: the rows after it moved down, the hashes left;
		// the first bad index is the deleted one, not the one now missing at the end.
		tl := newTamperLedger(t, open)
		tl.exec(t, `DELETE FROM ledger_bodies WHERE idx = 30`)
		tl.exec(t, `DELETE FROM ledger_entries WHERE idx = 30`)
		tl.shift(t, 31, -1)
		wantFailure(t, tl.verify(t), 30, -1, "stored hash")
	})
	t.Run("InsertedBackdated", func(t *testing.T) {
		tl := newTamperLedger(t, open)
		env, err := ledger.ParseEnvelope(tl.entry(t, 5).Data)
		if err != nil {
			t.Fatal(err)
		}
		env.ID, env.Body, env.Session, env.Seq = "backdated", nil, "", 0
		data, _ := env.Marshal()
		tl.shift(t, 5, 1)
		tl.exec(t, `INSERT INTO ledger_entries (idx, event_id, data) VALUES ($1, $2, $3)`, int64(5), "backdated", data)
		tl.recompute(t)
		wantFailure(t, tl.verify(t), 0, 11, "changed after it was signed")
		tl.wantOpenRefuses(t, ledger.ErrFork)
	})
	t.Run("TruncatedTail", func(t *testing.T) {
		tl := newTamperLedger(t, open)
		tl.exec(t, `DELETE FROM ledger_bodies WHERE idx >= 40`)
		tl.exec(t, `DELETE FROM ledger_entries WHERE idx >= 40`)
		tl.recompute(t)
		wantFailure(t, tl.verify(t), -1, 44, "truncated")
		tl.wantOpenRefuses(t, ledger.ErrBehind)
	})
	t.Run("ReorderedRows", func(t *testing.T) {
		tl := newTamperLedger(t, open)
		a, b := tl.entry(t, 20), tl.entry(t, 21)
		tl.exec(t, `UPDATE ledger_entries SET data = $1, event_id = $2 WHERE idx = 20`, b.Data, "tmp")
		tl.exec(t, `UPDATE ledger_entries SET data = $1, event_id = $2 WHERE idx = 21`, a.Data, a.EventID)
		tl.exec(t, `UPDATE ledger_entries SET event_id = $1 WHERE idx = 20`, b.EventID)
		wantFailure(t, tl.verify(t), 20, -1, "stored hash")
	})
	t.Run("RewrittenTreeRoot", func(t *testing.T) {
		tl := newTamperLedger(t, open)
		tl.exec(t, `UPDATE ledger_tree SET root = $1 WHERE id = 0`, make([]byte, 32))
		wantFailure(t, tl.verify(t), -1, -1, "tree state was rewritten")
		tl.wantOpenRefuses(t, ledger.ErrFork)
	})
	t.Run("ConflictingCheckpointOfSameSize", func(t *testing.T) {
		// Someone with the signing key signs another tree of the published size
		// (a fork) and swaps it in for the head and its history row.
		tl := newTamperLedger(t, open)
		forged := signForTest(t, tl.opts.Signer, 50, tlog.Hash{1})
		tl.exec(t, `UPDATE ledger_head SET note = $1 WHERE id = 0`, forged)
		tl.exec(t, `UPDATE ledger_checkpoints SET note = $1 WHERE size = 50`, forged)
		wantFailure(t, tl.verify(t), 44, 50, "changed after it was signed")
		tl.wantOpenRefuses(t, ledger.ErrFork)
		// Through the store, a second checkpoint of a published size is refused.
		head, _ := tl.st.Ledger.Head(ctx)
		err := tl.st.Ledger.Publish(ctx, &head, ledger.Checkpoint{Size: 44, Note: forged, CreatedAt: 1})
		if !errors.Is(err, vigil.ErrConflict) {
			t.Errorf("Publish of a second checkpoint of size 44 = %v, want ErrConflict", err)
		}
	})
	t.Run("TamperedCheckpointText", func(t *testing.T) {
		tl := newTamperLedger(t, open)
		cps, _ := tl.st.Ledger.Checkpoints(ctx, 22, 22)
		tl.exec(t, `UPDATE ledger_checkpoints SET note = $1 WHERE size = 22`, []byte(strings.Replace(string(cps[0].Note), "\n22\n", "\n23\n", 1)))
		wantFailure(t, tl.verify(t), -1, 22, "does not verify")
	})
	t.Run("SubstitutedBody", func(t *testing.T) {
		tl := newTamperLedger(t, open)
		tl.exec(t, `UPDATE ledger_bodies SET sealed = (SELECT sealed FROM ledger_bodies WHERE idx = 9) WHERE idx = 8`)
		wantFailure(t, tl.verify(t), 8, -1, "body")
	})
	t.Run("BodyDeletedWithoutErasure", func(t *testing.T) {
		tl := newTamperLedger(t, open)
		tl.exec(t, `DELETE FROM ledger_bodies WHERE idx = 12`)
		wantFailure(t, tl.verify(t), 12, -1, "no erasure was recorded")
	})
	t.Run("ErasedBodyIsWithheldAndVerifies", func(t *testing.T) {
		tl := newTamperLedger(t, open)
		l, err := ledger.Open(ctx, tl.st.Ledger, tl.opts)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		rec, err := l.Erase(ctx, "user:dpo", tl.ids[12], "data subject request")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Erase(ctx, "user:dpo", tl.ids[12], "again"); !errors.Is(err, vigil.ErrNotFound) {
			t.Errorf("second Erase = %v, want ErrNotFound", err)
		}
		rep := tl.verify(t)
		if !rep.OK() || len(rep.Withheld) != 1 || rep.Withheld[0] != (ledger.Withheld{Index: 12, EventID: tl.ids[12], ErasedAt: rec.Index}) {
			t.Errorf("after erasure: %s, withheld %+v; want OK with entry 12 withheld", rep.Summary(), rep.Withheld)
		}
	})
	t.Run("DuplicateIDsInOneBatch", func(t *testing.T) {
		tl := newTamperLedger(t, open)
		l, err := ledger.Open(ctx, tl.st.Ledger, tl.opts)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = l.Record(ctx, vigil.Event{ID: "same-id", Type: "test.dup"})
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, vigil.ErrConflict):
				t.Errorf("Record of a duplicate = %v, want ErrConflict", err)
			}
		}
		if ok != 1 {
			t.Errorf("%d of 8 concurrent Records of one id succeeded, want exactly 1", ok)
		}
		if err := l.PublishCheckpoint(ctx); err != nil {
			t.Fatal(err)
		}
		if rep := tl.verify(t); !rep.OK() {
			t.Errorf("after duplicate attempts: %s", rep.Summary())
		}
	})
}

func signForTest(t *testing.T, s note.Signer, size int64, root tlog.Hash) []byte {
	t.Helper()
	text := fmt.Sprintf("%s\n%d\n%s\n", s.Name(), size, root.String())
	b, err := note.Sign(&note.Note{Text: text}, s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
