package mcpproxy_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vigil-gateway/vigil/internal/mcpproxy"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// rawClient speaks MCP streamable HTTP by hand, for methods the SDK clients don't
// have (tasks): a stateful session after open, or stateless 2026-07-28 requests.
type rawClient struct {
	t         *testing.T
	url, key  string
	session   string // stateful: the Mcp-Session-Id
	stateless bool
}

// rpcIn is a message a raw client received.
type rpcIn struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int64  `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func openRaw(t *testing.T, url, key string) *rawClient {
	c := &rawClient{t: t, url: url, key: key}
	resp := c.post(initializeBody)
	c.session = resp.Header.Get("Mcp-Session-Id")
	if c.session == "" {
		t.Fatalf("initialize through Vigil: no session (HTTP %d)", resp.StatusCode)
	}
	c.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return c
}

func statelessRaw(t *testing.T, url, key string) *rawClient {
	return &rawClient{t: t, url: url, key: key, stateless: true}
}

func (c *rawClient) post(body string) *http.Response {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+c.key)
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
	}
	if c.stateless {
		req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp
}

// call sends a request and returns its response and the notifications before it.
func (c *rawClient) call(method string, params map[string]any) (rpcIn, []rpcIn) {
	c.t.Helper()
	if c.stateless {
		params["_meta"] = map[string]any{
			"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
			"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "raw", "version": "1"},
			"io.modelcontextprotocol/clientCapabilities": map[string]any{"extensions": map[string]any{"io.modelcontextprotocol/tasks": map[string]any{}}},
		}
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
	resp := c.post(string(body))
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var msgs []rpcIn
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		for _, line := range strings.Split(string(raw), "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok && strings.TrimSpace(d) != "" {
				var m rpcIn
				json.Unmarshal([]byte(d), &m)
				msgs = append(msgs, m)
			}
		}
	} else {
		var m rpcIn
		if err := json.Unmarshal(raw, &m); err != nil {
			c.t.Fatalf("%s: answer is not JSON-RPC: HTTP %d %q", method, resp.StatusCode, raw)
		}
		msgs = append(msgs, m)
	}
	var notes []rpcIn
	for _, m := range msgs {
		if m.Method == "" {
			return m, notes
		}
		notes = append(notes, m)
	}
	c.t.Fatalf("%s: no response among %d messages", method, len(msgs))
	return rpcIn{}, nil
}

// taskView is the parts of task answers the tests look at.
type taskView struct {
	TaskID        string `json:"taskId"`
	Status        string `json:"status"`
	StatusMessage string `json:"statusMessage"`
	ResultType    string `json:"resultType"`
	Task          *struct {
		TaskID        string `json:"taskId"`
		StatusMessage string `json:"statusMessage"`
	} `json:"task"`
	Meta   map[string]any `json:"_meta"`
	Result *struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	} `json:"result"`
	Content []struct {
		Text string `json:"text"`
	} `json:"content"`
	Tasks []struct {
		TaskID        string `json:"taskId"`
		StatusMessage string `json:"statusMessage"`
	} `json:"tasks"`
}

func viewOf(t *testing.T, m rpcIn) taskView {
	t.Helper()
	if m.Error != nil {
		t.Fatalf("JSON-RPC error %d: %s", m.Error.Code, m.Error.Message)
	}
	var v taskView
	if err := json.Unmarshal(m.Result, &v); err != nil {
		t.Fatalf("result %s: %v", m.Result, err)
	}
	return v
}

func wantUnknownTask(t *testing.T, who string, m rpcIn) {
	t.Helper()
	if m.Error == nil || m.Error.Code != -32602 || !strings.Contains(m.Error.Message, "unknown task") || strings.Contains(string(m.Result), "erin") {
		t.Errorf("%s: answer %+v %s, want Vigil's unknown-task refusal", who, m.Error, m.Result)
	}
}

func taskServerConfig(name string) mcpproxy.ServerConfig {
	return stdioServer(name, map[string]string{"MCPTEST_SERVER": "tasks"})
}

// TestTaskResultsGoThroughTheirCall (2025-11-25 tasks, a stdio server): a task's
// handle, status, status notifications, listing and result, fetched in later HTTP
// requests of the session, all reach the client masked through the call's flight;
// the result is recorded once, linked to its call. Task methods are relayed only for
// the session's own tasks: another session, another agent, a task of another client
// the server lists or notifies about get nothing; a task whose session ends unfetched
// is recorded as such.
func TestTaskResultsGoThroughTheirCall(t *testing.T) {
	f := newFixture(t, taskServerConfig("tasks"))
	url := f.url + "/mcp/tasks"
	a := openRaw(t, url, aliceKey)

	created := viewOf(t, first(a.call("tools/call", map[string]any{"name": "research", "arguments": map[string]any{"topic": "tides"}, "task": map[string]any{"ttl": 60000}})))
	if created.Task == nil || created.Task.TaskID != "task-1" || created.Task.StatusMessage != "Researching for <EMAIL_ADDRESS>" {
		t.Fatalf("CreateTaskResult = %+v, want task-1 with its status masked", created.Task)
	}
	if got := created.Meta["io.modelcontextprotocol/model-immediate-response"]; got != "Started research for <EMAIL_ADDRESS>" {
		t.Errorf("immediate response for the model = %v, want masked", got)
	}

	resp, notes := a.call("tasks/get", map[string]any{"taskId": "task-1"})
	if got := viewOf(t, resp); got.Status != "completed" || got.StatusMessage != "Report ready for <EMAIL_ADDRESS>" {
		t.Errorf("tasks/get = %+v, want completed with its status masked", got)
	}
	var note taskView
	if len(notes) == 1 {
		json.Unmarshal(notes[0].Params, &note)
	}
	if len(notes) != 1 || note.TaskID != "task-1" || note.StatusMessage != "Status for <EMAIL_ADDRESS>" {
		t.Errorf("status notifications = %d, first %+v; want only task-1's, masked (not another client's task)", len(notes), note)
	}
	if results := f.ledger.find(vigil.EventToolResult, map[string]string{"tool": "research"}); len(results) != 0 {
		t.Fatalf("a result was recorded before it was fetched: %+v", results)
	}

	for i := 0; i < 2; i++ { // a result may be fetched again; it is recorded once
		got := viewOf(t, first(a.call("tasks/result", map[string]any{"taskId": "task-1"})))
		if len(got.Content) != 1 || got.Content[0].Text != "Report on tides: contact <EMAIL_ADDRESS>" {
			t.Errorf("tasks/result #%d = %+v, want the result masked", i+1, got.Content)
		}
	}
	calls := f.ledger.find(vigil.EventToolCall, map[string]string{"tool": "research"})
	results := f.ledger.find(vigil.EventToolResult, map[string]string{"tool": "research"})
	if len(calls) != 1 || len(results) != 1 {
		t.Fatalf("ledger: %d calls, %d results, want one each", len(calls), len(results))
	}
	if r := results[0]; r.Attrs["request"] != calls[0].ID || r.Attrs["task"] != "task-1" || r.Counts["pii.in.EMAIL_ADDRESS"] != 1 || strings.Contains(string(r.Body), "erin@") {
		t.Errorf("result entry = attrs %v counts %v body %s", r.Attrs, r.Counts, r.Body)
	}

	list := viewOf(t, first(a.call("tasks/list", map[string]any{})))
	if len(list.Tasks) != 1 || list.Tasks[0].TaskID != "task-1" || list.Tasks[0].StatusMessage != "Listed for <EMAIL_ADDRESS>" {
		t.Errorf("tasks/list = %+v, want only this session's task, masked", list.Tasks)
	}

	wantUnknownTask(t, "another session of the same agent", first(openRaw(t, url, aliceKey).call("tasks/result", map[string]any{"taskId": "task-1"})))
	wantUnknownTask(t, "another agent", first(openRaw(t, url, bobKey).call("tasks/get", map[string]any{"taskId": "task-1"})))
	wantUnknownTask(t, "the server's other task", first(a.call("tasks/result", map[string]any{"taskId": foreignTask})))

	// A task never fetched: the session's end is its recorded outcome.
	first(a.call("tools/call", map[string]any{"name": "research", "arguments": map[string]any{"topic": "waves"}, "task": map[string]any{}}))
	req, _ := http.NewRequest("DELETE", url, nil)
	req.Header.Set("Authorization", "Bearer "+aliceKey)
	req.Header.Set("Mcp-Session-Id", a.session)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("DELETE: %v %v", resp, err)
	}
	eventually(t, "the unfetched task's outcome", func() bool {
		r := f.ledger.find(vigil.EventToolResult, map[string]string{"tool": "research", "task": "task-2"})
		return len(r) == 1 && strings.Contains(r[0].Attrs["error"], "session ended before the task's result was fetched")
	})
}

func first(m rpcIn, _ []rpcIn) rpcIn { return m }

// TestTaskLostWithItsServer: a stdio server that crashes takes its tasks with it;
// fetching one then is Vigil's clear error (the restarted server would not know it),
// and the lost result is recorded as such.
func TestTaskLostWithItsServer(t *testing.T) {
	f := newFixture(t, taskServerConfig("tasks"))
	a := openRaw(t, f.url+"/mcp/tasks", aliceKey)
	first(a.call("tools/call", map[string]any{"name": "research", "arguments": map[string]any{"topic": "tides"}, "task": map[string]any{}}))
	if got := viewOf(t, first(a.call("tools/call", map[string]any{"name": "crash", "arguments": map[string]any{}}))); !strings.Contains(string(mustRaw(got.Content)), "stopped before answering") {
		t.Fatalf("crash = %+v", got)
	}
	m := first(a.call("tasks/result", map[string]any{"taskId": "task-1"}))
	if m.Error == nil || !strings.Contains(m.Error.Message, "stopped while running this task") {
		t.Errorf("tasks/result of a lost task = %+v %s", m.Error, m.Result)
	}
	r := f.ledger.find(vigil.EventToolResult, map[string]string{"tool": "research"})
	if len(r) != 1 || !strings.Contains(r[0].Attrs["error"], "result is lost") || r[0].Attrs["status"] != "502" {
		t.Errorf("ledger result of the lost task = %+v", r)
	}
}

// tasksHTTP runs the task server over streamable HTTP, one task store for every
// client, until the test ends.
func tasksHTTP(t *testing.T) string {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "MCPTEST_SERVER=tasks-http", "MCPTEST_ADDR="+addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	eventually(t, "the task server to listen", func() bool { _, err := httpGet("http://" + addr + "/"); return err == nil })
	return "http://" + addr + "/"
}

// TestStatelessTaskResults (the 2026-07-28 tasks extension, an HTTP server whose
// task store every client shares): the task handle and the result that tasks/get
// carries once the task is done, polled in later stateless exchanges, are masked
// through the call's flight and the result recorded once; another agent, and the
// same agent after Vigil restarted (its flights gone), are refused although the
// server itself would hand the result to anyone with the task id.
func TestStatelessTaskResults(t *testing.T) {
	upstream := tasksHTTP(t)
	cfg := mcpproxy.ServerConfig{Name: "tasks", URL: upstream}
	f := newFixture(t, cfg)
	url := f.url + "/mcp/tasks"
	alice1 := statelessRaw(t, url, aliceKey)

	created := viewOf(t, first(alice1.call("tools/call", map[string]any{"name": "research", "arguments": map[string]any{"topic": "tides"}})))
	if created.ResultType != "task" || created.TaskID != "task-1" || created.StatusMessage != "Researching for <EMAIL_ADDRESS>" {
		t.Fatalf("CreateTaskResult = %+v, want task-1 with its status masked", created)
	}
	for i := 0; i < 2; i++ {
		got := viewOf(t, first(statelessRaw(t, url, aliceKey).call("tasks/get", map[string]any{"taskId": "task-1"})))
		if got.Status != "completed" || got.StatusMessage != "Report ready for <EMAIL_ADDRESS>" || got.Result == nil ||
			len(got.Result.Content) != 1 || got.Result.Content[0].Text != "Report on tides: contact <EMAIL_ADDRESS>" {
			t.Errorf("tasks/get #%d = %+v, want completed with status and result masked", i+1, got)
		}
	}
	calls := f.ledger.find(vigil.EventToolCall, map[string]string{"tool": "research"})
	results := f.ledger.find(vigil.EventToolResult, map[string]string{"tool": "research"})
	if len(calls) != 1 || len(results) != 1 || results[0].Attrs["request"] != calls[0].ID || results[0].Attrs["task"] != "task-1" {
		t.Fatalf("ledger: calls %+v results %+v, want one result linked to the call", calls, results)
	}

	// The premise: the server hands the result to anyone who names the task.
	direct := statelessRaw(t, upstream, "")
	if got := viewOf(t, first(direct.call("tasks/get", map[string]any{"taskId": "task-1"}))); got.Result == nil {
		t.Fatalf("the server itself did not return the result: %+v", got)
	}
	wantUnknownTask(t, "another agent", first(statelessRaw(t, url, bobKey).call("tasks/get", map[string]any{"taskId": "task-1"})))
	restarted := newFixture(t, cfg)
	wantUnknownTask(t, "the agent after Vigil restarted", first(statelessRaw(t, restarted.url+"/mcp/tasks", aliceKey).call("tasks/get", map[string]any{"taskId": "task-1"})))
}
