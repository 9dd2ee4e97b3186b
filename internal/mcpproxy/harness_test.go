package mcpproxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/mcpproxy"
	"github.com/vigil-gateway/vigil/internal/mcpproxy/pins"
	"github.com/vigil-gateway/vigil/internal/store/sqlite"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// Agent keys the fake authenticator knows.
const (
	aliceKey = "vk_alice_0123456789abcdef0123456789"
	bobKey   = "vk_bob_0123456789abcdef0123456789ab"
)

var (
	alice = vigil.Actor{Kind: vigil.ActorAgent, ID: "agent-alice", Name: "alice-bot", SystemID: "sys-1", SystemName: "support"}
	bob   = vigil.Actor{Kind: vigil.ActorAgent, ID: "agent-bob", Name: "bob-bot", SystemID: "sys-2", SystemName: "billing"}
)

// agents is a fake authenticator; suspended agents are refused as auth.Service does.
type agents struct {
	mu        sync.Mutex
	suspended map[string]bool
}

func (a *agents) AuthenticateAgent(_ context.Context, secret string) (vigil.Actor, error) {
	var actor vigil.Actor
	switch secret {
	case aliceKey:
		actor = alice
	case bobKey:
		actor = bob
	default:
		return vigil.Actor{}, vigil.Errorf(vigil.EUNAUTHORIZED, "invalid or missing credentials")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.suspended[actor.ID] {
		return vigil.Actor{}, vigil.Errorf(vigil.ESUSPENDED, "agent %q is suspended: testing the kill switch", actor.Name)
	}
	return actor, nil
}

// policy decides by tool name (default allow) and remembers what it saw.
type policy struct {
	mu      sync.Mutex
	effects map[string]vigil.Effect // tool or resource name → effect
	args    map[string]bool         // tools denied when args.a > 100 (an evaluation error without args)
	seen    []vigil.Action
}

func (p *policy) set(name string, e vigil.Effect) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.effects[name] = e
}

func (p *policy) Decide(_ context.Context, a vigil.Action) (vigil.Decision, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a.ID != "list" {
		p.seen = append(p.seen, a)
	}
	name := a.Resource
	if a.Tool != nil {
		name = a.Tool.Name
	}
	if p.args[name] {
		if _, ok := a.Args["a"]; !ok {
			return vigil.Decision{Effect: vigil.Deny, Rules: []string{"big-" + name}, Policy: "test",
				Errors: []vigil.RuleError{{Rule: "big-" + name, Error: "no such key: a"}}}, nil
		}
		if a.Args["a"].(float64) > 100 {
			return vigil.Decision{Effect: vigil.Deny, Rules: []string{"big-" + name}, Policy: "test", Message: "Amounts over 100 go through finance."}, nil
		}
		return vigil.Decision{Effect: vigil.Allow, Rules: []string{"big-" + name}, Policy: "test"}, nil
	}
	switch e := p.effects[name]; e {
	case vigil.Deny:
		return vigil.Decision{Effect: e, Rules: []string{"no-" + name}, Policy: "test", Message: name + " is not for agents."}, nil
	case vigil.RequireApproval:
		return vigil.Decision{Effect: e, Rules: []string{"ask-" + name}, Policy: "test",
			Approval: &vigil.ApprovalSpec{Approvers: 1, Timeout: time.Minute}}, nil
	}
	return vigil.Decision{Effect: vigil.Allow, Rules: []string{}, Policy: "test"}, nil
}

func (p *policy) lastSeen(tool string) (vigil.Action, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.seen) - 1; i >= 0; i-- {
		a := p.seen[i]
		if a.Tool != nil && a.Tool.Name == tool || a.Resource == tool {
			return a, true
		}
	}
	return vigil.Action{}, false
}

// holder is a fake reviewer: each hold reports progress until the test decides it.
type holder struct {
	holds   chan enforce.HoldRequest
	outcome chan enforce.HoldResult
}

func (h *holder) Hold(ctx context.Context, req enforce.HoldRequest) (enforce.HoldResult, error) {
	h.holds <- req
	start := time.Now()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case r := <-h.outcome:
			r.ApprovalID = "appr-1"
			return r, nil
		case <-ctx.Done():
			return enforce.HoldResult{}, ctx.Err()
		case <-t.C:
			if req.Progress != nil {
				req.Progress("appr-1", time.Since(start), start.Add(time.Minute))
			}
		}
	}
}

// ledger keeps events in memory.
type ledger struct {
	mu     sync.Mutex
	events []vigil.Event
}

func (l *ledger) Record(ctx context.Context, e vigil.Event) (vigil.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return vigil.Receipt{}, err // as the real ledger may, when the caller has gone
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	return vigil.Receipt{ID: e.ID, Index: int64(len(l.events) - 1)}, nil
}

