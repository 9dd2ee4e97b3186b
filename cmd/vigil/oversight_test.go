package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/notify"
	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// cheapPassword keeps argon2id fast in tests (the race detector slows it 10×).
var cheapPassword = auth.PasswordParams{Memory: 1024, Time: 1, Threads: 1}

// startOversight runs a gateway whose password hashing is cheap.
func startOversight(t *testing.T, cfg *config.Config) (*Main, *testEnv) {
	t.Helper()
	m, env := runMain(t, cfg)
	m.oversight.users.Password = cheapPassword
	return m, env
}

// newAgent registers an agent over the API and returns its actor and key.
func newAgent(t *testing.T, m *Main, name, system, owner string) (vigil.Actor, string) {
	t.Helper()
	st, body := call(t, "POST", m.URL()+"/api/agents", adminToken, map[string]any{"name": name, "system": system, "owner": owner})
	if st != 201 {
		t.Fatalf("create agent %s = %d %v", name, st, body)
	}
	ctx := context.Background()
	a, err := m.store.Inventory().Agent(ctx, body["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	sys, err := m.store.Inventory().System(ctx, a.SystemID)
	if err != nil {
		t.Fatal(err)
	}
	return auth.ActorOf(a, sys), body["api_key"].(string)
}

// newToken creates a role token and returns its secret.
func newToken(t *testing.T, m *Main, name string, role vigil.Role) string {
	t.Helper()
	st, body := call(t, "POST", m.URL()+"/api/tokens", adminToken, map[string]string{"name": name, "role": string(role)})
	if st != 201 {
		t.Fatalf("create token = %d %v", st, body)
	}
	return body["token"].(string)
}

// held is what a gateway pipeline raises for a risky tool call.
func held(agent vigil.Actor, spec *vigil.ApprovalSpec) oversight.NewRequest {
	return oversight.NewRequest{
		Source: oversight.SourceMCP, Agent: agent, SessionID: "mcp-session-1",
		Tool: &vigil.Tool{Server: "payments", Name: "refund"}, Args: map[string]any{"order": "A-1001", "amount": 250.0, "iban": "[IBAN_CODE]"},
		Decision: vigil.Decision{Effect: vigil.RequireApproval, Rules: []string{"refunds-over-100-need-a-human"},
			Message: "Refunds over 100 need a person to approve them.", Policy: "sha256:test", Approval: spec},
	}
}

// holding raises a held call in the background and returns where its outcome goes.
type holdResult struct {
	req oversight.Request
	err error
}

func holding(t *testing.T, m *Main, in oversight.NewRequest) <-chan holdResult {
	t.Helper()
	out := make(chan holdResult, 1)
	before := m.oversight.approvals.Waiting()
	go func() {
		r, err := m.oversight.approvals.Hold(context.Background(), in, nil)
		out <- holdResult{r, err}
	}()
	for deadline := time.Now().Add(10 * time.Second); m.oversight.approvals.Waiting() == before; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the held call never started waiting")
		}
	}
	return out
}

func pendingID(t *testing.T, m *Main) string {
	t.Helper()
	list, err := m.oversight.approvals.List(context.Background(), oversight.Filter{Status: oversight.Pending})
	if err != nil || len(list) == 0 {
		t.Fatalf("no pending request: %v", err)
	}
	return list[0].ID
}

func outcome(t *testing.T, ch <-chan holdResult) holdResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("the held call was not released")
	}
	return holdResult{}
}

