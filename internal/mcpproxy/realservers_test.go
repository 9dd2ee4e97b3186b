package mcpproxy_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/mcpproxy"
	"github.com/vigil-gateway/vigil/internal/mcpproxy/mcptest"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// These tests run real MCP servers from npm (@modelcontextprotocol/server-everything
// over stdio and streamable HTTP, @modelcontextprotocol/server-filesystem over stdio)
// behind Vigil, driven by the official TypeScript client (test/mcp/client.mjs) and
// the Go SDK client. Policy and the reviewer are fakes here; cmd/vigil's end-to-end
// tests use the real engines and ledger.

// everything is server-everything behind Vigil over transport: a stdio process per
// session, or one HTTP server for the test.
func everything(t *testing.T, dir, transport string) mcpproxy.ServerConfig {
	if transport == "http" {
		return mcpproxy.ServerConfig{Name: "everything", URL: everythingHTTP(t, dir)}
	}
	return mcpproxy.ServerConfig{Name: "everything", Command: mcptest.Everything(dir, "stdio"), StartupTimeout: 30 * time.Second}
}

// everythingHTTP runs server-everything over streamable HTTP until the test ends.
func everythingHTTP(t *testing.T, dir string) string {
	t.Helper()
	addr := freeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command(mcptest.Everything(dir, "streamableHttp")[0], mcptest.Everything(dir, "streamableHttp")[1:]...)
	cmd.Env = append(os.Environ(), "PORT="+port)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	eventually(t, "server-everything to listen", func() bool {
		resp, err := httpGet("http://" + addr + "/mcp")
		return err == nil && resp > 0
	})
	return "http://" + addr + "/mcp"
}

// TestEverythingServerWithTheTypeScriptClient: server-everything over stdio and over
// streamable HTTP, through Vigil, with the official TypeScript client: the session is
// the server's own (info, instructions, capabilities), a denied tool is hidden and
// refused with an explanation, calls work, progress of a long operation arrives,
// sampling requests reach the client, arguments and results are masked, and every
// call is recorded.
func TestEverythingServerWithTheTypeScriptClient(t *testing.T) {
	dir := mcptest.NodeDir(t)
	for _, transport := range []string{"stdio", "http"} {
		t.Run(transport, func(t *testing.T) {
			f := newFixture(t, everything(t, dir, transport))
			f.policy.set("get-env", vigil.Deny)
			out := mcptest.TSClient(t, dir, f.url+"/mcp/everything", aliceKey,
				mcptest.Op("info"),
				mcptest.Op("list"),
				mcptest.Op("call", "name", "echo", "args", map[string]any{"message": "hello through Vigil"}),
				mcptest.Op("call", "name", "get-sum", "args", map[string]any{"a": 2, "b": 3}),
				mcptest.Op("call", "name", "get-env"),
				mcptest.Op("call", "name", "trigger-long-running-operation", "args", map[string]any{"duration": 1, "steps": 3}),
				mcptest.Op("call", "name", "trigger-sampling-request", "args", map[string]any{"prompt": "hello", "maxTokens": 5}),
				mcptest.Op("call", "name", "echo", "args", map[string]any{"message": "mail erin@example.com"}),
				mcptest.Op("ping"),
			)
			info, tools := out[0], out[1]
			if info.Server["name"] == nil || !strings.Contains(info.Server["name"].(string), "everything") || info.Protocol != "2025-11-25" {
				t.Errorf("info = %+v: want server-everything's own identity on 2025-11-25", info)
			}
			if !strings.Contains(string(info.Capabilities), `"tools"`) || !strings.Contains(string(info.Capabilities), `"logging"`) {
				t.Errorf("capabilities = %s: want the server's own", info.Capabilities)
			}
			if !contains(tools.Tools, "echo") || !contains(tools.Tools, "trigger-long-running-operation") || contains(tools.Tools, "get-env") {
				t.Errorf("tools = %v: want echo and the rest, not the denied get-env", tools.Tools)
			}
			if out[2].Text != "Echo: hello through Vigil" || out[2].IsError {
				t.Errorf("echo = %+v", out[2])
			}
			if !strings.Contains(out[3].Text, "5") || out[3].IsError {
				t.Errorf("get-sum = %+v", out[3])
			}
			if !out[4].IsError || !strings.Contains(out[4].Text, "get-env is not for agents.") || strings.Contains(out[4].Text, "PATH") {
				t.Errorf("denied get-env = %+v, want a tool error that explains", out[4])
			}
			if out[5].IsError || len(out[5].Progress) != 3 {
				t.Errorf("long-running operation = %+v, want three progress notifications", out[5])
			}
			if out[6].IsError || !strings.Contains(out[6].Text, "hi from the client") {
				t.Errorf("sampling = %+v, want the client's answer relayed back to the server", out[6])
			}
			if out[7].Text != "Echo: mail <EMAIL_ADDRESS>" {
				t.Errorf("echo with an email = %q, want it masked before the server saw it", out[7].Text)
			}
			if out[8].Error != "" {
				t.Errorf("ping = %+v", out[8])
			}
			for _, tool := range []string{"echo", "get-sum", "get-env", "trigger-long-running-operation", "trigger-sampling-request"} {
				if got := f.ledger.find(vigil.EventToolCall, map[string]string{"tool": tool, "server": "everything"}); len(got) == 0 {
					t.Errorf("ledger has no tool.call for %s", tool)
				}
			}
			if len(f.gw.Sessions()) != 0 {
				t.Errorf("sessions left after the client ended its session: %+v", f.gw.Sessions())
			}
		})
	}
}

