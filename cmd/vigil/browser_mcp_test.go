package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/mcpproxy/mcptest"
	"github.com/vigil-gateway/vigil/internal/oversight"
)

// TestMCPApprovalInChromium is issue 8's end-to-end check with nothing stood in: a
// real MCP client (the Go SDK) calls a real MCP server (server-everything over
// stdio) through Vigil's /mcp/{server}; policy holds the call; a reviewer signed in
// to the console in headless Chromium sees it appear live, reads who wants what with
// which arguments, and approves it in the page; the client's tools/call, blocked all
// along and told so by progress notifications, completes with the server's real
// result. A second held call, raised while the reloaded page's live stream is not
// yet open, appears when it opens and is denied in the page with a reason, which the
// client reads in its tool error. The ledger holds each call, the approval request, the
// reviewer's decision and the result. Screenshots go to t.TempDir(), or to
// VIGIL_TEST_ARTIFACTS if set.
func TestMCPApprovalInChromium(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("..", "..", "test", "browser"))
	if err != nil {
		t.Fatal(err)
	}
	needBrowser(t, dir)
	nodeDir := mcptest.NodeDir(t)
	shots := os.Getenv("VIGIL_TEST_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	}

	cfg := config.Default()
	cfg.MCPServers = []config.MCPServerConfig{{Name: "everything", Command: mcptest.Everything(nodeDir, "stdio")}}
	cfg.Policy = filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(cfg.Policy, []byte(`version: 1
default: allow
rules:
  - id: ledger-tools-need-a-reviewer
    match: {tools: ["everything/get-sum", "everything/echo"]}
    effect: require_approval
    message: Book-keeping tools run only after a reviewer has looked at the call.
    approval: {roles: [reviewer], approvers: 1, timeout: 2m}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	m, _ := startOversight(t, cfg)
	base := m.URL()
	const password = "correct horse battery staple"
	if st, body := call(t, "POST", base+"/api/users", adminToken, map[string]any{"name": "dana", "roles": []string{"reviewer"}, "password": password}); st != 201 {
		t.Fatalf("create user = %d %v", st, body)
	}
	agent, key := newAgent(t, m, "books-bot", "finance", "alice")

	// The agent's MCP client, which hears progress while its calls are held.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var mu sync.Mutex
	progress := map[any][]string{} // progress messages by progress token
	client := mcp.NewClient(&mcp.Implementation{Name: "books-bot", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			defer mu.Unlock()
			progress[r.Params.ProgressToken] = append(progress[r.Params.ProgressToken], r.Params.Message)
		},
	})
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: base + "/mcp/everything", MaxRetries: -1,
		HTTPClient: &http.Client{Transport: keyTransport(key)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Cancelling first ends a call still held when the test fails, which the SDK's
	// Close would otherwise wait for until the approval expired.
	defer func() {
		cancel()
		cs.Close()
	}()
	type result struct {
		res *mcp.CallToolResult
		err error
	}
	callHeld := func(token, tool string, args map[string]any) <-chan result {
		p := &mcp.CallToolParams{Name: tool, Arguments: args}
		p.SetProgressToken(token)
		ch := make(chan result, 1)
		go func() {
			res, err := cs.CallTool(ctx, p)
			ch <- result{res, err}
		}()
		return ch
	}
	done := func(ch <-chan result) result {
		t.Helper()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("the client's tools/call failed: %v", r.err)
			}
			return r
		case <-time.After(30 * time.Second):
			t.Fatal("the client's tools/call did not complete after the decision")
		}
		return result{}
	}
	text := func(r *mcp.CallToolResult) string {
		var b strings.Builder
		for _, c := range r.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				b.WriteString(tc.Text)
			}
		}
		return b.String()
	}
	type seen struct {
		ID          string `json:"id"`
		Text        string `json:"text"`
		Navigations int    `json:"navigations"`
	}
	parse := func(line string) seen {
		t.Helper()
		var s seen
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("browser reported %q: %v", line, err)
		}
		return s
	}
	// shows checks that the reviewer's card says who wants what, with which arguments.
	shows := func(card seen, wants ...string) {
		t.Helper()
		if card.Navigations != 0 {
			t.Errorf("the held call appeared after %d page loads, want it live over server-sent events", card.Navigations)
		}
		for _, w := range append([]string{"books-bot", "owned by alice", "finance", "via MCP tools/call",
			"ledger-tools-need-a-reviewer", "Book-keeping tools run only after a reviewer", "1 approvals · role reviewer",
			"MCP session " + cs.ID()[:8], "expires in"}, wants...) {
			if !strings.Contains(card.Text, w) {
				t.Errorf("the card does not show %q:\n%s", w, card.Text)
			}
		}
	}

	b := runBrowser(t, dir, "mcp.mjs", "VIGIL_URL="+base, "VIGIL_USER=dana", "VIGIL_PASSWORD="+password, "SHOTS="+shots)
	b.next("SIGNED_IN")

	// 1. get-sum is held; the reviewer approves it in the page; the client gets the sum.
	sum := callHeld("sum-1", "get-sum", map[string]any{"a": 250, "b": 17})
	card := parse(b.next("SEEN"))
	// server-everything declares get-sum read-only, not destructive, idempotent and
	// closed-world; the card says so, and whose claim that is.
	shows(card, "books-bot wants to call “Get Sum Tool” (get-sum) on MCP server everything", "read-only", "closed world",
		"declared by the MCP server, not verified", `"a": 250`, `"b": 17`)
	// The client is held, and is told so by progress on its own token, naming the
	// approval the reviewer is looking at.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		got := progress["sum-1"]
		mu.Unlock()
		if len(got) > 0 {
			if !strings.Contains(got[0], "Waiting for a human to approve this call (approval "+card.ID) {
				t.Errorf("progress while held = %q", got[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the held client heard no progress")
		}
	}
	select {
	case r := <-sum:
		t.Fatalf("the client's call completed before anyone decided: %+v, %v", r.res, r.err)
	default:
	}
	b.say("APPROVE " + card.ID + " checked against the invoice")
	decided := parse(b.next("APPROVED"))
	if !strings.Contains(decided.Text, "Approved by dana") || strings.Count(decided.Text, "checked against the invoice") != 1 {
		t.Errorf("the decided card should name the reviewer and give the reason once; it reads:\n%s", decided.Text)
	}
	r := done(sum)
	if r.res.IsError || text(r.res) != "The sum of 250 and 17 is 267." {
		t.Fatalf("the approved get-sum returned %+v %q, want the server's sum", r.res, text(r.res))
	}
	approved := card.ID

	// 2. echo is held while the reloaded page's live stream is not yet open (the
	// script holds it back until RAISED); the call appears when it opens. The reviewer
	// denies it with a reason; the client reads why.
	echo := callHeld("echo-1", "echo", map[string]any{"message": "book 4,000 EUR to supplier 7731"})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		list, err := m.oversight.approvals.List(ctx, oversight.Filter{Status: oversight.Pending})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second MCP call was not held")
		}
	}
	b.say("RAISED")
	card = parse(b.next("SEEN"))
	if card.ID == approved {
		t.Fatalf("the page shows the approved request %s as pending again", approved)
	}
	shows(card, "books-bot wants to call “Echo Tool” (echo) on MCP server everything", `"message": "book 4,000 EUR to supplier 7731"`)
	b.say("DENY " + card.ID + " supplier 7731 is not on the approved list")
	decided = parse(b.next("DENIED"))
	if !strings.Contains(decided.Text, "Denied by dana") || strings.Count(decided.Text, "supplier 7731 is not on the approved list") != 1 {
		t.Errorf("the decided card should name the reviewer and give the reason once; it reads:\n%s", decided.Text)
	}
	r = done(echo)
	if !r.res.IsError || !strings.Contains(text(r.res), "a reviewer denied this call: supplier 7731 is not on the approved list") {
		t.Errorf("the denied echo returned %+v %q, want a tool error with the reviewer's reason", r.res, text(r.res))
	}
	denied := card.ID
	b.say("END")
	b.next("DONE")
	b.wait()
	for _, f := range []string{"mcp-pending-1.png", "mcp-decided-1.png", "mcp-connecting.png", "mcp-pending-2.png", "mcp-decided-2.png"} {
		if fi, err := os.Stat(filepath.Join(shots, f)); err != nil || fi.Size() == 0 {
			t.Errorf("screenshot %s missing: %v", f, err)
		}
	}
	t.Logf("screenshots in %s", shots)

	// The ledger: each call, the request for approval, the reviewer's decision, and
	// the result of the call that ran, linked by the approval id and the call's id.
	verifiedLedger(t, m)
	cp, err := m.ledger.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := m.store.Ledger().Entries(ctx, 0, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	var events []ledger.Envelope
	for _, e := range entries {
		env, err := ledger.ParseEnvelope(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, env)
	}
	find := func(typ string, attrs map[string]string) *ledger.Envelope {
		for i := range events {
			e := &events[i]
			match := e.Type == typ
			for k, v := range attrs {
				match = match && e.Attrs[k] == v
			}
			if match {
				return e
			}
		}
		return nil
	}
	for _, c := range []struct {
		approval, tool, verdict, status string
		effect                          string
	}{
		{approved, "get-sum", "approve", "approved", "allow"},
		{denied, "echo", "deny", "denied", "deny"},
	} {
		if e := find("approval.requested", map[string]string{"approval": c.approval, "tool": c.tool, "server": "everything", "source": "mcp"}); e == nil || e.Agent != agent.ID || e.Session != cs.ID() {
			t.Errorf("ledger: approval.requested for %s = %+v", c.tool, e)
		}
		if e := find("approval.decided", map[string]string{"approval": c.approval, "verdict": c.verdict, "status": c.status}); e == nil || e.Actor != "user:dana" {
			t.Errorf("ledger: approval.decided for %s = %+v, want dana's %s", c.tool, e, c.verdict)
		}
		callEv := find("tool.call", map[string]string{"approval": c.approval, "approval_status": c.status, "tool": c.tool, "server": "everything"})
		if callEv == nil || callEv.Decision != c.effect || callEv.Agent != agent.ID || callEv.Session != cs.ID() {
			t.Errorf("ledger: tool.call for %s = %+v, want decision %s", c.tool, callEv, c.effect)
			continue
		}
		res := find("tool.result", map[string]string{"request": callEv.ID})
		switch {
		case c.effect == "allow" && (res == nil || res.Attrs["status"] != "200"):
			t.Errorf("ledger: tool.result of the approved %s = %+v", c.tool, res)
		case c.effect == "deny" && res != nil:
			t.Errorf("ledger: the denied %s has a result: %+v", c.tool, res)
		}
	}
}
