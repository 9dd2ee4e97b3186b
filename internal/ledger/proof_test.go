package ledger

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestParseCheckpoint(t *testing.T) {
	k := newTestKeys(t, testOrigin)
	other := newTestKeys(t, testOrigin) // same name, different key
	wrongOrigin := newTestKeys(t, "other.example/ledger")
	root, otherRoot := tlog.Hash{7}, tlog.Hash{8}
	good := k.sign(t, 42, root)
	withExtra, err := note.Sign(&note.Note{Text: checkpointText(testOrigin, 42, root)}, k.signer, wrongOrigin.signer)
	if err != nil {
		t.Fatal(err)
	}
	// The log's own signature line with its bytes changed.
	badSig := flipInLastLine(good)
	// A second line for the log's own key that does not verify.
	dupBad := append(bytes.Clone(good), lastLine(badSig)...)
	for _, tc := range []struct {
		name string
		note []byte
		ok   bool
	}{
		{"good", good, true},
		{"extra unknown signature is ignored", withExtra, true},
		{"edited size", bytes.Replace(good, []byte("\n42\n"), []byte("\n43\n"), 1), false},
		{"edited root", bytes.Replace(good, []byte(base64.StdEncoding.EncodeToString(root[:])), []byte(base64.StdEncoding.EncodeToString(otherRoot[:])), 1), false},
		{"truncated", good[:len(good)-20], false},
		{"unknown key", other.sign(t, 42, root), false},
		{"wrong origin", wrongOrigin.sign(t, 42, root), false},
		{"known key, bad signature", badSig, false},
		{"known key, one good and one bad signature", dupBad, false},
		{"unsigned", []byte(checkpointText(testOrigin, 42, root)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp, err := ParseCheckpoint(tc.note, testOrigin, k.verifier)
			if tc.ok && (err != nil || cp.Size != 42 || cp.Root != root) {
				t.Errorf("ParseCheckpoint = %+v, %v; want size 42 and the root", cp, err)
			}
			if !tc.ok && err == nil {
				t.Errorf("ParseCheckpoint accepted it")
			}
		})
	}
}

func checkpointText(origin string, size int64, root tlog.Hash) string {
	return fmt.Sprintf("%s\n%d\n%s\n", origin, size, base64.StdEncoding.EncodeToString(root[:]))
}

