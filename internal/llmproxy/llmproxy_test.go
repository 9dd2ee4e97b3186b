package llmproxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/llmproxy"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

func itoa(n int) string { return strconv.Itoa(n) }

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func readJSON(t testing.TB, resp *http.Response) map[string]any {
	t.Helper()
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("answer is not JSON: %q", raw)
	}
	return m
}

// events reads an SSE answer into its events' data, as decoded JSON where it is.
func events(t testing.TB, resp *http.Response) []map[string]any {
	t.Helper()
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		raw, _ := io.ReadAll(resp.Body)
		t.Fatalf("Content-Type = %q, want an event stream; body %s", ct, raw)
	}
	r := llmproxy.NewSSEReader(resp.Body)
	var out []map[string]any
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(ev.Data) == "[DONE]" {
			out = append(out, map[string]any{"done": true})
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(ev.Data, &m); err != nil {
			t.Fatalf("event data is not JSON: %q", ev.Data)
		}
		if ev.Name != "" {
			if m["type"] != ev.Name {
				t.Errorf("event name %q but data type %v", ev.Name, m["type"])
			}
		}
		out = append(out, m)
	}
}

func path(m any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			o, _ := m.(map[string]any)
			m = o[k]
		case int:
			a, _ := m.([]any)
			if k >= len(a) {
				return nil
			}
			m = a[k]
		}
	}
	return m
}

func str(m any, keys ...any) string { s, _ := path(m, keys...).(string); return s }

const email = "alice@corp.example"

