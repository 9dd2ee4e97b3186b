package config

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"time"
)

// MCPServerConfig is one upstream MCP server that agents reach at /mcp/{name}. Exactly
// one of Command (Vigil starts the server as a process and talks to it over stdio) and
// URL (a server already running, reached over MCP streamable HTTP) is set.
//
// Agents authenticate to Vigil with their own agent key; the credentials the server
// needs (environment variables, headers) stay in Vigil and never reach the agent.
type MCPServerConfig struct {
	// Name identifies the server: it is served at /mcp/{name}, policy sees it as
	// tool.server, and tool pins are kept under it. Lowercase letters, digits, '-' and
	// '_', starting with a letter or digit, at most 64 characters; unique.
	Name string `yaml:"name"`

	// Command is the server's program and arguments, e.g. [npx, --no,
	// "@modelcontextprotocol/server-everything"]. Vigil starts one process per agent
	// session (and one shared process for requests of the sessionless 2026-07-28
	// protocol revision), restarts it with backoff when it dies, logs its stderr
	// (bounded, with configured secret values removed) and stops it when the session
	// ends or Vigil shuts down.
	Command []string `yaml:"command"`

	// Dir is the working directory of the process, relative to this configuration
	// file. Default: Vigil's own.
	Dir string `yaml:"dir"`

	// Env holds environment variables given to the process, literally. The process
	// does not inherit Vigil's environment (which holds Vigil's own secrets): it gets
	// PATH, HOME, USER, LANG, LC_ALL, TMPDIR and TZ from Vigil's environment, plus Env
	// and EnvFrom. Put secrets in EnvFrom, not here.
	Env map[string]string `yaml:"env"`

	// EnvFrom maps a variable of the process to a variable of Vigil's environment that
	// holds its value, e.g. {GITHUB_TOKEN: VIGIL_GITHUB_TOKEN}. Each named variable
	// must be set when Vigil starts. Its value is removed from logged stderr.
	EnvFrom map[string]string `yaml:"env_from"`

	// URL is the server's streamable HTTP endpoint, e.g. http://127.0.0.1:3001/mcp.
	URL string `yaml:"url"`

	// Headers are sent with every request to URL, literally. Put secrets in
	// HeadersEnv, not here.
	Headers map[string]string `yaml:"headers"`

	// HeadersEnv maps a header sent to URL to a variable of Vigil's environment that
	// holds its value, e.g. {Authorization: TICKETS_AUTHORIZATION}. Each named variable
	// must be set when Vigil starts.
	HeadersEnv map[string]string `yaml:"headers_env"`

	// Pinning is the rug-pull defence for this server's tools.
	Pinning MCPPinningConfig `yaml:"pinning"`

	// Timeouts bound how long Vigil waits on the server.
	Timeouts MCPTimeoutsConfig `yaml:"timeouts"`

	// MaxSessions caps the agent sessions open at once on this server (each is a
	// process for a command server); more are refused with a JSON-RPC error until one
	// ends. Default 64.
	MaxSessions int `yaml:"max_sessions"`
}

// MCPPinningConfig configures tool pinning: the first time Vigil sees a tool it
// records a hash of its name, title, description, input and output schema and
// annotations; a later change is flagged and recorded in the ledger.
type MCPPinningConfig struct {
	// Mode is what a changed tool does until an admin approves its new version
	// (vigil mcp approve): "pin" hides it from tools/list and refuses calls to it
	// (default); "warn" records the change but keeps serving the tool; "off" does not
	// pin this server's tools at all.
	Mode string `yaml:"mode"`
}

// MCPTimeoutsConfig bounds waiting on an MCP server. Approval holds are not counted:
// a held call waits as long as its approval allows.
type MCPTimeoutsConfig struct {
	// Startup is how long a request may wait for the server to become ready: a
	// process starting (or restarting after a crash) and answering initialize, or an
	// HTTP server answering. Default 30s.
	Startup time.Duration `yaml:"startup"`
	// Request is how long one request (a tool call, a read) may take upstream before
	// Vigil answers it with an error. Default 10m.
	Request time.Duration `yaml:"request"`
	// SessionIdle closes an agent's session, and stops its process, after this long
	// without any request from the agent. Default 30m.
	SessionIdle time.Duration `yaml:"session_idle"`
}

var mcpNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// validateMCPServers checks the mcp_servers list. Zero values mean the defaults, which
// the gateway applies. The environment variables that env_from and headers_env name
// are checked when Vigil starts (ResolveEnv), so a config file can be validated on a
// machine without the secrets.
func validateMCPServers(servers []MCPServerConfig, errs *FieldErrors) {
	seen := map[string]bool{}
	for i := range servers {
		s := &servers[i]
		p := fmt.Sprintf("mcp_servers[%d]", i)
		switch {
		case !mcpNameRE.MatchString(s.Name):
			errs.add(p+".name", "%q must be 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit", s.Name)
		case seen[s.Name]:
			errs.add(p+".name", "%q is used by another server", s.Name)
		}
		seen[s.Name] = true
		switch {
		case len(s.Command) == 0 && s.URL == "":
			errs.add(p, "set command (a process Vigil starts) or url (a streamable HTTP server)")
		case len(s.Command) > 0 && s.URL != "":
			errs.add(p, "set only one of command and url")
		}
		if len(s.Command) > 0 && s.Command[0] == "" {
			errs.add(p+".command", "the program (first element) is empty")
		}
		if s.URL != "" {
			if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs.add(p+".url", "%q is not an http:// or https:// URL", s.URL)
			}
		}
		if s.URL == "" && (len(s.Headers) > 0 || len(s.HeadersEnv) > 0) {
			errs.add(p+".headers", "headers apply only to url servers")
		}
		if len(s.Command) == 0 && (len(s.Env) > 0 || len(s.EnvFrom) > 0 || s.Dir != "") {
			errs.add(p+".env", "env, env_from and dir apply only to command servers")
		}
		for k := range s.Env {
			if _, dup := s.EnvFrom[k]; dup {
				errs.add(p+".env_from."+k, "is also set in env")
			}
		}
		for h := range s.Headers {
			if !validHeaderName(h) {
				errs.add(p+".headers."+h, "is not a valid HTTP header name")
			}
			if _, dup := s.HeadersEnv[h]; dup {
				errs.add(p+".headers_env."+h, "is also set in headers")
			}
		}
		for h := range s.HeadersEnv {
			if !validHeaderName(h) {
				errs.add(p+".headers_env."+h, "is not a valid HTTP header name")
			}
		}
		switch s.Pinning.Mode {
		case "", "pin", "warn", "off":
		default:
			errs.add(p+".pinning.mode", "%q is not one of pin, warn, off", s.Pinning.Mode)
		}
		if s.Timeouts.Startup < 0 || s.Timeouts.Request < 0 || s.Timeouts.SessionIdle < 0 {
			errs.add(p+".timeouts", "must not be negative")
		}
		if s.Timeouts.SessionIdle > 0 && s.Timeouts.SessionIdle < time.Second {
			errs.add(p+".timeouts.session_idle", "must be at least 1s")
		}
		if s.MaxSessions < 0 || s.MaxSessions > 10000 {
			errs.add(p+".max_sessions", "must be between 1 and 10000 (0 means the default, 64)")
		}
	}
}

// validHeaderName reports whether h is an HTTP header name Vigil may set upstream: a
// token, and not one the MCP transport itself manages.
func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	switch http.CanonicalHeaderKey(h) {
	case "Content-Type", "Accept", "Content-Length", "Host", "Mcp-Session-Id", "Mcp-Protocol-Version", "Last-Event-Id":
		return false
	}
	return true
}

// ResolveEnv returns the values that env_from and headers_env refer to, read with
// getenv: process environment and headers, each with literal values merged in. It
// fails naming every variable that is unset or empty.
func (c *MCPServerConfig) ResolveEnv(getenv func(string) string) (env, headers map[string]string, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var errs FieldErrors
	env = merge(c.Env, c.EnvFrom, getenv, "mcp_servers."+c.Name+".env_from.", &errs)
	headers = merge(c.Headers, c.HeadersEnv, getenv, "mcp_servers."+c.Name+".headers_env.", &errs)
	return env, headers, errs.orNil()
}

// merge returns literal's entries plus, for each entry of from, the value of the
// environment variable it names; an unset one is an error at path+key.
func merge(literal, from map[string]string, getenv func(string) string, path string, errs *FieldErrors) map[string]string {
	out := make(map[string]string, len(literal)+len(from))
	for k, v := range literal {
		out[k] = v
	}
	for k, name := range from {
		v := getenv(name)
		if v == "" {
			errs.add(path+k, "environment variable %s is empty or unset", name)
		}
		out[k] = v
	}
	return out
}
