package ledger

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// TileHeight is the height of the C2SP tlog-tiles hash tiles: 256 hashes per full tile.
const TileHeight = 8

// TileWidth is the number of hashes in a full tile and of entries in a full bundle.
const TileWidth = 1 << TileHeight

// treeBuilder recomputes the x/mod/sumdb/tlog stored hashes of a tree from its
// leaves, keeping only the right edge (one hash per level) in memory. It computes
// exactly what tlog.StoredHashes would, without a HashReader round trip or an
// allocation per entry; the tests check the two agree.
type treeBuilder struct {
	n    int64
	edge [64]tlog.Hash // edge[l]: the most recently completed subtree at level l
	buf  [1 + 2*tlog.HashSize]byte
}

// leafHasher computes RFC 6962 leaf hashes (tlog.RecordHash) reusing one SHA-256
// state. It is not safe for concurrent use; give each goroutine its own.
type leafHasher struct{ h hash.Hash }

func newLeafHasher() *leafHasher { return &leafHasher{sha256.New()} }

var leafPrefix = []byte{0}

func (lh *leafHasher) hash(data []byte) tlog.Hash {
	lh.h.Reset()
	lh.h.Write(leafPrefix)
	lh.h.Write(data)
	var out tlog.Hash
	lh.h.Sum(out[:0])
	return out
}

func (b *treeBuilder) node(left, right tlog.Hash) tlog.Hash {
	b.buf[0] = 1
	copy(b.buf[1:], left[:])
	copy(b.buf[1+tlog.HashSize:], right[:])
	return sha256.Sum256(b.buf[:])
}

// append adds the leaf with hash leaf at index b.n and appends its stored hashes
// (those tlog.StoredHashes returns, in tlog.StoredHashIndex order) to out.
func (b *treeBuilder) append(leaf tlog.Hash, out []tlog.Hash) []tlog.Hash {
	out = append(out, leaf)
	cur := leaf
	for l := 0; ; l++ {
		if b.n>>l&1 == 0 {
			b.edge[l] = cur
			break
		}
		left := b.edge[l]
		b.edge[l] = cur
		cur = b.node(left, cur)
		out = append(out, cur)
	}
	b.n++
	return out
}

// root is the RFC 6962 root of the b.n leaves appended so far (tlog.TreeHash).
func (b *treeBuilder) root() tlog.Hash {
	if b.n == 0 {
		return sha256.Sum256(nil)
	}
	var h tlog.Hash
	first := true
	for l := 0; l < 64; l++ {
		if b.n>>l&1 == 0 {
			continue
		}
		if first {
			h, first = b.edge[l], false
		} else {
			h = b.node(b.edge[l], h)
		}
	}
	return h
}

// TilePath is the C2SP tlog-tiles path of t: tile/<L>/<N>[.p/<W>] for hash tiles and
// tile/entries/<N>[.p/<W>] for entry bundles (t.L == -1), with N split into
// three-digit groups as x001/x234/567. It is tlog's Tile.Path without the height,
// which tlog-tiles fixes at 8.
func TilePath(t tlog.Tile) string {
	level := "entries"
	if t.L >= 0 {
		level = strconv.Itoa(t.L)
	}
	return "tile/" + level + "/" + tileIndexPath(t.N, t.W)
}

// tileIndexPath formats a tile or bundle index with an optional partial width.
func tileIndexPath(n int64, w int) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n /= 1000; n > 0; n /= 1000 {
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	if w > 0 && w < TileWidth {
		s += ".p/" + strconv.Itoa(w)
	}
	return s
}