func TestChatCompletionMasksOutboundAndRestoresInbound(t *testing.T) {
	r := newRig(t)
	resp := r.post(t, "/v1/chat/completions", `{"model":"fake-gpt","temperature":0.2,"messages":[{"role":"user","content":"mail `+email+` please"}],"unknown_field":{"kept":true}}`, "X-Vigil-Session", "conv-7")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, readJSON(t, resp))
	}
	body := readJSON(t, resp)
	if got, want := str(body, "choices", 0, "message", "content"), "You said: mail "+email+" please"; got != want {
		t.Errorf("client read %q, want %q (restored)", got, want)
	}
	reqs := r.fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("provider got %d requests", len(reqs))
	}
	got := string(reqs[0].Body)
	if strings.Contains(got, email) || !strings.Contains(got, "<EMAIL_ADDRESS_1>") || !strings.Contains(got, `"unknown_field":{"kept":true}`) {
		t.Errorf("provider received %s; want the email masked and unknown fields untouched", got)
	}
	if reqs[0].Header["Authorization"] != "Bearer "+providerKey || strings.Contains(strings.Join(mapValues(reqs[0].Header), " "), agentKey) {
		t.Errorf("provider headers %v: want the provider key and never the agent's", reqs[0].Header)
	}
	if _, ok := reqs[0].Header["X-Vigil-Session"]; ok {
		t.Error("Vigil's session header reached the provider")
	}
	// Policy saw the parameters but no content.
	acts := r.policy.Actions()
	if len(acts) != 1 || acts[0].Args["temperature"] != 0.2 || acts[0].Model.Provider != "fake-openai" || acts[0].SessionID != "conv-7" {
		t.Fatalf("policy saw %+v", acts)
	}
	if raw, _ := json.Marshal(acts[0].Args); strings.Contains(string(raw), "mail") {
		t.Errorf("policy args carry message content: %s", raw)
	}
	// The ledger holds the request (masked) and the response (as the agent got it).
	reqEv, respEv := r.ledger.OfType(vigil.EventModelRequest), r.ledger.OfType(vigil.EventModelResponse)
	if len(reqEv) != 1 || len(respEv) != 1 {
		t.Fatalf("ledger: %d requests, %d responses", len(reqEv), len(respEv))
	}
	if strings.Contains(string(reqEv[0].Body), email) || reqEv[0].Counts["pii.EMAIL_ADDRESS"] != 1 {
		t.Errorf("request entry body %s counts %v", reqEv[0].Body, reqEv[0].Counts)
	}
	in, out := respEv[0].Counts["tokens.in"], respEv[0].Counts["tokens.out"]
	if in == 0 || out == 0 || respEv[0].Counts["cost.micros"] != int64(float64(in)*2.5+float64(out)*10+0.5) {
		t.Errorf("response counts %v: want tokens and cost = in*2.5 + out*10", respEv[0].Counts)
	}
	if respEv[0].Counts["pii.in.EMAIL_ADDRESS"] != 1 || respEv[0].Attrs["status"] != "200" {
		t.Errorf("response entry %+v", respEv[0])
	}
	if len(r.usage.All()) != 1 || r.usage.All()[0].InputTokens != in {
		t.Errorf("usage sink got %+v", r.usage.All())
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestChatStreamRestoresSplitTokensAndHidesUsageNotAskedFor(t *testing.T) {
	for _, askUsage := range []bool{false, true} {
		t.Run("include_usage="+strconv.FormatBool(askUsage), func(t *testing.T) {
			r := newRig(t)
			opts := ""
			if askUsage {
				opts = `,"stream_options":{"include_usage":true}`
			}
			resp := r.post(t, "/v1/chat/completions", `{"model":"fake-gpt","stream":true`+opts+`,"messages":[{"role":"user","content":"write to `+email+` now"}]}`)
			evs := events(t, resp)
			var text strings.Builder
			usageChunks, done := 0, false
			finish := ""
			for _, e := range evs {
				if e["done"] == true {
					done = true
					continue
				}
				text.WriteString(str(e, "choices", 0, "delta", "content"))
				if f := str(e, "choices", 0, "finish_reason"); f != "" {
					finish = f
				}
				if path(e, "usage", "prompt_tokens") != nil {
					usageChunks++
				}
				if c := str(e, "choices", 0, "delta", "content"); strings.Contains(c, "<EMAIL") {
					t.Errorf("a delta leaked a token: %q", c)
				}
			}
			if got, want := text.String(), "You said: write to "+email+" now"; got != want {
				t.Errorf("streamed text %q, want %q", got, want)
			}
			if !done || finish != "stop" {
				t.Errorf("done=%v finish=%q", done, finish)
			}
			if want := map[bool]int{false: 0, true: 1}[askUsage]; usageChunks != want {
				t.Errorf("%d usage chunks reached the client, want %d", usageChunks, want)
			}
			if got := r.received()[0]; !strings.Contains(got, `"include_usage":true`) || strings.Contains(got, email) {
				t.Errorf("provider received %s; want include_usage asked for and the email masked", got)
			}
			respEv := r.ledger.OfType(vigil.EventModelResponse)
			if len(respEv) != 1 || respEv[0].Counts["tokens.out"] == 0 || !strings.Contains(string(respEv[0].Body), email) {
				t.Fatalf("response entry %+v body %s: want usage from the stream and the assembled answer", respEv, respEv[0].Body)
			}
			if respEv[0].Counts["pii.in.EMAIL_ADDRESS"] != 1 {
				t.Errorf("inbound PII counts %v, want one restored email", respEv[0].Counts)
			}
		})
	}
}

// toolCase is one proposed tool call and what the agent must see.
type toolCase struct {
	tool    string
	allowed bool
	note    string // in the explanation when removed
}

var toolCases = []toolCase{
	{"get_weather", true, ""},
	{"deny_refund", false, "Vigil removed the call to deny_refund: deny_refund is not allowed here (rule no-deny_refund)"},
	{"hold_ok_transfer", true, ""},
	{"hold_delete", false, "Vigil removed the call to hold_delete: a reviewer denied this call: not today"},
}

func prompt(tc toolCase) string {
	return `call tool ` + tc.tool + ` with {\"to\":\"` + email + `\"}`
}

func TestToolCallsAreJudged(t *testing.T) {
	for _, tc := range toolCases {
		for _, api := range []string{"chat", "chat-stream", "responses", "responses-stream", "messages", "messages-stream"} {
			t.Run(tc.tool+"/"+api, func(t *testing.T) {
				r := newRig(t)
				calls, text := runToolCall(t, r, api, prompt(tc))
				if tc.allowed {
					if len(calls) != 1 || calls[0].name != tc.tool || calls[0].args["to"] != email {
						t.Fatalf("calls %+v; want %s with the restored address", calls, tc.tool)
					}
					if strings.Contains(text, "Vigil removed") {
						t.Errorf("text %q explains a removal of an allowed call", text)
					}
				} else {
					if len(calls) != 0 {
						t.Fatalf("calls %+v; want the call removed", calls)
					}
					if !strings.Contains(text, tc.note) {
						t.Errorf("text %q; want the explanation %q", text, tc.note)
					}
				}
				if strings.Contains(strings.Join(r.received(), ""), email) {
					t.Error("the provider received the unmasked address")
				}
				dec := r.ledger.OfType(vigil.EventDecision)
				if len(dec) != 1 || dec[0].Attrs["tool"] != tc.tool || (dec[0].Decision == vigil.Allow) != tc.allowed {
					t.Errorf("decision entries %+v", dec)
				}
				resp := r.ledger.OfType(vigil.EventModelResponse)
				if len(resp) != 1 || resp[0].Attrs["tool_calls_removed"] != map[bool]string{true: "0", false: "1"}[tc.allowed] {
					t.Errorf("response entries %+v", resp)
				}
			})
		}
	}
}

type gotCall struct {
	name string
	args map[string]any
}

// runToolCall sends a prompt through one API and returns the tool calls and text the
// agent got.
func runToolCall(t *testing.T, r *rig, api, prompt string) ([]gotCall, string) {
	t.Helper()
	stream := strings.HasSuffix(api, "-stream")
	s := strconv.FormatBool(stream)
	var calls []gotCall
	var text strings.Builder
	parseArgs := func(raw string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatalf("arguments %q are not a JSON object", raw)
		}
		return m
	}
	switch strings.TrimSuffix(api, "-stream") {
	case "chat":
		resp := r.post(t, "/v1/chat/completions", `{"model":"fake-gpt","stream":`+s+`,"tools":[{"type":"function","function":{"name":"x"}}],"messages":[{"role":"user","content":"`+prompt+`"}]}`)
		if !stream {
			body := readJSON(t, resp)
			text.WriteString(str(body, "choices", 0, "message", "content"))
			tcs, _ := path(body, "choices", 0, "message", "tool_calls").([]any)
			for _, tc := range tcs {
				calls = append(calls, gotCall{str(tc, "function", "name"), parseArgs(str(tc, "function", "arguments"))})
			}
			if finish := str(body, "choices", 0, "finish_reason"); (finish == "tool_calls") != (len(calls) > 0) {
				t.Errorf("finish_reason %q with %d tool calls", finish, len(calls))
			}
			break
		}
		type acc struct{ name, args string }
		var accs []*acc
		finish := ""
		for _, e := range events(t, resp) {
			text.WriteString(str(e, "choices", 0, "delta", "content"))
			if f := str(e, "choices", 0, "finish_reason"); f != "" {
				finish = f
			}
			tcs, _ := path(e, "choices", 0, "delta", "tool_calls").([]any)
			for _, tc := range tcs {
				i := int(path(tc, "index").(float64))
				for len(accs) <= i {
					accs = append(accs, &acc{})
				}
				accs[i].name += str(tc, "function", "name")
				accs[i].args += str(tc, "function", "arguments")
			}
		}
		for _, a := range accs {
			calls = append(calls, gotCall{a.name, parseArgs(a.args)})
		}
		if (finish == "tool_calls") != (len(calls) > 0) {
			t.Errorf("finish_reason %q with %d tool calls", finish, len(calls))
		}
	case "responses":
		resp := r.post(t, "/v1/responses", `{"model":"fake-gpt","stream":`+s+`,"input":"`+prompt+`"}`)
		var output []any
		if !stream {
			output, _ = path(readJSON(t, resp), "output").([]any)
		} else {
			var completed map[string]any
			deltas := map[string]string{}
			for _, e := range events(t, resp) {
				switch e["type"] {
				case "response.completed":
					completed = e
				case "response.output_text.delta":
					text.WriteString(str(e, "delta"))
				case "response.function_call_arguments.delta":
					deltas[str(e, "item_id")] += str(e, "delta")
				}
			}
			output, _ = path(completed, "response", "output").([]any)
			for _, it := range output {
				if str(it, "type") == "function_call" && deltas[str(it, "id")] != str(it, "arguments") {
					t.Errorf("streamed arguments %q differ from the completed item's %q", deltas[str(it, "id")], str(it, "arguments"))
				}
			}
			streamed := text.String()
			text.Reset()
			defer func() {
				if streamed != text.String() {
					t.Errorf("streamed text %q differs from the completed response's %q", streamed, text.String())
				}
			}()
		}
		for _, it := range output {
			switch str(it, "type") {
			case "message":
				text.WriteString(str(it, "content", 0, "text"))
			case "function_call":
				calls = append(calls, gotCall{str(it, "name"), parseArgs(str(it, "arguments"))})
			}
		}
	case "messages":
		resp := r.post(t, "/v1/messages", `{"model":"fake-claude","max_tokens":100,"stream":`+s+`,"messages":[{"role":"user","content":"`+prompt+`"}]}`)
		stop := ""
		if !stream {
			body := readJSON(t, resp)
			stop = str(body, "stop_reason")
			blocks, _ := path(body, "content").([]any)
			for _, b := range blocks {
				switch str(b, "type") {
				case "text":
					text.WriteString(str(b, "text"))
				case "tool_use":
					args, _ := path(b, "input").(map[string]any)
					calls = append(calls, gotCall{str(b, "name"), args})
				}
			}
		} else {
			type block struct{ typ, name, json string }
			blocks := map[int]*block{}
			for _, e := range events(t, resp) {
				i := 0
				if f, ok := path(e, "index").(float64); ok {
					i = int(f)
				}
				switch e["type"] {
				case "content_block_start":
					if blocks[i] != nil {
						t.Errorf("block %d started twice", i)
					}
					blocks[i] = &block{typ: str(e, "content_block", "type"), name: str(e, "content_block", "name")}
				case "content_block_delta":
					text.WriteString(str(e, "delta", "text"))
					blocks[i].json += str(e, "delta", "partial_json")
				case "message_delta":
					stop = str(e, "delta", "stop_reason")
				}
			}
			for _, b := range blocks {
				if b.typ == "tool_use" {
					calls = append(calls, gotCall{b.name, parseArgs(b.json)})
				}
			}
		}
		if (stop == "tool_use") != (len(calls) > 0) {
			t.Errorf("stop_reason %q with %d tool calls", stop, len(calls))
		}
	}
	return calls, text.String()
}