// TestApprovalsAPI walks the approval API: list, the reviewer rules with their
// statuses, four-eyes, approve with edits, deny, and the ledger trail.
func TestApprovalsAPI(t *testing.T) {
	m, _ := startOversight(t, nil)
	base := m.URL()
	agent, _ := newAgent(t, m, "refund-bot", "payments", "alice")
	reviewer := newToken(t, m, "bob", vigil.RoleReviewer)
	second := newToken(t, m, "carol", vigil.RoleReviewer)
	owner := newToken(t, m, "alice", vigil.RoleReviewer)
	viewer := newToken(t, m, "vic", vigil.RoleViewer)

	ch := holding(t, m, held(agent, &vigil.ApprovalSpec{Approvers: 2}))
	st, body := call(t, "GET", base+"/api/approvals?status=pending", viewer, nil)
	list, _ := body["approvals"].([]any)
	if st != 200 || len(list) != 1 {
		t.Fatalf("GET /api/approvals = %d %v, want one pending", st, body)
	}
	id := list[0].(map[string]any)["id"].(string)
	if got := list[0].(map[string]any); got["agent"] != "refund-bot" || got["system"] != "payments" || got["message"] == "" {
		t.Errorf("listed request lacks its context: %v", got)
	}
	for _, q := range []string{"?agent=refund-bot", "?system=payments&status=pending", "?limit=1"} {
		if st, body := call(t, "GET", base+"/api/approvals"+q, viewer, nil); st != 200 || len(body["approvals"].([]any)) != 1 {
			t.Errorf("GET /api/approvals%s = %d %v", q, st, body)
		}
	}

	cases := []struct {
		name, token, verb string
		body              any
		status            int
		msg               string
	}{
		{"viewer may not approve", viewer, "approve", nil, 403, "needs one of the roles reviewer"},
		{"owner may not approve", owner, "approve", nil, 403, "separation of duties"},
		{"denial needs a reason", reviewer, "deny", map[string]string{"reason": ""}, 400, "needs a reason"},
		{"unknown field", reviewer, "approve", `{"reasons":"x"}`, 400, "unknown field"},
		{"no token", "", "approve", nil, 401, "missing credentials"},
		{"first approval", reviewer, "approve", map[string]string{"reason": "customer verified"}, 200, ""},
		{"same reviewer again", reviewer, "approve", nil, 409, "needs 1 more approval"},
	}
	for _, c := range cases {
		st, body := call(t, "POST", base+"/api/approvals/"+id+"/"+c.verb, c.token, c.body)
		if st != c.status || !strings.Contains(errMessage(body), c.msg) {
			t.Errorf("%s: %d %v, want %d with %q", c.name, st, body, c.status, c.msg)
		}
	}
	st, body = call(t, "POST", base+"/api/approvals/"+id+"/approve", second, map[string]any{"reason": "ok at a lower amount", "args": map[string]any{"order": "A-1001", "amount": 100}})
	if st != 200 || body["status"] != "approved" {
		t.Fatalf("second approval = %d %v", st, body)
	}
	got := outcome(t, ch)
	if got.err != nil || got.req.Status != oversight.Approved || got.req.FinalArgs()["amount"] != 100.0 {
		t.Fatalf("held call released with %+v, %v; want approved with the edited amount", got.req, got.err)
	}
	if st, body := call(t, "POST", base+"/api/approvals/"+id+"/deny", reviewer, map[string]string{"reason": "late"}); st != 409 || !strings.Contains(errMessage(body), "already approved") {
		t.Errorf("deny after approval = %d %v, want 409", st, body)
	}
	if st, _ := call(t, "GET", base+"/api/approvals/"+id, viewer, nil); st != 200 {
		t.Errorf("GET one = %d", st)
	}
	if st, body := call(t, "GET", base+"/api/approvals/not-an-id", viewer, nil); st != 404 || errMessage(body) == "" {
		t.Errorf("GET unknown = %d %v", st, body)
	}
	if st, body := call(t, "GET", base+"/api/approvals?status=maybe", viewer, nil); st != 400 {
		t.Errorf("bad status filter = %d %v", st, body)
	}

	// A denial releases the caller with the reason.
	ch = holding(t, m, held(agent, nil))
	id = pendingID(t, m)
	if st, body := call(t, "POST", base+"/api/approvals/"+id+"/deny", reviewer, map[string]string{"reason": "refund already issued"}); st != 200 || body["status"] != "denied" {
		t.Fatalf("deny = %d %v", st, body)
	}
	if got := outcome(t, ch); got.req.Status != oversight.Denied || got.req.Reason != "refund already issued" {
		t.Errorf("denied call released with %+v", got.req)
	}

	// Training the reviewer has no record for: they cannot approve, and it says so.
	ch = holding(t, m, held(agent, &vigil.ApprovalSpec{RequireTraining: "payments-fraud"}))
	id = pendingID(t, m)
	if st, body := call(t, "POST", base+"/api/approvals/"+id+"/approve", reviewer, nil); st != 403 || !strings.Contains(errMessage(body), `no current training record for "payments-fraud"`) {
		t.Errorf("approve needing training = %d %v, want 403 naming the missing training", st, body)
	}
	call(t, "POST", base+"/api/approvals/"+id+"/deny", reviewer, map[string]string{"reason": "untrained"})
	outcome(t, ch)

	if err := m.ledger.PublishCheckpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	types := ledgerTypes(t, m.store.Ledger())
	if types[vigil.EventApprovalRequest] != 3 || types[vigil.EventApprovalDecision] != 4 {
		t.Errorf("ledger: %d requests and %d decisions, want 3 and 4 (one per vote)", types[vigil.EventApprovalRequest], types[vigil.EventApprovalDecision])
	}

	resp, err := getWithToken(base+"/metrics", adminToken)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`vigil_approval_outcomes_total{outcome="approved"} 1`, `vigil_approval_outcomes_total{outcome="denied"} 2`,
		"vigil_approval_decision_seconds_count 3", "vigil_approvals_pending ", "vigil_approval_expiries_total 0"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestKillSwitch: suspending an agent cancels its pending approvals and closes its
// open work at once; the global halt stops everyone until resumed.
func TestKillSwitch(t *testing.T) {
	m, _ := startOversight(t, nil)
	base := m.URL()
	agent, key := newAgent(t, m, "refund-bot", "payments", "")
	other, otherKey := newAgent(t, m, "triage-bot", "support", "")
	reviewer := newToken(t, m, "bob", vigil.RoleReviewer)

	stream, done := m.oversight.sessions.Track(context.Background(), agent)
	defer done()
	otherStream, otherDone := m.oversight.sessions.Track(context.Background(), other)
	defer otherDone()
	ch := holding(t, m, held(agent, nil))

	if st, body := call(t, "POST", base+"/api/agents/refund-bot/suspend", reviewer, map[string]string{"reason": "refund loop"}); st != 200 {
		t.Fatalf("suspend = %d %v", st, body)
	}
	got := outcome(t, ch)
	if got.err != nil || got.req.Status != oversight.Cancelled || !strings.Contains(got.req.Reason, "refund loop") {
		t.Errorf("held call of a suspended agent: %+v, %v; want cancelled with the reason", got.req, got.err)
	}
	select {
	case <-stream.Done():
		if c := context.Cause(stream); vigil.ErrorCode(c) != vigil.ESUSPENDED || !strings.Contains(c.Error(), "refund loop") {
			t.Errorf("open stream closed with %v", c)
		}
	case <-time.After(5 * time.Second):
		t.Error("the suspended agent's open stream was not closed")
	}
	if otherStream.Err() != nil {
		t.Error("another agent's stream was closed")
	}
	if _, err := m.oversight.approvals.Hold(context.Background(), held(agent, nil), nil); vigil.ErrorCode(err) != vigil.ESUSPENDED {
		t.Errorf("a suspended agent's new held call = %v, want ESUSPENDED", err)
	}
	call(t, "POST", base+"/api/agents/refund-bot/resume", reviewer, nil)

	// The global halt.
	if st, body := call(t, "POST", base+"/api/halt", reviewer, nil); st != 400 || !strings.Contains(errMessage(body), "reason is required") {
		t.Errorf("halt without a reason = %d %v", st, body)
	}
	ch = holding(t, m, held(other, nil))
	st, body := call(t, "POST", base+"/api/halt", reviewer, map[string]string{"reason": "suspected data leak"})
	if st != 200 || body["on"] != true || body["by"] != "token:bob" {
		t.Fatalf("halt = %d %v", st, body)
	}
	for _, k := range []string{key, otherKey} {
		if st, body := call(t, "GET", base+"/v1/models", k, nil); st != 403 || !strings.Contains(errMessage(body), "halted") || !strings.Contains(errMessage(body), "suspected data leak") {
			t.Errorf("agent call while halted = %d %v, want 403 saying Vigil is halted and why", st, body)
		}
	}
	if got := outcome(t, ch); got.req.Status != oversight.Cancelled {
		t.Errorf("pending call after the halt: %s, want cancelled", got.req.Status)
	}
	if otherStream.Err() == nil {
		t.Error("the halt left an open stream")
	}
	if st, body := call(t, "GET", base+"/api/halt", newToken(t, m, "vic", vigil.RoleViewer), nil); st != 200 || body["reason"] != "suspected data leak" {
		t.Errorf("GET /api/halt = %d %v", st, body)
	}
	if st, body := call(t, "DELETE", base+"/api/halt", reviewer, map[string]string{"reason": "contained"}); st != 200 || body["on"] != false {
		t.Fatalf("resume all = %d %v", st, body)
	}
	if st, _ := call(t, "GET", base+"/v1/models", key, nil); st != 200 {
		t.Errorf("agent call after resume-all = %d, want 200", st)
	}
	if err := m.ledger.PublishCheckpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	types := ledgerTypes(t, m.store.Ledger())
	for _, typ := range []string{oversight.EventHalted, oversight.EventUnhalted, oversight.EventApprovalCancelled, vigil.EventAgentSuspended} {
		if types[typ] == 0 {
			t.Errorf("ledger has no %s", typ)
		}
	}
}

// TestOversightCLI runs the approvals, users and halt commands in-process.
func TestOversightCLI(t *testing.T) {
	m, _ := startOversight(t, nil)
	base := m.URL()
	agent, key := newAgent(t, m, "refund-bot", "payments", "")
	cli := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		env := newTestEnv(map[string]string{"VIGIL_URL": base, "VIGIL_TOKEN": adminToken})
		env.Stdin = strings.NewReader(stdin)
		code := Run(context.Background(), &env.Env, args)
		return code, env.stdout.String(), env.stderr.String()
	}

	code, out, errOut := cli("a long enough password\n", "users", "add", "dana", "--role", "reviewer", "--password-stdin")
	if code != 0 || !strings.Contains(out, "Added user dana (reviewer)") {
		t.Fatalf("users add: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := cli("short\n", "users", "add", "eve", "--role", "reviewer", "--password-stdin"); code == 0 || !strings.Contains(errOut, "password must be") {
		t.Errorf("users add with a short password: %d %q", code, errOut)
	}
	if code, _, errOut := cli("", "users", "add", "eve", "--role", "reviewer"); code == 0 || !strings.Contains(errOut, "--password-stdin") {
		t.Errorf("users add without a terminal: %d %q", code, errOut)
	}
	if code, _, errOut := cli("", "users", "add", "eve"); code != 2 || !strings.Contains(errOut, "--role is required") {
		t.Errorf("users add without a role: %d %q", code, errOut)
	}
	code, out, _ = cli("", "users", "list")
	if code != 0 || !regexp.MustCompile(`dana\s+reviewer\s+active`).MatchString(out) {
		t.Errorf("users list: %d %q", code, out)
	}

	ch := holding(t, m, held(agent, nil))
	id := pendingID(t, m)
	code, out, _ = cli("", "approvals", "list")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "payments/refund") || !strings.Contains(out, "0/1") {
		t.Errorf("approvals list: %d %q", code, out)
	}
	if code, _, errOut := cli("", "approvals", "deny", id); code == 0 || !strings.Contains(errOut, "needs a reason") {
		t.Errorf("deny without a reason: %d %q", code, errOut)
	}
	if code, _, errOut := cli("", "approvals", "approve", "--args", "[1]", id); code != 2 || !strings.Contains(errOut, "JSON object") {
		t.Errorf("approve with bad --args: %d %q", code, errOut)
	}
	code, out, errOut = cli("", "approvals", "approve", id, "--reason", "checked", "--args", `{"order":"A-1001","amount":90}`)
	if code != 0 || !strings.Contains(out, "is approved: refund-bot may payments/refund") {
		t.Fatalf("approvals approve: %d %q %q", code, out, errOut)
	}
	if got := outcome(t, ch); got.req.FinalArgs()["amount"] != 90.0 {
		t.Errorf("approved with --args, released with %v", got.req.FinalArgs())
	}
	if code, _, errOut := cli("", "approvals", "deny", id, "--reason", "x"); code == 0 || !strings.Contains(errOut, "HTTP 409") {
		t.Errorf("deny a decided request: %d %q", code, errOut)
	}
	code, out, _ = cli("", "approvals", "get", id)
	if code != 0 || !strings.Contains(out, `"decided_by": "token:bootstrap"`) {
		t.Errorf("approvals get: %d %q", code, out)
	}
	code, out, _ = cli("", "approvals", "list", "--status", "all", "--agent", "refund-bot")
	if code != 0 || !strings.Contains(out, "approved") {
		t.Errorf("approvals list --status all: %d %q", code, out)
	}

	if code, _, errOut := cli("", "halt"); code != 2 || !strings.Contains(errOut, "--reason is required") {
		t.Errorf("halt without reason: %d %q", code, errOut)
	}
	code, out, _ = cli("", "halt", "--reason", "incident 7")
	if code != 0 || !strings.Contains(out, "HALTED") || !strings.Contains(out, "incident 7") {
		t.Errorf("halt: %d %q", code, out)
	}
	if st, _ := call(t, "GET", base+"/v1/models", key, nil); st != 403 {
		t.Errorf("agent call after vigil halt = %d, want 403", st)
	}
	if code, out, _ = cli("", "halt", "--status"); code != 0 || !strings.Contains(out, "HALTED") {
		t.Errorf("halt --status: %d %q", code, out)
	}
	if code, out, _ = cli("", "resume-all"); code != 0 || !strings.Contains(out, "not halted") {
		t.Errorf("resume-all: %d %q", code, out)
	}
	if code, out, _ = cli("", "users", "disable", "dana"); code != 0 || !strings.Contains(out, "dana is disabled") {
		t.Errorf("users disable: %d %q", code, out)
	}
}

