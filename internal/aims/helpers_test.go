package aims_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/aims"
	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/store/sqlite"
	"github.com/vigil-gateway/vigil/internal/store/storetest"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/note"
)

// env is a management system over a real SQLite store and ledger.
type env struct {
	svc    *aims.Service
	inv    *inventory.Service
	db     *sqlite.DB
	log    *ledger.Log
	opts   ledger.Options
	pubkey string
	now    time.Time
}

var admin = vigil.Actor{Kind: vigil.ActorToken, Name: "compliance", Roles: []vigil.Role{vigil.RoleAdmin}}

// testNow is the clock of unit tests: after the demo data's dates, before its reviews.
var testNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func newEnv(t *testing.T, o aims.Options) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	skey, vkey, err := note.GenerateKey(rand.Reader, "test.vigil.example/ledger")
	if err != nil {
		t.Fatal(err)
	}
	opts := storetest.LedgerOptions(t)
	if opts.Signer, err = note.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	if opts.Verifier, err = note.NewVerifier(vkey); err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(ctx, db.Ledger(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	e := &env{db: db, log: l, opts: opts, pubkey: vkey, now: testNow}
	clock := func() time.Time { return e.now }
	e.inv = &inventory.Service{Store: db.Inventory(), Ledger: l, Now: clock}
	e.svc = &aims.Service{Store: db.AIMS(), Registry: e.inv, Ledger: l, Options: o, Now: clock}
	return e
}

// demo parses the committed demo records.
func demo(t *testing.T) []aims.Parsed {
	t.Helper()
	dir := filepath.Join("..", "..", "examples", "records")
	names, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no demo records in %s: %v", dir, err)
	}
	sort.Strings(names)
	var out []aims.Parsed
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := aims.ParseRecords(filepath.Base(n), b)
		if err != nil {
			t.Fatalf("demo file %s: %v", n, err)
		}
		out = append(out, ps...)
	}
	return out
}

func (e *env) importDemo(t *testing.T) aims.ImportResult {
	t.Helper()
	res, err := e.svc.Import(context.Background(), admin, demo(t))
	if err != nil {
		t.Fatalf("import demo: %v", err)
	}
	return res
}

func (e *env) checkpoint(t *testing.T) {
	t.Helper()
	if err := e.log.PublishCheckpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
}