func TestErrorsUseEachAPIsShape(t *testing.T) {
	r := newRig(t)
	cases := []struct {
		name, path, body string
		key              string
		status           int
		typ, msg         string
		retryAfter       string
	}{
		{"denied model", "/v1/chat/completions", `{"model":"deny-gpt","messages":[]}`, agentKey, 403, "permission_error", "deny-gpt is not allowed here", ""},
		{"unknown model", "/v1/chat/completions", `{"model":"gpt-9","messages":[]}`, agentKey, 404, "not_found_error", "GET /v1/models lists", ""},
		{"wrong API for the provider", "/v1/messages", `{"model":"fake-gpt","max_tokens":5,"messages":[]}`, agentKey, 400, "invalid_request_error", "through the OpenAI API", ""},
		{"no key", "/v1/chat/completions", `{}`, "", 401, "authentication_error", "missing API key", ""},
		{"suspended", "/v1/messages", `{}`, "vk_suspended_agent_key_0123", 403, "permission_error", "suspended: runaway", ""},
		{"not JSON", "/v1/chat/completions", `{"model":`, agentKey, 400, "invalid_request_error", "not valid JSON", ""},
		{"no model", "/v1/messages", `{"messages":[]}`, agentKey, 400, "invalid_request_error", "model", ""},
		{"provider 429 (OpenAI)", "/v1/chat/completions", `{"model":"fake-gpt","messages":[{"role":"user","content":"error 429"}]}`, agentKey, 429, "rate_limit_error", "retry after 7 seconds", "7"},
		{"provider 429 (Anthropic)", "/v1/messages", `{"model":"fake-claude","max_tokens":9,"messages":[{"role":"user","content":"error 429"}]}`, agentKey, 429, "rate_limit_error", "retry after 7 seconds", "7"},
		{"provider 503", "/v1/responses", `{"model":"fake-gpt","input":"error 503"}`, agentKey, 503, "api_error", "provider fake-openai failed (HTTP 503)", ""},
		{"provider 400 passes its message", "/v1/messages", `{"model":"fake-claude","messages":[{"role":"user","content":"hi"}]}`, agentKey, 400, "invalid_request_error", "max_tokens: Field required", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", r.url+c.path, strings.NewReader(c.body))
			if c.key != "" {
				req.Header.Set("X-Api-Key", c.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d", resp.StatusCode, c.status)
			}
			if got := resp.Header.Get("Retry-After"); got != c.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, c.retryAfter)
			}
			body := readJSON(t, resp)
			if c.path == "/v1/messages" {
				if body["type"] != "error" || str(body, "error", "type") != c.typ || !strings.Contains(str(body, "error", "message"), c.msg) {
					t.Errorf("body %v; want Anthropic's shape with type %s and %q", body, c.typ, c.msg)
				}
				return
			}
			e, _ := body["error"].(map[string]any)
			if _, ok := e["param"]; !ok || str(e, "type") != c.typ || !strings.Contains(str(e, "message"), c.msg) || str(e, "code") == "" {
				t.Errorf("body %v; want OpenAI's shape with type %s and %q", body, c.typ, c.msg)
			}
		})
	}
	// A denied call and a failed one are both in the ledger.
	if n := len(r.ledger.OfType(vigil.EventModelRequest)); n < 5 {
		t.Errorf("ledger has %d request entries, want the denied and the forwarded ones", n)
	}
}

