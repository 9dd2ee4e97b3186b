package main

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-gateway/vigil/internal/keyring"
	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/store/sqlite"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/note"
)

// testDataDir is a data directory as vigil serve leaves it: keys in the keyring's
// formats, the SQLite database and the checkpoint mirror.
type testDataDir struct {
	dir     string
	signer  note.Signer
	vkey    string
	bodyKey []byte
	ids     []string
}

func newTestDataDir(t testing.TB) *testDataDir {
	t.Helper()
	return newTestDataDirFor(t, "test.vigil.example/ledger")
}

func newTestDataDirFor(t testing.TB, origin string) *testDataDir {
	t.Helper()
	dir := t.TempDir()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	master := make([]byte, 32)
	rand.Read(master)
	for name, content := range map[string]string{
		keyring.LedgerKeyFile: skey + "\n", keyring.LedgerPubFile: vkey + "\n",
		keyring.MasterKeyFile: base64.StdEncoding.EncodeToString(master) + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	bk, err := hkdf.Key(sha256.New, master, nil, keyring.PurposeLedgerBody, 32)
	if err != nil {
		t.Fatal(err)
	}
	return &testDataDir{dir: dir, signer: s, vkey: vkey, bodyKey: bk}
}

func (d *testDataDir) options(t testing.TB) ledger.Options {
	v, err := note.NewVerifier(d.vkey)
	if err != nil {
		t.Fatal(err)
	}
	return ledger.Options{Origin: d.signer.Name(), Signer: d.signer, Verifier: v, BodyKey: d.bodyKey,
		Mirror: ledger.FileMirror{Path: filepath.Join(d.dir, ledger.MirrorFile)}}
}

// open opens the data directory's ledger; the caller closes both.
func (d *testDataDir) open(t testing.TB) (*sqlite.DB, *ledger.Log, error) {
	t.Helper()
	return d.openBatch(t, 0)
}

func (d *testDataDir) openBatch(t testing.TB, maxBatch int) (*sqlite.DB, *ledger.Log, error) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(d.dir, sqliteFile), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := d.options(t)
	opts.MaxBatch = maxBatch
	l, err := ledger.Open(context.Background(), db.Ledger(), opts)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, l, nil
}

