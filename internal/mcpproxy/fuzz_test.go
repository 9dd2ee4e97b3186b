package mcpproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// The fuzz targets feed untrusted bytes to what parses them: client bodies, the
// server's SSE streams, event ids, tool definitions. None may panic, and what the
// gateway answers must stay well-formed.

func FuzzReadBody(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`[{"jsonrpc":"2.0","id":"a","method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"}]`,
		`{"jsonrpc":"2.0","id":1,"result":{}}`, `{"jsonrpc":"2.0","id":null,"error":{"code":1,"message":"x"}}`,
		`{"jsonrpc":"1.0"}`, `[]`, `[1]`, `{"jsonrpc":"2.0","method":"","params":7}`, `{"jsonrpc":"2.0","id":1.5,"method":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, _, jerr := readBody(body)
		if jerr != nil {
			if jerr.Code != codeParseError && jerr.Code != codeInvalidRequest {
				t.Fatalf("readBody error code %d", jerr.Code)
			}
			return
		}
		if len(msgs) == 0 {
			t.Fatal("no messages and no error")
		}
		for _, m := range msgs {
			// What was accepted re-encodes to a message that decodes again.
			if _, err := decodeMessage(encode(m)); err != nil {
				t.Fatalf("accepted %q but its encoding %q does not decode: %v", body, encode(m), err)
			}
		}
	})
}

func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("event: message\nid: s_1\ndata: {\"a\":1}\n\n"))
	f.Add([]byte("id: x_0\nretry: 100\ndata: \n\n: comment\ndata: a\ndata: b\n\n"))
	f.Add([]byte("data: unterminated"))
	f.Add([]byte("\r\n\r\ndata:x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := newSSEReader(bytes.NewReader(in), 1<<16)
		for i := 0; i < 1000; i++ {
			e, err := r.Next()
			if err != nil {
				return
			}
			// An event written back and read again is the same event.
			var buf bytes.Buffer
			writeSSE(&buf, sseEvent{Data: e.Data})
			again, err := newSSEReader(&buf, 0).Next()
			if len(e.Data) > 0 && (err != nil || !bytes.Equal(again.Data, bytes.ReplaceAll(e.Data, []byte("\r"), nil))) {
				if !bytes.Contains(e.Data, []byte("\r")) {
					t.Fatalf("round trip of %q = %q, %v", e.Data, again.Data, err)
				}
			}
		}
	})
}

func FuzzEventIDAndProgress(f *testing.F) {
	f.Add("abc_12", []byte(`{"progressToken":"t","progress":1,"total":5}`), 2.5)
	f.Add("_0", []byte(`{"progress":"x"}`), 0.0)
	f.Add("a_b_-1", []byte(`null`), 1e308)
	f.Fuzz(func(t *testing.T, id string, params []byte, base float64) {
		if s, n, ok := parseEventID(id); ok && (n < 0 || !strings.HasSuffix(id, "_"+itoa(n)) && !strings.HasPrefix(id, s)) {
			t.Fatalf("parseEventID(%q) = %q, %d", id, s, n)
		}
		if p, err := decodeObject(params); err == nil {
			out := shiftProgress(p, base)
			if !json.Valid(out.encode()) {
				t.Fatalf("shiftProgress made invalid JSON from %q", params)
			}
			_ = progressToken(p)
		}
		_ = statelessStatus(params)
		_ = annotationsOf(params)
		_ = rawKey(params)
		_ = metaProtocolVersion(params)
	})
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// echoConn is an upstream that answers every call at once: tools/list with two tools,
// everything else with an empty result, in the background as a real server would.
type echoConn struct {
	recv receiver
	once sync.Once
	dead chan struct{}
}

func (c *echoConn) send(_ context.Context, msg jsonrpc.Message) error {
	r, ok := msg.(*jsonrpc.Request)
	if !ok || !r.IsCall() {
		return nil
	}
	result := json.RawMessage(`{}`)
	switch r.Method {
	case "tools/list":
		result = json.RawMessage(`{"tools":[{"name":"a","inputSchema":{"type":"object"}},{"name":"b","annotations":{"readOnlyHint":true}}]}`)
	case "tools/call":
		result = json.RawMessage(`{"content":[{"type":"text","text":"ok"}]}`)
	case "initialize":
		result = json.RawMessage(`{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"echo","version":"1"}}`)
	}
	go c.recv(&jsonrpc.Response{ID: r.ID, Result: result}, jsonrpc.ID{})
	return nil
}
func (c *echoConn) done() <-chan struct{} { return c.dead }
func (c *echoConn) cause() error          { return nil }
func (c *echoConn) close()                { c.once.Do(func() { close(c.dead) }) }
func (c *echoConn) pid() int              { return 0 }

type fuzzAuth struct{}

func (fuzzAuth) AuthenticateAgent(_ context.Context, secret string) (vigil.Actor, error) {
	if secret != "vk_fuzz" {
		return vigil.Actor{}, vigil.Errorf(vigil.EUNAUTHORIZED, "invalid or missing credentials")
	}
	return vigil.Actor{Kind: vigil.ActorAgent, ID: "fuzz", Name: "fuzz"}, nil
}

type allowPolicy struct{}

func (allowPolicy) Decide(context.Context, vigil.Action) (vigil.Decision, error) {
	return vigil.Decision{Effect: vigil.Allow}, nil
}

type nopLedger struct{}

func (nopLedger) Record(context.Context, vigil.Event) (vigil.Receipt, error) {
	return vigil.Receipt{}, nil
}

// FuzzPost sends arbitrary bodies and headers to a gateway (inside a session and
// outside one): it must answer every one with a JSON-RPC body, a 202 or an SSE stream
// that ends, and never panic or hang.
func FuzzPost(f *testing.F) {
	g, err := New(Options{Auth: fuzzAuth{}, Pipeline: &enforce.Pipeline{Policy: allowPolicy{}, Ledger: nopLedger{}},
		Servers: []ServerConfig{{Name: "echo", URL: "http://unused.invalid/", RequestTimeout: 5 * time.Second}}})
	if err != nil {
		f.Fatal(err)
	}
	srv := g.servers["echo"]
	srv.dial = func(recv receiver) (conn, error) { return &echoConn{recv: recv, dead: make(chan struct{})}, nil }
	srv.shared = newUpstream(srv, nil)
	f.Cleanup(func() { g.Close() })
	mux := web.NewMux(web.Errors{})
	g.Register(mux)
	h := web.Middleware{Log: g.log, MaxBodyBytes: 1 << 20}.Wrap(mux)

	w := httptest.NewRecorder()
	h.ServeHTTP(w, fuzzRequest(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}`, "", ""))
	sid := w.Header().Get(hdrSession)
	if sid == "" {
		f.Fatalf("initialize: %d %s", w.Code, w.Body)
	}

	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a","arguments":{"x":1},"_meta":{"progressToken":1}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"zzz"}}`,
		`{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"file:///x"}}`,
		`{"jsonrpc":"2.0","id":5,"method":"prompts/get","params":{"name":"p","arguments":{"a":"b"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2}}`,
		`[{"jsonrpc":"2.0","id":6,"method":"ping"},{"jsonrpc":"2.0","id":6,"method":"ping"}]`,
		`{"jsonrpc":"2.0","id":"x","result":{}}`,
	} {
		f.Add([]byte(s), true, "")
		f.Add([]byte(s), false, "2026-07-28")
	}
	f.Fuzz(func(t *testing.T, body []byte, inSession bool, version string) {
		s := ""
		if inSession {
			s = sid
		}
		w := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.ServeHTTP(w, fuzzRequest(string(body), s, version))
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("POST %q did not finish", body)
		}
		switch ct := w.Header().Get("Content-Type"); {
		case w.Code == http.StatusAccepted:
		case strings.HasPrefix(ct, "text/event-stream"):
		case strings.HasPrefix(ct, "application/json"):
			var m struct {
				Version string `json:"jsonrpc"`
			}
			if json.Unmarshal(w.Body.Bytes(), &m) != nil || m.Version != "2.0" {
				t.Fatalf("POST %q answered %d %q: not JSON-RPC", body, w.Code, w.Body)
			}
		default:
			t.Fatalf("POST %q answered %d with Content-Type %q", body, w.Code, ct)
		}
	})
}

func fuzzRequest(body, session, version string) *http.Request {
	r := httptest.NewRequest("POST", "/mcp/echo", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	r.Header.Set("Authorization", "Bearer vk_fuzz")
	if session != "" {
		r.Header.Set(hdrSession, session)
	}
	if version != "" {
		r.Header.Set(hdrVersion, version)
	}
	return r
}
