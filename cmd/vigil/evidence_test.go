package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/aims/bundletest"
	"github.com/vigil-gateway/vigil/internal/config"
)

// runOffline runs a command line with no gateway environment (offline tools).
func runOffline(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	env := newTestEnv(nil)
	code = Run(context.Background(), &env.Env, args)
	return code, env.stdout.String(), env.stderr.String()
}

// TestEvidenceEndToEnd is issue 9's end-to-end: the demo records are imported through
// the CLI, ledger traffic is generated, the SoA lists all 38 controls with evidence,
// records round-trip through YAML, an evidence bundle is exported from the data
// directory and verifies offline, and changing any byte of it fails verification,
// naming what changed.
func TestEvidenceEndToEnd(t *testing.T) {
	cfg := config.Default()
	cfg.AIMS.HealthInterval = time.Hour // evaluated on demand below
	m, _ := runMain(t, cfg)
	base := m.URL()
	ctx := context.Background()

	code, out, errOut := runCLI(t, base, "records", "import", filepath.Join("..", "..", "examples", "records"))
	if code != 0 || !strings.Contains(out, "2 policy sign-offs recorded") {
		t.Fatalf("records import: %d %q %q", code, out, errOut)
	}
	// Validation errors name file, line and field, and nothing is imported.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("kind: risk\nid: R-9\nsystem: credit-scoring\ntitle: t\nowner: o\nlikelihood: 8\nimpact: 2\nresidual_likelihood: 1\nresidual_impact: 1\noption: accept\nstatus: open\nassessed_at: 2026-11-01\nnext_review: 2027-11-01\n"), 0o644)
	code, _, errOut = runCLI(t, base, "records", "import", bad)
	if code == 0 || !strings.Contains(errOut, "bad.yaml:6") || !strings.Contains(errOut, "likelihood: 8 is outside the scale 1..5") {
		t.Errorf("bad import: %d %q", code, errOut)
	}

	// Ledger traffic: an agent, its observed use, a kill switch, a verification.
	st, agent := call(t, "POST", base+"/api/agents", adminToken, map[string]any{"name": "scorer", "system": "credit-scoring"})
	if st != 201 {
		t.Fatalf("create agent = %d %v", st, agent)
	}
	st, body := call(t, "POST", base+"/api/aims/usage", adminToken, map[string]any{"observations": []map[string]string{
		{"agent": "scorer", "provider": "openai", "model": "gpt-4o-2024-08-06"},
		{"agent": "scorer", "provider": "openai", "model": "gpt-5-preview"},
		{"agent": "scorer", "server": "bureau", "tool": "get_credit_report"},
		{"source": "key:vk_leaked01", "model": "gpt-4o"},
	}})
	if st != 200 {
		t.Fatalf("report usage = %d %v", st, body)
	}
	if st, body = call(t, "POST", base+"/api/agents/scorer/suspend", adminToken, map[string]string{"reason": "scores drifting for thin-file applicants"}); st != 200 {
		t.Fatalf("suspend = %d %v", st, body)
	}
	if st, body = call(t, "POST", base+"/api/agents/scorer/resume", adminToken, nil); st != 200 {
		t.Fatalf("resume = %d %v", st, body)
	}
	st, body = call(t, "POST", base+"/api/aims/verify", adminToken, nil)
	if st != 200 || body["ok"] != true {
		t.Fatalf("verify ledger = %d %v", st, body)
	}
	if st, body = call(t, "POST", base+"/api/aims/health/run", adminToken, nil); st != 200 {
		t.Fatalf("health run = %d %v", st, body)
	}
	checks := map[string]bool{}
	for _, c := range body["checks"].([]any) {
		c := c.(map[string]any)
		checks[c["check"].(string)] = c["pass"].(bool)
	}
	if !checks["ledger_verified"] || checks["agents_only_through_vigil"] || !checks["pii_masking_every_route"] || !checks["policy_live"] {
		t.Errorf("health checks = %v; want the ledger verified, PII masking on and the policy live, and the unapproved model failing", checks)
	}

	// Inventory discovered from traffic flags the unapproved model and the stray key.
	code, out, _ = runCLI(t, base, "records", "inventory")
	if code != 0 || !strings.Contains(out, "credit-scoring") || !strings.Contains(out, "vk_leaked01") {
		t.Errorf("records inventory: %d %q", code, out)
	}
	// The SoA lists all 38 controls, with evidence where the system has it.
	st, soa := call(t, "GET", base+"/api/aims/soa", adminToken, nil)
	if st != 200 {
		t.Fatalf("soa = %d %v", st, soa)
	}
	entries := soa["controls"].([]any)
	if len(entries) != 38 {
		t.Fatalf("SoA has %d controls", len(entries))
	}
	withAuto := 0
	for _, e := range entries {
		for _, ev := range e.(map[string]any)["evidence"].([]any) {
			if ev.(map[string]any)["automatic"] == true {
				withAuto++
				break
			}
		}
	}
	if withAuto < 15 {
		t.Errorf("only %d controls have automatic evidence", withAuto)
	}
	// The kill switch opened an incident (the runner watches the ledger).
	code, out, _ = runCLI(t, base, "records", "incidents")
	if code != 0 || !strings.Contains(out, "INC-2026-07") || !strings.Contains(out, "2026-12-03T11:05:00Z") || !strings.Contains(out, "Kill switch used") {
		t.Errorf("records incidents (with the Art. 73 deadline 15 days after awareness): %d %q", code, out)
	}

	// Records round-trip through YAML: export, import again, nothing changes.
	dir := t.TempDir()
	if code, out, errOut = runCLI(t, base, "records", "export", dir); code != 0 {
		t.Fatalf("records export: %d %q %q", code, out, errOut)
	}
	code, out, errOut = runCLI(t, base, "records", "import", dir)
	if code != 0 || !strings.Contains(out, "0 created, 0 updated") {
		t.Errorf("re-import of the export: %d %q %q", code, out, errOut)
	}

	if err := m.ledger.PublishCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "evidence.tar.gz")
	today := time.Now().UTC()
	code, out, errOut = runOffline(t, "evidence", "export", "--data", m.Config.DataDir, "--from", today.AddDate(0, 0, -1).Format(time.DateOnly),
		"--to", today.Format(time.DateOnly), "--out", bundle, "--with-bodies")
	if code != 0 || !strings.Contains(out, "ledger entries with inclusion proofs") {
		t.Fatalf("evidence export: %d %q %q", code, out, errOut)
	}
	key := filepath.Join(m.Config.DataDir, "ledger.pub")
	code, out, errOut = runOffline(t, "evidence", "verify", "--key", key, bundle)
	if code != 0 || !strings.Contains(out, "What this proves") || !strings.Contains(out, "bodies") {
		t.Fatalf("evidence verify: %d %q %q", code, out, errOut)
	}

	// Any changed byte fails, naming what.
	archive, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	names, files := bundletest.Unpack(t, archive)
	for _, c := range []struct{ member, want string }{
		{"soa.csv", "file soa.csv"},
		{"policies.json", "file policies.json"},
		{"ledger/entries.jsonl", "file ledger/entries.jsonl"},
		{"ledger/bodies.jsonl", "body "},
		{"ledger/consistency.json", "file ledger/consistency.json"},
		{"report.html", "file report.html"},
	} {
		t.Run("flip "+c.member, func(t *testing.T) {
			f := map[string][]byte{}
			for k, v := range files {
				f[k] = bytes.Clone(v)
			}
			b := f[c.member]
			if len(b) == 0 {
				t.Fatalf("bundle has no %s", c.member)
			}
			i := len(b) / 2
			if c.member == "ledger/bodies.jsonl" {
				// Change one base64 character of a body into another valid one, so the
				// body still decodes and must be caught by its digest.
				i = bytes.Index(b, []byte(`"body":"`)) + 9
				if b[i] == 'A' {
					b[i] = 'B'
				} else {
					b[i] = 'A'
				}
			} else {
				b[i] ^= 0x02
			}
			p := filepath.Join(t.TempDir(), "tampered.tar.gz")
			os.WriteFile(p, bundletest.Pack(t, names, f), 0o644)
			code, _, errOut := runOffline(t, "evidence", "verify", "--key", key, p)
			if code != 1 || !strings.Contains(errOut, "does NOT verify") || !strings.Contains(errOut, c.want) {
				t.Errorf("verify after flipping a byte of %s: exit %d, %q; want exit 1 naming %q", c.member, code, errOut, c.want)
			}
		})
	}
	t.Run("flip archive byte", func(t *testing.T) {
		b := bytes.Clone(archive)
		b[len(b)/3] ^= 0x10
		p := filepath.Join(t.TempDir(), "tampered.tar.gz")
		os.WriteFile(p, b, 0o644)
		if code, _, errOut := runOffline(t, "evidence", "verify", "--key", key, p); code != 1 || !strings.Contains(errOut, "does NOT verify") {
			t.Errorf("verify of a corrupted archive: exit %d %q", code, errOut)
		}
	})

	// Bytes that carry no file content are covered too: the gzip header, the tar
	// headers, and anything after the archive.
	appendGzip := func(b []byte) []byte {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		gz.Write([]byte("appended"))
		gz.Close()
		return append(b, buf.Bytes()...)
	}
	for _, c := range []struct {
		name, want string
		change     func(b []byte) []byte
	}{
		{"gzip flags", "byte 3: flags", func(b []byte) []byte { b[3] ^= 0x01; return b }},
		{"gzip mtime", "byte 4: modification time", func(b []byte) []byte { b[4] ^= 0x01; return b }},
		{"gzip extra flags", "byte 8: extra flags", func(b []byte) []byte { b[8] ^= 0x02; return b }},
		{"gzip os", "byte 9: operating system", func(b []byte) []byte { b[9] ^= 0x01; return b }},
		{"tar mtime", "tar header of report.html: mtime differs", func(b []byte) []byte {
			return bundletest.Repack(t, b, func(h *tar.Header) {
				if h.Name == "report.html" {
					h.ModTime = h.ModTime.Add(time.Minute)
				}
			})
		}},
		{"trailing bytes", "1 byte after the end of the archive", func(b []byte) []byte { return append(b, 0) }},
		{"second gzip member", "bytes after the end of the archive (a second gzip member", appendGzip},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "tampered.tar.gz")
			os.WriteFile(p, c.change(bytes.Clone(archive)), 0o644)
			code, _, errOut := runOffline(t, "evidence", "verify", "--key", key, p)
			if code != 1 || !strings.Contains(errOut, "does NOT verify") || !strings.Contains(errOut, c.want) {
				t.Errorf("verify after %s: exit %d, %q; want exit 1 naming %q", c.name, code, errOut, c.want)
			}
		})
	}

	// The HTML report opens and reads well in Chromium.
	screenshotReport(t, files["report.html"])
}

