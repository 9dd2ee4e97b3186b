package ledger

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Source is what the verifier reads. A Store is a Source, and so is an export
// directory (OpenExport): the verifier checks both the same way and trusts neither.
//
// A Source returns what it holds, including tampered data; it returns an error only
// when it cannot read. Entries and Bodies return rows in index order.
type Source interface {
	// TreeState is the tree size and root the source claims.
	TreeState(ctx context.Context) (size int64, root tlog.Hash, err error)
	// ReadHashes returns the stored hashes (tlog.StoredHashIndex order) the source
	// claims; a missing one is an error.
	ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	// Entries may leave Entry.EventID empty when the source keeps no separate id
	// (an export); when set, it must match the leaf.
	Entries(ctx context.Context, start, end int64) ([]Entry, error)
	// Bodies may return an error matching ErrNoBodies when the source holds none
	// (an export made without --with-bodies).
	Bodies(ctx context.Context, start, end int64) ([]Body, error)
	// Head is the latest checkpoint; vigil.ErrNotFound if none.
	Head(ctx context.Context) (Checkpoint, error)
	Checkpoints(ctx context.Context, from, to int64) ([]Checkpoint, error)
}

var _ Source = Store(nil)

// ErrNoBodies is returned by a Source that holds no bodies at all; the verifier then
// reports bodies as not checked. Check with errors.Is.
var ErrNoBodies = errors.New("this ledger copy holds no bodies")

// Defaults for VerifyOptions.
const (
	DefaultGapFactor = 3
	DefaultChunkSize = 4096
)

// VerifyOptions pin what the verifier trusts: the origin and public key come from
// the auditor, never from the source (a source could otherwise vouch for itself).
type VerifyOptions struct {
	Origin   string
	Verifier note.Verifier
	// BodyKey opens sealed bodies so their digests can be checked. Without it (an
	// auditor holding only the public key) sealed bodies are not checked, and the
	// report says so; bodies opened in an export need no key.
	BodyKey []byte
	// Trusted are checkpoints held outside the source: the data directory's mirror,
	// a witness's copy, an auditor's earlier download. The source must extend each.
	Trusted [][]byte
	// HeartbeatInterval is the deployment's heartbeat (default
	// DefaultHeartbeatInterval); a stretch of more than GapFactor (default 3) times
	// it without any entry is reported as a warning.
	HeartbeatInterval time.Duration
	GapFactor         int
	// ChunkSize is how many entries are read at a time. Default 4096.
	ChunkSize int
	// Workers parse and hash entries in parallel. Default GOMAXPROCS.
	Workers int
}

// Report is what Verify found. Failure is nil when the ledger is intact.
type Report struct {
	Origin string `json:"origin"`
	// Size is the number of entries the ledger claims; Root their recomputed root,
	// 64 hex digits (empty when verification stopped before the end).
	Size int64  `json:"size"`
	Root string `json:"root"`
	// Checkpoints is how many signed checkpoints were verified; Latest is the size
	// of the newest. Unsigned counts entries after it (not yet covered by a
	// signature: normal for at most a checkpoint interval on a live ledger).
	Checkpoints int   `json:"checkpoints"`
	Latest      int64 `json:"latest"`
	Unsigned    int64 `json:"unsigned"`
	Trusted     int   `json:"trusted"`
	Sessions    int   `json:"sessions"`
	// BodiesChecked is false when there was no key (or no bodies) to check them
	// with; Bodies counts bodies whose digest matched.
	BodiesChecked bool       `json:"bodies_checked"`
	Bodies        int        `json:"bodies"`
	Withheld      []Withheld `json:"withheld,omitempty"`
	Warnings      []string   `json:"warnings,omitempty"`
	Failure       *Failure   `json:"failure,omitempty"`
}

// Withheld is an entry whose body was erased by a recorded erasure.
type Withheld struct {
	Index   int64  `json:"index"`
	EventID string `json:"event_id"`
	// ErasedAt is the index of the erasure event.
	ErasedAt int64 `json:"erased_at"`
}

