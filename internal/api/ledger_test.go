package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/store/sqlite"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// tokenAuth maps bearer secrets to actors.
type tokenAuth map[string]vigil.Actor

func (a tokenAuth) AuthenticateToken(_ context.Context, secret string) (vigil.Actor, error) {
	if act, ok := a[secret]; ok {
		return act, nil
	}
	return vigil.Actor{}, vigil.Errorf(vigil.EUNAUTHORIZED, "unknown token")
}

var testTokens = tokenAuth{
	"admin":    {Kind: vigil.ActorToken, Name: "root", Roles: []vigil.Role{vigil.RoleAdmin}},
	"auditor":  {Kind: vigil.ActorToken, Name: "audit", Roles: []vigil.Role{vigil.RoleAuditor}},
	"viewer":   {Kind: vigil.ActorToken, Name: "view", Roles: []vigil.Role{vigil.RoleViewer}},
	"reviewer": {Kind: vigil.ActorToken, Name: "rev", Roles: []vigil.Role{vigil.RoleReviewer}},
}

type ledgerFixture struct {
	handler http.Handler
	log     *ledger.Log
	store   ledger.Store
	origin  string
	v       note.Verifier
	ids     []string
}

func newLedgerFixture(t testing.TB, n int, public bool) *ledgerFixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	skey, vkey, _ := note.GenerateKey(rand.Reader, "api.test/ledger")
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	key := make([]byte, 32)
	rand.Read(key)
	l, err := ledger.Open(ctx, db.Ledger(), ledger.Options{Origin: s.Name(), Signer: s, Verifier: v, BodyKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	f := &ledgerFixture{log: l, store: db.Ledger(), origin: s.Name(), v: v}
	for i := range n {
		r, err := l.Record(ctx, vigil.Event{Type: "test.event", Attrs: map[string]string{"i": fmt.Sprint(i)}, Body: []byte("secret prompt")})
		if err != nil {
			t.Fatal(err)
		}
		f.ids = append(f.ids, r.ID)
		if i == n/2 {
			if err := l.PublishCheckpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.PublishCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	mux := web.NewMux(web.Errors{})
	(&Server{Auth: testTokens, Ledger: LedgerAPI{Log: l, PublicTiles: public}}).Register(mux)
	f.handler = mux
	return f
}

func (f *ledgerFixture) do(t testing.TB, method, path, token, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, r)
	return w
}

func TestLedgerTilesNeedATokenUnlessPublic(t *testing.T) {
	for _, public := range []bool{false, true} {
		f := newLedgerFixture(t, 300, public)
		for _, path := range []string{"/ledger/checkpoint", "/ledger/tile/0/000", "/ledger/tile/entries/001.p/44"} {
			got := f.do(t, "GET", path, "", "").Code
			want := http.StatusUnauthorized
			if public {
				want = http.StatusOK
			}
			if got != want {
				t.Errorf("public=%v: GET %s without a token = %d, want %d", public, path, got, want)
			}
			if got := f.do(t, "GET", path, "auditor", "").Code; got != http.StatusOK {
				t.Errorf("public=%v: GET %s as auditor = %d, want 200", public, path, got)
			}
		}
	}
}

func TestLedgerTilesMatchTheTree(t *testing.T) {
	f := newLedgerFixture(t, 300, true)
	ctx := context.Background()
	w := f.do(t, "GET", "/ledger/checkpoint", "", "")
	cp, err := ledger.ParseCheckpoint(w.Body.Bytes(), f.origin, f.v)
	if err != nil || cp.Size != 300 {
		t.Fatalf("checkpoint = %+v, %v", cp, err)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("checkpoint Cache-Control = %q, want no-cache", cc)
	}
	// Hash tiles checked the way a tlog-tiles client does: against the checkpoint.
	tr := tlog.TileHashReader(tlog.Tree{N: cp.Size, Hash: cp.Root}, tileReader{t, f})
	p, err := tlog.ProveRecord(cp.Size, 123, tr)
	if err != nil {
		t.Fatalf("proof from served tiles: %v", err)
	}
	es, _ := f.store.Entries(ctx, 123, 124)
	if err := tlog.CheckRecord(p, cp.Size, cp.Root, 123, tlog.RecordHash(es[0].Data)); err != nil {
		t.Errorf("entry 123 does not prove against the served tiles: %v", err)
	}
	// Entry bundles hold the leaves.
	w = f.do(t, "GET", "/ledger/tile/entries/001.p/44", "", "")
	leaves, err := ledger.ParseBundle(w.Body.Bytes())
	if err != nil || len(leaves) != 44 {
		t.Fatalf("bundle 1 = %d leaves, %v", len(leaves), err)
	}
	es, _ = f.store.Entries(ctx, 256, 300)
	for i := range leaves {
		if string(leaves[i]) != string(es[i].Data) {
			t.Fatalf("bundle entry %d differs from the stored leaf", i)
		}
	}
	for path, want := range map[string]struct {
		code  int
		cache string
	}{
		"/ledger/tile/0/000":             {200, "public, max-age=31536000, immutable"},
		"/ledger/tile/0/001.p/44":        {200, "no-cache"},
		"/ledger/tile/0/001.p/10":        {200, "no-cache"}, // an older client's narrower tile
		"/ledger/tile/0/001":             {404, ""},         // not full yet
		"/ledger/tile/0/001.p/45":        {404, ""},
		"/ledger/tile/1/000.p/1":         {200, "no-cache"},
		"/ledger/tile/entries/000":       {200, "public, max-age=31536000, immutable"},
		"/ledger/tile/entries/002.p/1":   {404, ""},
		"/ledger/tile/0/5":               {404, ""}, // not canonical
		"/ledger/tile/entries/../../etc": {404, ""},
	} {
		w := f.do(t, "GET", path, "", "")
		if w.Code != want.code || (want.code == 200 && w.Header().Get("Cache-Control") != want.cache) {
			t.Errorf("GET %s = %d, Cache-Control %q; want %d, %q", path, w.Code, w.Header().Get("Cache-Control"), want.code, want.cache)
		}
	}
}

type tileReader struct {
	t testing.TB
	f *ledgerFixture
}

func (r tileReader) Height() int { return ledger.TileHeight }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, tile := range tiles {
		w := r.f.do(r.t, "GET", "/ledger/"+ledger.TilePath(tile), "", "")
		if w.Code != 200 {
			return nil, fmt.Errorf("GET %s = %d", ledger.TilePath(tile), w.Code)
		}
		out[i] = w.Body.Bytes()
	}
	return out, nil
}

func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

func TestLedgerEventWithProof(t *testing.T) {
	f := newLedgerFixture(t, 40, false)
	id := f.ids[17]
	if got := f.do(t, "GET", "/api/ledger/events/"+id, "reviewer", "").Code; got != http.StatusForbidden {
		t.Errorf("GET event as reviewer = %d, want 403", got)
	}
	w := f.do(t, "GET", "/api/ledger/events/"+id, "viewer", "")
	if w.Code != 200 {
		t.Fatalf("GET event = %d %s", w.Code, w.Body)
	}
	var got ledgerEventView
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != id || got.Index != 17 {
		t.Errorf("event = %s at %d, want %s at 17", got.ID, got.Index, id)
	}
	if strings.Contains(string(got.Entry), "secret prompt") {
		t.Error("the body is in the served entry")
	}
	cp, idx, err := ledger.CheckTLogProof([]byte(got.TLogProof), got.Entry, f.origin, f.v)
	if err != nil || idx != 17 || cp.Size != 40 {
		t.Errorf("tlog_proof = %d in %d, %v", idx, cp.Size, err)
	}
	var rp tlog.RecordProof
	for _, s := range got.InclusionProof {
		b, _ := base64.StdEncoding.DecodeString(s)
		rp = append(rp, tlog.Hash(b))
	}
	if err := tlog.CheckRecord(rp, cp.Size, cp.Root, 17, tlog.RecordHash(got.Entry)); err != nil {
		t.Errorf("inclusion_proof: %v", err)
	}
	w = f.do(t, "GET", "/api/ledger/events/"+id+"?format=tlog-proof", "auditor", "")
	if w.Body.String() != got.TLogProof {
		t.Errorf("?format=tlog-proof = %q, want the tlog_proof field", w.Body)
	}
	if got := f.do(t, "GET", "/api/ledger/events/nope", "viewer", "").Code; got != 404 {
		t.Errorf("GET unknown event = %d, want 404", got)
	}
}

func TestLedgerConsistency(t *testing.T) {
	f := newLedgerFixture(t, 40, false)
	w := f.do(t, "GET", "/api/ledger/consistency?from=21&to=40", "auditor", "")
	if w.Code != 200 {
		t.Fatalf("consistency = %d %s", w.Code, w.Body)
	}
	var got struct {
		From, To      int64
		Proof         []string
		OldCheckpoint string `json:"old_checkpoint"`
		NewCheckpoint string `json:"new_checkpoint"`
	}
	json.Unmarshal(w.Body.Bytes(), &got)
	old, err1 := ledger.ParseCheckpoint([]byte(got.OldCheckpoint), f.origin, f.v)
	nw, err2 := ledger.ParseCheckpoint([]byte(got.NewCheckpoint), f.origin, f.v)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	var tp tlog.TreeProof
	for _, s := range got.Proof {
		b, _ := base64.StdEncoding.DecodeString(s)
		tp = append(tp, tlog.Hash(b))
	}
	if err := tlog.CheckTree(tp, nw.Size, nw.Root, old.Size, old.Root); err != nil {
		t.Errorf("served consistency proof 21→40: %v", err)
	}
	for q, want := range map[string]int{"from=21&to=39": 404, "from=x&to=40": 400, "from=40&to=21": 400} {
		if got := f.do(t, "GET", "/api/ledger/consistency?"+q, "auditor", "").Code; got != want {
			t.Errorf("consistency?%s = %d, want %d", q, got, want)
		}
	}
}

func TestLedgerAppendAndErase(t *testing.T) {
	f := newLedgerFixture(t, 2, false)
	ctx := context.Background()
	if got := f.do(t, "POST", "/api/ledger/events", "viewer", `{"type":"ticket.closed","data":{}}`).Code; got != 403 {
		t.Errorf("append as viewer = %d, want 403", got)
	}
	w := f.do(t, "POST", "/api/ledger/events", "auditor", `{"type":"ticket.closed","data":{"ticket":42,"by":"alice@example.com"}}`)
	if w.Code != 201 {
		t.Fatalf("append = %d %s", w.Code, w.Body)
	}
	var rec vigil.Receipt
	json.Unmarshal(w.Body.Bytes(), &rec)
	if rec.Index != 2 || rec.ID == "" {
		t.Errorf("append receipt = %+v, want index 2", rec)
	}
	e, err := f.store.EntryByID(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	env, _ := ledger.ParseEnvelope(e.Data)
	if env.Type != "external.ticket.closed" || env.Actor != "token:audit" || env.Body == nil || strings.Contains(string(e.Data), "alice") {
		t.Errorf("appended envelope = %s; want type external.ticket.closed by token:audit, data only in the body", e.Data)
	}
	// Vigil's own types cannot be impersonated: they land under external.
	w = f.do(t, "POST", "/api/ledger/events", "admin", `{"type":"ledger.erasure","data":null}`)
	json.Unmarshal(w.Body.Bytes(), &rec)
	e, _ = f.store.EntryByID(ctx, rec.ID)
	if env, _ := ledger.ParseEnvelope(e.Data); env.Type != "external.ledger.erasure" {
		t.Errorf("appended type = %q, want external.ledger.erasure", env.Type)
	}
	for body, want := range map[string]int{`{"type":"Bad Type","data":1}`: 400, `{"data":1}`: 400, `{"type":"a","extra":1}`: 400} {
		if got := f.do(t, "POST", "/api/ledger/events", "admin", body).Code; got != want {
			t.Errorf("append %s = %d, want %d", body, got, want)
		}
	}

	if got := f.do(t, "POST", "/api/ledger/events/"+f.ids[0]+"/erase", "auditor", `{"reason":"x"}`).Code; got != 403 {
		t.Errorf("erase as auditor = %d, want 403", got)
	}
	w = f.do(t, "POST", "/api/ledger/events/"+f.ids[0]+"/erase", "admin", `{"reason":"data subject request"}`)
	if w.Code != 200 {
		t.Fatalf("erase = %d %s", w.Code, w.Body)
	}
	if got := f.do(t, "POST", "/api/ledger/events/"+f.ids[0]+"/erase", "admin", `{"reason":"again"}`).Code; got != 404 {
		t.Errorf("second erase = %d, want 404", got)
	}
	if err := f.log.PublishCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := ledger.Verify(ctx, f.store, ledger.VerifyOptions{Origin: f.origin, Verifier: f.v})
	if err != nil || !rep.OK() {
		t.Fatalf("verify after API writes: %+v, %v", rep, err)
	}
	want := []ledger.Withheld{{Index: 0, EventID: f.ids[0], ErasedAt: 4}}
	if diff := cmp.Diff(want, rep.Withheld); diff != "" {
		t.Errorf("withheld (-want +got):\n%s", diff)
	}
}

// BenchmarkServeInclusionProof is GET /api/ledger/events/{id} for an entry of a
// 100,000-entry ledger, through the whole handler (auth, proof, JSON).
func BenchmarkServeInclusionProof(b *testing.B) {
	f := newLedgerFixture(b, 0, false)
	ctx := context.Background()
	const n = 100_000
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 64 {
				if _, err := f.log.Record(ctx, vigil.Event{Type: "bench.event", Attrs: map[string]string{"i": fmt.Sprint(i)}}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := f.log.PublishCheckpoint(ctx); err != nil {
		b.Fatal(err)
	}
	es, err := f.store.Entries(ctx, 0, n)
	if err != nil || len(es) != n {
		b.Fatalf("entries: %d, %v", len(es), err)
	}
	ids := make([]string, n)
	for i, e := range es {
		ids[i] = e.EventID
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		w := f.do(b, "GET", "/api/ledger/events/"+ids[(i*7919)%n], "viewer", "")
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
		i++
	}
}