// ParseTilePath parses a C2SP tlog-tiles path (as TilePath writes it) back into a
// tile; data tiles (entry bundles) have L == -1. It rejects non-canonical spellings,
// so one tile has one path.
func ParseTilePath(path string) (tlog.Tile, error) {
	bad := func() (tlog.Tile, error) { return tlog.Tile{}, fmt.Errorf("malformed tile path %q", path) }
	rest, ok := strings.CutPrefix(path, "tile/")
	if !ok {
		return bad()
	}
	levelStr, idx, ok := strings.Cut(rest, "/")
	if !ok {
		return bad()
	}
	t := tlog.Tile{H: TileHeight, W: TileWidth}
	if levelStr == "entries" {
		t.L = -1
	} else {
		l, err := strconv.Atoi(levelStr)
		if err != nil || l < 0 || l > 63 || strconv.Itoa(l) != levelStr {
			return bad()
		}
		t.L = l
	}
	if i := strings.Index(idx, ".p/"); i >= 0 {
		w, err := strconv.Atoi(idx[i+3:])
		if err != nil || w < 1 || w >= TileWidth || strconv.Itoa(w) != idx[i+3:] {
			return bad()
		}
		t.W = w
		idx = idx[:i]
	}
	var n int64
	parts := strings.Split(idx, "/")
	for i, p := range parts {
		if i < len(parts)-1 {
			if len(p) != 4 || p[0] != 'x' {
				return bad()
			}
			p = p[1:]
		} else if len(p) != 3 {
			return bad()
		}
		d, err := strconv.Atoi(p)
		if err != nil || d < 0 {
			return bad()
		}
		if n > (1<<62)/1000 {
			return bad()
		}
		n = n*1000 + int64(d)
	}
	t.N = n
	if tileIndexPath(t.N, t.W) != idx+partialSuffix(t.W) {
		return bad()
	}
	return t, nil
}

func partialSuffix(w int) string {
	if w > 0 && w < TileWidth {
		return ".p/" + strconv.Itoa(w)
	}
	return ""
}

// tileFits reports whether tile t (hash tile or entry bundle) lies within a tree of
// size leaves, so that it may be served for it. Any partial width up to what the
// tree holds is served: a client holding an older checkpoint asks for a narrower
// tile, whose hashes are a prefix of the wider one's.
func tileFits(t tlog.Tile, size int64) bool {
	if t.H != TileHeight || t.W < 1 || t.W > TileWidth || t.N < 0 || t.L < -1 || t.L > 7 {
		return false
	}
	count := size >> (uint(max(t.L, 0)) * TileHeight) // hashes at the tile's level
	return t.N < count/TileWidth+1 && t.N*TileWidth+int64(t.W) <= count
}

// TileData returns the contents of hash tile t (t.L >= 0) of the tree read through r:
// 32-byte hashes, byte-identical to Tessera's tile files. The caller checks with
// the tree size that the tile exists.
func TileData(t tlog.Tile, r tlog.HashReader) ([]byte, error) {
	if t.L < 0 {
		return nil, fmt.Errorf("tile %s is an entry bundle, not a hash tile", TilePath(t))
	}
	data, err := tlog.ReadTileData(t, r)
	if err != nil {
		return nil, fmt.Errorf("couldn't read tile %s: %w", TilePath(t), err)
	}
	return data, nil
}

// AppendBundle appends the C2SP tlog-tiles entry bundle encoding of entries (each a
// big-endian uint16 length and the entry) to dst.
func AppendBundle(dst []byte, entries []Entry) ([]byte, error) {
	for _, e := range entries {
		if len(e.Data) > MaxEntrySize {
			return nil, fmt.Errorf("entry %d is %d bytes; bundles hold at most %d", e.Index, len(e.Data), MaxEntrySize)
		}
		dst = append(dst, byte(len(e.Data)>>8), byte(len(e.Data)))
		dst = append(dst, e.Data...)
	}
	return dst, nil
}

// ParseBundle splits an entry bundle into its entries. The slices alias data.
func ParseBundle(data []byte) ([][]byte, error) {
	var out [][]byte
	for len(data) > 0 {
		if len(data) < 2 {
			return nil, fmt.Errorf("entry bundle ends inside a length prefix")
		}
		n := int(data[0])<<8 | int(data[1])
		if len(data) < 2+n {
			return nil, fmt.Errorf("entry bundle ends inside entry %d", len(out))
		}
		out = append(out, data[2:2+n:2+n])
		data = data[2+n:]
	}
	return out, nil
}

// BundleTiles lists the entry bundles of a tree of size leaves, in order.
func BundleTiles(size int64) []tlog.Tile {
	var out []tlog.Tile
	for n := int64(0); n*TileWidth < size; n++ {
		w := int(min(size-n*TileWidth, TileWidth))
		out = append(out, tlog.Tile{H: TileHeight, L: -1, N: n, W: w})
	}
	return out
}

// storeReader adapts a context-taking hash source to tlog.HashReader.
type storeReader struct {
	ctx context.Context
	src interface {
		ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	}
}

func (r storeReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	return r.src.ReadHashes(r.ctx, indexes)
}
