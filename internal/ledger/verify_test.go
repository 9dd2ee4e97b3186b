package ledger

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/tlog"
)

func TestTreeBuilderMatchesTlog(t *testing.T) {
	var b treeBuilder
	var all []tlog.Hash // every stored hash, by stored index
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = all[x]
		}
		return out, nil
	})
	lh := newLeafHasher()
	for n := int64(0); n < 1100; n++ {
		data := []byte(fmt.Sprintf("leaf %d", n))
		want, err := tlog.StoredHashes(n, data, r)
		if err != nil {
			t.Fatal(err)
		}
		got := b.append(lh.hash(data), nil)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("stored hashes of leaf %d (-tlog +builder):\n%s", n, diff)
		}
		all = append(all, got...)
		wantRoot, err := tlog.TreeHash(n+1, r)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.root(); got != wantRoot {
			t.Fatalf("root at size %d = %x, tlog says %x", n+1, got, wantRoot)
		}
	}
}

func TestTilePath(t *testing.T) {
	for _, tc := range []struct {
		tile tlog.Tile
		want string
	}{
		{tlog.Tile{H: 8, L: 0, N: 0, W: 256}, "tile/0/000"},
		{tlog.Tile{H: 8, L: 1, N: 1234067, W: 256}, "tile/1/x001/x234/067"},
		{tlog.Tile{H: 8, L: 0, N: 5, W: 3}, "tile/0/005.p/3"},
		{tlog.Tile{H: 8, L: -1, N: 1000, W: 255}, "tile/entries/x001/000.p/255"},
	} {
		if got := TilePath(tc.tile); got != tc.want {
			t.Errorf("TilePath(%+v) = %q, want %q", tc.tile, got, tc.want)
		}
		back, err := ParseTilePath(tc.want)
		if err != nil || back != tc.tile {
			t.Errorf("ParseTilePath(%q) = %+v, %v; want %+v", tc.want, back, err, tc.tile)
		}
		// tlog's own path, without the height, is the C2SP one.
		if tc.tile.L >= 0 {
			if p := strings.Replace(tc.tile.Path(), "tile/8/", "tile/", 1); p != tc.want {
				t.Errorf("tlog path %q, C2SP path %q", p, tc.want)
			}
		}
	}
	for _, bad := range []string{"tile/0/5", "tile/0/x000/005", "tile/0/005.p/0", "tile/0/005.p/256", "tile/01/005", "tile/0/005.p/03", "tile/x/005", "tiles/0/005"} {
		if tile, err := ParseTilePath(bad); err == nil && TilePath(tile) != bad {
			t.Errorf("ParseTilePath(%q) accepted a non-canonical path as %+v", bad, tile)
		}
	}
}

func TestVerifyIntactLedger(t *testing.T) {
	k := newTestKeys(t, testOrigin)
	st, l := openMem(t, k)
	rs := fill(t, l, 60, 11)
	ctx := context.Background()
	if _, err := l.Erase(ctx, "user:dpo", rs[4].ID, "data subject request"); err != nil {
		t.Fatal(err)
	}
	if err := l.PublishCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, st, k.verifyOptions())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("intact ledger failed: %s", rep.Summary())
	}
	want := &Report{
		Origin: testOrigin, Size: 61, Root: rep.Root, Checkpoints: 7, Latest: 61, Sessions: 3,
		BodiesChecked: true, Bodies: 60, // 59 events + the erasure's reason
		Withheld: []Withheld{{Index: 4, EventID: rs[4].ID, ErasedAt: 60}},
	}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	_, root, _ := st.TreeState(ctx)
	if want := hex.EncodeToString(root[:]); rep.Root != want || len(rep.Root) != 64 {
		t.Errorf("report root %s, tree root %s", rep.Root, want)
	}

	// Without the body key, bodies are not checked, but a missing body is still
	// matched against erasures.
	o := k.verifyOptions()
	o.BodyKey = nil
	rep, err = Verify(ctx, st, o)
	if err != nil || !rep.OK() || rep.BodiesChecked || len(rep.Withheld) != 1 {
		t.Errorf("verify without body key = %+v, %v; want OK, bodies not checked, 1 withheld", rep, err)
	}
}

