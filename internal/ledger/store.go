package ledger

import (
	"context"

	"golang.org/x/mod/sumdb/tlog"
)

// Entry is one leaf of the tree: the canonical envelope bytes at an index.
type Entry struct {
	Index   int64
	EventID string
	// Data is the canonical envelope (see Envelope); the leaf hash is tlog.RecordHash(Data).
	Data []byte
}

// Body is the encrypted, erasable content committed to by an entry's body digest.
type Body struct {
	Index   int64
	EventID string
	// Sealed is nonce || AES-256-GCM(salt || body), with the event id as additional data.
	Sealed []byte
	// Salt and Content are set instead of Sealed when the body comes opened (from an
	// export made with bodies, for an auditor who does not hold the body key).
	Salt, Content []byte
}

// StoredHash is one of the x/mod/sumdb/tlog stored hashes (leaf and completed subtree
// hashes in tlog.StoredHashIndex order).
type StoredHash struct {
	Index int64
	Hash  tlog.Hash
}

// Checkpoint is a signed tree head as stored: the C2SP tlog-checkpoint note.
type Checkpoint struct {
	Size int64
	// Note is the signed note text, exactly as signed.
	Note []byte
	// CreatedAt is when it was published, in UTC microseconds since the epoch.
	CreatedAt int64
}

// Batch is what one sequencing transaction writes.
type Batch struct {
	Entries []Entry
	Hashes  []StoredHash
	Bodies  []Body
	// Size and Root are the tree state after the batch.
	Size int64
	Root tlog.Hash
}

// SeqTx is the view of the store inside a sequencing transaction.
type SeqTx interface {
	tlog.HashReader
	// Existing returns which of ids are already in the ledger.
	Existing(ids []string) (map[string]bool, error)
}

// Store keeps the tree. Drivers implement it; package ledger does the hashing and
// signing, so a driver never has to understand a Merkle tree.
//
// Implementations MUST be safe for concurrent use, including by other processes
// sharing the same database: Sequence is the only writer of entries and hashes and
// MUST serialise on the tree-state row (SELECT … FOR UPDATE, or SQLite's write lock),
// never on a SERIAL/sequence, so indices are exactly 0..n-1 with no gaps.
type Store interface {
	// Sequence runs fn inside one transaction that holds the tree-state lock. size and
	// root are the current tree state (0 and the empty-tree hash for a new ledger).
	// If fn returns a batch, the store writes its entries, bodies and hashes, sets the
	// tree state to (batch.Size, batch.Root) and commits; Sequence returns nil only
	// once the commit is durable. If fn returns a nil batch, nothing is written.
	Sequence(ctx context.Context, fn func(tx SeqTx, size int64, root tlog.Hash) (*Batch, error)) error

	// TreeState returns the committed tree size and root.
	TreeState(ctx context.Context) (size int64, root tlog.Hash, err error)
	// ReadHashes returns the stored hashes at indexes, in order. A missing hash is an
	// error.
	ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	// Entries returns the entries with start <= index < end, in index order.
	Entries(ctx context.Context, start, end int64) ([]Entry, error)
	// EntryByID returns the entry of an event; vigil.ErrNotFound if none.
	EntryByID(ctx context.Context, eventID string) (Entry, error)
	// Bodies returns the bodies stored for indexes in [start, end), in index order;
	// erased or never-written bodies are simply absent.
	Bodies(ctx context.Context, start, end int64) ([]Body, error)
	// DeleteBody erases the body of the entry at index (crypto-shredding: the key
	// material goes with it). vigil.ErrNotFound if there is none.
	DeleteBody(ctx context.Context, index int64) error

	// Head returns the latest published checkpoint; vigil.ErrNotFound if none.
	Head(ctx context.Context) (Checkpoint, error)
	// Publish stores next and makes it the head, atomically, only if the head is still
	// prev (nil: no head yet). It returns an error matching vigil.ErrConflict when
	// another writer published first: compare-and-swap, so two replicas can never
	// publish a fork.
	Publish(ctx context.Context, prev *Checkpoint, next Checkpoint) error
	// Checkpoints returns every published checkpoint with from <= size <= to, by size.
	Checkpoints(ctx context.Context, from, to int64) ([]Checkpoint, error)
}
