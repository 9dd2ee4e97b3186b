package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/mcpproxy/mcptest"
	"github.com/vigil-gateway/vigil/internal/mcpproxy/pins"
	"golang.org/x/mod/sumdb/tlog"
)

// mcpAgent registers an agent over the admin API and returns its key.
func mcpAgent(t *testing.T, base, name string) string {
	t.Helper()
	st, agent := call(t, "POST", base+"/api/agents", adminToken, map[string]any{"name": name, "system": "mcp-tests"})
	key, _ := agent["api_key"].(string)
	if st != 201 || key == "" {
		t.Fatalf("create agent = %d %v", st, agent)
	}
	return key
}

func tsCall(name string, args map[string]any) map[string]any {
	return mcptest.Op("call", "name", name, "args", args)
}

// TestMCPGatewayEndToEnd runs the binary's gateway with server-everything over stdio
// and the real ledger and PII engine: the TypeScript and Go clients list and call
// tools, personal data in results is masked, progress arrives, a tool whose pinned
// definition changed is hidden until an admin approves it with the CLI, and the
// ledger holds every call and its Merkle root matches its signed checkpoint.
func TestMCPGatewayEndToEnd(t *testing.T) {
	dir := mcptest.NodeDir(t)
	cfg := config.Default()
	// redact: with tokenize, the PII adapter restores the tokens it just minted for an
	// answer's own PII (see the report), so masked answers need a non-reversible operator.
	cfg.PII.Mode, cfg.PII.MaskAnswers = "redact", true
	cfg.MCPServers = []config.MCPServerConfig{{
		Name:    "everything",
		Command: mcptest.Everything(dir, "stdio"),
		Env:     map[string]string{"SUPPORT_CONTACT": "help.desk@example.com"},
	}}
	cfg.Policy = filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(cfg.Policy, []byte(`version: 1
default: allow
rules:
  - id: no-fetching
    match: {tools: ["everything/gzip-file-as-resource"]}
    effect: deny
    message: Agents may not fetch URLs through this server.
  - id: small-sums-only
    when: action.kind == "tool_call" && tool.name == "get-sum" && args.a > 100
    effect: deny
    message: Sums over 100 need a human.
  - id: annotated-messages-need-a-human
    match: {tools: ["everything/get-annotated-message"]}
    effect: require_approval
    approval: {roles: [reviewer], approvers: 1, timeout: 10m}
  - id: images-need-a-quick-human
    match: {tools: ["everything/get-tiny-image"]}
    effect: require_approval
    approval: {roles: [reviewer], approvers: 1, timeout: 2s}
`), 0o644)
	m, _ := runMain(t, cfg)
	base := m.URL()
	key := mcpAgent(t, base, "mcp-bot")
	url := base + "/mcp/everything"

	// A pin that does not match what the server says: as if the server changed the
	// tool after it was approved.
	st := m.store.(mcpStores).MCPPins()
	if err := st.CreatePin(context.Background(), pins.Pin{Server: "everything", Tool: "get-sum",
		Approved: pins.Version{Hash: "0000", Definition: []byte(`{"name":"get-sum"}`), SeenAt: time.Now()}, ApprovedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	out := mcptest.TSClient(t, dir, url, key,
		mcptest.Op("list"),
		tsCall("echo", map[string]any{"message": "hello"}),
		tsCall("get-env", nil),
		tsCall("trigger-long-running-operation", map[string]any{"duration": 1, "steps": 2}),
		tsCall("get-sum", map[string]any{"a": 1, "b": 2}),
		tsCall("gzip-file-as-resource", map[string]any{"name": "x", "data": "https://example.com"}),
	)
	if !slices.Contains(out[0].Tools, "echo") || slices.Contains(out[0].Tools, "get-sum") || slices.Contains(out[0].Tools, "gzip-file-as-resource") {
		t.Errorf("tools = %v: want echo listed, the changed get-sum and the denied gzip-file-as-resource hidden", out[0].Tools)
	}
	if !out[5].IsError || !strings.Contains(out[5].Text, "Agents may not fetch URLs through this server.") {
		t.Errorf("denied tool = %+v, want a tool error with the policy's message", out[5])
	}
	if out[1].Text != "Echo: hello" {
		t.Errorf("echo = %+v", out[1])
	}
	if out[2].IsError || strings.Contains(out[2].Text, "help.desk@example.com") || !strings.Contains(out[2].Text, "SUPPORT_CONTACT") {
		t.Errorf("get-env = %q: want the server's environment with the email masked", out[2].Text)
	}
	if strings.Contains(out[2].Text, "VIGIL_ADMIN_TOKEN") {
		t.Error("the server process inherited Vigil's environment")
	}
	if len(out[3].Progress) != 2 {
		t.Errorf("long-running operation progress = %v", out[3].Progress)
	}
	if !out[4].IsError || !strings.Contains(out[4].Text, "changed since it was approved") {
		t.Errorf("changed get-sum = %+v, want refused", out[4])
	}

	code, listed, errOut := runCLI(t, base, "mcp", "tools", "--changed")
	if code != 0 || !strings.Contains(listed, "get-sum") || strings.Contains(listed, "echo") {
		t.Fatalf("vigil mcp tools --changed: %d %q %q", code, listed, errOut)
	}
	if code, shown, errOut := runCLI(t, base, "mcp", "show", "everything", "get-sum"); code != 0 || !strings.Contains(shown, "pending") || !strings.Contains(shown, "vigil mcp approve everything get-sum --hash") {
		t.Errorf("vigil mcp show: %d %q %q", code, shown, errOut)
	}
	_, viewer := call(t, "POST", base+"/api/tokens", adminToken, map[string]string{"name": "dash", "role": "viewer"})
	approveURL := base + "/api/mcp/tools/everything/get-sum/approve"
	for _, c := range []struct {
		token  string
		body   any
		status int
	}{
		{viewer["token"].(string), map[string]string{"hash": "x"}, 403}, // only admins approve
		{adminToken, map[string]string{}, 400},                          // the reviewed version must be named
		{adminToken, map[string]string{"hash": "not-the-pending-one"}, 409},
	} {
		if st, body := call(t, "POST", approveURL, c.token, c.body); st != c.status {
			t.Errorf("approve with %v = %d %v, want %d", c.body, st, body, c.status)
		}
	}
	if code, out, errOut := runCLI(t, base, "mcp", "approve", "everything", "get-sum"); code != 0 || !strings.Contains(out, "Approved everything/get-sum") {
		t.Fatalf("vigil mcp approve: %d %q %q", code, out, errOut)
	}
	out = mcptest.TSClient(t, dir, url, key, mcptest.Op("list"), tsCall("get-sum", map[string]any{"a": 1, "b": 2}),
		tsCall("get-sum", map[string]any{"a": 500, "b": 2}))
	if !slices.Contains(out[0].Tools, "get-sum") || out[1].IsError || !strings.Contains(out[1].Text, "3") {
		t.Errorf("after approval: tools %v, get-sum %+v", out[0].Tools, out[1])
	}
	if !out[2].IsError || !strings.Contains(out[2].Text, "Sums over 100 need a human.") {
		t.Errorf("get-sum with a = 500 = %+v, want denied by the argument rule", out[2])
	}

	// Held calls: one approved by a reviewer through the admin API while the client
	// waits (with progress), one left to expire.
	held := make(chan []mcptest.Step, 1)
	go func() {
		held <- mcptest.TSClient(t, dir, url, key,
			tsCall("get-annotated-message", map[string]any{"messageType": "success"}),
			tsCall("get-tiny-image", nil))
	}()
	var approvalID string
	deadline := time.Now().Add(30 * time.Second)
	for approvalID == "" && time.Now().Before(deadline) {
		_, list := call(t, "GET", base+"/api/approvals?status=pending", adminToken, nil)
		if items, _ := list["approvals"].([]any); len(items) > 0 {
			approvalID, _ = items[0].(map[string]any)["id"].(string)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if approvalID == "" {
		t.Fatal("the held MCP call never showed up in GET /api/approvals")
	}
	time.Sleep(300 * time.Millisecond) // let a progress notification or two through
	if st, body := call(t, "POST", base+"/api/approvals/"+approvalID+"/approve", adminToken, map[string]any{"reason": "looks fine"}); st != 200 {
		t.Fatalf("approve = %d %v", st, body)
	}
	out = <-held
	if out[0].IsError || out[0].Text == "" {
		t.Errorf("approved call = %+v", out[0])
	}
	if !out[1].IsError || !strings.Contains(out[1].Text, "expired") {
		t.Errorf("unapproved call = %+v, want a tool error saying the approval expired", out[1])
	}

	// The Go SDK client, which tries the stateless revision first.
	c := mcp.NewClient(&mcp.Implementation{Name: "go-e2e", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url, MaxRetries: -1,
		HTTPClient: &http.Client{Transport: keyTransport(key)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, body := call(t, "GET", base+"/api/mcp/sessions", adminToken, nil); st != 200 || len(body["sessions"].([]any)) != 1 {
		t.Errorf("GET /api/mcp/sessions = %d %v, want the Go client's session", st, body)
	}
	if code, listed, _ := runCLI(t, base, "mcp", "sessions"); code != 0 || !strings.Contains(listed, "everything") || !strings.Contains(listed, "mcp-bot") {
		t.Errorf("vigil mcp sessions: %d %q", code, listed)
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "from go"}})
	if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "Echo: from go" {
		t.Errorf("Go client echo = %+v, %v", res, err)
	}
	// The kill switch: suspending the agent closes its open session.
	if st, body := call(t, "POST", base+"/api/agents/mcp-bot/suspend", adminToken, map[string]any{"reason": "testing the kill switch"}); st != 200 {
		t.Fatalf("suspend = %d %v", st, body)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, body := call(t, "GET", base+"/api/mcp/sessions", adminToken, nil)
		if len(body["sessions"].([]any)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the suspended agent's MCP session is still open: %v", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "after"}}); err == nil {
		t.Error("the suspended agent's session still answers")
	}
	cs.Close()

	types := verifiedLedger(t, m)
	for _, want := range []string{"tool.call", "tool.result", "mcp.tool.pinned", "mcp.tool.changed", "mcp.tool.approved", "approval.requested", "approval.decided"} {
		if types[want] == 0 {
			t.Errorf("ledger has no %s event: %v", want, types)
		}
	}
	// echo×2, get-env, long-running, get-sum×3 (one refused for its pin, one by
	// policy), gzip refused: every call recorded; results of those that ran.
	if types["tool.call"] < 8 || types["tool.result"] < 5 {
		t.Errorf("ledger calls and results = %d, %d", types["tool.call"], types["tool.result"])
	}
}

type keyTransport string

func (k keyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(k))
	return http.DefaultTransport.RoundTrip(r)
}

// verifiedLedger publishes a checkpoint, recomputes the Merkle root of every entry
// and checks it against the signed checkpoint; it returns the event counts by type.
func verifiedLedger(t *testing.T, m *Main) map[string]int {
	t.Helper()
	ctx := context.Background()
	if err := m.ledger.PublishCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	cp, err := m.ledger.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := m.store.Ledger().Entries(ctx, 0, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []tlog.Hash
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	types := map[string]int{}
	for i, e := range entries {
		stored, err := tlog.StoredHashes(int64(i), e.Data, reader)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, stored...)
		env, err := ledger.ParseEnvelope(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		types[env.Type]++
	}
	root, err := tlog.TreeHash(cp.Size, reader)
	if err != nil {
		t.Fatal(err)
	}
	if root != cp.Root {
		t.Fatalf("ledger root %x does not match the signed checkpoint's %x", root, cp.Root)
	}
	return types
}
