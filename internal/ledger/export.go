package ledger

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	f_log "github.com/transparency-dev/formats/log"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/tlog"
)

// Files of an export directory besides the C2SP tlog-tiles ones (checkpoint,
// tile/<L>/<N>, tile/entries/<N>).
const (
	// ExportPublicKey holds the log's note verifier key (no trailing newline, as
	// Tessera's fsck --public_key wants it).
	ExportPublicKey = "ledger.pub"
	// ExportCheckpoints is the directory of every published checkpoint, one file
	// per size.
	ExportCheckpoints = "checkpoints"
	// ExportBodies is the directory of opened bodies (only with WithBodies): one
	// JSON Lines file per entry bundle, bodies/<N>.jsonl, each line an exportBody.
	ExportBodies = "bodies"
)

// ExportOptions configure Export.
type ExportOptions struct {
	// PublicKey is the log's note verifier key, written to ledger.pub.
	PublicKey string
	// WithBodies writes every present body opened (salt and content), so an
	// auditor without the body key can check digests. It needs BodyKey. The export
	// then holds personal data: handle it as such.
	WithBodies bool
	BodyKey    []byte
}

// ExportResult says what Export wrote.
type ExportResult struct {
	Size        int64 // entries (the latest checkpoint's size)
	Tiles       int   // hash tiles
	Bundles     int   // entry bundles
	Checkpoints int
	Bodies      int
	// Unopened counts bodies that did not decrypt (substituted or corrupted): they
	// are left out, so verifying the export reports them missing.
	Unopened int
}

type exportBody struct {
	Index   int64  `json:"index"`
	EventID string `json:"event_id"`
	Salt    []byte `json:"salt"`
	Body    []byte `json:"body"`
}

// Export writes the ledger up to its latest checkpoint into dir (which must not
// exist or be empty) as a C2SP tlog-tiles directory byte-compatible with Tessera's
// POSIX layout, plus every checkpoint, the public key and optionally the bodies.
// It copies what src holds without judging it: verify the export (or the source)
// with Verify.
func Export(ctx context.Context, src Source, dir string, opts ExportOptions) (ExportResult, error) {
	var res ExportResult
	if opts.WithBodies && len(opts.BodyKey) == 0 {
		return res, errors.New("exporting bodies needs the body key")
	}
	var s *sealer
	if opts.WithBodies {
		var err error
		if s, err = newSealer(opts.BodyKey); err != nil {
			return res, err
		}
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return res, fmt.Errorf("export directory %s is not empty", dir)
	}
	head, err := src.Head(ctx)
	if errors.Is(err, vigil.ErrNotFound) {
		return res, errors.New("the ledger has no checkpoint yet: nothing to export")
	}
	if err != nil {
		return res, fmt.Errorf("couldn't read the latest checkpoint: %w", err)
	}
	size := head.Size
	res.Size = size
	write := func(name string, data []byte) error {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("couldn't write %s: %w", name, err)
		}
		return nil
	}
	if err := write("checkpoint", head.Note); err != nil {
		return res, err
	}
	if opts.PublicKey != "" {
		if err := write(ExportPublicKey, []byte(strings.TrimSpace(opts.PublicKey))); err != nil {
			return res, err
		}
	}
	cps, err := src.Checkpoints(ctx, 0, size)
	if err != nil {
		return res, fmt.Errorf("couldn't read checkpoints: %w", err)
	}
	for _, c := range cps {
		if err := write(path.Join(ExportCheckpoints, strconv.FormatInt(c.Size, 10)), c.Note); err != nil {
			return res, err
		}
		res.Checkpoints++
	}
	r := storeReader{ctx, src}
	for _, t := range tlog.NewTiles(TileHeight, 0, size) {
		data, err := TileData(t, r)
		if err != nil {
			return res, err
		}
		if err := write(TilePath(t), data); err != nil {
			return res, err
		}
		res.Tiles++
	}
	var buf []byte
	for _, t := range BundleTiles(size) {
		start := t.N * TileWidth
		entries, err := src.Entries(ctx, start, start+int64(t.W))
		if err != nil {
			return res, fmt.Errorf("couldn't read entries from %d: %w", start, err)
		}
		if len(entries) != t.W {
			return res, fmt.Errorf("entries %d to %d: read %d of %d (rows are missing; run vigil verify)", start, start+int64(t.W)-1, len(entries), t.W)
		}
		if buf, err = AppendBundle(buf[:0], entries); err != nil {
			return res, err
		}
		if err := write(TilePath(t), buf); err != nil {
			return res, err
		}
		res.Bundles++
		if !opts.WithBodies {
			continue
		}
		bodies, err := src.Bodies(ctx, start, start+int64(t.W))
		if err != nil {
			return res, fmt.Errorf("couldn't read bodies from %d: %w", start, err)
		}
		var jl bytes.Buffer
		enc := json.NewEncoder(&jl)
		for _, b := range bodies {
			if b.Index < start || b.Index >= start+int64(t.W) {
				return res, fmt.Errorf("asked for the bodies of entries %d to %d, got one for %d", start, start+int64(t.W)-1, b.Index)
			}
			salt, content, err := s.open(entries[b.Index-start].EventID, b.Sealed)
			if err != nil {
				res.Unopened++
				continue
			}
			if err := enc.Encode(exportBody{Index: b.Index, EventID: b.EventID, Salt: salt, Body: content}); err != nil {
				return res, err
			}
			res.Bodies++
		}
		if err := write(bodiesPath(t.N), jl.Bytes()); err != nil {
			return res, err
		}
	}
	return res, nil
}