func lastLine(b []byte) []byte {
	lines := bytes.SplitAfter(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	return append(bytes.Clone(lines[len(lines)-1]), '\n')
}

// flipInLastLine changes one base64 character of the signature in the last line.
func flipInLastLine(b []byte) []byte {
	out := bytes.Clone(b)
	i := len(out) - 10
	if out[i] == 'A' {
		out[i] = 'B'
	} else {
		out[i] = 'A'
	}
	return out
}

// TestMutatedProofsAreRejected reimplements the mutation kinds of
// transparency-dev/merkle's testdata corpus (bit flips, index ±1, size ×2 and ÷2,
// truncated and extended proofs, swapped roots, wrong leaf) against our proofs.
func TestMutatedProofsAreRejected(t *testing.T) {
	k := newTestKeys(t, testOrigin)
	st, l := openMem(t, k)
	ctx := context.Background()
	rs := fill(t, l, 300, 77) // checkpoints at 77, 154, 231, 300
	in, err := l.Prove(ctx, rs[123].ID)
	if err != nil {
		t.Fatal(err)
	}
	leaf := tlog.RecordHash(in.Entry.Data)
	size, root, idx := in.Checkpoint.Size, in.Checkpoint.Root, in.Entry.Index
	if err := tlog.CheckRecord(in.Proof, size, root, idx, leaf); err != nil {
		t.Fatalf("the unmutated proof fails: %v", err)
	}
	if _, i, err := CheckTLogProof(in.TLogProof(), in.Entry.Data, testOrigin, k.verifier); err != nil || i != idx {
		t.Fatalf("the unmutated tlog-proof fails: %d, %v", i, err)
	}
	type rec struct {
		p          tlog.RecordProof
		size, idx  int64
		root, leaf tlog.Hash
	}
	mut := map[string]rec{
		"index+1":      {in.Proof, size, idx + 1, root, leaf},
		"index-1":      {in.Proof, size, idx - 1, root, leaf},
		"size*2":       {in.Proof, size * 2, idx, root, leaf},
		"size/2":       {in.Proof, size / 2, idx, root, leaf},
		"truncated":    {in.Proof[:len(in.Proof)-1], size, idx, root, leaf},
		"extended":     {append(append(tlog.RecordProof{}, in.Proof...), tlog.Hash{}), size, idx, root, leaf},
		"prepended":    {append(tlog.RecordProof{leaf}, in.Proof...), size, idx, root, leaf},
		"empty":        {nil, size, idx, root, leaf},
		"wrong root":   {in.Proof, size, idx, tlog.RecordHash([]byte("x")), leaf},
		"wrong leaf":   {in.Proof, size, idx, root, tlog.RecordHash([]byte("x"))},
		"leaf as root": {in.Proof, size, idx, leaf, root},
	}
	for i := range in.Proof {
		for _, bit := range []int{0, 7, 255} {
			p := append(tlog.RecordProof{}, in.Proof...)
			p[i][bit/8] ^= 1 << (bit % 8)
			mut[fmt.Sprintf("hash %d bit %d", i, bit)] = rec{p, size, idx, root, leaf}
		}
	}
	for name, m := range mut {
		if err := tlog.CheckRecord(m.p, m.size, m.root, m.idx, m.leaf); err == nil {
			t.Errorf("inclusion proof mutated by %s was accepted", name)
		}
	}

	// The same at the level of the C2SP tlog-proof text.
	text := string(in.TLogProof())
	hashLine := base64.StdEncoding.EncodeToString(in.Proof[0][:])
	for name, bad := range map[string]string{
		"index+1":        strings.Replace(text, fmt.Sprintf("index %d\n", idx), fmt.Sprintf("index %d\n", idx+1), 1),
		"hash dropped":   strings.Replace(text, hashLine+"\n", "", 1),
		"hash repeated":  strings.Replace(text, hashLine+"\n", hashLine+"\n"+hashLine+"\n", 1),
		"checkpoint cut": text[:len(text)-30],
		"other entry":    "", // checked below with other data
	} {
		data := in.Entry.Data
		if name == "other entry" {
			bad, data = text, []byte(`{"v":1}`)
		}
		if _, _, err := CheckTLogProof([]byte(bad), data, testOrigin, k.verifier); err == nil {
			t.Errorf("tlog-proof mutated by %s was accepted", name)
		}
	}

	// Consistency proofs between published checkpoints.
	c, err := l.Consistency(ctx, 77, 231)
	if err != nil {
		t.Fatal(err)
	}
	o, n := c.Old, c.New
	if err := tlog.CheckTree(c.Proof, n.Size, n.Root, o.Size, o.Root); err != nil {
		t.Fatalf("the unmutated consistency proof fails: %v", err)
	}
	type tree struct {
		p          tlog.TreeProof
		n, m       int64
		nRoot, mRt tlog.Hash
	}
	tm := map[string]tree{
		"swapped roots": {c.Proof, n.Size, o.Size, o.Root, n.Root},
		"old size+1":    {c.Proof, n.Size, o.Size + 1, n.Root, o.Root},
		"old size-1":    {c.Proof, n.Size, o.Size - 1, n.Root, o.Root},
		"new size*2":    {c.Proof, n.Size * 2, o.Size, n.Root, o.Root},
		"old size/2":    {c.Proof, n.Size, o.Size / 2, n.Root, o.Root},
		"truncated":     {c.Proof[:len(c.Proof)-1], n.Size, o.Size, n.Root, o.Root},
		"extended":      {append(append(tlog.TreeProof{}, c.Proof...), tlog.Hash{}), n.Size, o.Size, n.Root, o.Root},
		"empty":         {nil, n.Size, o.Size, n.Root, o.Root},
	}
	for i := range c.Proof {
		p := append(tlog.TreeProof{}, c.Proof...)
		p[i][9] ^= 4
		tm[fmt.Sprintf("hash %d flipped", i)] = tree{p, n.Size, o.Size, n.Root, o.Root}
	}
	for name, m := range tm {
		if err := tlog.CheckTree(m.p, m.n, m.nRoot, m.m, m.mRt); err == nil {
			t.Errorf("consistency proof mutated by %s was accepted", name)
		}
	}
	if _, err := l.Consistency(ctx, 77, 78); !errors.Is(err, vigil.ErrNotFound) {
		t.Errorf("Consistency to an unpublished size = %v, want not found", err)
	}
	_ = st
}

func TestProveNotYetCovered(t *testing.T) {
	k := newTestKeys(t, testOrigin)
	_, l := openMem(t, k)
	ctx := context.Background()
	fill(t, l, 3, 100)
	r, err := l.Record(ctx, vigil.Event{Type: "test.late"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Prove(ctx, r.ID); !errors.Is(err, vigil.ErrNotFound) {
		t.Errorf("Prove before the next checkpoint = %v, want not found", err)
	}
	if err := l.PublishCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Prove(ctx, r.ID); err != nil {
		t.Errorf("Prove after the checkpoint: %v", err)
	}
}

func TestProveRefusesWhenStoreNoLongerMatches(t *testing.T) {
	k := newTestKeys(t, testOrigin)
	st, l := openMem(t, k)
	ctx := context.Background()
	rs := fill(t, l, 20, 100)
	e := st.entries[3]
	e.Data = append(bytes.Clone(e.Data[:len(e.Data)-1]), ' ', '}')
	st.entries[3] = e
	if _, err := l.Prove(ctx, rs[3].ID); !errors.Is(err, ErrFork) {
		t.Errorf("Prove of an edited entry = %v, want ErrFork", err)
	}
}