func TestErase(t *testing.T) {
	k := newTestKeys(t, testOrigin)
	st, l := openMem(t, k)
	ctx := context.Background()
	rs := fill(t, l, 3, 100)
	noBody, err := l.Record(ctx, vigil.Event{Type: "test.nobody"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := l.Erase(ctx, "user:dpo", rs[1].ID, "asked to")
	if err != nil {
		t.Fatal(err)
	}
	e, err := st.EntryByID(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	env, err := ParseEnvelope(e.Data)
	if err != nil {
		t.Fatal(err)
	}
	if env.Type != vigil.EventBodyErased || env.Actor != "user:dpo" || env.Attrs[AttrErasedEvent] != rs[1].ID || env.Attrs[AttrErasedIndex] != "1" {
		t.Errorf("erasure envelope = %+v", env)
	}
	if strings.Contains(string(e.Data), "asked to") {
		t.Error("the erasure reason is in the leaf; it belongs in the (erasable) body")
	}
	if b, _ := st.Bodies(ctx, 1, 2); len(b) != 0 {
		t.Error("the body is still there after Erase")
	}
	for name, tc := range map[string]struct {
		id   string
		want error
	}{
		"twice":   {rs[1].ID, vigil.ErrNotFound},
		"no body": {noBody.ID, vigil.ErrNotFound},
		"unknown": {"nope", vigil.ErrNotFound},
	} {
		if _, err := l.Erase(ctx, "user:dpo", tc.id, "again"); !errors.Is(err, tc.want) {
			t.Errorf("Erase %s = %v, want %v", name, err, tc.want)
		}
	}
	if _, err := l.Erase(ctx, "", rs[0].ID, "x"); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("Erase without who = %v, want invalid", err)
	}
}

func TestEraseRetryAfterCrashBetweenRecordAndDelete(t *testing.T) {
	k := newTestKeys(t, testOrigin)
	st, l := openMem(t, k)
	ctx := context.Background()
	rs := fill(t, l, 2, 100)
	// The erasure was recorded but the process died before deleting the body.
	if _, err := l.Record(ctx, vigil.Event{ID: erasureID(rs[0].ID), Type: vigil.EventBodyErased, Actor: "user:dpo",
		Attrs: map[string]string{AttrErasedEvent: rs[0].ID, AttrErasedIndex: "0"}, Body: []byte("r")}); err != nil {
		t.Fatal(err)
	}
	rec, err := l.Erase(ctx, "user:dpo", rs[0].ID, "r")
	if err != nil {
		t.Fatalf("retried Erase: %v", err)
	}
	if rec.Index != 2 {
		t.Errorf("retried Erase returned index %d, want the earlier record's 2", rec.Index)
	}
	if size, _, _ := st.TreeState(ctx); size != 3 {
		t.Errorf("tree size %d after retry, want 3 (no second erasure record)", size)
	}
}

// recompute is the attacker with database access who rewrites every stored hash
// and the tree state to match the (tampered) entries.
func recompute(st *memStore) {
	st.mu.Lock()
	defer st.mu.Unlock()
	var b treeBuilder
	lh := newLeafHasher()
	st.hashes = map[int64]tlog.Hash{}
	for i := int64(0); i < int64(len(st.entries)); i++ {
		for j, h := range b.append(lh.hash(st.entries[i].Data), nil) {
			st.hashes[tlog.StoredHashIndex(0, i)+int64(j)] = h
		}
	}
	st.size, st.root = b.n, b.root()
}

func TestVerifyCatchesTampering(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, st *memStore, k testKeys)
		// want is the failure's index and checkpoint, and a phrase of its reason.
		index, checkpoint int64
		reason            string
	}{
		{"EditedEntry", func(t *testing.T, st *memStore, k testKeys) {
			e := st.entries[17]
			e.Data = []byte(strings.Replace(string(e.Data), `"user:t"`, `"user:x"`, 1))
			st.entries[17] = e
		}, 17, -1, "leaf was edited"},
		{"EditedAndRecomputed", func(t *testing.T, st *memStore, k testKeys) {
			e := st.entries[17]
			e.Data = []byte(strings.Replace(string(e.Data), `"user:t"`, `"user:x"`, 1))
			st.entries[17] = e
			recompute(st)
		}, 11, 22, "changed after it was signed"},
		{"DeletedMiddleRow", func(t *testing.T, st *memStore, k testKeys) {
			delete(st.entries, 30)
		}, 30, -1, "a row was deleted"},
		{"DeletedAndRenumbered", func(t *testing.T, st *memStore, k testKeys) {
			// A careful attacker moves the bodies along and fixes the sessions'
			// seqs, so only the signatures can tell.
			for i := int64(30); i < st.size-1; i++ {
				e := st.entries[i+1]
				e.Index = i
				st.entries[i] = e
				b := st.bodies[i+1]
				b.Index = i
				st.bodies[i] = b
			}
			delete(st.entries, st.size-1)
			delete(st.bodies, st.size-1)
			recompute(st)
		}, 22, 33, "changed after it was signed"},
		{"InsertedBackdated", func(t *testing.T, st *memStore, k testKeys) {
			env, _ := ParseEnvelope(st.entries[5].Data)
			env.ID, env.Body, env.Session, env.Seq = "backdated", nil, "", 0
			data, _ := env.Marshal()
			for i := st.size; i > 5; i-- {
				e := st.entries[i-1]
				e.Index = i
				st.entries[i] = e
				if b, ok := st.bodies[i-1]; ok {
					b.Index = i
					st.bodies[i] = b
				}
			}
			delete(st.bodies, 5)
			st.entries[5] = Entry{Index: 5, EventID: "backdated", Data: data}
			recompute(st)
		}, 0, 11, "changed after it was signed"},
		{"AppendedOutsideTheLedger", func(t *testing.T, st *memStore, k testKeys) {
			env, _ := ParseEnvelope(st.entries[5].Data)
			env.ID = "extra"
			data, _ := env.Marshal()
			st.entries[st.size] = Entry{Index: st.size, EventID: "extra", Data: data}
		}, 50, -1, "beyond the tree"},
		{"TruncatedTail", func(t *testing.T, st *memStore, k testKeys) {
			for i := int64(40); i < st.size; i++ {
				delete(st.entries, i)
			}
			recompute(st)
		}, -1, 44, "truncated"},
		{"ReorderedRows", func(t *testing.T, st *memStore, k testKeys) {
			a, b := st.entries[20], st.entries[21]
			a.Index, b.Index = 21, 20
			st.entries[20], st.entries[21] = b, a
		}, 20, -1, "stored hash"},
		{"RewrittenSubtreeHash", func(t *testing.T, st *memStore, k testKeys) {
			st.hashes[tlog.StoredHashIndex(3, 2)] = tlog.Hash{1}
		}, 23, -1, "subtree hash was rewritten"},
		{"DeletedHash", func(t *testing.T, st *memStore, k testKeys) {
			delete(st.hashes, tlog.StoredHashIndex(0, 9))
		}, 9, -1, "cannot be read"},
		{"RewrittenTreeRoot", func(t *testing.T, st *memStore, k testKeys) {
			st.root = tlog.Hash{2}
		}, -1, -1, "tree state was rewritten"},
		{"SubstitutedBody", func(t *testing.T, st *memStore, k testKeys) {
			other := st.bodies[8]
			b := st.bodies[7]
			b.Sealed = other.Sealed
			st.bodies[7] = b
		}, 7, -1, "body"},
		{"BodyDeletedWithoutErasure", func(t *testing.T, st *memStore, k testKeys) {
			delete(st.bodies, 12)
		}, 12, -1, "no erasure was recorded"},
		{"ConflictingCheckpointOfSameSize", func(t *testing.T, st *memStore, k testKeys) {
			// A fork: a properly signed checkpoint of size 33 over other entries
			// replaces the published one.
			c := st.checkpoints[33]
			c.Note = k.sign(t, 33, tlog.Hash{3})
			st.checkpoints[33] = c
		}, 22, 33, "changed after it was signed"},
		{"TamperedCheckpointText", func(t *testing.T, st *memStore, k testKeys) {
			c := st.checkpoints[22]
			c.Note = []byte(strings.Replace(string(c.Note), "\n22\n", "\n21\n", 1))
			st.checkpoints[22] = c
		}, -1, 22, "does not verify"},
		{"HeadNotLatest", func(t *testing.T, st *memStore, k testKeys) {
			h := st.checkpoints[44]
			st.head = &h
		}, -1, 44, "head is not the latest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newTestKeys(t, testOrigin)
			st, l := openMem(t, k)
			fill(t, l, 50, 11) // checkpoints at 11, 22, 33, 44, 50
			l.Close()
			tc.tamper(t, st, k)
			wantVerifyFailure(t, st, k.verifyOptions(), tc.index, tc.checkpoint, tc.reason)
		})
	}
}

