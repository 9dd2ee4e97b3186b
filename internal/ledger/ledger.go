// Package ledger is Vigil's tamper-evident log: every prompt, response, tool call,
// decision, approval and configuration change is a leaf of an RFC 6962 Merkle tree
// (SHA-256), kept as golang.org/x/mod/sumdb/tlog stored hashes in the SQL store, with
// C2SP tlog-checkpoint signed notes (Ed25519) over the tree head. An auditor can prove
// offline that nothing was altered, removed, reordered or inserted afterwards.
//
// Appends are group-committed: concurrent Record calls share one transaction, and each
// returns its (id, index) only after that transaction is durable. Indices come from the
// locked tree-state row, so several replicas appending to one PostgreSQL database get
// exactly 0..n-1. A publisher signs a checkpoint every second while the tree grows
// (and appends a heartbeat event when idle, so a deleted quiet period is detectable),
// but only after proving the new head consistent with the last one, and publishes it
// by compare-and-swap so two replicas can never publish a fork.
//
// Leaves hold no personal data: bodies (prompts, arguments) are stored encrypted beside
// the tree and committed to by a salted digest, so one body can be erased while the
// ledger still verifies.
//
// The package does no network or SQL I/O of its own; a Store does the storage.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Defaults for Options.
const (
	DefaultCheckpointInterval = time.Second
	DefaultHeartbeatInterval  = 5 * time.Minute
	DefaultMaxBatch           = 512
)