func bodiesPath(n int64) string { return ExportBodies + "/" + tileIndexPath(n, 0) + ".jsonl" }

// OpenExport returns the Source view of an export directory (os.DirFS(dir), or any
// fs.FS laid out the same way), for Verify.
func OpenExport(fsys fs.FS) Source {
	return &exportSource{fsys: fsys, tiles: map[[2]int64]*tileLevels{}}
}

type exportSource struct {
	fsys fs.FS

	mu    sync.Mutex
	tiles map[[2]int64]*tileLevels // (level, n) → the tile with its inner levels
}

// tileLevels is a hash tile with every level inside it computed: levels[k][i] is
// the hash of the tile's hashes [i<<k, (i+1)<<k).
type tileLevels struct{ levels [TileHeight][]tlog.Hash }

var _ Source = (*exportSource)(nil)

func (x *exportSource) readCheckpoint() (Checkpoint, f_log.Checkpoint, error) {
	b, err := fs.ReadFile(x.fsys, "checkpoint")
	if errors.Is(err, fs.ErrNotExist) {
		return Checkpoint{}, f_log.Checkpoint{}, vigil.NotFound("the export has no checkpoint")
	}
	if err != nil {
		return Checkpoint{}, f_log.Checkpoint{}, err
	}
	// The body is parsed unverified here; Verify checks the signature.
	var cp f_log.Checkpoint
	text, _, _ := bytes.Cut(b, []byte("\n\n"))
	if _, err := cp.Unmarshal(append(text, '\n')); err != nil || cp.Size > 1<<62 {
		// Unreadable: claim an empty tree; Verify reports the bad signature.
		return Checkpoint{Note: b}, f_log.Checkpoint{}, nil
	}
	return Checkpoint{Size: int64(cp.Size), Note: b}, cp, nil
}

func (x *exportSource) TreeState(ctx context.Context) (int64, tlog.Hash, error) {
	c, cp, err := x.readCheckpoint()
	if err != nil {
		return 0, tlog.Hash{}, err
	}
	var root tlog.Hash
	copy(root[:], cp.Hash)
	return c.Size, root, nil
}

func (x *exportSource) Head(ctx context.Context) (Checkpoint, error) {
	c, _, err := x.readCheckpoint()
	return c, err
}

