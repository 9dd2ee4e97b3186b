package mcpproxy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
)

// taskServer is an MCP server that runs tools/call as tasks, in both shapes: the
// 2025-11-25 experimental tasks (a call with "task"; tasks/get, tasks/result,
// tasks/list) and the 2026-07-28 tasks extension (a client that declares it gets
// resultType "task"; tasks/get carries the result). The Go SDK has no tasks, so this
// server speaks JSON-RPC itself. Its task ids are sequential and its task store is
// shared by every client (as a server behind one credential would be): exactly what
// Vigil must not let agents reach into. What it says about a task carries personal
// data, so tests see whether Vigil masked it:
//
//	the handle's status message   "Researching for alice.smith@example.com"
//	tasks/get status message      "Report ready for alice.smith@example.com"
//	the result                    "Report on <topic>: contact erin@example.com"
//
// Before answering tasks/get it sends notifications/tasks/status for that task and
// for a task of another client ("task-foreign"). The tool "crash" exits the process.
// It runs over stdio (MCPTEST_SERVER=tasks) or streamable HTTP answering JSON
// (MCPTEST_SERVER=tasks-http on MCPTEST_ADDR).
type taskServer struct {
	mu    sync.Mutex
	n     int
	tasks map[string]string // id → topic
}

type rpcMsg struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  any             `json:"result,omitempty"`
	Error   any             `json:"error,omitempty"`
}

const foreignTask = "task-foreign"

func runTaskServer(mode string) {
	ts := &taskServer{tasks: map[string]string{foreignTask: "someone else's"}}
	if mode == "tasks-http" {
		http.ListenAndServe(os.Getenv("MCPTEST_ADDR"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				w.WriteHeader(http.StatusMethodNotAllowed)
				return
			}
			var m rpcMsg
			body, _ := io.ReadAll(r.Body)
			if json.Unmarshal(body, &m) != nil || m.ID == nil {
				w.WriteHeader(http.StatusAccepted)
				return
			}
			resp, _ := ts.handle(m)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(resp)
		}))
		os.Exit(1)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	enc := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var m rpcMsg
		if json.Unmarshal(in.Bytes(), &m) != nil || m.ID == nil {
			continue
		}
		resp, notes := ts.handle(m)
		for _, n := range notes {
			enc.Encode(n)
		}
		enc.Encode(resp)
	}
	os.Exit(0)
}