func TestUpstreamTimeouts(t *testing.T) {
	r := newRig(t, func(o *llmproxy.ProviderOptions) { o.FirstByteTimeout = 100 * time.Millisecond })
	resp := r.post(t, "/v1/chat/completions", `{"model":"fake-gpt","messages":[{"role":"user","content":"slow 5s"}]}`)
	body := readJSON(t, resp)
	if resp.StatusCode != 504 || !strings.Contains(str(body, "error", "message"), "did not start answering") {
		t.Errorf("first-byte timeout: %d %v", resp.StatusCode, body)
	}
	r = newRig(t, func(o *llmproxy.ProviderOptions) { o.TotalTimeout = 150 * time.Millisecond })
	resp = r.post(t, "/v1/messages", `{"model":"fake-claude","max_tokens":5,"messages":[{"role":"user","content":"slow 5s"}]}`)
	body = readJSON(t, resp)
	if resp.StatusCode != 504 || str(body, "type") != "error" || !strings.Contains(str(body, "error", "message"), "did not answer within") {
		t.Errorf("total timeout: %d %v", resp.StatusCode, body)
	}
	ends := r.ledger.OfType(vigil.EventModelResponse)
	if len(ends) != 1 || ends[0].Attrs["status"] != "504" || ends[0].Attrs["error"] == "" {
		t.Errorf("response entries %+v; want the timeout recorded", ends)
	}
}