// Options configure a Log.
type Options struct {
	// Origin names this log in its checkpoints (the first line of the note), e.g.
	// "vigil.example.com/ledger". It MUST equal the signer's key name.
	Origin string
	// Signer signs checkpoints; Verifier checks them (the same key's public half).
	Signer   note.Signer
	Verifier note.Verifier
	// BodyKey is the 32-byte AES-256-GCM key that seals bodies.
	BodyKey []byte
	// CheckpointInterval is how often a checkpoint is published while the tree grows.
	// Default 1s.
	CheckpointInterval time.Duration
	// HeartbeatInterval is how long the log may stay idle before it appends a
	// heartbeat event (and so publishes a new checkpoint). Default 5m.
	HeartbeatInterval time.Duration
	// MaxBatch caps the events committed in one transaction. Default 512.
	MaxBatch int
	// Mirror, if set, keeps a copy of the latest checkpoint outside the store (a file
	// in the data directory, a witness). Open refuses to start when the store is behind
	// it.
	Mirror Mirror
	Log    *slog.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// Mirror keeps the latest published checkpoint somewhere the store's administrator
// cannot roll back together with the store.
type Mirror interface {
	// Latest returns the last checkpoint saved, or nil if none.
	Latest() ([]byte, error)
	// Save records a newly published checkpoint. It MUST be durable when it returns.
	Save(note []byte) error
}

// Log appends events and publishes checkpoints. It is safe for concurrent use.
type Log struct {
	store  Store
	opts   Options
	sealer *sealer
	hashes *hashCache

	mu       sync.Mutex
	lastTime time.Time        // time of the last event appended by this process (for heartbeats)
	lastHead ParsedCheckpoint // the last head Head verified

	// Group commit (see Record). qmu guards queue, leading and closed; idle is
	// signalled (with qmu) when a leader steps down with nothing queued.
	qmu     sync.Mutex
	queue   []*request // waiting for a leader to commit them, oldest first
	leading bool       // a Record caller is committing; queue is empty when it is false
	closed  bool
	idle    *sync.Cond

	stop chan struct{}
	once sync.Once
}

type request struct {
	event vigil.Event
	// data is the canonical envelope and sealed the sealed body (nil without one),
	// made by Record in the caller's goroutine: they do not depend on the index, so
	// the leader only hashes and writes.
	data   []byte
	sealed []byte
	// res gets the outcome, or {lead: true} when the caller must commit the next
	// batch (which begins with its own request). It is buffered: a leader never waits
	// to answer.
	res chan result
}

type result struct {
	receipt vigil.Receipt
	err     error
	lead    bool
}

// Open checks the store against the last published checkpoint (and the mirror). It
// refuses to start when the store is behind a published
// checkpoint (rollback, truncation, restored backup) or its hashes don't match the
// signed head. Run publishes checkpoints; Close stops appends and Run.
func Open(ctx context.Context, store Store, opts Options) (*Log, error) {
	if opts.Origin == "" || opts.Signer == nil || opts.Verifier == nil {
		return nil, errors.New("ledger: origin, signer and verifier are required")
	}
	if opts.Signer.Name() != opts.Origin {
		return nil, fmt.Errorf("ledger: signing key is named %q but the origin is %q; they must match", opts.Signer.Name(), opts.Origin)
	}
	s, err := newSealer(opts.BodyKey)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = DefaultCheckpointInterval
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l := &Log{
		store: store, opts: opts, sealer: s,
		hashes: newHashCache(1 << 16),
		stop:   make(chan struct{}),
	}
	l.idle = sync.NewCond(&l.qmu)
	if err := l.selfCheck(ctx); err != nil {
		return nil, err
	}
	l.lastTime = opts.Now()
	return l, nil
}

// Close stops accepting events and returns once what was queued is committed.
func (l *Log) Close() error {
	l.once.Do(func() { close(l.stop) })
	l.qmu.Lock()
	l.closed = true
	for l.leading {
		l.idle.Wait()
	}
	l.qmu.Unlock()
	return nil
}

// ErrClosed is returned by Record after Close; check with errors.Is.
var ErrClosed = errors.New("ledger is closed")

// Record appends e and returns once it is durable. An empty e.ID gets a UUIDv7; a
// zero e.Time gets now. An ID already in the ledger is refused with an error matching
// vigil.ErrConflict: the ledger never silently drops or duplicates an event.
func (l *Log) Record(ctx context.Context, e vigil.Event) (vigil.Receipt, error) {
	if e.ID == "" {
		e.ID = uuid.Must(uuid.NewV7()).String()
	}
	if e.Time.IsZero() {
		e.Time = l.opts.Now()
	}
	if !validType(e.Type) {
		return vigil.Receipt{}, vigil.Errorf(vigil.EINVALID, "event type %q must be dotted lowercase words such as \"tool.call\"", e.Type)
	}
	if len(e.ID) > 128 {
		return vigil.Receipt{}, vigil.Errorf(vigil.EINVALID, "event id is longer than 128 bytes")
	}
	var ref *BodyRef
	var sealed []byte
	if len(e.Body) > 0 {
		ref, sealed = l.sealer.seal(e.ID, e.Body)
	}
	data, err := envelopeOf(e, ref).Marshal()
	if err != nil {
		return vigil.Receipt{}, vigil.Errorf(vigil.EINVALID, "event cannot be encoded: %v", err)
	}
	if len(data) > MaxEntrySize {
		return vigil.Receipt{}, vigil.Errorf(vigil.EINVALID, "event envelope is %d bytes; the limit is %d (put large content in the body)", len(data), MaxEntrySize)
	}
	if err := ctx.Err(); err != nil {
		return vigil.Receipt{}, err
	}
	req := &request{event: e, data: data, sealed: sealed, res: make(chan result, 1)}
	l.qmu.Lock()
	if l.closed {
		l.qmu.Unlock()
		return vigil.Receipt{}, ErrClosed
	}
	l.queue = append(l.queue, req)
	lead := !l.leading
	l.leading = true
	l.qmu.Unlock()
	// Once queued, the event may be committed even if ctx ends; wait for the outcome
	// so the caller never believes an event was lost when it was not.
	for {
		if lead {
			l.lead()
		}
		r := <-req.res
		if !r.lead {
			return r.receipt, r.err
		}
		lead = true
	}
}

// lead commits the oldest queued requests (up to MaxBatch) in one transaction, in the
// calling goroutine, then passes the lead to the oldest request still queued, or
// steps down when none is.
//
// Group commit used to run on a sequencer goroutine, which cost every Record two
// goroutine handoffs (queue in, receipt out). With two cores and one call at a time
// each handoff woke an idle OS thread (futex), which then spun looking for work, so
// the ledger's handoffs were a large part of the CPU a model call cost at
// concurrency 1 (docs/adr/0010-hot-path.md). Now the first caller commits its own
// event; callers arriving meanwhile queue and are committed together by the next
// leader, one handoff per batch instead of two per event. A leader commits one batch
// only, which begins with its own request (the oldest queued), so batches are
// committed in arrival order and no caller commits for others after its own event
// is durable.
func (l *Log) lead() {
	l.qmu.Lock()
	n := min(len(l.queue), l.opts.MaxBatch)
	batch := make([]*request, n)
	copy(batch, l.queue)
	rest := copy(l.queue, l.queue[n:])
	clear(l.queue[rest:]) // drop the references the backing array would keep
	l.queue = l.queue[:rest]
	l.qmu.Unlock()

	l.commit(batch)

	l.qmu.Lock()
	if len(l.queue) == 0 {
		l.leading = false
		l.idle.Broadcast()
		l.qmu.Unlock()
		return
	}
	next := l.queue[0]
	l.qmu.Unlock()
	next.res <- result{lead: true}
}

// commit sequences one batch and answers every request in it.
func (l *Log) commit(reqs []*request) {
	receipts := make([]result, len(reqs))
	var newHashes []StoredHash
	err := l.store.Sequence(context.Background(), func(tx SeqTx, size int64, root tlog.Hash) (*Batch, error) {
		ids := make([]string, 0, len(reqs))
		for _, r := range reqs {
			ids = append(ids, r.event.ID)
		}
		existing, err := tx.Existing(ids)
		if err != nil {
			return nil, fmt.Errorf("couldn't check for duplicate event ids: %w", err)
		}
		b := &Batch{Size: size}
		pending := map[int64]tlog.Hash{}
		reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			var miss []int64
			for i, x := range idx {
				if h, ok := pending[x]; ok {
					out[i] = h
				} else if h, ok := l.hashes.get(x); ok {
					out[i] = h
				} else {
					miss = append(miss, x)
				}
			}
			if len(miss) == 0 {
				return out, nil
			}
			got, err := tx.ReadHashes(miss)
			if err != nil {
				return nil, err
			}
			m := map[int64]tlog.Hash{}
			for i, x := range miss {
				m[x] = got[i]
			}
			for i, x := range idx {
				if h, ok := m[x]; ok {
					out[i] = h
				}
			}
			return out, nil
		})
		seen := map[string]bool{}
		for i, r := range reqs {
			e := r.event
			if existing[e.ID] || seen[e.ID] {
				receipts[i].err = vigil.Conflict("event %q is already in the ledger", e.ID)
				continue
			}
			data, sealed := r.data, r.sealed
			hs, err := tlog.StoredHashes(b.Size, data, reader)
			if err != nil {
				return nil, fmt.Errorf("couldn't compute stored hashes at %d: %w", b.Size, err)
			}
			base := tlog.StoredHashIndex(0, b.Size)
			for j, h := range hs {
				pending[base+int64(j)] = h
				b.Hashes = append(b.Hashes, StoredHash{Index: base + int64(j), Hash: h})
			}
			b.Entries = append(b.Entries, Entry{Index: b.Size, EventID: e.ID, Data: data})
			if sealed != nil {
				b.Bodies = append(b.Bodies, Body{Index: b.Size, EventID: e.ID, Sealed: sealed})
			}
			seen[e.ID] = true
			receipts[i].receipt = vigil.Receipt{ID: e.ID, Index: b.Size}
			b.Size++
		}
		if len(b.Entries) == 0 {
			return nil, nil
		}
		th, err := tlog.TreeHash(b.Size, reader)
		if err != nil {
			return nil, fmt.Errorf("couldn't compute tree hash at %d: %w", b.Size, err)
		}
		b.Root = th
		newHashes = b.Hashes
		return b, nil
	})
	if err != nil {
		err = fmt.Errorf("couldn't append to the ledger: %w", err)
		l.opts.Log.Error("ledger append failed", "err", err, "events", len(reqs))
	} else {
		// Stored hashes are immutable once committed, so caching them is safe even
		// when other replicas append to the same tree.
		for _, h := range newHashes {
			l.hashes.put(h.Index, h.Hash)
		}
		l.mu.Lock()
		l.lastTime = l.opts.Now()
		l.mu.Unlock()
	}
	for i, r := range reqs {
		res := receipts[i]
		if err != nil {
			res = result{err: err}
		}
		r.res <- res
	}
}

// hashCache keeps recently written stored hashes so appends rarely read the store.
type hashCache struct {
	mu  sync.Mutex
	max int
	m   map[int64]tlog.Hash
}

func newHashCache(max int) *hashCache { return &hashCache{max: max, m: map[int64]tlog.Hash{}} }

func (c *hashCache) get(i int64) (tlog.Hash, bool) {
	c.mu.Lock()
	h, ok := c.m[i]
	c.mu.Unlock()
	return h, ok
}

func (c *hashCache) put(i int64, h tlog.Hash) {
	c.mu.Lock()
	if len(c.m) >= c.max {
		// Drop the oldest half: appends only need the right edge of the tree, which
		// has the highest indices.
		var cut int64 = -1
		for k := range c.m {
			if k > cut {
				cut = k
			}
		}
		cut -= int64(c.max / 2)
		for k := range c.m {
			if k < cut {
				delete(c.m, k)
			}
		}
	}
	c.m[i] = h
	c.mu.Unlock()
}