// Failure is the first thing found wrong. Index is the first bad entry (-1 when the
// failure is not about one entry); Checkpoint the size of the bad checkpoint (-1
// when not about one).
type Failure struct {
	Index      int64  `json:"index"`
	Checkpoint int64  `json:"checkpoint"`
	Reason     string `json:"reason"`
}

func (f *Failure) String() string {
	switch {
	case f.Index >= 0 && f.Checkpoint >= 0:
		return fmt.Sprintf("index %d, checkpoint %d: %s", f.Index, f.Checkpoint, f.Reason)
	case f.Index >= 0:
		return fmt.Sprintf("index %d: %s", f.Index, f.Reason)
	case f.Checkpoint >= 0:
		return fmt.Sprintf("checkpoint %d: %s", f.Checkpoint, f.Reason)
	}
	return f.Reason
}

// OK reports whether the ledger verified.
func (r *Report) OK() bool { return r.Failure == nil }

// Summary is a one-line account of the report.
func (r *Report) Summary() string {
	if r.Failure != nil {
		return "ledger FAILED verification at " + r.Failure.String()
	}
	bodies := "bodies not checked"
	if r.BodiesChecked {
		bodies = fmt.Sprintf("%d bodies match their digests, %d withheld (erased)", r.Bodies, len(r.Withheld))
	}
	s := fmt.Sprintf("ledger %s intact: %d entries, %d checkpoints (latest %d, %d entries unsigned), %s",
		r.Origin, r.Size, r.Checkpoints, r.Latest, r.Unsigned, bodies)
	if len(r.Warnings) > 0 {
		s += fmt.Sprintf("; %d warnings", len(r.Warnings))
	}
	return s
}

// failure ends verification; verify returns it as the report's Failure.
type failure struct{ f Failure }

func (f *failure) Error() string { return f.f.String() }

func failAt(index int64, format string, args ...any) error {
	return &failure{Failure{Index: index, Checkpoint: -1, Reason: fmt.Sprintf(format, args...)}}
}

func failCheckpoint(size int64, format string, args ...any) error {
	return &failure{Failure{Index: -1, Checkpoint: size, Reason: fmt.Sprintf(format, args...)}}
}