// flakyTransport fails to connect n times, then connects.
type flakyTransport struct {
	fails    int32
	attempts atomic.Int32
	err      error
}

func (f *flakyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	n := f.attempts.Add(1)
	if n <= f.fails {
		return nil, f.err
	}
	body, _ := io.ReadAll(req.Body)
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Request: req,
		Body: io.NopCloser(strings.NewReader(`{"choices":[{"message":{"content":"ok ` + strconv.Itoa(len(body)) + `"}}]}`))}, nil
}

func TestRetriesOnlyWhenNothingWasSent(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	cases := []struct {
		name     string
		tr       *flakyTransport
		status   int
		attempts int32
	}{
		{"connect fails twice, then works", &flakyTransport{fails: 2, err: dial}, 200, 3},
		{"connect always fails", &flakyTransport{fails: 100, err: dial}, 502, 3},
		{"reset after sending is not retried", &flakyTransport{fails: 1, err: reset}, 502, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, func(o *llmproxy.ProviderOptions) { o.Transport, o.Retries = c.tr, 2 })
			resp := r.post(t, "/v1/chat/completions", `{"model":"fake-gpt","messages":[{"role":"user","content":"hi"}]}`)
			body := readJSON(t, resp)
			if resp.StatusCode != c.status || c.tr.attempts.Load() != c.attempts {
				t.Errorf("status %d after %d attempts, want %d after %d: %v", resp.StatusCode, c.tr.attempts.Load(), c.status, c.attempts, body)
			}
			if c.status == 200 && str(body, "choices", 0, "message", "content") == "ok 0" {
				t.Error("a retried request was sent without its body")
			}
		})
	}
}

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	cancelled := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		f := w.(http.Flusher)
		for i := 0; ; i++ {
			select {
			case <-r.Context().Done():
				close(cancelled)
				return
			case <-time.After(10 * time.Millisecond):
			}
			io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"content":"tick "}}]}`+"\n\n")
			f.Flush()
		}
	}))
	defer up.Close()
	r := newRig(t, func(o *llmproxy.ProviderOptions) { o.BaseURL = up.URL + "/v1" })
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", r.url+"/v1/chat/completions", strings.NewReader(`{"model":"fake-gpt","stream":true,"messages":[]}`))
	req.Header.Set("Authorization", "Bearer "+agentKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sse := llmproxy.NewSSEReader(resp.Body)
	for range 3 {
		if _, err := sse.Next(); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	resp.Body.Close()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream call was not cancelled when the agent went away")
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(r.ledger.OfType(vigil.EventModelResponse)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ends := r.ledger.OfType(vigil.EventModelResponse)
	if len(ends) != 1 || ends[0].Attrs["error"] == "" {
		t.Errorf("response entries %+v; want the broken-off stream recorded", ends)
	}
}

func TestModelsListsWhatTheAgentMayUse(t *testing.T) {
	r := newRig(t)
	r.proxy.AllowModel = func(_ context.Context, a vigil.Actor, m vigil.Model) (bool, error) {
		return a.Name == "bot" && m.Name != "fake-gpt-mini", nil
	}
	req, _ := http.NewRequest("GET", r.url+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+agentKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readJSON(t, resp)
	var got []string
	for _, d := range path(body, "data").([]any) {
		got = append(got, str(d, "id")+"@"+str(d, "owned_by"))
	}
	want := "fake-claude@fake-anthropic fake-embed@fake-openai fake-gpt@fake-openai"
	if strings.Join(got, " ") != want {
		t.Errorf("models %v, want %s (wildcards expanded from the providers' lists, filtered by policy)", got, want)
	}
}

func TestEmbeddingsAreMaskedAndMetered(t *testing.T) {
	r := newRig(t)
	resp := r.post(t, "/v1/embeddings", `{"model":"fake-embed","input":["about `+email+`","second"]}`)
	body := readJSON(t, resp)
	if resp.StatusCode != 200 || len(path(body, "data").([]any)) != 2 {
		t.Fatalf("%d %v", resp.StatusCode, body)
	}
	if strings.Contains(r.received()[0], email) {
		t.Error("the provider received the unmasked address")
	}
	ends := r.ledger.OfType(vigil.EventModelResponse)
	if len(ends) != 1 || ends[0].Counts["tokens.in"] != 3 {
		t.Errorf("response entries %+v; want 3 input tokens", ends)
	}
}

// benchProxy measures the ingress alone: HTTP in, parse, route, Begin and End with an
// in-memory ledger and no PII engine (their costs belong to their packages), the
// reverse proxy, the answer's handling, HTTP out, against the in-process fake provider.
func benchProxy(b *testing.B, path, body string) {
	r := newRig(b)
	r.proxy.Pipeline.PII = nil
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", r.url+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+agentKey)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func BenchmarkProxyChat(b *testing.B) {
	benchProxy(b, "/v1/chat/completions", `{"model":"fake-gpt","messages":[{"role":"user","content":"Please email jane.doe@acme.example about order 1234."}]}`)
}

func BenchmarkProxyChatStream(b *testing.B) {
	benchProxy(b, "/v1/chat/completions", `{"model":"fake-gpt","stream":true,"messages":[{"role":"user","content":"Please email jane.doe@acme.example about order 1234."}]}`)
}

func BenchmarkProxyMessagesStream(b *testing.B) {
	benchProxy(b, "/v1/messages", `{"model":"fake-claude","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"Please email jane.doe@acme.example about order 1234."}]}`)
}

