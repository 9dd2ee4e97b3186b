// Package mcptest runs the real MCP servers and the official TypeScript client that
// the MCP gateway's tests use, from test/mcp (npm packages installed by
// scripts/test-deps.sh): tests of the relay itself and the binary's end-to-end tests
// share them.
package mcptest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// NodeDir returns test/mcp, with its node_modules installed. Without node or the
// packages the test is skipped on a developer machine and fails in CI (CI is set).
func NodeDir(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "test", "mcp")
	_, nodeErr := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-everything"))
	if nodeErr != nil || modErr != nil {
		msg := "node or test/mcp/node_modules missing (run scripts/test-deps.sh)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// Everything is the command that runs @modelcontextprotocol/server-everything over
// transport ("stdio" or "streamableHttp", which listens on $PORT).
func Everything(dir, transport string) []string {
	return []string{"node", filepath.Join(dir, "node_modules/@modelcontextprotocol/server-everything/dist/index.js"), transport}
}

// Filesystem is the command that runs @modelcontextprotocol/server-filesystem over
// stdio, confined to root.
func Filesystem(dir, root string) []string {
	return []string{"node", filepath.Join(dir, "node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"), root}
}

// Step is the outcome of one step of a TypeScript client plan (see test/mcp/client.mjs).
type Step struct {
	Error        string          `json:"error"`
	Tools        []string        `json:"tools"`
	IsError      bool            `json:"isError"`
	Text         string          `json:"text"`
	Progress     []any           `json:"progress"`
	Texts        []string        `json:"texts"`
	Server       map[string]any  `json:"server"`
	Instructions string          `json:"instructions"`
	Capabilities json.RawMessage `json:"capabilities"`
	Protocol     string          `json:"protocol"`
	// Statuses are the status messages a task step saw, Task its id, Elicited the
	// messages of the elicitation requests the client answered so far.
	Statuses []string `json:"statuses"`
	Task     string   `json:"task"`
	Elicited []string `json:"elicited"`
}

// Op is one step of a plan: Op("call", "name", "echo", "args", map[string]any{…}).
func Op(name string, kv ...any) map[string]any {
	m := map[string]any{"op": name}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// TSClient runs the official TypeScript client against url with the agent key and
// the plan's steps, in order, and returns each step's outcome.
func TSClient(t testing.TB, dir, url, key string, plan ...map[string]any) []Step {
	t.Helper()
	p, _ := json.Marshal(plan)
	cmd := exec.Command("node", filepath.Join(dir, "client.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "VIGIL_MCP_URL="+url, "VIGIL_AGENT_KEY="+key, "VIGIL_PLAN="+string(p))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("TypeScript client: %v\nstderr: %s", err, stderr.String())
	}
	var out []Step
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out) != len(plan) {
		t.Fatalf("TypeScript client printed %q for %d steps (%v)\nstderr: %s", stdout.String(), len(plan), err, stderr.String())
	}
	return out
}