// handle answers one request, with the notifications to send before the answer.
func (ts *taskServer) handle(m rpcMsg) (rpcMsg, []rpcMsg) {
	var p struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Name            string          `json:"name"`
		TaskID          string          `json:"taskId"`
		Task            json.RawMessage `json:"task"`
		Arguments       struct {
			Topic string `json:"topic"`
		} `json:"arguments"`
		Meta struct {
			Version      string `json:"io.modelcontextprotocol/protocolVersion"`
			Capabilities struct {
				Extensions map[string]any `json:"extensions"`
			} `json:"io.modelcontextprotocol/clientCapabilities"`
		} `json:"_meta"`
	}
	json.Unmarshal(m.Params, &p)
	ok := func(result any) (rpcMsg, []rpcMsg) { return rpcMsg{JSONRPC: "2.0", ID: m.ID, Result: result}, nil }
	_, extension := p.Meta.Capabilities.Extensions["io.modelcontextprotocol/tasks"]
	stamp := map[string]any{"createdAt": "2026-01-02T03:04:05Z", "lastUpdatedAt": "2026-01-02T03:04:05Z"}
	task := func(id, status, msg string, extra map[string]any) map[string]any {
		t := map[string]any{"taskId": id, "status": status, "statusMessage": msg, "ttl": 60000, "ttlMs": 60000, "pollInterval": 100}
		for k, v := range stamp {
			t[k] = v
		}
		for k, v := range extra {
			t[k] = v
		}
		return t
	}
	result := func(topic string) map[string]any {
		return map[string]any{"content": []any{map[string]any{"type": "text", "text": "Report on " + topic + ": contact erin@example.com"}}}
	}
	switch m.Method {
	case "initialize":
		return ok(map[string]any{"protocolVersion": p.ProtocolVersion, "serverInfo": map[string]any{"name": "task-server", "version": "1"},
			"capabilities": map[string]any{"tools": map[string]any{}, "tasks": map[string]any{"list": map[string]any{}, "cancel": map[string]any{}, "requests": map[string]any{"tools": map[string]any{"call": map[string]any{}}}}}})
	case "server/discover":
		return ok(map[string]any{"supportedVersions": []string{"2026-07-28"}, "capabilities": map[string]any{"tools": map[string]any{}, "extensions": map[string]any{"io.modelcontextprotocol/tasks": map[string]any{}}}})
	case "tools/list":
		ro := map[string]any{"readOnlyHint": true, "destructiveHint": false, "openWorldHint": false}
		return ok(map[string]any{"tools": []any{
			map[string]any{"name": "research", "inputSchema": map[string]any{"type": "object"}, "execution": map[string]any{"taskSupport": "optional"}, "annotations": ro},
			map[string]any{"name": "crash", "inputSchema": map[string]any{"type": "object"}, "annotations": ro},
		}})
	case "tools/call":
		if p.Name == "crash" {
			os.Exit(3)
		}
		if p.Task == nil && !extension {
			return ok(result(p.Arguments.Topic))
		}
		ts.mu.Lock()
		ts.n++
		id := fmt.Sprintf("task-%d", ts.n)
		ts.tasks[id] = p.Arguments.Topic
		ts.mu.Unlock()
		if extension {
			return ok(task(id, "working", "Researching for alice.smith@example.com", map[string]any{"resultType": "task"}))
		}
		return ok(map[string]any{"task": task(id, "working", "Researching for alice.smith@example.com", nil),
			"_meta": map[string]any{"io.modelcontextprotocol/model-immediate-response": "Started research for alice.smith@example.com"}})
	case "tasks/get", "tasks/result", "tasks/cancel":
		ts.mu.Lock()
		topic, known := ts.tasks[p.TaskID]
		ts.mu.Unlock()
		if !known {
			return rpcMsg{JSONRPC: "2.0", ID: m.ID, Error: map[string]any{"code": -32602, "message": "Failed to retrieve task: Task not found"}}, nil
		}
		switch m.Method {
		case "tasks/result":
			r := result(topic)
			r["_meta"] = map[string]any{"io.modelcontextprotocol/related-task": map[string]any{"taskId": p.TaskID}}
			return ok(r)
		case "tasks/cancel":
			return ok(task(p.TaskID, "cancelled", "Cancelled for alice.smith@example.com", nil))
		}
		extra := map[string]any{}
		if p.Meta.Version >= "2026-07-28" {
			extra["result"], extra["resultType"] = result(topic), "complete"
		}
		resp, _ := ok(task(p.TaskID, "completed", "Report ready for alice.smith@example.com", extra))
		notes := []rpcMsg{
			{JSONRPC: "2.0", Method: "notifications/tasks/status", Params: mustRaw(task(foreignTask, "working", "Someone else: frank@example.com", nil))},
			{JSONRPC: "2.0", Method: "notifications/tasks/status", Params: mustRaw(task(p.TaskID, "completed", "Status for alice.smith@example.com", nil))},
		}
		return resp, notes
	case "tasks/list":
		ts.mu.Lock()
		var list []any
		for id := range ts.tasks {
			list = append(list, task(id, "completed", "Listed for alice.smith@example.com", nil))
		}
		ts.mu.Unlock()
		return ok(map[string]any{"tasks": list})
	case "ping":
		return ok(map[string]any{})
	}
	return rpcMsg{JSONRPC: "2.0", ID: m.ID, Error: map[string]any{"code": -32601, "message": "Method not found"}}, nil
}

func mustRaw(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
