package mcpproxy_test

import (
	"net"
	"os"
	"os/exec"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/mcpproxy"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// httpServer runs the test binary as a streamable HTTP MCP server on addr until the
// test ends or stop is called.
func httpServer(t *testing.T, addr string, stateless bool) (stop func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "MCPTEST_SERVER=http", "MCPTEST_ADDR="+addr)
	if stateless {
		cmd.Env = append(cmd.Env, "MCPTEST_STATELESS=1")
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	t.Cleanup(stop)
	eventually(t, "the HTTP test server to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return stop
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestHTTPUpstream: a streamable HTTP server behind Vigil, with credentials only
// Vigil holds; progress passes through; when the server restarts (forgetting its
// sessions) Vigil opens a new upstream session and the client notices nothing.
func TestHTTPUpstream(t *testing.T) {
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			addr := freeAddr(t)
			stop := httpServer(t, addr, false)
			f := newFixture(t, mcpproxy.ServerConfig{Name: "remote", URL: "http://" + addr + "/", Headers: map[string]string{"X-Upstream-Auth": "s3cret-upstream"}})
			var prog progressLog
			cs := f.connectVersion("remote", aliceKey, v, &mcp.ClientOptions{ProgressNotificationHandler: prog.handler})
			if !contains(list(t, cs), "echo") {
				t.Fatal("echo not listed")
			}
			if got := resultText(call(t, cs, "header", nil)); got != "s3cret-upstream" {
				t.Errorf("the server received X-Upstream-Auth %q, want the configured value", got)
			}
			if res := receive(t, callAsync(cs, ctxT(t), "slow", map[string]any{"steps": 2, "ms": 20})); res.IsError {
				t.Fatalf("slow = %q", resultText(res))
			}
			eventually(t, "progress through the HTTP upstream", func() bool {
				_, vals := prog.snapshot()
				return len(vals) == 2
			})
			if got := resultText(call(t, cs, "whoami", nil)); got != "You are Alice, <EMAIL_ADDRESS>" {
				t.Errorf("whoami = %q", got)
			}

			before := resultText(call(t, cs, "pid", nil))
			stop()
			httpServer(t, addr, false)
			res := call(t, cs, "pid", nil)
			if res.IsError || resultText(res) == before {
				t.Errorf("after the server restarted: %q (isError %v), want the new server's pid", resultText(res), res.IsError)
			}
		})
	}
}

// TestStatelessHTTPUpstream: a server that keeps no sessions (the stateless
// revision, and legacy clients served statelessly) works behind Vigil.
func TestStatelessHTTPUpstream(t *testing.T) {
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			addr := freeAddr(t)
			httpServer(t, addr, true)
			f := newFixture(t, mcpproxy.ServerConfig{Name: "remote", URL: "http://" + addr + "/"})
			cs := f.connectVersion("remote", aliceKey, v, nil)
			if got := resultText(call(t, cs, "echo", map[string]any{"message": "hi"})); got != "Echo: hi" {
				t.Errorf("echo = %q", got)
			}
		})
	}
}

// TestParamHeadersFollowForwardedArguments: a stateless (2026-07-28) HTTP server
// validates each Mcp-Param-* header against the arguments it receives. Vigil derives
// them from the arguments it forwards — masked, or as a reviewer edited them — with
// the spec's encoding (Base64 for non-ASCII, nested properties, integers), so the
// server accepts the call.
func TestParamHeadersFollowForwardedArguments(t *testing.T) {
	addr := freeAddr(t)
	httpServer(t, addr, true)
	f := newFixture(t, mcpproxy.ServerConfig{Name: "remote", URL: "http://" + addr + "/"})
	cs := f.connectVersion("remote", aliceKey, "2026-07-28", nil)

	args := map[string]any{"owner": "dana@example.com", "where": map[string]any{"city": "Zürich"}, "priority": 3, "note": "n"}
	res := call(t, cs, "route", args)
	if want := "owner=<EMAIL_ADDRESS> city==?base64?WsO8cmljaA==?= priority=3"; res.IsError || resultText(res) != want {
		t.Errorf("masked call = %q (isError %v), want the server to accept headers of the masked arguments: %q", resultText(res), res.IsError, want)
	}

	f.policy.set("route", vigil.RequireApproval)
	go func() {
		<-f.holder.holds
		f.holder.outcome <- enforce.HoldResult{Status: "approved", Args: map[string]any{"owner": "ops", "where": map[string]any{"city": "Oslo"}}}
	}()
	res = call(t, cs, "route", args)
	if want := "owner=ops city=Oslo priority="; res.IsError || resultText(res) != want {
		t.Errorf("edited call = %q (isError %v), want headers of the reviewer's arguments: %q", resultText(res), res.IsError, want)
	}
}
