package ledger

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	f_log "github.com/transparency-dev/formats/log"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// EventHeartbeat is appended when the log has been idle for HeartbeatInterval, so
// every period has a signed checkpoint and a deleted quiet period shows as a gap.
const EventHeartbeat = "ledger.heartbeat"

// ErrBehind means the store holds fewer entries than a published checkpoint covers:
// it was rolled back, truncated or restored from an old backup. Check with errors.Is.
var ErrBehind = errors.New("ledger store is behind its last published checkpoint")

// ErrFork means the store's tree does not extend a published checkpoint: entries or
// hashes were rewritten. Check with errors.Is.
var ErrFork = errors.New("ledger store is inconsistent with its last published checkpoint")

// ParsedCheckpoint is a verified checkpoint.
type ParsedCheckpoint struct {
	Size int64
	Root tlog.Hash
	Note []byte
}

// ParseCheckpoint verifies a signed checkpoint note against origin and verifier.
//
// Signatures by other keys are ignored (C2SP signed-note: verifiers MUST ignore
// unknown keys), but every signature line claiming the log's key must verify: x/mod's
// note.Open checks only the first per key, and the spec says a note with a bad
// signature from a known key SHOULD be rejected.
func ParseCheckpoint(noteText []byte, origin string, v note.Verifier) (ParsedCheckpoint, error) {
	if err := checkEverySignature(noteText, v); err != nil {
		return ParsedCheckpoint{}, fmt.Errorf("checkpoint does not verify for origin %q: %w", origin, err)
	}
	cp, _, _, err := f_log.ParseCheckpoint(noteText, origin, v)
	if err != nil {
		return ParsedCheckpoint{}, fmt.Errorf("checkpoint does not verify for origin %q: %w", origin, err)
	}
	if len(cp.Hash) != tlog.HashSize {
		return ParsedCheckpoint{}, fmt.Errorf("checkpoint root is %d bytes, want %d", len(cp.Hash), tlog.HashSize)
	}
	if cp.Size > 1<<62 {
		return ParsedCheckpoint{}, errors.New("checkpoint size out of range")
	}
	var root tlog.Hash
	copy(root[:], cp.Hash)
	return ParsedCheckpoint{Size: int64(cp.Size), Root: root, Note: noteText}, nil
}

// checkEverySignature verifies every signature line of msg that names v's key.
func checkEverySignature(msg []byte, v note.Verifier) error {
	split := bytes.LastIndex(msg, []byte("\n\n"))
	if split < 0 {
		return errors.New("malformed note: no signature block")
	}
	text, sigs := msg[:split+1], msg[split+2:]
	for _, line := range bytes.Split(bytes.TrimSuffix(sigs, []byte("\n")), []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("\u2014 "))
		if !ok {
			return errors.New("malformed note: bad signature line")
		}
		name, b64, ok := bytes.Cut(rest, []byte(" "))
		if !ok || string(name) != v.Name() {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(string(b64))
		if err != nil || len(sig) < 5 {
			return errors.New("malformed note: bad signature encoding")
		}
		if binary.BigEndian.Uint32(sig) != v.KeyHash() {
			continue
		}
		if !v.Verify(text, sig[4:]) {
			return fmt.Errorf("a signature by the log's key %s does not verify", v.Name())
		}
	}
	return nil
}

func (l *Log) parse(noteText []byte) (ParsedCheckpoint, error) {
	return ParseCheckpoint(noteText, l.opts.Origin, l.opts.Verifier)
}

func (l *Log) reader(ctx context.Context) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		var miss []int64
		var at []int
		for i, x := range idx {
			if h, ok := l.hashes.get(x); ok {
				out[i] = h
			} else {
				miss = append(miss, x)
				at = append(at, i)
			}
		}
		if len(miss) > 0 {
			got, err := l.store.ReadHashes(ctx, miss)
			if err != nil {
				return nil, err
			}
			for j, i := range at {
				out[i] = got[j]
			}
		}
		return out, nil
	})
}

