package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// MirrorFile is the name of the checkpoint mirror in a data directory: a copy of the
// latest published checkpoint kept outside the database, so that restoring an old
// copy of the database (whose own head is old too) is still caught.
const MirrorFile = "ledger.checkpoint"

// FileMirror is a Mirror that keeps the latest checkpoint in one file, replaced
// atomically (write, fsync, rename, fsync the directory).
type FileMirror struct{ Path string }

var _ Mirror = FileMirror{}

// Latest returns the mirrored checkpoint, or nil when the file does not exist.
func (m FileMirror) Latest() ([]byte, error) {
	b, err := os.ReadFile(m.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read checkpoint mirror: %w", err)
	}
	return b, nil
}

// Save replaces the mirrored checkpoint; it is durable when Save returns.
func (m FileMirror) Save(note []byte) error {
	if err := writeFileDurably(m.Path, note); err != nil {
		return fmt.Errorf("couldn't write checkpoint mirror: %w", err)
	}
	return nil
}

// writeFileDurably writes data to path through a temporary file and a rename, with
// fsyncs so that either the old or the new content survives a crash.
func writeFileDurably(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