// find returns the events of a type whose attrs include want.
func (l *ledger) find(typ string, want map[string]string) []vigil.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []vigil.Event
next:
	for _, e := range l.events {
		if e.Type != typ {
			continue
		}
		for k, v := range want {
			if e.Attrs[k] != v {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

// masker is a fake PII engine that masks email addresses, both ways.
type masker struct{}

var emailRE = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)

func (masker) mask(b []byte) ([]byte, vigil.PIISummary) {
	n := len(emailRE.FindAll(b, -1))
	if n == 0 {
		return b, vigil.PIISummary{}
	}
	return emailRE.ReplaceAll(b, []byte("<EMAIL_ADDRESS>")), vigil.PIISummary{Counts: map[string]int{"EMAIL_ADDRESS": n}}
}

func (m masker) MaskJSON(_ context.Context, _ enforce.Scope, doc []byte) ([]byte, vigil.PIISummary, error) {
	out, sum := m.mask(doc)
	return out, sum, nil
}

func (m masker) InboundJSON(_ context.Context, _ enforce.Scope, doc []byte) ([]byte, vigil.PIISummary, error) {
	out, sum := m.mask(doc)
	return out, sum, nil
}

func (m masker) InboundText(_ context.Context, _ enforce.Scope, text []byte) ([]byte, vigil.PIISummary, error) {
	out, sum := m.mask(text)
	return out, sum, nil
}

func (masker) InboundStream(context.Context, enforce.Scope) enforce.StreamFilter { return nil }

// fixture is a gateway over fakes, serving on an httptest server.
type fixture struct {
	t      testing.TB
	gw     *mcpproxy.Gateway
	url    string
	agents *agents
	policy *policy
	holder *holder
	ledger *ledger
	pins   *pins.Service
	srv    *httptest.Server
}

// stdioServer is the test binary as a stdio MCP server.
func stdioServer(name string, env map[string]string) mcpproxy.ServerConfig {
	e := map[string]string{"MCPTEST_SERVER": "stdio"}
	for k, v := range env {
		e[k] = v
	}
	return mcpproxy.ServerConfig{Name: name, Command: []string{os.Args[0]}, Env: e, StartupTimeout: 20 * time.Second}
}

func newFixture(t testing.TB, servers ...mcpproxy.ServerConfig) *fixture {
	t.Helper()
	return newFixtureWith(t, nil, servers...)
}

// newFixtureWith lets a test adjust the gateway's options.
func newFixtureWith(t testing.TB, adjust func(*mcpproxy.Options), servers ...mcpproxy.ServerConfig) *fixture {
	t.Helper()
	f := &fixture{
		t:      t,
		agents: &agents{suspended: map[string]bool{}},
		policy: &policy{effects: map[string]vigil.Effect{}, args: map[string]bool{}},
		holder: &holder{holds: make(chan enforce.HoldRequest, 16), outcome: make(chan enforce.HoldResult, 1)},
		ledger: &ledger{},
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f.pins = &pins.Service{Store: db.MCPPins(), Ledger: f.ledger}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pipeline := &enforce.Pipeline{PII: masker{}, Policy: f.policy, Oversight: f.holder, Ledger: f.ledger, Log: log}
	opts := mcpproxy.Options{Servers: servers, Auth: f.agents, Pipeline: pipeline, Pins: f.pins, Log: log}
	if adjust != nil {
		adjust(&opts)
	}
	f.gw, err = mcpproxy.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := web.NewMux(web.Errors{Log: log})
	f.gw.Register(mux)
	f.srv = httptest.NewServer(web.Middleware{Log: log, MaxBodyBytes: 1 << 20}.Wrap(mux))
	f.url = f.srv.URL
	t.Cleanup(func() {
		f.gw.Close()
		f.srv.Close()
	})
	return f
}

// testWriter sends logs to t.Log, so they show with a failing test only.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// bearer adds an agent key to every request.
type bearer struct {
	key  string
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return b.base.RoundTrip(r)
}

func clientWithKey(key string) *http.Client {
	return &http.Client{Transport: bearer{key, http.DefaultTransport}}
}

// connect opens a Go SDK client session through Vigil, on the SDK's newest protocol
// revision (the client falls back when the server is older).
func (f *fixture) connect(server, key string, opts *mcp.ClientOptions) *mcp.ClientSession {
	f.t.Helper()
	return f.connectVersion(server, key, "", opts)
}

// connectVersion opens a session on a given protocol revision.
func (f *fixture) connectVersion(server, key, version string, opts *mcp.ClientOptions) *mcp.ClientSession {
	f.t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "vigil-go-test-client", Version: "1.0.0"}, opts)
	tr := &mcp.StreamableClientTransport{Endpoint: f.url + "/mcp/" + server, HTTPClient: clientWithKey(key), MaxRetries: -1}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, tr, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		f.t.Fatalf("connect to %s through Vigil: %v", server, err)
	}
	f.t.Cleanup(func() { cs.Close() })
	return cs
}

func toolNames(res *mcp.ListToolsResult) []string {
	var out []string
	for _, t := range res.Tools {
		out = append(out, t.Name)
	}
	sort.Strings(out)
	return out
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var errAny = errors.New("any")

// list lists the tools of cs.
func list(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(ctxT(t), nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	return toolNames(res)
}

// call calls a tool of cs, failing the test on a protocol error (a tool error is a
// result).
func call(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	return res
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func fmtList(xs []string) string { return fmt.Sprintf("%q", xs) }

const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

// rpcBody is a JSON-RPC response as a raw client reads it.
type rpcBody struct {
	ID     any             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int64           `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

// post sends a raw MCP POST and decodes a JSON answer (the last message of an SSE one).
func post(t *testing.T, url, key, session, body string, headers ...string) (*http.Response, rpcBody) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out rpcBody
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		for _, line := range strings.Split(string(raw), "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok && strings.TrimSpace(d) != "" {
				json.Unmarshal([]byte(d), &out)
			}
		}
	} else if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("POST %s: answer is not JSON: %q", url, raw)
		}
	}
	return resp, out
}

var httpClient = &http.Client{Timeout: 5 * time.Second}
