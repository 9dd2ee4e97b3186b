package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/store/postgres/pgtest"
)

func TestRecordsAPIRolesAndErrors(t *testing.T) {
	m, _ := runMain(t, nil)
	base := m.URL()
	token := func(role string) string {
		t.Helper()
		st, body := call(t, "POST", base+"/api/tokens", adminToken, map[string]string{"name": role + "-tok", "role": role})
		if st != 201 {
			t.Fatalf("create %s token = %d %v", role, st, body)
		}
		return body["token"].(string)
	}
	viewer, auditor := token("viewer"), token("auditor")
	doc := map[string]any{"id": "DOC-1", "title": "Risk method", "version": "1", "owner": "cro", "next_review": "2027-06-30"}

	if st, body := call(t, "PUT", base+"/api/records/document/DOC-1", viewer, doc); st != 403 {
		t.Errorf("viewer writes a record: %d %v", st, body)
	}
	if st, body := call(t, "PUT", base+"/api/records/document/DOC-1", adminToken, doc); st != 201 {
		t.Fatalf("admin creates a record: %d %v", st, body)
	}
	if st, body := call(t, "PUT", base+"/api/records/document/DOC-1", adminToken, doc); st != 200 || body["changed"] != false {
		t.Errorf("same record again: %d %v; want 200 unchanged", st, body)
	}
	for _, tok := range []string{viewer, auditor} {
		if st, body := call(t, "GET", base+"/api/records/document/DOC-1", tok, nil); st != 200 || body["title"] != "Risk method" {
			t.Errorf("read a record: %d %v", st, body)
		}
		if st, _ := call(t, "GET", base+"/api/aims/soa", tok, nil); st != 200 {
			t.Errorf("read the SoA: %d", st)
		}
	}
	if st, _ := call(t, "GET", base+"/api/aims/soa", "", nil); st != 401 {
		t.Errorf("SoA without credentials: %d", st)
	}
	// Validation errors name the field.
	bad := map[string]any{"id": "DOC-2", "title": "x", "version": "1", "owner": "cro"}
	if st, body := call(t, "PUT", base+"/api/records/document/DOC-2", adminToken, bad); st != 400 || !strings.Contains(errMessage(body), "next_review: is required") {
		t.Errorf("invalid record: %d %v", st, body)
	}
	if st, body := call(t, "PUT", base+"/api/records/document/DOC-3", adminToken, doc); st != 400 || !strings.Contains(errMessage(body), `does not match the id`) {
		t.Errorf("id mismatch: %d %v", st, body)
	}
	if st, body := call(t, "PUT", base+"/api/records/document/DOC-1", adminToken, map[string]any{"id": "DOC-1", "titel": "x"}); st != 400 || !strings.Contains(errMessage(body), "titel") {
		t.Errorf("unknown field: %d %v", st, body)
	}
	if st, body := call(t, "GET", base+"/api/records/rumour", adminToken, nil); st != 400 || !strings.Contains(errMessage(body), "not a record kind") {
		t.Errorf("unknown kind: %d %v", st, body)
	}
	if st, body := call(t, "GET", base+"/api/records/risk/R-404", adminToken, nil); st != 404 {
		t.Errorf("missing record: %d %v", st, body)
	}
	st, body := call(t, "GET", base+"/api/aims/competence/current?person=a&competence=b", viewer, nil)
	if st != 200 || body["current"] != false {
		t.Errorf("competence check: %d %v", st, body)
	}
	if st, _ := call(t, "DELETE", base+"/api/records/document/DOC-1", adminToken, nil); st != 204 {
		t.Errorf("delete = %d", st)
	}
}

func TestRecordsAndEvidenceHelp(t *testing.T) {
	for _, args := range [][]string{
		{"records", "--help"}, {"records", "import", "--help"}, {"records", "export", "--help"}, {"records", "soa", "--help"},
		{"records", "signoff", "--help"}, {"records", "health", "--help"}, {"records", "incidents", "--help"}, {"records", "inventory", "--help"},
		{"records", "list", "--help"}, {"records", "get", "--help"},
		{"evidence", "--help"}, {"evidence", "export", "--help"}, {"evidence", "verify", "--help"},
	} {
		code, out, errOut := runOffline(t, args...)
		if code != 0 || !strings.Contains(out, "Usage: vigil "+args[0]) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	code, _, errOut := runOffline(t, "evidence", "export", "--from", "2026-01-01")
	if code != 2 || !strings.Contains(errOut, "--to and --out are required") {
		t.Errorf("export without --to/--out: %d %q", code, errOut)
	}
	code, _, errOut = runOffline(t, "evidence", "verify", filepath.Join(t.TempDir(), "nope.tar.gz"))
	if code == 0 || !strings.Contains(errOut, "nope.tar.gz") {
		t.Errorf("verify of a missing file: %d %q", code, errOut)
	}
	// Dry run validates locally and names file, line and field.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("kind: competence\nid: C1\nperson: a\ncompetence: b\nobtained: 2026-01-01\nexpires: 2025-01-01\n"), 0o644)
	code, _, errOut = runOffline(t, "records", "import", "--dry-run", dir)
	if code != 1 || !strings.Contains(errOut, "c.yaml:6") || !strings.Contains(errOut, "expires: 2025-01-01 is not after obtained") {
		t.Errorf("dry run of a bad record: %d %q", code, errOut)
	}
	code, out, _ := runOffline(t, "records", "import", "--dry-run", filepath.Join("..", "..", "examples", "records"))
	if code != 0 || !strings.Contains(out, "are valid") {
		t.Errorf("dry run of the demo: %d %q", code, out)
	}
}

func TestRecordsOnPostgres(t *testing.T) {
	cfg := config.Default()
	cfg.Database = pgtest.DSN(t)
	m, _ := runMain(t, cfg)
	code, out, errOut := runCLI(t, m.URL(), "records", "import", filepath.Join("..", "..", "examples", "records"))
	if code != 0 {
		t.Fatalf("import on PostgreSQL: %d %q %q", code, out, errOut)
	}
	code, out, _ = runCLI(t, m.URL(), "records", "soa")
	if code != 0 || !strings.Contains(out, "38 controls: 37 applicable, 1 excluded, 0 not assessed") {
		t.Errorf("records soa on PostgreSQL: %d %q", code, out)
	}
}

// TestFreshServeOpensNoIncident: a brand-new install has no AI policy recorded, so
// ai_policy_review fails, but the setup grace keeps it from opening an incident (and
// logging one) on the very first start.
func TestFreshServeOpensNoIncident(t *testing.T) {
	m, env := runMain(t, nil)
	base := m.URL()
	st, body := call(t, "POST", base+"/api/aims/health/run", adminToken, nil)
	if st != 200 {
		t.Fatalf("health run = %d %v", st, body)
	}
	for _, c := range body["checks"].([]any) {
		c := c.(map[string]any)
		if c["check"] == "ai_policy_review" && (c["pass"] == true || !strings.Contains(c["detail"].(string), "setup grace")) {
			t.Errorf("fresh ai_policy_review = %v; want a failure that says no incident opens yet", c)
		}
	}
	st, body = call(t, "GET", base+"/api/aims/incidents", adminToken, nil)
	if st != 200 {
		t.Fatalf("incidents = %d %v", st, body)
	}
	if incs, _ := body["incidents"].([]any); len(incs) != 0 {
		t.Errorf("a fresh install has %d incidents: %v", len(incs), incs)
	}
	if strings.Contains(env.stderr.String(), "incident opened") {
		t.Errorf("a fresh install logged an incident:\n%s", env.stderr.String())
	}
}