// checkExtends proves that the tree (size, root) in the store extends cp.
func (l *Log) checkExtends(ctx context.Context, cp ParsedCheckpoint, size int64, root tlog.Hash) error {
	if size < cp.Size {
		return fmt.Errorf("%w: the store has %d entries but checkpoint %d was published; it was rolled back, truncated or restored from a backup", ErrBehind, size, cp.Size)
	}
	if cp.Size == 0 {
		return nil
	}
	r := l.reader(ctx)
	if size == cp.Size {
		if root != cp.Root {
			return fmt.Errorf("%w: the store's root at size %d differs from the signed checkpoint's", ErrFork, size)
		}
		return nil
	}
	p, err := tlog.ProveTree(size, cp.Size, r)
	if err != nil {
		return fmt.Errorf("couldn't build consistency proof %d→%d: %w", cp.Size, size, err)
	}
	if err := tlog.CheckTree(p, size, root, cp.Size, cp.Root); err != nil {
		return fmt.Errorf("%w: the tree of size %d does not extend checkpoint %d: %v", ErrFork, size, cp.Size, err)
	}
	return nil
}

// selfCheck runs at Open: the stored root must match the stored hashes, the head must
// verify, and the store must extend both the head and the mirror's copy.
func (l *Log) selfCheck(ctx context.Context) error {
	size, root, err := l.store.TreeState(ctx)
	if err != nil {
		return fmt.Errorf("couldn't read the ledger's tree state: %w", err)
	}
	if size > 0 {
		th, err := tlog.TreeHash(size, l.reader(ctx))
		if err != nil {
			return fmt.Errorf("couldn't recompute the ledger root at size %d: %w", size, err)
		}
		if th != root {
			return fmt.Errorf("%w: the stored root at size %d does not match the stored hashes", ErrFork, size)
		}
	}
	head, err := l.store.Head(ctx)
	switch {
	case errors.Is(err, vigil.ErrNotFound):
	case err != nil:
		return fmt.Errorf("couldn't read the ledger's last checkpoint: %w", err)
	default:
		cp, err := l.parse(head.Note)
		if err != nil {
			return fmt.Errorf("the ledger's last checkpoint is invalid: %w", err)
		}
		if err := l.checkExtends(ctx, cp, size, root); err != nil {
			return fmt.Errorf("refusing to start: %w", err)
		}
	}
	if l.opts.Mirror != nil {
		m, err := l.opts.Mirror.Latest()
		if err != nil {
			return fmt.Errorf("couldn't read the mirrored checkpoint: %w", err)
		}
		if m != nil {
			cp, err := l.parse(m)
			if err != nil {
				return fmt.Errorf("the mirrored checkpoint is invalid (was the signing key or origin changed?): %w", err)
			}
			if err := l.checkExtends(ctx, cp, size, root); err != nil {
				return fmt.Errorf("refusing to start: the mirrored checkpoint says otherwise: %w", err)
			}
		}
	}
	return nil
}

