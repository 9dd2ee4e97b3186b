package aims_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/aims"
	"github.com/vigil-gateway/vigil/internal/aims/bundletest"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/note"
)

// bundle builds a demo deployment with ledger traffic and exports its bundle.
func bundle(t *testing.T) (*env, []byte) {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t, aims.Options{})
	e.importDemo(t)
	a, sys, _, err := e.inv.CreateAgent(ctx, admin, inventoryAgent("scorer", "credit-scoring"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		ev := vigil.Event{Type: vigil.EventDecision, AgentID: a.ID, SystemID: sys.ID, Decision: vigil.Allow, Time: time.Now()}
		if i%7 == 0 {
			ev.Body = []byte("prompt with a name in it")
		}
		if _, err := e.log.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			e.checkpoint(t)
		}
	}
	e.checkpoint(t)
	if err := e.svc.RecordVerification(ctx, aims.Verification{OK: true, Summary: "intact", Method: "test"}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	sum, err := e.svc.ExportBundle(ctx, &buf, aims.BundleOptions{
		From: testNow.Add(-48 * time.Hour), To: time.Now().Add(time.Hour), Origin: e.opts.Origin, Signer: e.opts.Signer, PublicKey: e.pubkey,
		Sources: aims.Sources{Ledger: e.db.Ledger()}, CheckpointEvery: time.Nanosecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Entries < 20 || sum.Checkpoints < 5 || sum.Bodies != 0 {
		t.Fatalf("export summary = %+v", sum)
	}
	return e, buf.Bytes()
}

func verify(t *testing.T, archive []byte, key string) *aims.BundleReport {
	t.Helper()
	rep, err := aims.VerifyBundle(bytes.NewReader(archive), aims.VerifyOptions{PublicKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestBundleVerifies(t *testing.T) {
	e, archive := bundle(t)
	rep := verify(t, archive, e.pubkey)
	if !rep.OK() {
		t.Fatalf("fresh bundle fails: %v", rep.Failures)
	}
	if !rep.KeyPinned || rep.Entries < 20 || rep.Checkpoints < 5 || rep.Origin != e.opts.Origin {
		t.Errorf("report = %+v", rep)
	}
	names, files := bundletest.Unpack(t, archive)
	for _, want := range []string{aims.ManifestFile, aims.ReportFile, "soa.json", "soa.csv", "inventory.json", "policies.json", "risks.json",
		"impact-assessments.json", "incidents.json", "health-history.json", "audits.json", "reviews.json", "metrics.json",
		aims.CheckpointsFile, aims.ConsistencyFile, aims.EntriesFile, aims.PublicKeyFile} {
		if files[want] == nil {
			t.Errorf("bundle lacks %s (has %v)", want, names)
		}
	}
	if bytes.Contains(files[aims.EntriesFile], []byte("prompt with a name")) {
		t.Error("a body leaked into the entries without --with-bodies")
	}
	html := string(files[aims.ReportFile])
	for _, want := range []string{"<title>Vigil evidence bundle", "Statement of Applicability", "credit-scoring", "INC-2026-07", "Maria Keller"} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "<link", "src=", "url(", "@import"} {
		if strings.Contains(html, bad) {
			t.Errorf("report.html is not self-contained: contains %q", bad)
		}
	}
	// Unpinned: the bundle's own key is used, and the report says so.
	if rep := verify(t, archive, ""); !rep.OK() || rep.KeyPinned || len(rep.Warnings) == 0 {
		t.Errorf("unpinned verify = ok %v pinned %v warnings %v", rep.OK(), rep.KeyPinned, rep.Warnings)
	}
}

func TestBundleTamperingIsNamed(t *testing.T) {
	e, archive := bundle(t)
	names, files := bundletest.Unpack(t, archive)
	flip := func(name string, at func(b []byte) int) func() []byte {
		return func() []byte {
			f := map[string][]byte{}
			for k, v := range files {
				f[k] = bytes.Clone(v)
			}
			b := f[name]
			b[at(b)] ^= 0x01
			return bundletest.Pack(t, names, f)
		}
	}
	middle := func(b []byte) int { return len(b) / 2 }
	// A byte inside an entry's data, so the inclusion proof fails too.
	inData := func(b []byte) int { return bytes.Index(b, []byte(`decision`)) + 2 }
	cases := []struct {
		name  string
		bytes func() []byte
		want  []string
	}{
		{"soa.json", flip("soa.json", middle), []string{"file soa.json", "SHA-256"}},
		{"report.html", flip(aims.ReportFile, middle), []string{"file report.html"}},
		{"incidents.json", flip("incidents.json", middle), []string{"file incidents.json"}},
		{"entry data", flip(aims.EntriesFile, inData), []string{"file ledger/entries.jsonl", "entry "}},
		{"checkpoint note", flip(aims.CheckpointsFile, func(b []byte) int { return bytes.Index(b, []byte("— ")) + 4 }), []string{"file ledger/checkpoints.json", "checkpoint"}},
		{"manifest", flip(aims.ManifestFile, func(b []byte) int { return bytes.Index(b, []byte("soa.json")) - 5 }), []string{"manifest", "signature does not verify"}},
		{"removed member", func() []byte {
			var keep []string
			for _, n := range names {
				if n != "risks.json" {
					keep = append(keep, n)
				}
			}
			return bundletest.Pack(t, keep, files)
		}, []string{"file risks.json", "missing"}},
		{"added member", func() []byte {
			f := map[string][]byte{"extra.json": []byte("{}")}
			for k, v := range files {
				f[k] = v
			}
			return bundletest.Pack(t, append(append([]string{}, names...), "extra.json"), f)
		}, []string{"file extra.json", "not in the signed manifest"}},
		{"archive byte", func() []byte {
			b := bytes.Clone(archive)
			b[len(b)/2] ^= 0xff
			return b
		}, []string{"archive"}},
		{"truncated archive", func() []byte { return archive[:len(archive)-40] }, []string{"archive"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := verify(t, c.bytes(), e.pubkey)
			if rep.OK() {
				t.Fatal("tampered bundle verifies")
			}
			all := strings.Join(rep.Failures, "\n")
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("failures lack %q:\n%s", w, all)
				}
			}
		})
	}
	t.Run("wrong key", func(t *testing.T) {
		_, vkey, _ := note.GenerateKey(rand.Reader, e.opts.Origin)
		rep := verify(t, archive, vkey)
		if rep.OK() || !strings.Contains(strings.Join(rep.Failures, " "), "signature does not verify") {
			t.Errorf("bundle verifies under another key: %v", rep.Failures)
		}
	})
}

func TestBundleWithBodies(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, aims.Options{})
	for range 3 {
		if _, err := e.log.Record(ctx, vigil.Event{Type: vigil.EventModelRequest, Time: time.Now(), Body: []byte("the prompt")}); err != nil {
			t.Fatal(err)
		}
	}
	e.checkpoint(t)
	open := func(eventID string, sealed []byte) ([]byte, []byte, error) {
		return nil, nil, io.ErrUnexpectedEOF // stands in for a wrong key
	}
	var buf bytes.Buffer
	opts := aims.BundleOptions{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour), Origin: e.opts.Origin, Signer: e.opts.Signer,
		PublicKey: e.pubkey, Sources: aims.Sources{Ledger: e.db.Ledger()}, WithBodies: true, OpenBody: open}
	if _, err := e.svc.ExportBundle(ctx, &buf, opts); err == nil {
		t.Fatal("export with an opener that fails succeeded")
	}
}

// TestProvesSaysWhatOneCheckpointProves: a period with one checkpoint (or none) is
// described as such, not as a ledger that "grew between sizes 2 and 2".
func TestProvesSaysWhatOneCheckpointProves(t *testing.T) {
	for _, c := range []struct {
		checkpoints int
		first, last int64
		want, not   string
	}{
		{0, 0, 0, "No checkpoint was published", "grew"},
		{1, 2, 2, "The one checkpoint (size 2)", "grew between"},
		{3, 2, 9, "the ledger only grew between sizes 2 and 9", "The one checkpoint"},
	} {
		r := &aims.BundleReport{Checkpoints: c.checkpoints, FirstSize: c.first, LastSize: c.last}
		got := strings.Join(r.Proves(), "\n")
		if !strings.Contains(got, c.want) || strings.Contains(got, c.not) {
			t.Errorf("%d checkpoints: Proves() = %q; want %q and not %q", c.checkpoints, got, c.want, c.not)
		}
	}
}
