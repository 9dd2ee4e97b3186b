package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/store/postgres/pgtest"
	"github.com/vigil-gateway/vigil/internal/store/sqlite"
)

// TestAgentLifecycle is issue 2's end-to-end: a system and an agent are created over
// the API, the agent's key works on the agent route, a suspended agent is refused with
// a clear error, and resumes.
func TestAgentLifecycle(t *testing.T) {
	m, _ := runMain(t, nil)
	testAgentLifecycle(t, m)
}

func TestAgentLifecyclePostgres(t *testing.T) {
	cfg := config.Default()
	cfg.Database = pgtest.DSN(t)
	m, _ := runMain(t, cfg)
	testAgentLifecycle(t, m)
}

func testAgentLifecycle(t *testing.T, m *Main) {
	base := m.URL()
	st, sys := call(t, "POST", base+"/api/systems", adminToken, map[string]string{"name": "support", "purpose": "answer customer tickets", "owner": "cx-team"})
	if st != 201 || sys["complete"] != true {
		t.Fatalf("create system = %d %v", st, sys)
	}
	st, agent := call(t, "POST", base+"/api/agents", adminToken, map[string]any{"name": "triage-bot", "system": "support", "labels": map[string]string{"tier": "1"}})
	if st != 201 {
		t.Fatalf("create agent = %d %v", st, agent)
	}
	key, _ := agent["api_key"].(string)
	if !strings.HasPrefix(key, "vk_") || agent["system"] != "support" {
		t.Fatalf("agent answer = %v, want a vk_ key and system support", agent)
	}

	st, models := call(t, "GET", base+"/v1/models", key, nil)
	if st != 200 || models["object"] != "list" {
		t.Fatalf("GET /v1/models with the agent key = %d %v", st, models)
	}
	if data, ok := models["data"].([]any); !ok || len(data) != 0 {
		t.Errorf("models data = %v, want an empty list (no providers configured)", models["data"])
	}

	st, body := call(t, "GET", base+"/v1/models", "vk_madeupmadeupmadeupmadeupmadeupmadeup", nil)
	if st != 401 || errMessage(body) == "" {
		t.Errorf("made-up key: %d %v, want 401 with a JSON error", st, body)
	}
	st, body = call(t, "GET", base+"/api/agents", key, nil)
	if st != 401 && st != 403 {
		t.Errorf("agent key on an admin route: %d %v, want 401 or 403", st, body)
	}
	st, body = call(t, "GET", base+"/v1/models", adminToken, nil)
	if st != 401 {
		t.Errorf("admin token on an agent route: %d %v, want 401", st, body)
	}

	st, body = call(t, "POST", base+"/api/agents/triage-bot/suspend", adminToken, map[string]string{"reason": "looping on refunds"})
	if st != 200 || body["status"] != "suspended" {
		t.Fatalf("suspend = %d %v", st, body)
	}
	st, body = call(t, "GET", base+"/v1/models", key, nil)
	if st != 403 || !strings.Contains(errMessage(body), "suspended") || !strings.Contains(errMessage(body), "looping on refunds") {
		t.Fatalf("suspended agent's call = %d %v, want 403 naming the suspension and its reason", st, body)
	}
	st, body = call(t, "POST", base+"/api/agents/triage-bot/resume", adminToken, nil)
	if st != 200 || body["status"] != "active" {
		t.Fatalf("resume = %d %v", st, body)
	}
	if st, body = call(t, "GET", base+"/v1/models", key, nil); st != 200 {
		t.Fatalf("resumed agent's call = %d %v", st, body)
	}

	// Suspending the whole system stops its agents too.
	if st, body = call(t, "POST", base+"/api/systems/support/suspend", adminToken, map[string]string{"reason": "incident 42"}); st != 200 {
		t.Fatalf("suspend system = %d %v", st, body)
	}
	if st, body = call(t, "GET", base+"/v1/models", key, nil); st != 403 || !strings.Contains(errMessage(body), "incident 42") {
		t.Fatalf("agent of a suspended system = %d %v", st, body)
	}
	if st, _ = call(t, "POST", base+"/api/systems/support/resume", adminToken, nil); st != 200 {
		t.Fatalf("resume system = %d", st)
	}

	// Rotation: the new key works, the old one is refused.
	st, rotated := call(t, "POST", base+"/api/agents/triage-bot/rotate", adminToken, nil)
	if st != 201 {
		t.Fatalf("rotate = %d %v", st, rotated)
	}
	newKey, _ := rotated["api_key"].(string)
	if st, _ = call(t, "GET", base+"/v1/models", newKey, nil); st != 200 {
		t.Errorf("new key after rotation = %d, want 200", st)
	}
	if st, _ = call(t, "GET", base+"/v1/models", key, nil); st != 401 {
		t.Errorf("old key after rotation = %d, want 401", st)
	}

	// Every change is in the ledger.
	if err := m.ledger.PublishCheckpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"agent.created", "agent.suspended", "agent.resumed", "system.created", "token.created", "token.revoked"}
	got := ledgerTypes(t, m.store.Ledger())
	for _, w := range want {
		if got[w] == 0 {
			t.Errorf("ledger has no %s event; has %v", w, got)
		}
	}
}

