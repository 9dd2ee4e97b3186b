package main

import (
	"context"
	"fmt"

	"github.com/vigil-gateway/vigil/internal/api"
	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/mcpproxy"
	"github.com/vigil-gateway/vigil/internal/mcpproxy/pins"
	"github.com/vigil-gateway/vigil/internal/policy"
	"github.com/vigil-gateway/vigil/internal/store/postgres"
	"github.com/vigil-gateway/vigil/internal/store/sqlite"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// mcpStores is what a storage driver provides for the MCP gateway.
type mcpStores interface {
	MCPPins() pins.Store
}

var (
	_ mcpStores = (*sqlite.DB)(nil)
	_ mcpStores = (*postgres.DB)(nil)
)

// mcpDeps are the shared pieces the MCP gateway uses.
type mcpDeps struct {
	// Pipeline is the shared governance pipeline (required).
	Pipeline *enforce.Pipeline
	// Preview decides whether a tool may be listed without holding or counting usage
	// (the policy engine's pure evaluation). Nil: Pipeline.Policy.Decide.
	Preview func(ctx context.Context, a vigil.Action) (vigil.Decision, error)
	// Track registers sessions with the kill switch (oversight's Sessions.Track), so
	// suspending an agent closes its MCP sessions on every replica. Nil: sessions are
	// closed only by Gateway.CloseAgent and CloseSystem, and a suspended agent's next
	// request is refused at authentication.
	Track func(ctx context.Context, agent vigil.Actor) (context.Context, func())
}

// wireMCP builds the MCP gateway from the mcp_servers section and registers
// /mcp/{server} and the admin routes for tool pins and sessions on mux. It must run
// after m.server is created: the gateway closes (ending sessions, stopping server
// processes) when the HTTP server shuts down, and Close waits for that.
func (m *Main) wireMCP(mux *web.Mux, admin *api.Server, keys *auth.Service, deps mcpDeps) (*mcpproxy.Gateway, error) {
	st, ok := m.store.(mcpStores)
	if !ok {
		return nil, fmt.Errorf("the storage driver %T keeps no MCP tool pins", m.store)
	}
	getenv := m.Env.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	servers, err := mcpServers(m.Config.MCPServers, getenv)
	if err != nil {
		return nil, err
	}
	if deps.Pipeline == nil {
		return nil, fmt.Errorf("the MCP gateway needs the governance pipeline")
	}
	svc := &pins.Service{Store: st.MCPPins(), Ledger: m.ledger}
	gw, err := mcpproxy.New(mcpproxy.Options{
		Servers: servers, Auth: keys, Pipeline: deps.Pipeline, Preview: deps.Preview, Pins: svc, Track: deps.Track,
		Getenv: getenv, Log: m.Log,
	})
	if err != nil {
		return nil, err
	}
	gw.Register(mux)
	admin.MCPTools, admin.MCPSessions = svc, gw.Sessions
	m.server.RegisterOnShutdown(func() { gw.Close() })
	m.goBackground(gw.Wait)
	return gw, nil
}

// mcpServers turns the configuration into the gateway's server list, reading the
// environment variables that env_from and headers_env name.
func mcpServers(cfgs []config.MCPServerConfig, getenv func(string) string) ([]mcpproxy.ServerConfig, error) {
	out := make([]mcpproxy.ServerConfig, 0, len(cfgs))
	for _, c := range cfgs {
		env, headers, err := c.ResolveEnv(getenv)
		if err != nil {
			return nil, err
		}
		var secrets []string
		for k := range c.EnvFrom {
			secrets = append(secrets, env[k])
		}
		for k := range c.HeadersEnv {
			secrets = append(secrets, headers[k])
		}
		out = append(out, mcpproxy.ServerConfig{
			Name: c.Name, Command: c.Command, Dir: c.Dir, Env: env, URL: c.URL, Headers: headers, Secrets: secrets,
			Pinning: pins.Mode(c.Pinning.Mode), StartupTimeout: c.Timeouts.Startup, RequestTimeout: c.Timeouts.Request,
			SessionIdle: c.Timeouts.SessionIdle, MaxSessions: c.MaxSessions,
		})
	}
	return out, nil
}

// policyPreview decides whether a tool may be listed with the live policy's pure
// evaluation: nothing held, recorded or counted toward usage limits.
func policyPreview(e *policy.Engine) func(context.Context, vigil.Action) (vigil.Decision, error) {
	return func(_ context.Context, a vigil.Action) (vigil.Decision, error) {
		p := e.Policy()
		if p == nil {
			return vigil.Decision{Effect: vigil.Deny, Rules: []string{}}, policy.ErrNoPolicy
		}
		return p.Evaluate(&a, nil), nil
	}
}