// TestEverythingServerHeldCalls: with the TypeScript client, a call held for approval
// runs when approved and is a clear tool error when the approval expires.
func TestEverythingServerHeldCalls(t *testing.T) {
	dir := mcptest.NodeDir(t)
	f := newFixture(t, everything(t, dir, "stdio"))
	f.policy.set("get-sum", vigil.RequireApproval)
	go func() {
		for _, status := range []string{"approved", "expired"} {
			<-f.holder.holds
			time.Sleep(100 * time.Millisecond) // progress flows meanwhile
			f.holder.outcome <- enforce.HoldResult{Status: status}
		}
	}()
	out := mcptest.TSClient(t, dir, f.url+"/mcp/everything", aliceKey,
		mcptest.Op("call", "name", "get-sum", "args", map[string]any{"a": 1, "b": 1}),
		mcptest.Op("call", "name", "get-sum", "args", map[string]any{"a": 1, "b": 1}),
	)
	if out[0].IsError || !strings.Contains(out[0].Text, "2") {
		t.Errorf("approved call = %+v", out[0])
	}
	if len(out[0].Progress) == 0 || !strings.Contains(fmtAny(out[0].Progress[0]), "Waiting for a human to approve this call") {
		t.Errorf("held call progress = %v, want notifications that say it waits for approval", out[0].Progress)
	}
	if !out[1].IsError || !strings.Contains(out[1].Text, "approval expired") {
		t.Errorf("expired call = %+v", out[1])
	}
}

// TestEverythingServerCrash: killing server-everything mid-call gives the client a
// tool error; Vigil restarts the server and the next call works.
func TestEverythingServerCrash(t *testing.T) {
	dir := mcptest.NodeDir(t)
	f := newFixture(t, everything(t, dir, "stdio"))
	go func() {
		eventually(t, "the long call to be forwarded", func() bool {
			return len(f.ledger.find(vigil.EventToolCall, map[string]string{"tool": "trigger-long-running-operation"})) == 1
		})
		time.Sleep(300 * time.Millisecond)
		for _, s := range f.gw.Sessions() {
			if s.PID > 0 {
				syscall.Kill(s.PID, syscall.SIGKILL)
			}
		}
	}()
	out := mcptest.TSClient(t, dir, f.url+"/mcp/everything", aliceKey,
		mcptest.Op("call", "name", "trigger-long-running-operation", "args", map[string]any{"duration": 20, "steps": 20}),
		mcptest.Op("call", "name", "echo", "args", map[string]any{"message": "after the crash"}),
	)
	if !out[0].IsError || !strings.Contains(out[0].Text, "stopped before answering") {
		t.Errorf("call during the crash = %+v, want a tool error", out[0])
	}
	if out[1].IsError || out[1].Text != "Echo: after the crash" {
		t.Errorf("call after the crash = %+v, want it to work on the restarted server", out[1])
	}
}

