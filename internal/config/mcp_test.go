package config_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/config"
)

func TestMCPServers(t *testing.T) {
	c, err := config.Parse([]byte(`
mcp_servers:
  - name: files
    command: [node, server.js, /srv]
    env: {A: "1"}
    env_from: {TOKEN: FILES_TOKEN}
    pinning: {mode: warn}
    timeouts: {startup: 5s, request: 1m, session_idle: 10m}
    max_sessions: 3
  - name: tickets
    url: https://tickets.example/mcp
    headers: {X-Tenant: a}
    headers_env: {Authorization: TICKETS_AUTH}
`))
	if err != nil {
		t.Fatal(err)
	}
	f, tk := c.MCPServers[0], c.MCPServers[1]
	if f.Name != "files" || len(f.Command) != 3 || f.Pinning.Mode != "warn" || f.Timeouts.Startup != 5*time.Second || f.MaxSessions != 3 {
		t.Errorf("files = %+v", f)
	}
	if tk.URL != "https://tickets.example/mcp" || tk.HeadersEnv["Authorization"] != "TICKETS_AUTH" || tk.Pinning.Mode != "" {
		t.Errorf("tickets = %+v", tk)
	}

	env := map[string]string{"FILES_TOKEN": "t0k3n-files", "TICKETS_AUTH": "Bearer xyz"}
	e, h, err := f.ResolveEnv(func(k string) string { return env[k] })
	if err != nil || e["A"] != "1" || e["TOKEN"] != "t0k3n-files" || len(h) != 0 {
		t.Errorf("ResolveEnv(files) = %v %v %v", e, h, err)
	}
	_, h, err = tk.ResolveEnv(func(k string) string { return env[k] })
	if err != nil || h["Authorization"] != "Bearer xyz" || h["X-Tenant"] != "a" {
		t.Errorf("ResolveEnv(tickets) = %v %v", h, err)
	}
	_, _, err = tk.ResolveEnv(func(string) string { return "" })
	var fes config.FieldErrors
	if !errors.As(err, &fes) || !strings.Contains(err.Error(), "TICKETS_AUTH is empty or unset") {
		t.Errorf("ResolveEnv with the variable unset = %v", err)
	}
}

func TestMCPServerErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"mcp_servers:\n  - name: a\n", "mcp_servers[0]: set command"},
		{"mcp_servers:\n  - name: a\n    command: [x]\n    url: http://h/mcp\n", "set only one of command and url"},
		{"mcp_servers:\n  - name: Bad Name\n    command: [x]\n", `mcp_servers[0].name: "Bad Name" must be`},
		{"mcp_servers:\n  - {name: a, command: [x]}\n  - {name: a, command: [y]}\n", `mcp_servers[1].name: "a" is used by another server`},
		{"mcp_servers:\n  - name: a\n    url: ftp://h/x\n", "is not an http:// or https:// URL"},
		{"mcp_servers:\n  - name: a\n    command: [x]\n    pinning: {mode: trust}\n", `"trust" is not one of pin, warn, off`},
		{"mcp_servers:\n  - name: a\n    command: [x]\n    headers: {X-A: b}\n", "headers apply only to url servers"},
		{"mcp_servers:\n  - name: a\n    url: http://h/mcp\n    env: {A: b}\n", "apply only to command servers"},
		{"mcp_servers:\n  - name: a\n    url: http://h/mcp\n    headers: {Mcp-Session-Id: x}\n", "not a valid HTTP header name"},
		{"mcp_servers:\n  - name: a\n    command: [\"\"]\n", "the program (first element) is empty"},
		{"mcp_servers:\n  - name: a\n    command: [x]\n    max_sessions: -1\n", "max_sessions: must be between"},
		{"mcp_servers:\n  - name: a\n    command: [x]\n    timeouts: {session_idle: 10ms}\n", "session_idle: must be at least 1s"},
		{"mcp_servers:\n  - name: a\n    command: [x]\n    pinnig: {mode: pin}\n", `line 4: mcp_servers[0].pinnig: unknown field (did you mean "pinning"?)`},
	}
	for _, c := range cases {
		if _, err := config.Parse([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", c.in, err, c.want)
		}
	}
}

// TestExampleMCPServers: the shipped example configures MCP servers that the type
// accepts: everything over stdio (npx from test/mcp) and one over streamable HTTP.
func TestExampleMCPServers(t *testing.T) {
	c, err := config.Load(filepath.Join("..", "..", "examples", "vigil.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var stdio, http bool
	for _, s := range c.MCPServers {
		stdio = stdio || s.Name == "everything" && len(s.Command) > 0
		http = http || s.URL != ""
	}
	if !stdio || !http {
		t.Errorf("example mcp_servers = %+v, want everything over stdio and one URL server", c.MCPServers)
	}
}