// Run publishes checkpoints until ctx ends: every CheckpointInterval while the tree
// grows, and a heartbeat event when it has been idle for HeartbeatInterval. A failed
// consistency check stops Run with an error wrapping ErrFork or ErrBehind; the caller
// must treat that as fatal (the store has been tampered with).
func (l *Log) Run(ctx context.Context) error {
	t := time.NewTicker(l.opts.CheckpointInterval)
	defer t.Stop()
	for {
		if err := l.PublishCheckpoint(ctx); err != nil {
			if errors.Is(err, ErrFork) || errors.Is(err, ErrBehind) {
				return err
			}
			if ctx.Err() == nil {
				l.opts.Log.Error("couldn't publish ledger checkpoint", "err", err)
			}
		}
		l.mu.Lock()
		idle := l.opts.Now().Sub(l.lastTime)
		l.mu.Unlock()
		if idle >= l.opts.HeartbeatInterval {
			if _, err := l.Record(ctx, vigil.Event{Type: EventHeartbeat, Actor: "system:ledger"}); err != nil && ctx.Err() == nil {
				l.opts.Log.Error("couldn't append ledger heartbeat", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-l.stop:
			return nil
		case <-t.C:
		}
	}
}

// PublishCheckpoint signs and publishes a checkpoint for the current tree if it has
// grown since the head. It is what Run does each tick; tests and shutdown call it
// directly. When it returns nil, a checkpoint covering at least the tree as it was
// at the call is published, by this replica or another: losing the compare-and-swap
// to another replica is retried (a few times) from the new head, so a replica
// shutting down never leaves its last entries unsigned because another one was
// publishing at the same moment.
func (l *Log) PublishCheckpoint(ctx context.Context) error {
	const attempts = 8
	for i := 1; ; i++ {
		err := l.publishOnce(ctx)
		if !errors.Is(err, vigil.ErrConflict) {
			return err
		}
		if i == attempts {
			return fmt.Errorf("couldn't publish a checkpoint: lost the compare-and-swap %d times in a row: %w", attempts, err)
		}
	}
}

// publishOnce is one attempt of PublishCheckpoint; it returns an error matching
// vigil.ErrConflict when another writer changed the head meanwhile.
func (l *Log) publishOnce(ctx context.Context) error {
	// Read the head before the tree: the tree only grows, so it is at least as big.
	var prev *Checkpoint
	var prevCP ParsedCheckpoint
	head, err := l.store.Head(ctx)
	switch {
	case errors.Is(err, vigil.ErrNotFound):
	case err != nil:
		return fmt.Errorf("couldn't read checkpoint head: %w", err)
	default:
		if prevCP, err = l.parse(head.Note); err != nil {
			return fmt.Errorf("%w: the published head does not verify: %v", ErrFork, err)
		}
		prev = &head
	}
	size, root, err := l.store.TreeState(ctx)
	if err != nil {
		return fmt.Errorf("couldn't read tree state: %w", err)
	}
	if prev != nil && size == prevCP.Size {
		if root != prevCP.Root {
			return fmt.Errorf("%w: root at size %d changed after it was published", ErrFork, size)
		}
		return nil
	}
	if prev == nil && size == 0 {
		return nil
	}
	// Never sign a tree that does not extend what was signed before.
	if err := l.checkExtends(ctx, prevCP, size, root); err != nil {
		return err
	}
	signed, err := signCheckpoint(l.opts.Signer, l.opts.Origin, size, root)
	if err != nil {
		return err
	}
	next := Checkpoint{Size: size, Note: signed, CreatedAt: l.opts.Now().UnixMicro()}
	if err := l.store.Publish(ctx, prev, next); err != nil {
		return fmt.Errorf("couldn't publish checkpoint %d: %w", size, err)
	}
	if l.opts.Mirror != nil {
		if err := l.opts.Mirror.Save(signed); err != nil {
			return fmt.Errorf("couldn't mirror checkpoint %d: %w", size, err)
		}
	}
	return nil
}

// signCheckpoint returns the C2SP tlog-checkpoint note for (size, root).
func signCheckpoint(s note.Signer, origin string, size int64, root tlog.Hash) ([]byte, error) {
	body := f_log.Checkpoint{Origin: origin, Size: uint64(size), Hash: root[:]}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(body)}, s)
	if err != nil {
		return nil, fmt.Errorf("couldn't sign checkpoint: %w", err)
	}
	return signed, nil
}

// Head returns the latest published checkpoint, verified. The last one verified is
// remembered, so serving proofs does not verify the same signature every time.
func (l *Log) Head(ctx context.Context) (ParsedCheckpoint, error) {
	h, err := l.store.Head(ctx)
	if err != nil {
		return ParsedCheckpoint{}, err
	}
	l.mu.Lock()
	last := l.lastHead
	l.mu.Unlock()
	if last.Note != nil && bytes.Equal(last.Note, h.Note) {
		return last, nil
	}
	cp, err := l.parse(h.Note)
	if err != nil {
		return ParsedCheckpoint{}, err
	}
	l.mu.Lock()
	l.lastHead = cp
	l.mu.Unlock()
	return cp, nil
}