// TestFilesystemServer: server-filesystem over stdio, confined to a temp dir: a
// destructive tool policy forbids is hidden and refused; a file's personal data is
// masked in the result.
func TestFilesystemServer(t *testing.T) {
	dir := mcptest.NodeDir(t)
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "contacts.txt"), []byte("Frank: frank.jones@example.com\n"), 0o644)
	f := newFixture(t, mcpproxy.ServerConfig{Name: "files", StartupTimeout: 30 * time.Second,
		Command: mcptest.Filesystem(dir, root)})
	f.policy.set("write_file", vigil.Deny)
	contacts := filepath.Join(root, "contacts.txt")
	out := mcptest.TSClient(t, dir, f.url+"/mcp/files", aliceKey,
		mcptest.Op("list"),
		mcptest.Op("call", "name", "read_text_file", "args", map[string]any{"path": contacts}),
		mcptest.Op("call", "name", "write_file", "args", map[string]any{"path": filepath.Join(root, "x.txt"), "content": "x"}),
	)
	if !contains(out[0].Tools, "read_text_file") || contains(out[0].Tools, "write_file") {
		t.Errorf("tools = %v", out[0].Tools)
	}
	if out[1].IsError || !strings.Contains(out[1].Text, "Frank: <EMAIL_ADDRESS>") {
		t.Errorf("read_text_file = %+v, want the email masked", out[1])
	}
	if !out[2].IsError {
		t.Errorf("write_file = %+v, want refused", out[2])
	}
	if _, err := os.Stat(filepath.Join(root, "x.txt")); err == nil {
		t.Error("the refused write happened")
	}
}

// TestEverythingServerWithTheGoClient: the Go SDK client (which tries the stateless
// revision first and falls back) through Vigil to server-everything over stdio and
// streamable HTTP.
func TestEverythingServerWithTheGoClient(t *testing.T) {
	dir := mcptest.NodeDir(t)
	for _, transport := range []string{"stdio", "http"} {
		t.Run(transport, func(t *testing.T) {
			f := newFixture(t, everything(t, dir, transport))
			f.policy.set("get-env", vigil.Deny)
			var prog progressLog
			cs := f.connect("everything", aliceKey, &mcp.ClientOptions{ProgressNotificationHandler: prog.handler})
			if v := cs.InitializeResult().ProtocolVersion; v != "2025-11-25" {
				t.Errorf("negotiated %s, want the server's 2025-11-25 after falling back", v)
			}
			names := list(t, cs)
			if !contains(names, "echo") || contains(names, "get-env") {
				t.Errorf("tools = %v", names)
			}
			if got := resultText(call(t, cs, "echo", map[string]any{"message": "hi"})); got != "Echo: hi" {
				t.Errorf("echo = %q", got)
			}
			res := receive(t, callAsync(cs, ctxT(t), "trigger-long-running-operation", map[string]any{"duration": 1, "steps": 2}))
			if res.IsError {
				t.Errorf("long-running operation = %q", resultText(res))
			}
			eventually(t, "two progress notifications", func() bool { _, v := prog.snapshot(); return len(v) == 2 })
			if res := call(t, cs, "get-env", nil); !res.IsError {
				t.Error("denied get-env ran")
			}
		})
	}
}