// Verify checks everything a ledger copy claims, from the leaves up: every leaf is
// a canonical envelope; every stored hash equals the one recomputed from the leaves
// (an edited, inserted, deleted or reordered row is caught and the first bad index
// named); the tree-state root; every checkpoint's signature and origin, that its
// root is the recomputed tree's at its size, and the consistency of every
// consecutive pair; that the latest checkpoint is the head; per-session order;
// that every present body decrypts and matches its digest and every missing one
// was erased by a recorded erasure; and (as warnings) periods without heartbeats.
//
// The returned error is for failures to read; what is wrong with the ledger is
// the report's Failure.
func Verify(ctx context.Context, src Source, opts VerifyOptions) (*Report, error) {
	if opts.Origin == "" || opts.Verifier == nil {
		return nil, errors.New("verify: the origin and the log's public key are required")
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if opts.GapFactor <= 0 {
		opts.GapFactor = DefaultGapFactor
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	v := &verifier{src: src, opts: opts, report: &Report{Origin: opts.Origin}}
	if opts.BodyKey != nil {
		s, err := newSealer(opts.BodyKey)
		if err != nil {
			return nil, fmt.Errorf("couldn't use the body key: %w", err)
		}
		v.sealer = s
	}
	err := v.run(ctx)
	var f *failure
	if errors.As(err, &f) {
		v.report.Failure = &f.f
		return v.report, nil
	}
	if err != nil {
		return nil, err
	}
	return v.report, nil
}

type verifier struct {
	src    Source
	opts   VerifyOptions
	sealer *sealer
	report *Report

	// checks are the checkpoints (published and trusted) by size, each compared to
	// the recomputed root when the stream reaches its size.
	checks []sizeCheck
	// pairs are the published checkpoints, by size; goodSize is the largest
	// checkpoint size whose root has matched the recomputed tree so far.
	pairs    []ParsedCheckpoint
	goodSize int64
	tree     treeBuilder

	bodies    bool  // the source holds bodies
	unchecked int64 // sealed bodies present but not opened (no key)
	seed1     maphash.Seed
	seed2     maphash.Seed
	ids       map[[2]uint64]int64
	sessions  map[string]sessionPos
	missing   []Withheld // bodies absent so far, to match with erasures at the end
	erasures  map[int64]erasure
	lastTime  time.Time
	gap       time.Duration
	lastIndex int64
}

type sizeCheck struct {
	cp      ParsedCheckpoint
	trusted bool
}

type sessionPos struct {
	seq   int64
	index int64
}

type erasure struct {
	eventID string
	at      int64
}

func (v *verifier) run(ctx context.Context) error {
	// A live ledger grows while it is verified, so the reads go in the order that
	// growth can't fool: the checkpoints first (with the head they end at), then the
	// tree state, which is never behind a published checkpoint, then the entries
	// up to that size. What is appended meanwhile is left for the next run.
	if err := v.loadCheckpoints(ctx); err != nil {
		return err
	}
	size, root, err := v.src.TreeState(ctx)
	if err != nil {
		return fmt.Errorf("couldn't read the tree state: %w", err)
	}
	if size < 0 || size > 1<<50 {
		return failAt(-1, "the tree state claims an impossible size %d", size)
	}
	v.report.Size = size
	v.ids = make(map[[2]uint64]int64, min(size, 1<<20))
	v.sessions = map[string]sessionPos{}
	v.erasures = map[int64]erasure{}
	v.seed1, v.seed2 = maphash.MakeSeed(), maphash.MakeSeed()
	v.gap = time.Duration(v.opts.GapFactor) * v.opts.HeartbeatInterval
	v.bodies = true
	if _, err := v.src.Bodies(ctx, 0, 1); errors.Is(err, ErrNoBodies) {
		v.bodies = false
	} else if err != nil {
		return fmt.Errorf("couldn't read bodies: %w", err)
	}
	if err := v.stream(ctx, size); err != nil {
		return err
	}
	got := v.tree.root()
	v.report.Root = hex.EncodeToString(got[:]) // not %x: tlog.Hash formats itself as base64 first
	if got != root {
		return failAt(-1, "the stored tree root at size %d is not the root of the stored entries (the tree state was rewritten)", size)
	}
	extra, err := v.src.Entries(ctx, size, 1<<62)
	if err != nil {
		return fmt.Errorf("couldn't read past the tree: %w", err)
	}
	if len(extra) > 0 {
		// Entries appended since the tree state was read are legitimate: an append
		// commits its entries and the tree state together, so the tree state read
		// now covers every entry read before it that the ledger wrote.
		now, _, err := v.src.TreeState(ctx)
		if err != nil {
			return fmt.Errorf("couldn't read the tree state: %w", err)
		}
		for _, e := range extra {
			if e.Index >= now {
				return failAt(e.Index, "an entry exists beyond the tree's size %d (inserted outside the ledger)", now)
			}
		}
	}
	if before, err := v.src.Entries(ctx, -1<<62, 0); err != nil {
		return fmt.Errorf("couldn't read before the tree: %w", err)
	} else if len(before) > 0 {
		return failAt(before[0].Index, "an entry exists at a negative index (inserted outside the ledger)")
	}
	if err := v.checkPairs(ctx); err != nil {
		return err
	}
	if err := v.checkBodies(ctx, size); err != nil {
		return err
	}
	v.report.Sessions = len(v.sessions)
	v.report.Unsigned = size - v.report.Latest
	return nil
}

// loadCheckpoints verifies every published checkpoint and the trusted ones and
// queues them for comparison with the recomputed tree.
func (v *verifier) loadCheckpoints(ctx context.Context) error {
	cps, head, headErr, err := v.readHistory(ctx)
	if err != nil {
		return err
	}
	var last *Checkpoint
	for i, c := range cps {
		cp, err := ParseCheckpoint(c.Note, v.opts.Origin, v.opts.Verifier)
		if err != nil {
			return failCheckpoint(c.Size, "%v", err)
		}
		if cp.Size != c.Size {
			return failCheckpoint(c.Size, "the note is for size %d but is stored as size %d", cp.Size, c.Size)
		}
		if i > 0 && c.Size <= cps[i-1].Size {
			return failCheckpoint(c.Size, "checkpoints are not in increasing size order (two checkpoints of one size?)")
		}
		v.checks = append(v.checks, sizeCheck{cp: cp})
		v.pairs = append(v.pairs, cp)
		last = &cps[i]
	}
	v.report.Checkpoints = len(cps)
	v.checkpointGaps(cps)
	switch err := headErr; {
	case errors.Is(err, vigil.ErrNotFound):
		if last != nil {
			return failCheckpoint(last.Size, "checkpoints were published but the head is missing")
		}
	case err != nil:
		return fmt.Errorf("couldn't read the head: %w", err)
	default:
		hcp, err := ParseCheckpoint(head.Note, v.opts.Origin, v.opts.Verifier)
		if err != nil {
			return failCheckpoint(head.Size, "the head: %v", err)
		}
		if last == nil || !bytes.Equal(last.Note, head.Note) {
			return failCheckpoint(hcp.Size, "the head is not the latest checkpoint in the history")
		}
		v.report.Latest = hcp.Size
	}
	for _, t := range v.opts.Trusted {
		cp, err := ParseCheckpoint(t, v.opts.Origin, v.opts.Verifier)
		if err != nil {
			return failCheckpoint(-1, "a trusted checkpoint does not verify: %v", err)
		}
		v.checks = append(v.checks, sizeCheck{cp: cp, trusted: true})
		v.report.Trusted++
	}
	slices.SortStableFunc(v.checks, func(a, b sizeCheck) int { return int(a.cp.Size - b.cp.Size) })
	return nil
}

// readHistory reads the checkpoint history and the head as of one moment: the head
// before and after the history must agree, or a checkpoint was published in between
// and the history is read again. headErr is the head's read error (ErrNotFound when
// nothing was published).
func (v *verifier) readHistory(ctx context.Context) (cps []Checkpoint, head Checkpoint, headErr, err error) {
	for attempt := 0; ; attempt++ {
		before, berr := v.src.Head(ctx)
		if berr != nil && !errors.Is(berr, vigil.ErrNotFound) {
			return nil, Checkpoint{}, nil, fmt.Errorf("couldn't read the head: %w", berr)
		}
		if cps, err = v.src.Checkpoints(ctx, 0, 1<<62); err != nil {
			return nil, Checkpoint{}, nil, fmt.Errorf("couldn't read checkpoints: %w", err)
		}
		head, headErr = v.src.Head(ctx)
		if headErr != nil && !errors.Is(headErr, vigil.ErrNotFound) {
			return nil, Checkpoint{}, nil, fmt.Errorf("couldn't read the head: %w", headErr)
		}
		same := (berr == nil) == (headErr == nil) && bytes.Equal(before.Note, head.Note)
		if same || attempt == 9 {
			// After ten tries the head still moves: compare what was read last,
			// which fails only if the history really lacks the head.
			return cps, head, headErr, nil
		}
	}
}

// checkpointGaps warns about stretches without a published checkpoint longer than
// GapFactor heartbeats, by the times the store recorded (not signed, so a hint: the
// signed leaf times are checked too, in checkEntry).
func (v *verifier) checkpointGaps(cps []Checkpoint) {
	gap := time.Duration(v.opts.GapFactor) * v.opts.HeartbeatInterval
	for i := 1; i < len(cps); i++ {
		a, b := cps[i-1].CreatedAt, cps[i].CreatedAt
		if a <= 0 || b <= 0 {
			continue // an export keeps no publication times
		}
		if d := time.Duration(b-a) * time.Microsecond; d > gap {
			v.report.Warnings = append(v.report.Warnings, fmt.Sprintf("no checkpoint was published between %s (size %d) and %s (size %d): %s, more than %d× the heartbeat interval",
				time.UnixMicro(a).UTC().Format(time.RFC3339), cps[i-1].Size, time.UnixMicro(b).UTC().Format(time.RFC3339), cps[i].Size, d.Round(time.Second), v.opts.GapFactor))
		}
	}
}

// chunk is a run of entries on its way through the pipeline.
type chunk struct {
	start, end int64
	entries    []Entry
	hashes     []tlog.Hash
	hashErr    error
	bodies     []Body
	err        error
	parsed     []parsedEntry
}

type parsedEntry struct {
	leaf    tlog.Hash
	err     error
	id      string
	typ     string
	session string
	seq     int64
	time    time.Time
	hasBody bool
	erased  erasure // for erasure events: the erased index in at
	erases  int64   // erased index, -1 if not an erasure
	body    error   // body check result; errBodyMissing when absent
	// bodyChecked: a present body was opened and matched; bodyUnchecked: a sealed
	// body is present but there is no key to open it.
	bodyChecked, bodyUnchecked bool
}

var errBodyMissing = errors.New("missing")

// stream reads the entries in chunks (workers read and parse chunks in parallel)
// and checks them in index order.
func (v *verifier) stream(ctx context.Context, size int64) error {
	if err := v.checkBoundary(0); err != nil { // a checkpoint of the empty tree
		return err
	}
	// Chunks are read and parsed by Workers goroutines, a chunk each, and checked
	// in order here; at most Workers+1 chunks are in flight.
	type future struct {
		c    *chunk
		done chan struct{}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // never leave a worker reading a store the caller may close
	defer cancel()
	jobs := make(chan *future)
	order := make(chan *future, v.opts.Workers+1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		defer close(order)
		for s := int64(0); s < size; s += int64(v.opts.ChunkSize) {
			f := &future{c: &chunk{start: s, end: min(s+int64(v.opts.ChunkSize), size)}, done: make(chan struct{})}
			select {
			case order <- f:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range v.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{lh: newLeafHasher(), dg: newDigester()}
			for f := range jobs {
				v.fetch(ctx, f.c)
				if f.c.err == nil {
					v.parse(w, f.c)
				}
				close(f.done)
			}
		}()
	}
	for f := range order {
		select {
		case <-f.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := v.check(ctx, f.c); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := v.checkBoundary(v.tree.n); err != nil {
		return err
	}
	// Checkpoints beyond the end: the entries they signed are gone.
	if len(v.checks) > 0 {
		c := v.checks[0]
		what := "it"
		if c.trusted {
			what = "a trusted copy of it"
		}
		return failCheckpoint(c.cp.Size, "%s covers %d entries but the ledger holds %d: the ledger was truncated, rolled back or restored from an old copy", what, c.cp.Size, size)
	}
	return nil
}

// fetch reads chunk c's entries, stored hashes and bodies.
func (v *verifier) fetch(ctx context.Context, c *chunk) {
	start, end := c.start, c.end
	c.entries, c.err = v.src.Entries(ctx, start, end)
	if c.err != nil {
		c.err = failAt(start, "couldn't read entries %d to %d: %v", start, end-1, c.err)
		return
	}
	idx := make([]int64, 0, tlog.StoredHashIndex(0, end)-tlog.StoredHashIndex(0, start))
	for i := tlog.StoredHashIndex(0, start); i < tlog.StoredHashIndex(0, end); i++ {
		idx = append(idx, i)
	}
	// Bodies are most of the bytes: read them on a connection of their own while
	// the hashes are read.
	var bodiesErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		if v.bodies {
			c.bodies, bodiesErr = v.src.Bodies(ctx, start, end)
		}
	}()
	c.hashes, c.hashErr = v.src.ReadHashes(ctx, idx)
	<-done
	if bodiesErr != nil {
		c.err = failAt(start, "couldn't read the bodies of entries %d to %d: %v", start, end-1, bodiesErr)
	}
}

// parse checks each entry of c on its own (canonical envelope, leaf hash, body
// digest) with worker w's state.
func (v *verifier) parse(w *worker, c *chunk) {
	c.parsed = make([]parsedEntry, len(c.entries))
	bodyAt := make([]*Body, c.end-c.start) // by index - c.start
	for i := range c.bodies {
		b := &c.bodies[i]
		if b.Index < c.start || b.Index >= c.end {
			continue // not asked for
		}
		if bodyAt[b.Index-c.start] != nil {
			c.err = failAt(b.Index, "two bodies are stored for the entry")
			return
		}
		bodyAt[b.Index-c.start] = b
	}
	for i := range c.entries {
		var b *Body
		if j := c.entries[i].Index - c.start; j >= 0 && j < int64(len(bodyAt)) {
			b = bodyAt[j]
		}
		v.parseOne(w, &c.entries[i], &c.parsed[i], b)
	}
}

// worker is one reading-and-parsing goroutine's reusable state.
type worker struct {
	lh  *leafHasher
	dg  *digester
	buf []byte // decrypted bodies
}

// parseOne checks entry e with the body stored for it (nil if none).
func (v *verifier) parseOne(w *worker, e *Entry, p *parsedEntry, b *Body) {
	p.leaf = w.lh.hash(e.Data)
	p.erases = -1
	env, err := ParseEnvelope(e.Data)
	if err != nil {
		p.err = err
		return
	}
	p.id, p.typ, p.session, p.seq = env.ID, env.Type, env.Session, env.Seq
	p.time, _ = time.Parse(time.RFC3339Nano, env.Time)
	p.hasBody = env.Body != nil
	if env.Type == vigil.EventBodyErased {
		n, err := strconv.ParseInt(env.Attrs[AttrErasedIndex], 10, 64)
		if err != nil || env.Attrs[AttrErasedEvent] == "" {
			p.err = errors.New("erasure event does not name the erased entry")
			return
		}
		p.erases = n
		p.erased = erasure{eventID: env.Attrs[AttrErasedEvent]}
	}
	if !v.bodies {
		return
	}
	switch {
	case b == nil && env.Body != nil:
		p.body = errBodyMissing
	case b != nil && env.Body == nil:
		p.body = errors.New("a body is stored for an entry that commits to none (inserted)")
	case b != nil && b.EventID != env.ID:
		p.body = fmt.Errorf("the body stored for this entry belongs to event %q", b.EventID)
	case b != nil && b.Sealed != nil && v.sealer == nil:
		p.bodyUnchecked = true
	case b != nil:
		p.body = v.checkBody(w, env, b)
		p.bodyChecked = p.body == nil
	}
}

// checkBody opens a body and compares it with the leaf's commitment.
func (v *verifier) checkBody(w *worker, env Envelope, b *Body) error {
	var salt, content []byte
	switch {
	case b.Sealed != nil:
		var err error
		if salt, content, err = v.sealer.openInto(w.buf, env.ID, b.Sealed); err != nil {
			return err
		}
		w.buf = salt[:cap(salt)] // reuse the (possibly grown) buffer next time
	default:
		salt, content = b.Salt, b.Content
	}
	if len(content) != env.Body.Len || !w.dg.matches(salt, content, env.Body.Digest) {
		return errors.New("the body does not match the digest in the leaf (substituted or corrupted)")
	}
	return nil
}

// check runs the in-order checks of a parsed chunk.
func (v *verifier) check(ctx context.Context, c *chunk) error {
	if c.err != nil {
		return c.err
	}
	// A gap is reported after the entries before it are checked, so that the first
	// bad index is named: rows renumbered after a deletion fail at the deletion,
	// not at the end where one row is now missing.
	var gap error
	entries := c.entries
	for i := range entries {
		want := c.start + int64(i)
		if got := entries[i].Index; got != want {
			gap = failAt(want, "entry %d is missing (the next stored entry is %d): a row was deleted", want, got)
			entries = entries[:i]
			break
		}
	}
	if gap == nil && int64(len(entries)) < c.end-c.start {
		missing := c.start + int64(len(entries))
		gap = failAt(missing, "entries from %d to %d are missing: rows were deleted or the tail truncated", missing, c.end-1)
	}
	if c.hashErr != nil {
		if gap != nil {
			return gap
		}
		return v.findBadHashRead(ctx, c)
	}
	var buf [64]tlog.Hash
	base := tlog.StoredHashIndex(0, c.start)
	for i := range entries {
		p := &c.parsed[i]
		idx := c.start + int64(i)
		if p.err != nil {
			return failAt(idx, "%v", p.err)
		}
		if c.entries[i].EventID != "" && c.entries[i].EventID != p.id {
			return failAt(idx, "the event id column says %q but the leaf says %q", c.entries[i].EventID, p.id)
		}
		first := tlog.StoredHashIndex(0, idx)
		want := v.tree.append(p.leaf, buf[:0])
		for j, h := range want {
			if c.hashes[first-base+int64(j)] != h {
				what := "the leaf was edited, or its stored hash rewritten"
				if j > 0 {
					what = "a stored subtree hash was rewritten"
				}
				return failAt(idx, "stored hash %d differs from the one recomputed from the leaves: %s", first+int64(j), what)
			}
		}
		if err := v.checkEntry(idx, p); err != nil {
			return err
		}
		if err := v.checkBoundary(v.tree.n); err != nil {
			return err
		}
	}
	return gap
}

// findBadHashRead narrows a failed chunk read of stored hashes to the first entry
// whose hashes cannot be read.
func (v *verifier) findBadHashRead(ctx context.Context, c *chunk) error {
	for idx := c.start; idx < c.end; idx++ {
		var ids []int64
		for i := tlog.StoredHashIndex(0, idx); i < tlog.StoredHashIndex(0, idx+1); i++ {
			ids = append(ids, i)
		}
		if _, err := v.src.ReadHashes(ctx, ids); err != nil {
			return failAt(idx, "its stored hashes %d to %d cannot be read (deleted?): %v", ids[0], ids[len(ids)-1], err)
		}
	}
	return failAt(c.start, "stored hashes for entries %d to %d cannot be read: %v", c.start, c.end-1, c.hashErr)
}

// checkEntry does the per-entry checks that need the entries before it.
func (v *verifier) checkEntry(idx int64, p *parsedEntry) error {
	key := [2]uint64{maphash.String(v.seed1, p.id), maphash.String(v.seed2, p.id)}
	if prev, dup := v.ids[key]; dup {
		return failAt(idx, "event id %q was already recorded at index %d (duplicated or replayed)", p.id, prev)
	}
	v.ids[key] = idx
	if p.session != "" && p.seq > 0 {
		if prev, ok := v.sessions[p.session]; ok && p.seq <= prev.seq {
			return failAt(idx, "session %q has seq %d after seq %d at index %d: events of the session were reordered or duplicated", p.session, p.seq, prev.seq, prev.index)
		}
		v.sessions[p.session] = sessionPos{seq: p.seq, index: idx}
	} else if p.session != "" {
		if _, ok := v.sessions[p.session]; !ok {
			v.sessions[p.session] = sessionPos{index: idx}
		}
	}
	if p.erases >= 0 {
		if p.erases >= idx {
			return failAt(idx, "erasure names entry %d, which is not before it", p.erases)
		}
		v.erasures[p.erases] = erasure{eventID: p.erased.eventID, at: idx}
	}
	switch {
	case p.body == errBodyMissing:
		v.missing = append(v.missing, Withheld{Index: idx, EventID: p.id})
	case p.body != nil:
		return failAt(idx, "body: %v", p.body)
	case p.bodyChecked:
		v.report.Bodies++
	case p.bodyUnchecked:
		v.unchecked++
	}
	if !p.time.IsZero() {
		if !v.lastTime.IsZero() && p.time.Sub(v.lastTime) > v.gap {
			v.report.Warnings = append(v.report.Warnings, fmt.Sprintf("no entry and no heartbeat between %s (index %d) and %s (index %d): %s, more than %d× the heartbeat interval",
				v.lastTime.Format(time.RFC3339), v.lastIndex, p.time.Format(time.RFC3339), idx, p.time.Sub(v.lastTime).Round(time.Second), v.opts.GapFactor))
		}
		if p.time.After(v.lastTime) {
			v.lastTime, v.lastIndex = p.time, idx
		}
	}
	return nil
}

// checkBoundary compares the recomputed root with every checkpoint of size n.
func (v *verifier) checkBoundary(n int64) error {
	for len(v.checks) > 0 && v.checks[0].cp.Size <= n {
		c := v.checks[0]
		v.checks = v.checks[1:]
		if c.cp.Size < n {
			continue // unreachable: every size from 0 up is checked in turn
		}
		if c.cp.Root != v.tree.root() {
			what := "checkpoint"
			if c.trusted {
				what = "trusted checkpoint"
			}
			return &failure{Failure{Index: v.goodSize, Checkpoint: c.cp.Size,
				Reason: fmt.Sprintf("the signed %s's root is not the root of entries 0 to %d: an entry from %d on was changed after it was signed (and the hashes recomputed to hide it)", what, c.cp.Size-1, v.goodSize)}}
		}
		v.goodSize = c.cp.Size
	}
	return nil
}

// checkPairs proves every consecutive pair of published checkpoints consistent
// with a consistency proof from the (by now verified) stored hashes, as an
// auditor holding only checkpoints would.
func (v *verifier) checkPairs(ctx context.Context) error {
	r := storeReader{ctx, v.src}
	for i := 1; i < len(v.pairs); i++ {
		a, b := v.pairs[i-1], v.pairs[i]
		if a.Size == 0 {
			continue
		}
		p, err := tlog.ProveTree(b.Size, a.Size, r)
		if err != nil {
			return failCheckpoint(b.Size, "couldn't build the consistency proof from checkpoint %d: %v", a.Size, err)
		}
		if err := tlog.CheckTree(p, b.Size, b.Root, a.Size, a.Root); err != nil {
			return failCheckpoint(b.Size, "not consistent with checkpoint %d: %v", a.Size, err)
		}
	}
	return nil
}

// checkBodies matches missing bodies with erasure records.
func (v *verifier) checkBodies(ctx context.Context, size int64) error {
	v.report.BodiesChecked = v.bodies && v.unchecked == 0
	later := false
	for _, m := range v.missing {
		e, ok := v.erasures[m.Index]
		if !ok && !later {
			// On a live ledger the body may have been erased after its entry was
			// read, the erasure appended past the size verified: look there once.
			later = true
			if err := v.laterErasures(ctx, size); err != nil {
				return err
			}
			e, ok = v.erasures[m.Index]
		}
		if !ok {
			return failAt(m.Index, "the body is missing and no erasure was recorded for it (deleted outside the ledger)")
		}
		if e.eventID != m.EventID {
			return failAt(m.Index, "the body is missing; the erasure at %d names event %q, not %q", e.at, e.eventID, m.EventID)
		}
		m.ErasedAt = e.at
		v.report.Withheld = append(v.report.Withheld, m)
	}
	return nil
}

// laterErasures adds the erasures recorded after the first size entries: on a live
// ledger, those made while it was being verified. They are checked in full by the
// next run.
func (v *verifier) laterErasures(ctx context.Context, size int64) error {
	es, err := v.src.Entries(ctx, size, 1<<62)
	if err != nil {
		return fmt.Errorf("couldn't read past the tree: %w", err)
	}
	for _, e := range es {
		env, err := ParseEnvelope(e.Data)
		if err != nil || env.Type != vigil.EventBodyErased {
			continue
		}
		n, err := strconv.ParseInt(env.Attrs[AttrErasedIndex], 10, 64)
		if err != nil || n >= size {
			continue
		}
		if _, ok := v.erasures[n]; !ok {
			v.erasures[n] = erasure{eventID: env.Attrs[AttrErasedEvent], at: e.Index}
		}
	}
	return nil
}