func TestOversightHelp(t *testing.T) {
	lines := [][]string{{"halt", "--help"}, {"resume-all", "--help"}}
	for _, noun := range []string{"approvals", "users"} {
		env := newTestEnv(nil)
		Run(context.Background(), &env.Env, []string{noun, "--help"})
		verbs := regexp.MustCompile(`(?m)^  ([a-z-]+) `).FindAllStringSubmatch(env.stdout.String(), -1)
		if len(verbs) < 4 {
			t.Fatalf("vigil %s --help lists %d commands", noun, len(verbs))
		}
		for _, v := range verbs {
			lines = append(lines, []string{noun, v[1], "--help"})
		}
	}
	for _, args := range lines {
		env := newTestEnv(nil)
		if code := Run(context.Background(), &env.Env, args); code != 0 || !strings.Contains(env.stdout.String(), "Usage") {
			t.Errorf("vigil %s: exit %d, stdout %q", strings.Join(args, " "), code, env.stdout.String())
		}
	}
}

// TestConsoleSecurity checks the console's mounting and its browser protections
// without a browser: routes that must not be shadowed, headers, sign-in, cookies,
// cross-origin and CSRF refusals.
func TestConsoleSecurity(t *testing.T) {
	m, env := startOversight(t, nil)
	base := m.URL()
	agent, _ := newAgent(t, m, "refund-bot", "payments", "")
	if st, body := call(t, "POST", base+"/api/users", adminToken, map[string]any{"name": "dana", "roles": []string{"reviewer"}, "password": "correct horse battery"}); st != 201 {
		t.Fatalf("create user = %d %v", st, body)
	}
	if !strings.Contains(env.stdout.String(), "Console:               "+base+"/") {
		t.Errorf("banner lacks the console URL:\n%s", env.stdout.String())
	}

	// The console never shadows the JSON surfaces.
	for _, p := range []string{"/nothing", "/api/nothing", "/approvalsx", "/ledger/nothing"} {
		if st, body := call(t, "GET", base+p, "", nil); st != 404 || errMessage(body) == "" {
			t.Errorf("GET %s = %d %v, want the JSON 404", p, st, body)
		}
	}
	if st, _ := call(t, "GET", base+"/healthz", "", nil); st != 200 {
		t.Errorf("healthz = %d", st)
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := browser.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	post := func(path string, form url.Values, header map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}

	resp := get("/approvals")
	if resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
		t.Errorf("approvals without a session = %d → %q, want a redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("console headers: CSP %q, X-Frame-Options %q", csp, resp.Header.Get("X-Frame-Options"))
	}
	if resp := get("/approvals/x/y/z"); resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("unknown console page = %d %s, want the console's own 404", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, _ := post("/signin", url.Values{"name": {"dana"}, "password": {"correct horse battery"}}, map[string]string{"Sec-Fetch-Site": "cross-site"}); resp.StatusCode != 403 {
		t.Errorf("cross-site sign-in = %d, want 403", resp.StatusCode)
	}
	if resp, body := post("/signin", url.Values{"name": {"dana"}, "password": {"wrong password!"}}, nil); resp.StatusCode != 401 || !strings.Contains(body, "wrong user name or password") {
		t.Errorf("wrong password = %d", resp.StatusCode)
	}
	resp, _ = post("/signin", url.Values{"name": {"dana"}, "password": {"correct horse battery"}, "next": {"//evil.example/"}}, nil)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/approvals" {
		t.Errorf("sign-in = %d → %q, want a redirect to /approvals (never off-site)", resp.StatusCode, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "vigil-session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || !strings.HasPrefix(cookie.Value, "vs_") {
		t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Strict", cookie)
	}

	// The live stream tells the page about the new request. It runs in a session of
	// its own that stays valid and open: the gateway's Close (at cleanup) must still
	// shut down cleanly instead of waiting for it.
	watchJar, _ := cookiejar.New(nil)
	watcher := &http.Client{Jar: watchJar}
	if resp, err := watcher.PostForm(base+"/signin", url.Values{"name": {"dana"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != 200 {
		t.Fatalf("second sign-in = %v %v", resp, err)
	}
	stream, err := watcher.Get(base + "/events")
	if err != nil || stream.StatusCode != 200 || stream.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /events = %v %v", stream, err)
	}
	events := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			events <- sc.Text()
		}
		close(events)
	}()

	ch := holding(t, m, held(agent, nil))
	id := pendingID(t, m)
	for seen := false; !seen; {
		select {
		case l, ok := <-events:
			if !ok {
				t.Fatal("the live stream ended")
			}
			seen = l == `data: {"kind":"created","id":"`+id+`"}`
		case <-time.After(10 * time.Second):
			t.Fatal("the live stream never announced the new request")
		}
	}
	page, err := browser.Get(base + "/approvals")
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 || !strings.Contains(string(html), id) || !strings.Contains(string(html), "payments/refund") || strings.Contains(string(html), "<script>") {
		t.Fatalf("approvals page = %d; want the request and no inline script", page.StatusCode)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(string(html))
	if csrf == nil {
		t.Fatal("no CSRF token in the page")
	}
	if resp, _ := post("/approvals/"+id+"/approve", url.Values{}, nil); resp.StatusCode != 403 {
		t.Errorf("approve without a CSRF token = %d, want 403", resp.StatusCode)
	}
	if resp, _ := post("/approvals/"+id+"/approve", url.Values{"csrf": {strings.Repeat("0", 64)}}, nil); resp.StatusCode != 403 {
		t.Errorf("approve with a forged CSRF token = %d, want 403", resp.StatusCode)
	}
	if resp, body := post("/approvals/"+id+"/deny", url.Values{"csrf": {csrf[1]}}, nil); resp.StatusCode != 400 || !strings.Contains(body, "needs a reason") {
		t.Errorf("deny without a reason = %d", resp.StatusCode)
	}
	if resp, _ := post("/approvals/"+id+"/approve", url.Values{"csrf": {csrf[1]}, "reason": {"fine"}}, nil); resp.StatusCode != 303 {
		t.Errorf("approve = %d, want 303", resp.StatusCode)
	}
	if got := outcome(t, ch); got.req.Status != oversight.Approved || got.req.DecidedBy != "user:dana" {
		t.Errorf("released with %s by %s, want approved by user:dana", got.req.Status, got.req.DecidedBy)
	}

	// The live stream needs a session too.
	if resp, err := http.Get(base + "/events"); err != nil {
		t.Error(err)
	} else if resp.Body.Close(); resp.StatusCode != 401 {
		t.Errorf("events without a session = %d, want 401", resp.StatusCode)
	}
	if resp, _ := post("/signout", url.Values{"csrf": {csrf[1]}}, nil); resp.StatusCode != 303 {
		t.Errorf("sign out = %d", resp.StatusCode)
	}
	if resp := get("/approvals"); resp.StatusCode != 303 {
		t.Errorf("approvals after sign-out = %d, want a redirect to sign in", resp.StatusCode)
	}
}

// TestWebhooks: a configured webhook is told about new and decided requests, signed.
func TestWebhooks(t *testing.T) {
	var mu sync.Mutex
	var events []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.Verify([]byte("webhook-secret-0123456789"), r.Header.Get(notify.HeaderTimestamp), body, r.Header.Get(notify.HeaderSignature), time.Now(), time.Minute); err != nil {
			t.Errorf("delivery does not verify: %v", err)
		}
		var p notify.Payload
		json.Unmarshal(body, &p)
		mu.Lock()
		events = append(events, p.Event+":"+p.Approval.Status)
		mu.Unlock()
	}))
	defer recv.Close()
	cfg := config.Default()
	cfg.PublicURL = "https://vigil.example.test"
	cfg.Oversight.Webhooks = []config.WebhookConfig{{Name: "ops", URL: recv.URL, SecretEnv: "HOOK_SECRET", Events: config.WebhookEvents[:3], Format: "json"}}
	env := newTestEnv(map[string]string{"VIGIL_ADMIN_TOKEN": adminToken, "HOOK_SECRET": "webhook-secret-0123456789"})
	m := NewMain(&env.Env)
	m.Config = cfg
	m.Config.Listen, m.Config.DataDir = "127.0.0.1:0", t.TempDir()
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	agent, _ := newAgent(t, m, "refund-bot", "payments", "")
	ch := holding(t, m, held(agent, nil))
	id := pendingID(t, m)
	call(t, "POST", m.URL()+"/api/approvals/"+id+"/deny", adminToken, map[string]string{"reason": "no"})
	outcome(t, ch)
	var got []string
	for deadline := time.Now().Add(10 * time.Second); len(got) < 2 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		got = append([]string(nil), events...)
		mu.Unlock()
	}
	if strings.Join(got, ",") != "approval.requested:pending,approval.decided:denied" {
		t.Errorf("webhook events = %v", got)
	}
	// An attempt is recorded once its answer is in, a moment after the receiver saw it.
	var st int
	var body map[string]any
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if st, body = call(t, "GET", m.URL()+"/api/approvals/"+id+"/deliveries", adminToken, nil); len(body["deliveries"].([]any)) >= 2 {
			break
		}
	}
	if ds, _ := body["deliveries"].([]any); st != 200 || len(ds) != 2 {
		t.Errorf("deliveries = %d %v, want two recorded", st, body)
	}

	// A webhook whose secret is missing stops the start with a clear error.
	env2 := newTestEnv(map[string]string{})
	m2 := NewMain(&env2.Env)
	m2.Config = cfg
	m2.Config.Listen, m2.Config.DataDir = "127.0.0.1:0", t.TempDir()
	err := m2.Run(context.Background())
	m2.Close()
	if err == nil || !strings.Contains(err.Error(), "HOOK_SECRET") {
		t.Errorf("start without the webhook secret = %v, want an error naming HOOK_SECRET", err)
	}
}