// append records n events with bodies, publishing a checkpoint every `every`.
func (d *testDataDir) append(t *testing.T, n, every int) {
	t.Helper()
	db, l, err := d.open(t)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	defer l.Close()
	ctx := context.Background()
	for i := range n {
		r, err := l.Record(ctx, vigil.Event{Type: "test.event", Actor: "user:t", SessionID: "s", SessionSeq: int64(len(d.ids) + 1),
			Attrs: map[string]string{"n": fmt.Sprint(len(d.ids))}, Body: []byte(fmt.Sprintf("prompt %d", len(d.ids)))})
		if err != nil {
			t.Fatal(err)
		}
		d.ids = append(d.ids, r.ID)
		if (i+1)%every == 0 {
			if err := l.PublishCheckpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.PublishCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
}

// appendFast records n small events from many goroutines (so they share commits)
// and publishes one checkpoint.
func (d *testDataDir) appendFast(t testing.TB, n int) { d.appendBulk(t, n, n, nil) }

// appendBulk records n events with body from many goroutines (so they share
// commits), publishing a checkpoint about every `every` events and at the end.
func (d *testDataDir) appendBulk(t testing.TB, n, every int, body []byte) {
	t.Helper()
	db, l, err := d.openBatch(t, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	defer l.Close()
	ctx := context.Background()
	const workers = 512
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				r, err := l.Record(ctx, vigil.Event{Type: "test.bulk", Actor: "agent:bulk", SessionID: fmt.Sprint(w), SessionSeq: int64(i + 1),
					Attrs: map[string]string{"i": fmt.Sprint(i)}, Body: body})
				if err != nil {
					errs <- err
					return
				}
				if every < n && r.Index%int64(every) == 0 {
					if err := l.PublishCheckpoint(ctx); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if err := l.PublishCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyIntactDataDir(t *testing.T) {
	d := newTestDataDir(t)
	d.append(t, 300, 70)
	code, out, errOut := runOffline(t, "verify", "--data", d.dir)
	if code != 0 || !strings.Contains(out, "intact: 300 entries, 5 checkpoints") || !strings.Contains(out, "300 bodies match") {
		t.Fatalf("verify = %d, stdout %q, stderr %q; want 0 and a summary of 300 entries and 5 checkpoints", code, out, errOut)
	}
	if strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("the summary is not one line: %q", out)
	}

	code, out, _ = runOffline(t, "verify", "--data", d.dir, "--json")
	var rep ledger.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || rep.Size != 300 || !rep.OK() || rep.Trusted != 1 {
		t.Errorf("verify --json = %d, %+v, %v; want 0, 300 entries, the mirror trusted", code, rep, err)
	}

	// An auditor with only the public key: bodies are not checked.
	pub := filepath.Join(t.TempDir(), "log.pub")
	os.WriteFile(pub, []byte(d.vkey), 0o644)
	code, out, errOut = runOffline(t, "verify", "--data", d.dir, "--public-key", pub)
	if code != 0 || !strings.Contains(out, "bodies not checked") {
		t.Errorf("verify --public-key = %d, %q, %q; want 0 and bodies not checked", code, out, errOut)
	}
	// A key that is not the log's.
	_, other, _ := note.GenerateKey(rand.Reader, "test.vigil.example/ledger")
	os.WriteFile(pub, []byte(other), 0o644)
	if code, out, errOut = runOffline(t, "verify", "--data", d.dir, "--public-key", pub); code == 0 {
		t.Errorf("verify with another key = 0, %q", out)
	} else if !strings.Contains(errOut, "checkpoint") {
		t.Errorf("verify with another key: stderr %q does not name a checkpoint", errOut)
	}
}

func TestVerifyRefusesMissingDatabase(t *testing.T) {
	d := newTestDataDir(t)
	code, _, errOut := runOffline(t, "verify", "--data", d.dir)
	if code == 0 || !strings.Contains(errOut, "no ledger database") {
		t.Errorf("verify of a directory without a database = %d, %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(d.dir, sqliteFile)); err == nil {
		t.Error("verify created a database")
	}
}

// sqlite3 runs the sqlite3 command-line tool on the database, as an attacker
// with file access would.
func sqlite3(t *testing.T, db string, script string) {
	t.Helper()
	path, err := exec.LookPath("sqlite3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must install the sqlite3 command-line tool (Debian package sqlite3)")
		}
		t.Skip("the sqlite3 command-line tool is not installed")
	}
	cmd := exec.Command(path, db)
	cmd.Stdin = strings.NewReader(".bail on\n" + script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
}

const dropTriggers = `DROP TRIGGER ledger_entries_no_update; DROP TRIGGER ledger_entries_no_delete;
DROP TRIGGER ledger_hashes_no_update; DROP TRIGGER ledger_hashes_no_delete;
DROP TRIGGER ledger_checkpoints_no_update; DROP TRIGGER ledger_checkpoints_no_delete;
PRAGMA foreign_keys = OFF;
`

func TestVerifyCatchesSQLite3Tampering(t *testing.T) {
	for _, tc := range []struct {
		name, script, want string
	}{
		{"EditedRow", `UPDATE ledger_entries SET data = CAST(replace(CAST(data AS TEXT), '"user:t"', '"user:x"') AS BLOB) WHERE idx = 42;`, "index 42:"},
		{"DeletedRow", `DELETE FROM ledger_entries WHERE idx = 42;`, "index 42:"},
		{"SwappedRows", `UPDATE ledger_entries SET idx = -1 WHERE idx = 42;
UPDATE ledger_entries SET idx = 42 WHERE idx = 43;
UPDATE ledger_entries SET idx = 43 WHERE idx = -1;`, "index 42:"},
		{"TruncatedTail", `DELETE FROM ledger_entries WHERE idx >= 100; UPDATE ledger_tree SET size = 100;`, "checkpoint 140:"},
		{"DeletedBody", `DELETE FROM ledger_bodies WHERE idx = 7;`, "index 7:"},
		{"SubstitutedBody", `UPDATE ledger_bodies SET sealed = (SELECT sealed FROM ledger_bodies WHERE idx = 9) WHERE idx = 8;`, "index 8:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDataDir(t)
			d.append(t, 150, 70)
			sqlite3(t, filepath.Join(d.dir, sqliteFile), dropTriggers+tc.script)
			code, out, errOut := runOffline(t, "verify", "--data", d.dir)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("verify after tampering = %d, stdout %q, stderr %q; want 1 naming %q", code, out, errOut, tc.want)
			}
		})
	}
}

func TestRestoredOlderCopyIsRefused(t *testing.T) {
	d := newTestDataDir(t)
	d.append(t, 50, 20)
	db := filepath.Join(d.dir, sqliteFile)
	backup := filepath.Join(t.TempDir(), "backup.db")
	copyFile(t, db, backup) // the database is closed: the WAL has been checkpointed into it
	d.append(t, 30, 20)
	copyFile(t, backup, db)
	os.Remove(db + "-wal")
	os.Remove(db + "-shm")

	code, _, errOut := runOffline(t, "verify", "--data", d.dir)
	if code != 1 || !strings.Contains(errOut, "checkpoint 80:") || !strings.Contains(errOut, "restored") {
		t.Errorf("verify of a restored copy = %d, %q; want 1 naming the mirrored checkpoint 80", code, errOut)
	}
	if _, _, err := d.open(t); err == nil || !strings.Contains(err.Error(), ledger.ErrBehind.Error()) {
		t.Errorf("ledger.Open of a restored copy = %v, want ErrBehind", err)
	}
	// An auditor who kept checkpoint 80 catches it even without the mirror.
	saved := filepath.Join(t.TempDir(), "cp80")
	os.Rename(filepath.Join(d.dir, ledger.MirrorFile), saved)
	if code, out, errOut := runOffline(t, "verify", "--data", d.dir); code != 0 {
		t.Fatalf("without the mirror the restored copy is self-consistent and should verify: %d, %q, %q", code, out, errOut)
	}
	code, _, errOut = runOffline(t, "verify", "--data", d.dir, "--trusted", saved)
	if code != 1 || !strings.Contains(errOut, "checkpoint 80:") {
		t.Errorf("verify --trusted of a restored copy = %d, %q; want 1 naming checkpoint 80", code, errOut)
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestExportVerifiesAndFailsWithAWrongKeyFile(t *testing.T) {
	d := newTestDataDir(t)
	d.append(t, 600, 250)
	exp := filepath.Join(t.TempDir(), "export")
	code, out, errOut := runOffline(t, "ledger", "export", "--data", d.dir, "--with-bodies", exp)
	if code != 0 || !strings.Contains(out, "exported 600 entries") {
		t.Fatalf("ledger export = %d, %q, %q", code, out, errOut)
	}
	code, out, errOut = runOffline(t, "verify", "--export", exp)
	if code != 0 || !strings.Contains(out, "intact: 600 entries") || !strings.Contains(out, "600 bodies match") {
		t.Fatalf("verify --export = %d, %q, %q", code, out, errOut)
	}
	// The export's own key file, one byte flipped: nothing verifies any more.
	pub := filepath.Join(exp, ledger.ExportPublicKey)
	b, _ := os.ReadFile(pub)
	b[len(b)-5] ^= 1
	os.WriteFile(pub, b, 0o644)
	if code, out, _ := runOffline(t, "verify", "--export", exp); code == 0 {
		t.Errorf("verify --export with a flipped key file = 0, %q", out)
	}
}

func TestLedgerProof(t *testing.T) {
	d := newTestDataDir(t)
	d.append(t, 20, 100)
	code, out, errOut := runOffline(t, "ledger", "proof", "--data", d.dir, d.ids[7])
	if code != 0 || !strings.HasPrefix(out, "c2sp.org/tlog-proof@v1\nindex 7\n") {
		t.Fatalf("ledger proof = %d, %q, %q", code, out, errOut)
	}
	db, l, err := d.open(t)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	defer l.Close()
	e, err := db.Ledger().EntryByID(context.Background(), d.ids[7])
	if err != nil {
		t.Fatal(err)
	}
	v, _ := note.NewVerifier(d.vkey)
	if _, idx, err := ledger.CheckTLogProof([]byte(out), e.Data, d.signer.Name(), v); err != nil || idx != 7 {
		t.Errorf("the printed proof does not check: %d, %v", idx, err)
	}
	if code, _, _ := runOffline(t, "ledger", "proof", "--data", d.dir, "no-such-event"); code == 0 {
		t.Error("ledger proof of an unknown event exited 0")
	}
}