func httpGet(url string) (int, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func fmtAny(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// answersOnly masks email addresses only in what comes back (answers, a server's
// requests to the client), so that data a test sends reaches the server as it is
// and the server can echo it back through the paths under test.
type answersOnly struct{ masker }

func (answersOnly) MaskJSON(_ context.Context, _ enforce.Scope, doc []byte) ([]byte, vigil.PIISummary, error) {
	return doc, vigil.PIISummary{}, nil
}

// TestEverythingServerTaskResultsAreGoverned: server-everything's task tool
// (simulate-research-query, which must run as a task) through Vigil, with the
// TypeScript client polling tasks/get across HTTP requests of its session: what the
// server says while the task runs (a status message, an elicitation on the
// tasks/result stream) and the result fetched later are masked through the call's
// flight; the ledger links one result to the call, and records the elicitation and
// the client's answer with their PII counts.
func TestEverythingServerTaskResultsAreGoverned(t *testing.T) {
	dir := mcptest.NodeDir(t)
	f := newFixtureWith(t, func(o *mcpproxy.Options) { o.Pipeline.PII = answersOnly{} }, everything(t, dir, "stdio"))
	out := mcptest.TSClient(t, dir, f.url+"/mcp/everything", aliceKey,
		mcptest.Op("task", "name", "simulate-research-query", "args", map[string]any{"topic": "erin@example.com", "ambiguous": true}),
	)
	step := out[0]
	if step.Error != "" || step.IsError || step.Task == "" {
		t.Fatalf("task step = %+v", step)
	}
	all := strings.Join(append(append([]string{step.Text}, step.Statuses...), step.Elicited...), "\n")
	if strings.Contains(all, "erin@example.com") {
		t.Errorf("the email reached the client unmasked:\n%s", all)
	}
	if !strings.Contains(step.Text, "Research Report: <EMAIL_ADDRESS>") {
		t.Errorf("task result = %q, want the report with the email masked", step.Text)
	}
	if !strings.Contains(strings.Join(step.Statuses, "\n"), `multiple interpretations for "<EMAIL_ADDRESS>"`) {
		t.Errorf("status messages = %q, want the input_required one, masked", step.Statuses)
	}
	if len(step.Elicited) != 1 || !strings.Contains(step.Elicited[0], "<EMAIL_ADDRESS>") {
		t.Errorf("elicitation messages = %q, want one, masked", step.Elicited)
	}

	calls := f.ledger.find(vigil.EventToolCall, map[string]string{"tool": "simulate-research-query"})
	results := f.ledger.find(vigil.EventToolResult, map[string]string{"tool": "simulate-research-query"})
	if len(calls) != 1 || len(results) != 1 {
		t.Fatalf("ledger: %d calls, %d results; want one of each", len(calls), len(results))
	}
	r := results[0]
	if r.Attrs["request"] != calls[0].ID || r.Attrs["task"] != step.Task || r.Attrs["status"] != "200" {
		t.Errorf("result entry attrs = %v, want linked to call %s and task %s", r.Attrs, calls[0].ID, step.Task)
	}
	if r.Counts["pii.in.EMAIL_ADDRESS"] == 0 || strings.Contains(string(r.Body), "erin@") || !strings.Contains(string(r.Body), "Research Report") {
		t.Errorf("result entry counts %v body %.80s…, want the report, masked and counted", r.Counts, r.Body)
	}
	el := f.ledger.find(mcpproxy.EventElicitation, map[string]string{"server": "everything", "method": "elicitation/create"})
	if len(el) != 1 || el[0].Counts["pii.in.EMAIL_ADDRESS"] != 1 || strings.Contains(string(el[0].Body), "erin@") {
		t.Fatalf("ledger elicitation = %+v", el)
	}
	ans := f.ledger.find(mcpproxy.EventElicitationResult, map[string]string{"request": el[0].ID})
	if len(ans) != 1 || ans[0].Attrs["action"] != "accept" || ans[0].Attrs["status"] != "ok" {
		t.Errorf("ledger elicitation answer = %+v", ans)
	}
}
