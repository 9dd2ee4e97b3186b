package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	f_proof "github.com/transparency-dev/formats/proof"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Inclusion is an entry with its proof of inclusion in a signed checkpoint.
type Inclusion struct {
	Entry      Entry
	Checkpoint ParsedCheckpoint
	// Proof is the RFC 6962 audit path from the entry's leaf to the checkpoint's root.
	Proof tlog.RecordProof
}

// TLogProof returns the inclusion as a C2SP tlog-proof (c2sp.org/tlog-proof@v1): an
// offline, self-contained piece of evidence an auditor checks with CheckTLogProof.
func (in Inclusion) TLogProof() []byte {
	p := f_proof.TLogProof{Index: uint64(in.Entry.Index), Checkpoint: in.Checkpoint.Note}
	for _, h := range in.Proof {
		p.Hashes = append(p.Hashes, h)
	}
	return p.Marshal()
}

// CheckTLogProof verifies a C2SP tlog-proof for entry data against the log's
// origin and key. It returns the verified checkpoint and the entry's index.
func CheckTLogProof(proof, data []byte, origin string, v note.Verifier) (ParsedCheckpoint, int64, error) {
	var p f_proof.TLogProof
	if err := p.Unmarshal(proof); err != nil {
		return ParsedCheckpoint{}, 0, fmt.Errorf("couldn't parse tlog-proof: %w", err)
	}
	cp, err := ParseCheckpoint(p.Checkpoint, origin, v)
	if err != nil {
		return ParsedCheckpoint{}, 0, err
	}
	if p.Index >= uint64(cp.Size) {
		return ParsedCheckpoint{}, 0, fmt.Errorf("proof index %d is outside the checkpoint's tree of size %d", p.Index, cp.Size)
	}
	rp := make(tlog.RecordProof, len(p.Hashes))
	for i, h := range p.Hashes {
		rp[i] = h
	}
	if err := tlog.CheckRecord(rp, cp.Size, cp.Root, int64(p.Index), tlog.RecordHash(data)); err != nil {
		return ParsedCheckpoint{}, 0, fmt.Errorf("entry %d is not in checkpoint %d: %w", p.Index, cp.Size, err)
	}
	return cp, int64(p.Index), nil
}

// Prove returns the entry of event id and its inclusion proof against the latest
// published checkpoint. An event appended after that checkpoint is not provable
// yet: the error matches vigil.ErrNotFound and says to retry after the next
// checkpoint (at most CheckpointInterval away).
func (l *Log) Prove(ctx context.Context, id string) (Inclusion, error) {
	e, err := l.store.EntryByID(ctx, id)
	if err != nil {
		return Inclusion{}, err
	}
	cp, err := l.Head(ctx)
	if errors.Is(err, vigil.ErrNotFound) {
		return Inclusion{}, vigil.NotFound("event %q is recorded but no checkpoint has been published yet; retry in a second", id)
	}
	if err != nil {
		return Inclusion{}, err
	}
	if e.Index >= cp.Size {
		return Inclusion{Entry: e}, vigil.NotFound("event %q (index %d) is recorded but not yet covered by a checkpoint; retry in a second", id, e.Index)
	}
	p, err := tlog.ProveRecord(cp.Size, e.Index, l.reader(ctx))
	if err != nil {
		return Inclusion{}, fmt.Errorf("couldn't prove entry %d in checkpoint %d: %w", e.Index, cp.Size, err)
	}
	// Never hand out a proof that does not check: it would mean the store no longer
	// matches what was signed.
	if err := tlog.CheckRecord(p, cp.Size, cp.Root, e.Index, tlog.RecordHash(e.Data)); err != nil {
		return Inclusion{}, fmt.Errorf("%w: entry %d does not prove against checkpoint %d: %v", ErrFork, e.Index, cp.Size, err)
	}
	return Inclusion{Entry: e, Checkpoint: cp, Proof: p}, nil
}

// Consistency is a proof that the checkpoint Old is a prefix of New.
type Consistency struct {
	Old, New ParsedCheckpoint
	Proof    tlog.TreeProof
}

// Consistency proves that the published checkpoint of size from is a prefix of
// the published checkpoint of size to. Both must have been published (every
// checkpoint is kept); vigil.ErrNotFound otherwise.
func (l *Log) Consistency(ctx context.Context, from, to int64) (Consistency, error) {
	if from < 1 || to < from {
		return Consistency{}, vigil.Errorf(vigil.EINVALID, "want 1 <= from <= to, got from=%d to=%d", from, to)
	}
	old, err := l.checkpointAt(ctx, from)
	if err != nil {
		return Consistency{}, err
	}
	nw, err := l.checkpointAt(ctx, to)
	if err != nil {
		return Consistency{}, err
	}
	p, err := tlog.ProveTree(to, from, l.reader(ctx))
	if err != nil {
		return Consistency{}, fmt.Errorf("couldn't prove %d→%d: %w", from, to, err)
	}
	if err := tlog.CheckTree(p, to, nw.Root, from, old.Root); err != nil {
		return Consistency{}, fmt.Errorf("%w: checkpoints %d and %d are not consistent: %v", ErrFork, from, to, err)
	}
	return Consistency{Old: old, New: nw, Proof: p}, nil
}

func (l *Log) checkpointAt(ctx context.Context, size int64) (ParsedCheckpoint, error) {
	cps, err := l.store.Checkpoints(ctx, size, size)
	if err != nil {
		return ParsedCheckpoint{}, err
	}
	if len(cps) != 1 {
		return ParsedCheckpoint{}, vigil.NotFound("no checkpoint of size %d was published", size)
	}
	return l.parse(cps[0].Note)
}

// Tile returns hash tile t (t.L >= 0) or entry bundle t (t.L == -1) of the latest
// published checkpoint, in C2SP tlog-tiles format. A tile beyond that checkpoint is
// vigil.ErrNotFound.
func (l *Log) Tile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	cp, err := l.Head(ctx)
	if errors.Is(err, vigil.ErrNotFound) {
		return nil, vigil.NotFound("no checkpoint has been published yet")
	}
	if err != nil {
		return nil, err
	}
	if !tileFits(t, cp.Size) {
		return nil, vigil.NotFound("tile %s is not in the tree of size %d", TilePath(t), cp.Size)
	}
	if t.L >= 0 {
		return TileData(t, l.reader(ctx))
	}
	start := t.N * TileWidth
	entries, err := l.store.Entries(ctx, start, start+int64(t.W))
	if err != nil {
		return nil, err
	}
	if len(entries) != t.W {
		return nil, fmt.Errorf("couldn't read bundle %s: %d of %d entries", TilePath(t), len(entries), t.W)
	}
	return AppendBundle(nil, entries)
}

// Checkpoint returns the latest published checkpoint note, as signed.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	h, err := l.store.Head(ctx)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(h.Note), nil
}
