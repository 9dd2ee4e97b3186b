package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Attributes of an erasure event (vigil.EventBodyErased). They name the entry, never
// its content; the reason, which may itself be personal, is the erasure's body.
const (
	AttrErasedEvent = "erased_event"
	AttrErasedIndex = "erased_index"
)

// erasureID is the event id of the erasure of eventID. It is derived, not random,
// so a retried Erase after a crash between recording and deleting finds its own
// earlier record instead of writing a second one.
func erasureID(eventID string) string {
	sum := sha256.Sum256([]byte(eventID))
	return "erasure-" + hex.EncodeToString(sum[:16])
}

// Erase crypto-shreds the body of event eventID: it records an erasure event (by
// whom, which entry; the reason as the erasure's own body) and then deletes the
// sealed body. The entry stays in the tree, so the ledger still verifies and the
// verifier reports the body as withheld. An event with no body, or whose body is
// already erased, is refused with vigil.ErrNotFound; an unknown event too.
//
// The erasure is recorded before the body is deleted: a crash in between leaves a
// body with an erasure record (the verifier warns, and calling Erase again finishes
// the job), never a missing body without one (which the verifier calls tampering).
func (l *Log) Erase(ctx context.Context, by, eventID, reason string) (vigil.Receipt, error) {
	if by == "" {
		return vigil.Receipt{}, vigil.Errorf(vigil.EINVALID, "an erasure must say who asked for it")
	}
	if reason == "" {
		return vigil.Receipt{}, vigil.Errorf(vigil.EINVALID, "an erasure must give a reason")
	}
	e, err := l.store.EntryByID(ctx, eventID)
	if err != nil {
		return vigil.Receipt{}, err
	}
	env, err := ParseEnvelope(e.Data)
	if err != nil {
		return vigil.Receipt{}, fmt.Errorf("couldn't read entry %d: %w", e.Index, err)
	}
	if env.Type == vigil.EventBodyErased {
		return vigil.Receipt{}, vigil.Errorf(vigil.EINVALID, "event %q is itself an erasure; erasure records are kept", eventID)
	}
	if env.Body == nil {
		return vigil.Receipt{}, vigil.NotFound("event %q has no body to erase", eventID)
	}
	bodies, err := l.store.Bodies(ctx, e.Index, e.Index+1)
	if err != nil {
		return vigil.Receipt{}, fmt.Errorf("couldn't read the body of entry %d: %w", e.Index, err)
	}
	if len(bodies) == 0 {
		return vigil.Receipt{}, vigil.NotFound("the body of event %q has already been erased", eventID)
	}
	rec, err := l.Record(ctx, vigil.Event{
		ID:    erasureID(eventID),
		Type:  vigil.EventBodyErased,
		Actor: by,
		Attrs: map[string]string{AttrErasedEvent: eventID, AttrErasedIndex: strconv.FormatInt(e.Index, 10)},
		Body:  []byte(reason),
	})
	if errors.Is(err, vigil.ErrConflict) {
		// Recorded by an earlier attempt that did not get to delete the body.
		prev, err := l.store.EntryByID(ctx, erasureID(eventID))
		if err != nil {
			return vigil.Receipt{}, fmt.Errorf("couldn't read the earlier erasure record: %w", err)
		}
		rec = vigil.Receipt{ID: prev.EventID, Index: prev.Index}
	} else if err != nil {
		return vigil.Receipt{}, fmt.Errorf("couldn't record the erasure: %w", err)
	}
	if err := l.store.DeleteBody(ctx, e.Index); err != nil {
		return vigil.Receipt{}, fmt.Errorf("couldn't delete the body of entry %d (the erasure is recorded; retry): %w", e.Index, err)
	}
	return rec, nil
}