// TestAzureStyleProvider: a base URL's query is kept and the key can travel in a
// header of the provider's choosing.
func TestAzureStyleProvider(t *testing.T) {
	var gotURL, gotKey, gotAuth string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotURL, gotKey, gotAuth = r.URL.String(), r.Header.Get("Api-Key"), r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`)
	}))
	defer up.Close()
	r := newRig(t, func(o *llmproxy.ProviderOptions) {
		o.BaseURL, o.APIKeyHeader = up.URL+"/openai/deployments/gpt?api-version=2024-10-21", "api-key"
	})
	resp := r.post(t, "/v1/chat/completions", `{"model":"fake-gpt","messages":[]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, readJSON(t, resp))
	}
	resp.Body.Close()
	if gotURL != "/openai/deployments/gpt/chat/completions?api-version=2024-10-21" || gotKey != providerKey || gotAuth != "" {
		t.Errorf("upstream got %s with api-key %q and Authorization %q", gotURL, gotKey, gotAuth)
	}
}

// slowHolder approves after a delay, like a human.
type slowHolder struct{ delay time.Duration }

func (h slowHolder) Hold(ctx context.Context, r enforce.HoldRequest) (enforce.HoldResult, error) {
	select {
	case <-time.After(h.delay):
		return enforce.HoldResult{ApprovalID: "ap-9", Status: "approved"}, nil
	case <-ctx.Done():
		return enforce.HoldResult{}, ctx.Err()
	}
}