func (k testKeys) sign(t testing.TB, size int64, root tlog.Hash) []byte {
	t.Helper()
	b, err := signCheckpoint(k.signer, k.signer.Name(), size, root)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantVerifyFailure verifies st and checks the first failure names index and
// checkpoint (-1 for none) with phrase in its reason.
func wantVerifyFailure(t *testing.T, st Source, o VerifyOptions, index, checkpoint int64, phrase string) {
	t.Helper()
	rep, err := Verify(context.Background(), st, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Fatalf("tampering went unnoticed: %s", rep.Summary())
	}
	if f := rep.Failure; f.Index != index || f.Checkpoint != checkpoint || !strings.Contains(f.Reason, phrase) {
		t.Errorf("failure = %s; want index %d, checkpoint %d, reason with %q", f, index, checkpoint, phrase)
	}
}

func TestVerifySessionOrder(t *testing.T) {
	k := newTestKeys(t, testOrigin)
	st, l := openMem(t, k)
	ctx := context.Background()
	for _, seq := range []int64{1, 2, 4, 3} {
		if _, err := l.Record(ctx, vigil.Event{Type: "test.s", SessionID: "conv-1", SessionSeq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.PublishCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	wantVerifyFailure(t, st, k.verifyOptions(), 3, -1, "reordered")
}

func TestVerifyDuplicateEventID(t *testing.T) {
	// Record refuses a duplicate id (storetest checks that per driver); here an
	// attacker writes one directly and recomputes every hash.
	k := newTestKeys(t, testOrigin)
	st, l := openMem(t, k)
	fill(t, l, 5, 100)
	l.Close()
	env, _ := ParseEnvelope(st.entries[1].Data)
	env.Body = nil
	data, _ := env.Marshal()
	st.entries[5] = Entry{Index: 5, EventID: env.ID, Data: data}
	recompute(st)
	wantVerifyFailure(t, st, k.verifyOptions(), 5, -1, "already recorded at index 1")
}

func TestVerifyHeartbeatGap(t *testing.T) {
	k := newTestKeys(t, testOrigin)
	st, l := openMem(t, k)
	ctx := context.Background()
	base := l.opts.Now()
	for i, d := range []int{0, 1, 2, 60, 61} { // minutes
		if _, err := l.Record(ctx, vigil.Event{Type: "test.t", Time: base.Add(time.Duration(d) * time.Minute), Attrs: map[string]string{"i": fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.PublishCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	o := k.verifyOptions()
	o.HeartbeatInterval = 5 * time.Minute
	rep, err := Verify(ctx, st, o)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "(index 2)") || !strings.Contains(rep.Warnings[0], "(index 3)") {
		t.Errorf("report = %s, warnings %q; want one gap warning between index 2 and 3", rep.Summary(), rep.Warnings)
	}
}

func TestVerifyCheckpointGap(t *testing.T) {
	k := newTestKeys(t, testOrigin)
	st, l := openMem(t, k)
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.opts.Now = func() time.Time { return now }
	for _, step := range []time.Duration{0, time.Minute, time.Hour} {
		now = now.Add(step)
		if _, err := l.Record(ctx, vigil.Event{Type: "test.t"}); err != nil {
			t.Fatal(err)
		}
		if err := l.PublishCheckpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	o := k.verifyOptions()
	o.HeartbeatInterval = 5 * time.Minute
	rep, err := Verify(ctx, st, o)
	if err != nil {
		t.Fatal(err)
	}
	var gaps []string
	for _, w := range rep.Warnings {
		if strings.HasPrefix(w, "no checkpoint") {
			gaps = append(gaps, w)
		}
	}
	if !rep.OK() || len(gaps) != 1 || !strings.Contains(gaps[0], "(size 2) and") {
		t.Errorf("report = %s, warnings %q; want one checkpoint gap after size 2", rep.Summary(), rep.Warnings)
	}
}

func TestVerifyTrustedCheckpoint(t *testing.T) {
	// A restored backup: the store (with its own head) is consistently older than
	// a checkpoint the auditor (or the mirror) holds.
	k := newTestKeys(t, testOrigin)
	st, l := openMem(t, k)
	ctx := context.Background()
	fill(t, l, 10, 100)
	old := cloneMem(st)
	fill(t, l, 5, 100)
	head, _ := st.Head(ctx)
	o := k.verifyOptions()
	o.Trusted = [][]byte{head.Note}
	wantVerifyFailure(t, old, o, -1, 15, "restored")
	if rep, _ := Verify(ctx, st, o); !rep.OK() {
		t.Errorf("the current store fails against its own trusted head: %s", rep.Summary())
	}
}

func cloneMem(st *memStore) *memStore {
	st.mu.Lock()
	defer st.mu.Unlock()
	c := newMemStore()
	for k, v := range st.entries {
		c.entries[k] = v
	}
	for k, v := range st.hashes {
		c.hashes[k] = v
	}
	for k, v := range st.bodies {
		c.bodies[k] = v
	}
	for k, v := range st.checkpoints {
		c.checkpoints[k] = v
	}
	h := *st.head
	c.head, c.size, c.root = &h, st.size, st.root
	return c
}

func TestVerifyRandomSizesAndChunks(t *testing.T) {
	// Chunk boundaries, checkpoint sizes and tree sizes in every combination.
	k := newTestKeys(t, testOrigin)
	ctx := context.Background()
	for _, n := range []int{1, 2, 7, 255, 256, 257, 600} {
		st, l := openMem(t, k)
		fill(t, l, n, 1+rand.IntN(n+1))
		for _, chunk := range []int{1, 3, 256, 5000} {
			o := k.verifyOptions()
			o.ChunkSize = chunk
			rep, err := Verify(ctx, st, o)
			if err != nil || !rep.OK() || rep.Size != int64(n) {
				t.Fatalf("n=%d chunk=%d: %+v, %v", n, chunk, rep, err)
			}
		}
	}
}

// eraseOnFirstRead is a Source that erases a body the first time bodies are read:
// an erasure made while a live ledger is being verified, recorded past the size the
// verifier read.
type eraseOnFirstRead struct {
	Source
	once  sync.Once
	erase func()
}

func (s *eraseOnFirstRead) Bodies(ctx context.Context, start, end int64) ([]Body, error) {
	s.once.Do(s.erase)
	return s.Source.Bodies(ctx, start, end)
}

func TestVerifyWhileABodyIsErased(t *testing.T) {
	k := newTestKeys(t, testOrigin)
	st, l := openMem(t, k)
	rs := fill(t, l, 20, 5)
	ctx := context.Background()
	src := &eraseOnFirstRead{Source: st, erase: func() {
		if _, err := l.Erase(ctx, "user:dpo", rs[4].ID, "data subject request"); err != nil {
			t.Error(err)
		}
	}}
	rep, err := Verify(ctx, src, k.verifyOptions())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Size != 20 || len(rep.Withheld) != 1 || rep.Withheld[0].Index != 4 || rep.Withheld[0].ErasedAt != 20 {
		t.Errorf("verify during an erasure: %s (withheld %+v)", rep.Summary(), rep.Withheld)
	}
}
