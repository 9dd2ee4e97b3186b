package mcpproxy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/keyring"
	vledger "github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/mcpproxy"
	"github.com/vigil-gateway/vigil/internal/pii"
	"github.com/vigil-gateway/vigil/internal/store/sqlite"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// BenchmarkToolCall measures one tools/call at a time (concurrency 1), the Go SDK
// client against the Go SDK test server, directly and through Vigil; the difference
// is the latency Vigil adds. "vigil" runs the relay with an allow-all policy and an
// in-memory ledger; "vigil-full" adds the PII engine (redact) on arguments and
// results and the real ledger on SQLite (group commit, fsync before forwarding and
// after the result). Protocol 2025-11-25, sessions kept open.
func BenchmarkToolCall(b *testing.B) {
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return newTestServer() }, nil))
	b.Cleanup(up.Close)
	stdio := stdioServer("bench", nil)

	b.Run("http/direct", func(b *testing.B) {
		benchCalls(b, directSession(b, &mcp.StreamableClientTransport{Endpoint: up.URL, MaxRetries: -1}))
	})
	b.Run("http/vigil", func(b *testing.B) {
		f := newFixtureWith(b, benchPipeline(b, false), mcpproxy.ServerConfig{Name: "bench", URL: up.URL})
		benchCalls(b, f.connectVersion("bench", aliceKey, "2025-11-25", nil))
	})
	b.Run("http/vigil-full", func(b *testing.B) {
		f := newFixtureWith(b, benchPipeline(b, true), mcpproxy.ServerConfig{Name: "bench", URL: up.URL})
		benchCalls(b, f.connectVersion("bench", aliceKey, "2025-11-25", nil))
	})
	b.Run("stdio/direct", func(b *testing.B) {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "MCPTEST_SERVER=stdio")
		benchCalls(b, directSession(b, &mcp.CommandTransport{Command: cmd}))
	})
	b.Run("stdio/vigil", func(b *testing.B) {
		f := newFixtureWith(b, benchPipeline(b, false), stdio)
		benchCalls(b, f.connectVersion("bench", aliceKey, "2025-11-25", nil))
	})
}

func directSession(b *testing.B, tr mcp.Transport) *mcp.ClientSession {
	c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), tr, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close() })
	return cs
}

// benchCalls calls echo b.N times and reports the latency distribution.
func benchCalls(b *testing.B, cs *mcp.ClientSession) {
	ctx := context.Background()
	params := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "write to erin@example.com about order 1234"}}
	if _, err := cs.CallTool(ctx, params); err != nil { // warm up: catalog, connections
		b.Fatal(err)
	}
	var lat []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		res, err := cs.CallTool(ctx, params)
		lat = append(lat, time.Since(t0))
		if err != nil || res.IsError {
			b.Fatalf("echo: %v %+v", err, res)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// benchPipeline sets the gateway's pipeline for the benchmark: allow-all and an
// in-memory ledger, or (full) the PII engine and the ledger on SQLite.
func benchPipeline(b *testing.B, full bool) func(*mcpproxy.Options) {
	pl := &enforce.Pipeline{Policy: allowAll{}, Ledger: &ledger{}}
	if full {
		dir := b.TempDir()
		db, err := sqlite.Open(context.Background(), filepath.Join(dir, "vigil.db"), sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		keys, err := keyring.Load(keyring.Options{Dir: dir, Origin: "bench.test/ledger", Create: true})
		if err != nil {
			b.Fatal(err)
		}
		l, err := vledger.Open(context.Background(), db.Ledger(), vledger.Options{Origin: keys.Origin(),
			Signer: keys.LedgerSigner(), Verifier: keys.LedgerVerifier(), BodyKey: keys.BodyKey()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
		e, err := pii.New(pii.Options{Operator: pii.Redact})
		if err != nil {
			b.Fatal(err)
		}
		pl = &enforce.Pipeline{Policy: allowAll{}, Ledger: l, PII: redactor{e}}
	}
	return func(o *mcpproxy.Options) {
		o.Pipeline = pl
		o.Pins = nil
	}
}

type allowAll struct{}

func (allowAll) Decide(context.Context, vigil.Action) (vigil.Decision, error) {
	return vigil.Decision{Effect: vigil.Allow, Rules: []string{}}, nil
}

// redactor adapts the PII engine (redact, no vault) to the pipeline.
type redactor struct{ e *pii.Engine }

func (r redactor) MaskJSON(ctx context.Context, _ enforce.Scope, doc []byte) ([]byte, vigil.PIISummary, error) {
	out, err := r.e.MaskJSON(ctx, pii.Scope{}, doc)
	if err != nil {
		return nil, vigil.PIISummary{}, err
	}
	return out.Data, out.Summary, nil
}

func (r redactor) InboundJSON(_ context.Context, _ enforce.Scope, doc []byte) ([]byte, vigil.PIISummary, error) {
	fs, err := r.e.ScanJSON(doc)
	return doc, pii.Summarize(fs), err
}

func (r redactor) InboundText(_ context.Context, _ enforce.Scope, text []byte) ([]byte, vigil.PIISummary, error) {
	return text, pii.Summarize(r.e.ScanText(text)), nil
}

func (redactor) InboundStream(context.Context, enforce.Scope) enforce.StreamFilter { return nil }