// TestStreamKeepsAliveWhileAToolCallIsHeld: a streamed answer whose tool call waits
// for a human gets SSE comments meanwhile, then the approved call.
func TestStreamKeepsAliveWhileAToolCallIsHeld(t *testing.T) {
	r := newRig(t)
	r.proxy.Pipeline.Oversight = slowHolder{delay: 400 * time.Millisecond}
	r.proxy.KeepAlive = 50 * time.Millisecond
	resp := r.post(t, "/v1/messages", `{"model":"fake-claude","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"call tool hold_x with {}"}]}`)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s := string(raw)
	keep := strings.Index(s, ": vigil: a tool call is waiting")
	use := strings.Index(s, `"tool_use"`)
	if keep < 0 || use < 0 || keep > use || strings.Count(s, ": vigil:") < 2 {
		t.Errorf("stream %q; want keep-alive comments before the approved tool_use", s)
	}
}

// TestStreamEventsReachTheAgentAsTheyCome: a streamed answer's events are flushed to
// the agent one by one, not when the stream ends. The reverse proxy's FlushInterval is
// 0 (non-streamed answers go out in one write), so this relies on ReverseProxy
// flushing text/event-stream at once. The upstream sends the rest only once the agent
// has read the first event, or gives up after a while, which fails the test.
func TestStreamEventsReachTheAgentAsTheyCome(t *testing.T) {
	gotFirst := make(chan struct{})
	gaveUp := make(chan bool, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"id":"c1","object":"chat.completion.chunk","model":"fake-gpt","choices":[{"index":0,"delta":{"role":"assistant","content":"first words. "}}]}`+"\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-gotFirst:
			gaveUp <- false
		case <-time.After(10 * time.Second):
			gaveUp <- true
		}
		io.WriteString(w, `data: {"id":"c1","object":"chat.completion.chunk","model":"fake-gpt","choices":[{"index":0,"delta":{"content":"last words."},"finish_reason":"stop"}]}`+"\n\n"+"data: [DONE]\n\n")
	}))
	defer up.Close()
	r := newRig(t, func(o *llmproxy.ProviderOptions) { o.BaseURL = up.URL })
	resp := r.post(t, "/v1/chat/completions", `{"model":"fake-gpt","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	defer resp.Body.Close()
	var seen strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(seen.String(), "first words") {
		n, err := resp.Body.Read(buf)
		seen.Write(buf[:n])
		if err != nil {
			t.Fatalf("stream ended before its first event arrived: %v; got %q", err, seen.String())
		}
	}
	close(gotFirst)
	rest, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(rest), "last words") || !strings.Contains(string(rest), "[DONE]") {
		t.Errorf("rest of the stream = %q, want the last event and [DONE]", rest)
	}
	if <-gaveUp {
		t.Error("the first event reached the agent only after the upstream sent the rest")
	}
}