func (x *exportSource) Checkpoints(ctx context.Context, from, to int64) ([]Checkpoint, error) {
	des, err := fs.ReadDir(x.fsys, ExportCheckpoints)
	if err != nil {
		return nil, fmt.Errorf("couldn't list the export's checkpoints: %w", err)
	}
	var out []Checkpoint
	for _, de := range des {
		n, err := strconv.ParseInt(de.Name(), 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != de.Name() {
			return nil, fmt.Errorf("unexpected file %s/%s in the export", ExportCheckpoints, de.Name())
		}
		if n < from || n > to {
			continue
		}
		b, err := fs.ReadFile(x.fsys, path.Join(ExportCheckpoints, de.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Checkpoint{Size: n, Note: b})
	}
	slices.SortFunc(out, func(a, b Checkpoint) int { return int(a.Size - b.Size) })
	return out, nil
}

// bundleWidth is the width of the bundle or tile n at a level holding count
// hashes, as the export has it: full, or the one partial tile at the right edge.
func bundleWidth(n, count int64) int {
	return int(min(count-n*TileWidth, TileWidth))
}

func (x *exportSource) Entries(ctx context.Context, start, end int64) ([]Entry, error) {
	size, _, err := x.TreeState(ctx)
	if err != nil {
		return nil, err
	}
	start, end = max(start, 0), min(end, size)
	var out []Entry
	for n := start / TileWidth; n*TileWidth < end; n++ {
		t := tlog.Tile{H: TileHeight, L: -1, N: n, W: bundleWidth(n, size)}
		data, err := fs.ReadFile(x.fsys, TilePath(t))
		if err != nil {
			return nil, fmt.Errorf("couldn't read bundle %s: %w", TilePath(t), err)
		}
		entries, err := ParseBundle(data)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", TilePath(t), err)
		}
		if len(entries) > t.W {
			return nil, fmt.Errorf("bundle %s holds %d entries, more than its width %d", TilePath(t), len(entries), t.W)
		}
		for i, e := range entries {
			idx := n*TileWidth + int64(i)
			if idx >= start && idx < end {
				out = append(out, Entry{Index: idx, Data: e})
			}
		}
	}
	return out, nil
}

func (x *exportSource) Bodies(ctx context.Context, start, end int64) ([]Body, error) {
	if _, err := fs.Stat(x.fsys, ExportBodies); errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoBodies
	}
	var out []Body
	for n := max(start, 0) / TileWidth; n*TileWidth < end; n++ {
		f, err := x.fsys.Open(bodiesPath(n))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<30)
		for sc.Scan() {
			var b exportBody
			dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&b); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", bodiesPath(n), err)
			}
			if b.Index >= start && b.Index < end {
				out = append(out, Body{Index: b.Index, EventID: b.EventID, Salt: b.Salt, Content: b.Body})
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", bodiesPath(n), err)
		}
	}
	slices.SortFunc(out, func(a, b Body) int { return int(a.Index - b.Index) })
	return out, nil
}

// ReadHashes derives stored hashes from the hash tiles: a stored hash at tree level
// 8L+k is the root of 2^k consecutive hashes of a level-L tile.
func (x *exportSource) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	size, _, err := x.TreeState(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		level, n := tlog.SplitStoredHashIndex(idx)
		L, k := level/TileHeight, level%TileHeight
		first := n << uint(k) // first hash at level 8L it covers
		if (first+1<<uint(k))<<(uint(L)*TileHeight) > size {
			return nil, fmt.Errorf("stored hash %d is outside the exported tree of size %d", idx, size)
		}
		tn := first / TileWidth
		t, err := x.tile(L, tn, bundleWidth(tn, size>>(uint(L)*TileHeight)))
		if err != nil {
			return nil, err
		}
		j := (first - tn*TileWidth) >> uint(k)
		if j >= int64(len(t.levels[k])) {
			return nil, fmt.Errorf("stored hash %d: tile %s is too short", idx, TilePath(tlog.Tile{H: TileHeight, L: L, N: tn}))
		}
		out[i] = t.levels[k][j]
	}
	return out, nil
}

func (x *exportSource) tile(level int, n int64, w int) (*tileLevels, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if t, ok := x.tiles[[2]int64{int64(level), n}]; ok {
		return t, nil
	}
	p := TilePath(tlog.Tile{H: TileHeight, L: level, N: n, W: w})
	data, err := fs.ReadFile(x.fsys, p)
	if err != nil {
		return nil, fmt.Errorf("couldn't read tile %s: %w", p, err)
	}
	if len(data) != w*tlog.HashSize {
		return nil, fmt.Errorf("tile %s is %d bytes, want %d", p, len(data), w*tlog.HashSize)
	}
	t := &tileLevels{}
	t.levels[0] = make([]tlog.Hash, w)
	for i := range w {
		copy(t.levels[0][i][:], data[i*tlog.HashSize:])
	}
	for k := 1; k < TileHeight; k++ {
		prev := t.levels[k-1]
		t.levels[k] = make([]tlog.Hash, len(prev)/2)
		for i := range t.levels[k] {
			t.levels[k][i] = tlog.NodeHash(prev[2*i], prev[2*i+1])
		}
	}
	if len(x.tiles) > 64 {
		clear(x.tiles) // the verifier reads in order; old tiles are not read again
	}
	x.tiles[[2]int64{int64(level), n}] = t
	return t, nil
}