// screenshotReport opens the report from a file:// URL in headless Chromium (driven by
// playwright-core from test/browser-report) and checks what rendered: the title, the
// key headings, and a screenshot that is not blank. It needs node, the npm packages
// (scripts/test-deps.sh) and Debian's chromium; CI has them, elsewhere it skips.
func screenshotReport(t *testing.T, html []byte) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "test", "browser-report"))
	if err != nil {
		t.Fatal(err)
	}
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node"
	} else if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		missing = "playwright-core (run scripts/test-deps.sh)"
	} else if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		missing = "/usr/bin/chromium (apt-get install chromium)"
	}
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("the report screenshot test needs %s", missing)
		}
		t.Skipf("skipping the report screenshot: no %s", missing)
	}
	out := os.Getenv("VIGIL_REPORT_SCREENSHOT_DIR")
	if out == "" {
		out = t.TempDir()
	}
	page := filepath.Join(out, "report.html")
	shot := filepath.Join(out, "report.png")
	if err := os.WriteFile(page, html, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "screenshot.mjs"), page, shot)
	cmd.Dir = dir
	raw, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("screenshot: %v\n%s", err, stderr)
	}
	var res struct {
		Title         string   `json:"title"`
		Headings      []string `json:"headings"`
		Rows          int      `json:"soaRows"`
		Overflowing   []string `json:"overflowing"`
		PageOverflows bool     `json:"pageOverflows"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("screenshot script printed %q: %v", raw, err)
	}
	if !strings.HasPrefix(res.Title, "Vigil evidence bundle") {
		t.Errorf("page title = %q", res.Title)
	}
	for _, h := range []string{"Summary", "Statement of Applicability", "Control health checks", "AI system inventory", "Incidents, nonconformities and corrective actions"} {
		found := false
		for _, got := range res.Headings {
			found = found || got == h
		}
		if !found {
			t.Errorf("rendered headings %q lack %q", res.Headings, h)
		}
	}
	if res.Rows != 38 {
		t.Errorf("the rendered SoA table has %d control rows, want 38", res.Rows)
	}
	if len(res.Overflowing) > 0 || res.PageOverflows {
		t.Errorf("at 1280 px these sections are wider than the page and cut off: %q (page overflows: %v)", res.Overflowing, res.PageOverflows)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	colors := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	if b.Dx() < 800 || b.Dy() < 600 || len(colors) < 20 {
		t.Errorf("screenshot %dx%d with %d colours looks blank", b.Dx(), b.Dy(), len(colors))
	}
}
