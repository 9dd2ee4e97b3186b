package ledger

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/tlog"
)

// gatedStore is a memStore whose next Sequence waits until release is closed, after
// saying so on entered; it counts the events each Sequence call committed, and fails
// every Sequence while fail is set.
type gatedStore struct {
	*memStore
	entered chan struct{}
	release chan struct{}

	mu      sync.Mutex
	passed  bool // the gated Sequence has begun
	batches []int
	fail    error
}

func newGatedStore() *gatedStore {
	return &gatedStore{memStore: newMemStore(), entered: make(chan struct{}), release: make(chan struct{})}
}

func (s *gatedStore) Sequence(ctx context.Context, fn func(SeqTx, int64, tlog.Hash) (*Batch, error)) error {
	s.mu.Lock()
	gated := !s.passed
	s.passed = true
	s.mu.Unlock()
	if gated {
		close(s.entered)
		<-s.release
	}
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		return fail
	}
	n := 0
	err := s.memStore.Sequence(ctx, func(tx SeqTx, size int64, root tlog.Hash) (*Batch, error) {
		b, err := fn(tx, size, root)
		if b != nil {
			n = len(b.Entries)
		}
		return b, err
	})
	s.mu.Lock()
	s.batches = append(s.batches, n)
	s.mu.Unlock()
	return err
}

// queued is how many requests wait for a leader.
func (l *Log) queued() int {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	return len(l.queue)
}

// recordBlocked starts a Record of event "first", which leads and blocks in the store
// until st.release is closed; its error arrives on the channel returned.
func recordBlocked(l *Log, st *gatedStore) <-chan error {
	first := make(chan error, 1)
	go func() {
		_, err := l.Record(context.Background(), vigil.Event{ID: "first", Type: "test.event"})
		first <- err
	}()
	<-st.entered
	return first
}

// recordAll starts n Records of events id-0 … id-(n-1), one goroutine each, in that
// order: each is queued before the next starts (the leader is blocked in the store).
func recordAll(t *testing.T, l *Log, n int) (wait func() []error) {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = l.Record(context.Background(), vigil.Event{ID: fmt.Sprintf("id-%d", i), Type: "test.event"})
		}()
		for l.queued() != i+1 {
			runtime.Gosched()
		}
	}
	return func() []error { wg.Wait(); return errs }
}

func TestGroupCommitBatchesWaitingRecordsInOrder(t *testing.T) {
	st, l := openGated(t, 4)
	defer l.Close()

	// The first Record leads and blocks in the store; ten more queue behind it.
	first := recordBlocked(l, st)
	wait := recordAll(t, l, 10)
	close(st.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, err := range wait() {
		if err != nil {
			t.Errorf("Record id-%d: %v", i, err)
		}
	}
	// One transaction for the first event, then the ten in batches of at most four,
	// oldest first: indices follow arrival order.
	st.mu.Lock()
	batches := fmt.Sprint(st.batches)
	st.mu.Unlock()
	if got, want := batches, "[1 4 4 2]"; got != want {
		t.Errorf("events per transaction = %s, want %s", got, want)
	}
	for i := range 10 {
		e, err := st.EntryByID(context.Background(), fmt.Sprintf("id-%d", i))
		if err != nil || e.Index != int64(i+1) {
			t.Errorf("id-%d at %d (%v), want index %d", i, e.Index, err, i+1)
		}
	}
	l.qmu.Lock()
	queued, leading := len(l.queue), l.leading
	l.qmu.Unlock()
	if queued != 0 || leading {
		t.Errorf("after the load: %d queued, leading %v; want none", queued, leading)
	}
}

// openGated opens a Log over a new gatedStore; the test closes it.
func openGated(t *testing.T, maxBatch int) (*gatedStore, *Log) {
	t.Helper()
	opts := newTestKeys(t, "test.example/groupcommit").options()
	opts.MaxBatch = maxBatch
	st := newGatedStore()
	l, err := Open(context.Background(), st, opts)
	if err != nil {
		t.Fatal(err)
	}
	return st, l
}

func TestGroupCommitFailureAnswersTheWholeBatch(t *testing.T) {
	st, l := openGated(t, 0)
	defer l.Close()
	st.mu.Lock()
	st.fail = errors.New("disk on fire")
	st.mu.Unlock()

	first := recordBlocked(l, st)
	wait := recordAll(t, l, 3)
	close(st.release)
	if err := <-first; err == nil {
		t.Error("Record succeeded although the store failed")
	}
	for i, err := range wait() {
		if err == nil {
			t.Errorf("Record id-%d succeeded although the store failed", i)
		}
	}
	// The failure does not stick: the next Record leads again and commits.
	st.mu.Lock()
	st.fail = nil
	st.mu.Unlock()
	if _, err := l.Record(context.Background(), vigil.Event{ID: "after", Type: "test.event"}); err != nil {
		t.Fatalf("Record after the failure: %v", err)
	}
}

func TestCloseCommitsWhatIsQueued(t *testing.T) {
	st, l := openGated(t, 0)
	first := recordBlocked(l, st)
	wait := recordAll(t, l, 5)
	closed := make(chan struct{})
	go func() { l.Close(); close(closed) }()
	// Close must not return while events it accepted are not committed; the leader
	// is blocked in the store, so it cannot have returned yet.
	for {
		l.qmu.Lock()
		c := l.closed
		l.qmu.Unlock()
		if c {
			break
		}
		runtime.Gosched()
	}
	select {
	case <-closed:
		t.Fatal("Close returned while queued events were not committed")
	default:
	}
	if _, err := l.Record(context.Background(), vigil.Event{Type: "test.event"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Record after Close = %v, want ErrClosed", err)
	}
	close(st.release)
	<-closed
	if err := <-first; err != nil {
		t.Error(err)
	}
	for i, err := range wait() {
		if err != nil {
			t.Errorf("Record id-%d queued before Close: %v", i, err)
		}
	}
	if size, _, _ := st.TreeState(context.Background()); size != 6 {
		t.Errorf("tree size %d after Close, want 6", size)
	}
}