func ledgerTypes(t *testing.T, s ledger.Store) map[string]int {
	t.Helper()
	ctx := context.Background()
	size, _, err := s.TreeState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := s.Entries(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range entries {
		env, err := ledger.ParseEnvelope(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		out[env.Type]++
	}
	return out
}

func TestBadInput(t *testing.T) {
	m, env := runMain(t, nil)
	base := m.URL()
	_, viewer := call(t, "POST", base+"/api/tokens", adminToken, map[string]string{"name": "dash", "role": "viewer"})
	viewerTok, _ := viewer["token"].(string)

	cases := []struct {
		name, method, path, token string
		body                      any
		status                    int
		msg                       string
	}{
		{"malformed JSON", "POST", "/api/agents", adminToken, `{"name": "x",`, 400, "truncated"},
		{"not JSON", "POST", "/api/agents", adminToken, `name=x`, 400, "not valid JSON"},
		{"unknown field", "POST", "/api/agents", adminToken, `{"name":"x","system":"s","colour":"red"}`, 400, `unknown field "colour"`},
		{"wrong type", "POST", "/api/agents", adminToken, `{"name":42}`, 400, `field "name"`},
		{"two values", "POST", "/api/agents", adminToken, `{"name":"a","system":"s"}{}`, 400, "more than one"},
		{"empty body", "POST", "/api/agents", adminToken, ``, 400, "empty"},
		{"bad name", "POST", "/api/agents", adminToken, `{"name":"Bad Name!","system":"s"}`, 400, "agent name"},
		{"no system", "POST", "/api/agents", adminToken, `{"name":"ok"}`, 400, "system is required"},
		{"suspend without reason", "POST", "/api/agents/nobody/suspend", adminToken, nil, 404, "no agent"},
		{"unknown route", "GET", "/api/nothing-here", adminToken, nil, 404, "no route"},
		{"wrong method", "DELETE", "/api/agents", adminToken, nil, 405, "not allowed"},
		{"missing token", "GET", "/api/agents", "", nil, 401, "missing credentials"},
		{"wrong token", "GET", "/api/agents", "vt_wrongwrongwrongwrongwrongwrong", nil, 401, "invalid"},
		{"viewer cannot create", "POST", "/api/agents", viewerTok, `{"name":"v","system":"s"}`, 403, "roles"},
		{"viewer cannot list tokens", "GET", "/api/tokens", viewerTok, nil, 403, "roles"},
		{"bad role", "POST", "/api/tokens", adminToken, `{"name":"x","role":"root"}`, 400, "role"},
		{"bad ttl", "POST", "/api/tokens", adminToken, `{"name":"x","role":"viewer","ttl":"soon"}`, 400, "ttl"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, body := call(t, c.method, base+c.path, c.token, c.body)
			if st != c.status || !strings.Contains(errMessage(body), c.msg) {
				t.Errorf("%s %s = %d %v; want %d with a message containing %q", c.method, c.path, st, body, c.status, c.msg)
			}
			if e, _ := body["error"].(map[string]any); e["code"] == nil || e["request_id"] == nil {
				t.Errorf("error body %v lacks code or request_id", body)
			}
		})
	}

	t.Run("oversize body", func(t *testing.T) {
		big := `{"name":"` + strings.Repeat("a", int(m.Config.HTTP.MaxBodyBytes)) + `"}`
		st, body := call(t, "POST", base+"/api/agents", adminToken, big)
		if st != 413 || !strings.Contains(errMessage(body), "larger than the limit") {
			t.Errorf("oversize = %d %v", st, body)
		}
	})
	t.Run("model API routes answer in their API's shape", func(t *testing.T) {
		for _, c := range []struct {
			method, path string
			status       int
			anthropic    bool
		}{
			{"GET", "/v1/chat/completions", 405, false},
			{"POST", "/v1/nope", 404, false},
			{"GET", "/v1/messages", 405, true},
		} {
			st, body := call(t, c.method, base+c.path, "", nil)
			e, _ := body["error"].(map[string]any)
			switch {
			case st != c.status || e == nil || e["message"] == nil || e["type"] == nil:
				t.Errorf("%s %s = %d %v; want %d in the model API's error shape", c.method, c.path, st, body, c.status)
			case c.anthropic && body["type"] != "error":
				t.Errorf("%s %s = %v; want Anthropic's {\"type\":\"error\",…}", c.method, c.path, body)
			}
		}
	})
	t.Run("allow header on 405", func(t *testing.T) {
		req, _ := http.NewRequest("PUT", base+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET" {
			t.Errorf("PUT /healthz = %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
	// Nothing secret reaches the log.
	logs := env.stderr.String()
	for _, secret := range []string{adminToken, viewerTok} {
		if strings.Contains(logs, secret) {
			t.Errorf("a token appears in the log")
		}
	}
	if strings.Contains(logs, "panic") {
		t.Errorf("log mentions a panic:\n%s", logs)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	m, _ := runMain(t, nil)
	for _, p := range []string{"/healthz", "/readyz"} {
		if st, body := call(t, "GET", m.URL()+p, "", nil); st != 200 {
			t.Errorf("GET %s = %d %v", p, st, body)
		}
	}
	call(t, "GET", m.URL()+"/healthz", "", nil)
	resp, err := getWithToken(m.URL()+"/metrics", adminToken)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `vigil_http_requests_total{code="200",route="GET /healthz"}`) {
		t.Errorf("metrics lack the request counter for /healthz:\n%.2000s", b)
	}
	// Metrics name agents and models: without a token they are refused by default.
	if st, body := call(t, "GET", m.URL()+"/metrics", "", nil); st != 401 {
		t.Errorf("GET /metrics without a token = %d %v, want 401", st, body)
	}
	// The database going away is reported by /readyz, not by a crash.
	m.store.Close()
	if st, body := call(t, "GET", m.URL()+"/readyz", "", nil); st != 503 || !strings.Contains(errMessage(body), "database") {
		t.Errorf("readyz with the store closed = %d %v, want 503 naming the database", st, body)
	}
}

func TestFirstStartPrintsTokenOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	start := func() (*Main, *testEnv) {
		env := newTestEnv(map[string]string{})
		m := NewMain(&env.Env)
		m.Config.Listen, m.Config.DataDir = "127.0.0.1:0", dir
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return m, env
	}
	m, env := start()
	tok := m.AdminToken
	if !strings.HasPrefix(tok, "vt_") || !strings.Contains(env.stdout.String(), tok) {
		t.Fatalf("first start printed %q; want the generated vt_ token", env.stdout.String())
	}
	if st, _ := call(t, "GET", m.URL()+"/api/whoami", tok, nil); st != 200 {
		t.Fatalf("generated token doesn't work: %d", st)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m, env = start()
	defer m.Close()
	if m.AdminToken != "" || strings.Contains(env.stdout.String(), "vt_") {
		t.Errorf("second start printed a token again:\n%s", env.stdout.String())
	}
	if st, _ := call(t, "GET", m.URL()+"/api/whoami", tok, nil); st != 200 {
		t.Errorf("first start's token stopped working after restart: %d", st)
	}
	for _, f := range []string{"vigil.db", "master.key", "ledger.key", "ledger.pub"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("data dir lacks %s: %v", f, err)
		}
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	m, _ := runMain(t, nil)
	// Send a request whose body arrives slowly, close the server in the middle, then
	// finish the body: the request must still complete.
	conn, err := net.Dial("tcp", m.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"name":"late","purpose":"started before shutdown"}`
	head := "POST /api/systems HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + adminToken +
		"\r\nContent-Type: application/json\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n"
	if _, err := conn.Write([]byte(head + body[:10])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the server start handling it
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	time.Sleep(100 * time.Millisecond)
	if _, err := conn.Write([]byte(body[10:])); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufioReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request was cut off: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Errorf("in-flight request = %d, want 201", resp.StatusCode)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	// The store was closed cleanly: it reopens and holds the late system.
	db, err := sqlite.Open(context.Background(), filepath.Join(m.Config.DataDir, "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Inventory().SystemByName(context.Background(), "late"); err != nil {
		t.Errorf("system created by the in-flight request is missing: %v", err)
	}
}

// TestFailedFirstStartKeepsTheToken: a first start that fails (here: the port is
// taken) must not use up the one-time token; the next start prints it, and a
// VIGIL_ADMIN_TOKEN given then is honoured.
func TestFailedFirstStartKeepsTheToken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := filepath.Join(t.TempDir(), "data")
	env := newTestEnv(map[string]string{})
	m := NewMain(&env.Env)
	m.Config.Listen, m.Config.DataDir = taken.Addr().String(), dir
	if err := m.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "couldn't listen") {
		t.Fatalf("start on a taken port = %v, want a listen error", err)
	}
	m.Close()

	const chosen = "operator-chosen-token-0123456789"
	env = newTestEnv(map[string]string{"VIGIL_ADMIN_TOKEN": chosen})
	m = NewMain(&env.Env)
	m.Config.Listen, m.Config.DataDir = "127.0.0.1:0", dir
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if st, _ := call(t, "GET", m.URL()+"/api/whoami", chosen, nil); st != 200 {
		t.Errorf("VIGIL_ADMIN_TOKEN after a failed first start gets %d, want 200", st)
	}
}

func TestStartupErrors(t *testing.T) {
	cfg := config.Default()
	cfg.Database = "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2"
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	env := newTestEnv(nil)
	m := NewMain(&env.Env)
	m.Config = cfg
	err := m.Run(context.Background())
	m.Close()
	if err == nil || !strings.Contains(err.Error(), "couldn't open the database") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("unreachable database: %v; want a clear startup error naming it", err)
	}

	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("listen: 127.0.0.1:0\nledgr:\n  origin: x\n"), 0o644)
	code := Run(context.Background(), &env.Env, []string{"serve", "--config", path})
	if code == 0 || !strings.Contains(env.stderr.String(), `line 2: ledgr: unknown field (did you mean "ledger"?)`) {
		t.Errorf("bad config: exit %d, stderr %q", code, env.stderr.String())
	}
}
