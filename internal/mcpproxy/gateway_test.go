package mcpproxy_test

import (
	"strings"
	"testing"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// TestGoverningToolsOverStdio: through Vigil a Go SDK client sees the server as it is
// (its name, instructions, tools) except for what policy hides, its calls are decided
// with the tool's annotations and arguments, a denial is a tool error that explains
// itself, and the ledger has each call and result.
func TestGoverningToolsOverStdio(t *testing.T) {
	for _, v := range []string{"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"} {
		t.Run(v, func(t *testing.T) { testGoverningTools(t, v) })
	}
}

func testGoverningTools(t *testing.T, version string) {
	f := newFixture(t, stdioServer("test", nil))
	f.policy.set("delete_everything", vigil.Deny)
	cs := f.connectVersion("test", aliceKey, version, nil)
	if got := cs.InitializeResult().ProtocolVersion; got != version {
		t.Fatalf("negotiated protocol %s through Vigil, want %s", got, version)
	}

	init := cs.InitializeResult()
	if init.ServerInfo == nil || init.ServerInfo.Name != "vigil-test-server" || init.Instructions != "Test server for Vigil's MCP gateway." {
		t.Errorf("initialize result = %+v, want the server's own info and instructions", init)
	}

	names := list(t, cs)
	if contains(names, "delete_everything") {
		t.Errorf("tools/list shows the denied tool: %v", names)
	}
	for _, want := range []string{"echo", "add", "whoami", "slow"} {
		if !contains(names, want) {
			t.Errorf("tools/list lacks %s: %v", want, names)
		}
	}

	res := call(t, cs, "echo", map[string]any{"message": "hello"})
	if res.IsError || resultText(res) != "Echo: hello" {
		t.Errorf("echo = %+v %q", res.IsError, resultText(res))
	}
	a, ok := f.policy.lastSeen("echo")
	if !ok || a.Kind != vigil.ToolCall || a.Tool.Server != "test" || a.Args["message"] != "hello" ||
		!a.Tool.Annotations.ReadOnlyHint || a.Tool.Annotations.DestructiveHint || a.Actor.ID != alice.ID {
		t.Errorf("policy saw %+v (tool %+v)", a, a.Tool)
	}

	res = call(t, cs, "delete_everything", map[string]any{})
	if !res.IsError || !strings.Contains(resultText(res), "delete_everything is not for agents.") {
		t.Errorf("denied call = isError %v %q, want a tool error with the policy's message", res.IsError, resultText(res))
	}
	if a, _ := f.policy.lastSeen("delete_everything"); !a.Tool.Annotations.DestructiveHint || !a.Tool.Annotations.OpenWorldHint {
		t.Errorf("a tool without annotations reached policy with %+v, want MCP's defaults", a.Tool.Annotations)
	}

	if got := f.ledger.find(vigil.EventToolCall, map[string]string{"tool": "echo", "server": "test", "protocol": version}); len(got) != 1 || got[0].Decision != vigil.Allow {
		t.Errorf("ledger tool.call echo = %+v", got)
	}
	if got := f.ledger.find(vigil.EventToolResult, map[string]string{"tool": "echo", "status": "200"}); len(got) != 1 {
		t.Errorf("ledger tool.result echo = %+v", got)
	}
	if got := f.ledger.find(vigil.EventToolCall, map[string]string{"tool": "delete_everything"}); len(got) != 1 || got[0].Decision != vigil.Deny {
		t.Errorf("ledger tool.call delete_everything = %+v", got)
	}
}
