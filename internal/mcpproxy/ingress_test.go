package mcpproxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// TestRefusalsAreJSONRPC: what Vigil refuses at the HTTP level is answered with a
// JSON-RPC error body and the matching status, never a dropped connection.
func TestRefusalsAreJSONRPC(t *testing.T) {
	f := newFixture(t, stdioServer("test", nil))
	resp, body := post(t, f.url+"/mcp/test", aliceKey, "", initializeBody)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != 200 || sid == "" || body.Error != nil {
		t.Fatalf("initialize = %d session %q %+v", resp.StatusCode, sid, body.Error)
	}
	cases := []struct {
		name    string
		key     string
		session string
		body    string
		headers []string
		status  int
		code    int64
		msg     string
	}{
		{"no key", "", "", initializeBody, nil, 401, -32001, "missing API key"},
		{"wrong key", "vk_nope", "", initializeBody, nil, 401, -32001, "invalid or missing credentials"},
		{"not JSON", aliceKey, sid, `{"jsonrpc":`, nil, 400, -32700, "not valid JSON"},
		{"not JSON-RPC", aliceKey, sid, `{"hello":"world"}`, nil, 400, -32600, `"jsonrpc": "2.0"`},
		{"bad params", aliceKey, sid, `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":"x"}`, nil, 400, -32600, "params"},
		{"unknown session", aliceKey, "nope", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil, 404, -32000, "session not found"},
		{"another agent's session", bobKey, sid, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil, 404, -32000, "session not found"},
		{"no session", aliceKey, "", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil, 400, -32000, "Mcp-Session-Id"},
		{"wrong content type", aliceKey, sid, `{}`, []string{"Content-Type", "text/plain"}, 415, -32600, "application/json"},
		{"batch in 2025-11-25", aliceKey, sid, `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, []string{"Mcp-Protocol-Version", "2025-11-25"}, 400, -32600, "batches"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := post(t, f.url+"/mcp/test", c.key, c.session, c.body, c.headers...)
			if resp.StatusCode != c.status || body.Error == nil || body.Error.Code != c.code || !strings.Contains(body.Error.Message, c.msg) {
				t.Errorf("= %d %+v, want %d, code %d, message with %q", resp.StatusCode, body.Error, c.status, c.code, c.msg)
			}
		})
	}
	t.Run("unknown server", func(t *testing.T) {
		resp, body := post(t, f.url+"/mcp/nope", aliceKey, "", initializeBody)
		if resp.StatusCode != 404 || body.Error == nil || !strings.Contains(body.Error.Message, `no MCP server named "nope"`) {
			t.Errorf("= %d %+v", resp.StatusCode, body.Error)
		}
	})
	t.Run("401 says how to authenticate", func(t *testing.T) {
		resp, _ := post(t, f.url+"/mcp/test", "", "", initializeBody)
		if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
		}
	})
	t.Run("unknown method passes through", func(t *testing.T) {
		_, body := post(t, f.url+"/mcp/test", aliceKey, sid, `{"jsonrpc":"2.0","id":7,"method":"vendor/frobnicate","params":{}}`)
		if body.Error == nil || body.Error.Code != -32601 || body.ID != float64(7) {
			t.Errorf("= %+v: want the server's own method-not-found with the client's id", body)
		}
	})
	t.Run("delete ends the session", func(t *testing.T) {
		req, _ := http.NewRequest("DELETE", f.url+"/mcp/test", nil)
		req.Header.Set("Authorization", "Bearer "+aliceKey)
		req.Header.Set("Mcp-Session-Id", sid)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 204 {
			t.Fatalf("DELETE = %v, %v", resp, err)
		}
		if resp, _ := post(t, f.url+"/mcp/test", aliceKey, sid, `{"jsonrpc":"2.0","id":1,"method":"ping"}`); resp.StatusCode != 404 {
			t.Errorf("ping after DELETE = %d, want 404", resp.StatusCode)
		}
	})
}

// sseEvents reads SSE events (id, data) from a response body into a channel.
func sseEvents(resp *http.Response) <-chan [2]string {
	out := make(chan [2]string, 64)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var id, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case line == "":
				if id != "" || data != "" {
					out <- [2]string{id, data}
				}
				id, data = "", ""
			}
		}
	}()
	return out
}

// TestResumingABrokenStream: a client whose connection breaks during a call resumes
// its stream with Last-Event-ID and gets what it missed, response included.
func TestResumingABrokenStream(t *testing.T) {
	f := newFixture(t, stdioServer("test", nil))
	resp, _ := post(t, f.url+"/mcp/test", aliceKey, "", initializeBody)
	sid := resp.Header.Get("Mcp-Session-Id")
	post(t, f.url+"/mcp/test", aliceKey, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", f.url+"/mcp/test", strings.NewReader(
		`{"jsonrpc":"2.0","id":"call-1","method":"tools/call","params":{"name":"slow","arguments":{"steps":3,"ms":150},"_meta":{"progressToken":"p1"}}}`))
	for k, v := range map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
		"Authorization": "Bearer " + aliceKey, "Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	first := <-sseEvents(resp)
	if first[0] == "" || first[1] != "" {
		t.Fatalf("first event = %q, want a priming event with an id and no data", first)
	}
	cancel() // the connection breaks
	resp.Body.Close()

	time.Sleep(600 * time.Millisecond) // the call finishes meanwhile
	get, _ := http.NewRequest("GET", f.url+"/mcp/test", nil)
	for k, v := range map[string]string{"Accept": "text/event-stream", "Authorization": "Bearer " + aliceKey,
		"Mcp-Session-Id": sid, "Last-Event-ID": first[0]} {
		get.Header.Set(k, v)
	}
	resp, err = http.DefaultClient.Do(get)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("resume = %v, %v", resp, err)
	}
	defer resp.Body.Close()
	var progress int
	var answer rpcBody
	for ev := range sseEvents(resp) {
		var m struct {
			Method string `json:"method"`
		}
		json.Unmarshal([]byte(ev[1]), &m)
		if m.Method == "notifications/progress" {
			progress++
			continue
		}
		json.Unmarshal([]byte(ev[1]), &answer)
	}
	if progress != 3 || answer.ID != "call-1" || !strings.Contains(string(answer.Result), "done after 3 steps") {
		t.Errorf("resumed stream: %d progress, answer %+v", progress, answer)
	}
}

// TestStatelessRevision: the 2026-07-28 revision has no sessions and no GET stream;
// protocol errors carry their HTTP status; Vigil's discovery answer is the server's.
func TestStatelessRevision(t *testing.T) {
	f := newFixture(t, stdioServer("test", nil))
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`
	h := []string{"Mcp-Protocol-Version", "2026-07-28"}
	resp, body := post(t, f.url+"/mcp/test", aliceKey, "", `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{`+meta+`}}`, h...)
	var disc struct {
		SupportedVersions []string `json:"supportedVersions"`
	}
	json.Unmarshal(body.Result, &disc)
	if resp.StatusCode != 200 || !contains(disc.SupportedVersions, "2026-07-28") || resp.Header.Get("Mcp-Session-Id") != "" {
		t.Errorf("server/discover = %d %s", resp.StatusCode, body.Result)
	}
	resp, body = post(t, f.url+"/mcp/test", aliceKey, "", `{"jsonrpc":"2.0","id":2,"method":"no/such","params":{`+meta+`}}`, h...)
	if resp.StatusCode != 404 || body.Error == nil || body.Error.Code != -32601 {
		t.Errorf("unknown method = %d %+v, want 404 with -32601", resp.StatusCode, body.Error)
	}
	get, _ := http.NewRequest("GET", f.url+"/mcp/test", nil)
	get.Header.Set("Accept", "text/event-stream")
	get.Header.Set("Authorization", "Bearer "+aliceKey)
	get.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	if resp, _ := http.DefaultClient.Do(get); resp.StatusCode != 405 {
		t.Errorf("GET in the stateless revision = %d, want 405", resp.StatusCode)
	}
	if len(f.gw.Sessions()) != 0 {
		t.Errorf("stateless requests left sessions: %+v", f.gw.Sessions())
	}
	if got := f.ledger.find(vigil.EventToolCall, nil); len(got) != 0 {
		t.Errorf("ledger has tool calls: %+v", got)
	}
}

// TestIdleSessionsAreClosed: a session nobody uses is closed after its server's
// idle time, and its process stopped.
func TestIdleSessionsAreClosed(t *testing.T) {
	srv := stdioServer("test", nil)
	srv.SessionIdle = time.Second
	f := newFixture(t, srv)
	cs := f.connectVersion("test", aliceKey, "2025-11-25", &mcp.ClientOptions{})
	_ = cs
	eventually(t, "one session", func() bool { return len(f.gw.Sessions()) == 1 })
	// The Go SDK client keeps a GET stream open: that counts as use. Drop it.
	cs.Close()
	resp, _ := post(t, f.url+"/mcp/test", aliceKey, "", initializeBody)
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	eventually(t, "the idle session to close", func() bool { return len(f.gw.Sessions()) == 0 })
}
