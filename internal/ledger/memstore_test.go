package ledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// memStore is an in-memory Store for the package's own tests; the real drivers
// run the storetest suite. Its fields are exported to the tests so they can play
// the attacker with database access.
type memStore struct {
	mu          sync.Mutex
	entries     map[int64]Entry
	hashes      map[int64]tlog.Hash
	bodies      map[int64]Body
	size        int64
	root        tlog.Hash
	head        *Checkpoint
	checkpoints map[int64]Checkpoint
}

func newMemStore() *memStore {
	return &memStore{
		entries: map[int64]Entry{}, hashes: map[int64]tlog.Hash{}, bodies: map[int64]Body{},
		checkpoints: map[int64]Checkpoint{}, root: tlog.Hash(emptyRoot()),
	}
}

func emptyRoot() tlog.Hash { var b treeBuilder; return b.root() }

type memTx struct{ s *memStore }

func (t memTx) ReadHashes(idx []int64) ([]tlog.Hash, error) { return t.s.readHashes(idx) }

func (t memTx) Existing(ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, e := range t.s.entries {
		if slices.Contains(ids, e.EventID) {
			out[e.EventID] = true
		}
	}
	return out, nil
}

func (s *memStore) readHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		h, ok := s.hashes[x]
		if !ok {
			return nil, fmt.Errorf("stored hash %d is missing", x)
		}
		out[i] = h
	}
	return out, nil
}

func (s *memStore) Sequence(ctx context.Context, fn func(SeqTx, int64, tlog.Hash) (*Batch, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := fn(memTx{s}, s.size, s.root)
	if err != nil || b == nil {
		return err
	}
	for _, h := range b.Hashes {
		s.hashes[h.Index] = h.Hash
	}
	for _, e := range b.Entries {
		s.entries[e.Index] = e
	}
	for _, x := range b.Bodies {
		s.bodies[x.Index] = x
	}
	s.size, s.root = b.Size, b.Root
	return nil
}

func (s *memStore) TreeState(context.Context) (int64, tlog.Hash, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size, s.root, nil
}

func (s *memStore) ReadHashes(_ context.Context, idx []int64) ([]tlog.Hash, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readHashes(idx)
}

func (s *memStore) Entries(_ context.Context, start, end int64) ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Entry
	for _, e := range s.entries {
		if e.Index >= start && e.Index < end {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return int(a.Index - b.Index) })
	return out, nil
}

func (s *memStore) EntryByID(_ context.Context, id string) (Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		if e.EventID == id {
			return e, nil
		}
	}
	return Entry{}, vigil.NotFound("no ledger event %q", id)
}

func (s *memStore) Bodies(_ context.Context, start, end int64) ([]Body, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Body
	for _, b := range s.bodies {
		if b.Index >= start && b.Index < end {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b Body) int { return int(a.Index - b.Index) })
	return out, nil
}

func (s *memStore) DeleteBody(_ context.Context, index int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.bodies[index]; !ok {
		return vigil.NotFound("ledger entry %d has no body", index)
	}
	delete(s.bodies, index)
	return nil
}

func (s *memStore) Head(context.Context) (Checkpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == nil {
		return Checkpoint{}, vigil.NotFound("no checkpoint has been published")
	}
	return *s.head, nil
}

func (s *memStore) Publish(_ context.Context, prev *Checkpoint, next Checkpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if (prev == nil) != (s.head == nil) || prev != nil && !bytes.Equal(prev.Note, s.head.Note) {
		return vigil.Conflict("the checkpoint head changed")
	}
	if _, ok := s.checkpoints[next.Size]; ok {
		return vigil.Conflict("a checkpoint of size %d already exists", next.Size)
	}
	s.checkpoints[next.Size] = next
	s.head = &next
	return nil
}

func (s *memStore) Checkpoints(_ context.Context, from, to int64) ([]Checkpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Checkpoint
	for _, c := range s.checkpoints {
		if c.Size >= from && c.Size <= to {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Checkpoint) int { return int(a.Size - b.Size) })
	return out, nil
}

const testOrigin = "test.vigil.example/ledger"

type testKeys struct {
	signer   note.Signer
	verifier note.Verifier
	vkey     string
	bodyKey  []byte
}

func newTestKeys(t testing.TB, origin string) testKeys {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
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
	k := make([]byte, 32)
	rand.Read(k)
	return testKeys{s, v, vkey, k}
}

func (k testKeys) options() Options {
	return Options{Origin: k.signer.Name(), Signer: k.signer, Verifier: k.verifier, BodyKey: k.bodyKey, CheckpointInterval: time.Hour}
}

func (k testKeys) verifyOptions() VerifyOptions {
	return VerifyOptions{Origin: k.signer.Name(), Verifier: k.verifier, BodyKey: k.bodyKey, ChunkSize: 7}
}

// fill records n events (with bodies, in a few sessions), publishing a checkpoint
// every `every` events and at the end.
func fill(t testing.TB, l *Log, n, every int) []vigil.Receipt {
	t.Helper()
	ctx := context.Background()
	var out []vigil.Receipt
	call := mrand.Uint32() // sessions are per call, so each call's seqs start at 1
	for i := range n {
		r, err := l.Record(ctx, vigil.Event{
			Type: "test.event", Actor: "user:t", SessionID: fmt.Sprintf("%x-s%d", call, i%3), SessionSeq: int64(i/3 + 1),
			Attrs: map[string]string{"i": fmt.Sprint(i)}, Body: []byte(fmt.Sprintf("prompt %d", i)),
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
		if (i+1)%every == 0 {
			if err := l.PublishCheckpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.PublishCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	return out
}

func openMem(t testing.TB, k testKeys) (*memStore, *Log) {
	t.Helper()
	st := newMemStore()
	l, err := Open(context.Background(), st, k.options())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return st, l
}
