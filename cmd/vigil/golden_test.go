package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-gateway/vigil/internal/keyring"
	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden-ledger (only when the format changes on purpose: old evidence must still verify)")

const goldenDir = "testdata/golden-ledger"

// TestGoldenLedger verifies a ledger written by an earlier version of Vigil and
// committed: a SQLite data directory (with its public key and master key, so bodies
// are checked too) and its export. Evidence written once must verify forever, so
// a change to the envelope, hashing, checkpoints or export layout that breaks it
// fails here. Never regenerate it to make this test pass.
func TestGoldenLedger(t *testing.T) {
	if *updateGolden {
		writeGoldenLedger(t)
	}
	data := filepath.Join(t.TempDir(), "data")
	if err := os.CopyFS(data, os.DirFS(filepath.Join(goldenDir, "data"))); err != nil {
		t.Fatal(err) // a copy, in case verify wrote to it
	}
	db := filepath.Join(data, sqliteFile)
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	want := "ledger golden.vigil.example/ledger intact: 40 entries, 3 checkpoints (latest 40, 0 entries unsigned), 38 bodies match their digests, 1 withheld (erased)"
	code, out, errOut := runOffline(t, "verify", "--data", data)
	if code != 0 || !strings.HasPrefix(out, want) {
		t.Errorf("verify --data golden = %d, %q, %q; want 0 and %q", code, out, errOut, want)
	}
	// The older schema is verified on a migrated copy; the evidence is untouched.
	if after, err := os.ReadFile(db); err != nil || !bytes.Equal(before, after) {
		t.Errorf("verify changed the database it verified (%v)", err)
	}
	if !strings.Contains(errOut, "written by an older Vigil") {
		t.Errorf("verify of an older database said %q, want a note that it read a migrated copy", errOut)
	}
	code, out, errOut = runOffline(t, "verify", "--export", filepath.Join(goldenDir, "export"), "--public-key", filepath.Join(goldenDir, "data", keyring.LedgerPubFile))
	want = "ledger golden.vigil.example/ledger intact: 40 entries, 3 checkpoints (latest 40, 0 entries unsigned), 38 bodies match their digests, 1 withheld (erased)"
	if code != 0 || !strings.HasPrefix(out, want) {
		t.Errorf("verify --export golden = %d, %q, %q; want 0 and %q", code, out, errOut, want)
	}
	// The committed tlog-proof still checks against the committed key.
	proof, err := os.ReadFile(filepath.Join(goldenDir, "proof-7.txt"))
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := os.ReadFile(filepath.Join(goldenDir, "export", "tile", "entries", "000.p", "40"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := ledger.ParseBundle(leaves)
	if err != nil {
		t.Fatal(err)
	}
	d := &testDataDir{dir: filepath.Join(goldenDir, "data")}
	keys, err := (&ledgerFlags{data: d.dir}).loadKeys(&Env{Stderr: os.Stderr, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if _, idx, err := ledger.CheckTLogProof(proof, entries[7], keys.origin, keys.verifier); err != nil || idx != 7 {
		t.Errorf("golden proof-7.txt: %d, %v", idx, err)
	}
}

// writeGoldenLedger makes the golden ledger: 40 events in sessions, with bodies,
// an external event, an erasure, and four checkpoints.
func writeGoldenLedger(t *testing.T) {
	t.Helper()
	if err := os.RemoveAll(goldenDir); err != nil {
		t.Fatal(err)
	}
	d := newTestDataDirFor(t, "golden.vigil.example/ledger")
	db, l, err := d.open(t)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ids []string
	for i := range 38 {
		e := vigil.Event{Type: vigil.EventToolCall, Actor: "agent:golden", AgentID: "agent-1", SystemID: "sys-1",
			SessionID: fmt.Sprintf("conv-%d", i%2), SessionSeq: int64(i/2 + 1), Policy: "sha256:abc", Decision: vigil.Effect("allow"),
			Rules: []string{"r1"}, Timings: map[string]int64{"policy": 12}, Counts: map[string]int64{"EMAIL_ADDRESS": 1},
			Attrs: map[string]string{"tool": "refund", "n": fmt.Sprint(i)}, Body: []byte(fmt.Sprintf(`{"amount":%d,"note":"prompt with personal data"}`, i))}
		if i == 20 {
			e = vigil.Event{Type: "external.ticket.closed", Actor: "token:ci", Body: []byte(`{"ticket":42}`)}
		}
		r, err := l.Record(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
		if i%13 == 12 {
			if err := l.PublishCheckpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := l.Record(ctx, vigil.Event{Type: ledger.EventHeartbeat, Actor: "system:ledger"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Erase(ctx, "user:dpo", ids[3], "data subject request"); err != nil {
		t.Fatal(err)
	}
	if err := l.PublishCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	in, err := l.Prove(ctx, ids[7])
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	db.Close()
	data := filepath.Join(goldenDir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{sqliteFile, keyring.LedgerPubFile, keyring.MasterKeyFile, ledger.MirrorFile} {
		copyFile(t, filepath.Join(d.dir, f), filepath.Join(data, f))
	}
	if err := os.WriteFile(filepath.Join(goldenDir, "proof-7.txt"), in.TLogProof(), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runOffline(t, "ledger", "export", "--data", d.dir, "--with-bodies", filepath.Join(goldenDir, "export")); code != 0 {
		t.Fatalf("export: %d %q %q", code, out, errOut)
	}
}
