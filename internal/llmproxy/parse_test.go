package llmproxy_test

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/vigil-gateway/vigil/internal/llmproxy"
)

func TestParseRequests(t *testing.T) {
	cases := []struct {
		name, body string
		parse      func([]byte) (string, bool, map[string]any, error)
		model      string
		stream     bool
		args       map[string]any
		err        string
	}{
		{"chat", `{"model":"gpt-4o","stream":true,"temperature":0.5,"max_tokens":100,"messages":[{"role":"user","content":"secret"}],"tools":[{"type":"function","function":{"name":"lookup"}}],"tool_choice":{"type":"function","function":{"name":"lookup"}}}`,
			llmproxy.ParseChatRequest, "gpt-4o", true, map[string]any{"model": "gpt-4o", "stream": true, "temperature": 0.5, "max_tokens": 100.0, "messages": 1.0, "tools": []any{"lookup"}, "tool_choice": "lookup"}, ""},
		{"chat without model", `{"messages":[]}`, llmproxy.ParseChatRequest, "", false, nil, `"model" is required`},
		{"chat with a string model", `{"model":7,"messages":[]}`, llmproxy.ParseChatRequest, "", false, nil, `"model" must be a string`},
		{"chat not JSON", `model=x`, llmproxy.ParseChatRequest, "", false, nil, "not valid JSON"},
		{"messages", `{"model":"claude-x","max_tokens":10,"stream":false,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"tools":[{"name":"search","input_schema":{}}],"tool_choice":{"type":"any"}}`,
			llmproxy.ParseMessagesRequest, "claude-x", false, map[string]any{"model": "claude-x", "stream": false, "max_tokens": 10.0, "messages": 1.0, "tools": []any{"search"}, "tool_choice": "any"}, ""},
		{"messages without messages", `{"model":"claude-x"}`, llmproxy.ParseMessagesRequest, "", false, nil, "messages: Field required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			model, stream, args, err := c.parse([]byte(c.body))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if model != c.model || stream != c.stream {
				t.Errorf("model %q stream %v", model, stream)
			}
			got, _ := json.Marshal(args)
			want, _ := json.Marshal(c.args)
			if string(got) != string(want) {
				t.Errorf("args %s, want %s", got, want)
			}
			if strings.Contains(string(got), "secret") || strings.Contains(string(got), `"hi"`) {
				t.Errorf("args carry message content: %s", got)
			}
		})
	}
}

func TestSSEReader(t *testing.T) {
	in := ": keep-alive\n\nevent: message_start\ndata: {\"a\":1}\n\ndata: line1\r\ndata: line2\r\n\r\n\n\ndata: [DONE]"
	r := llmproxy.NewSSEReader(strings.NewReader(in))
	type ev struct{ name, data, raw string }
	var got []ev
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev{e.Name, string(e.Data), string(e.Raw)})
	}
	want := []ev{
		{"", "", ": keep-alive\n\n"},
		{"message_start", `{"a":1}`, "event: message_start\ndata: {\"a\":1}\n\n"},
		{"", "line1\nline2", "data: line1\r\ndata: line2\r\n\r\n"},
		{"", "[DONE]", "data: [DONE]\n\n"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events %q, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pat, name string
		want      bool
	}{
		{"gpt-*", "gpt-4o", true}, {"gpt-*", "gpt-", true}, {"gpt-*", "xgpt-4", false},
		{"*", "anything/with/slashes", true}, {"claude-?-sonnet", "claude-4-sonnet", true},
		{"claude-?-sonnet", "claude-45-sonnet", false}, {"a*b*c", "aXXbYYc", true}, {"a*b*c", "aXXbYY", false},
		{"exact", "exact", true}, {"exact", "exactly", false}, {"", "", true}, {"**", "", true},
	} {
		if got := llmproxy.Match(c.pat, c.name); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pat, c.name, got, c.want)
		}
	}
}

func FuzzParseChatRequest(f *testing.F) {
	f.Add([]byte(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"x"}}]}`))
	f.Add([]byte(`{"model":"m","messages":[],"tool_choice":"auto","stream_options":{"include_usage":false}}`))
	f.Add([]byte(`{"model":"m","messages":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		model, _, args, err := llmproxy.ParseChatRequest(body)
		if err != nil {
			return
		}
		if model == "" || args["model"] != model {
			t.Fatalf("accepted a request without a model: %q", body)
		}
		if _, err := json.Marshal(args); err != nil {
			t.Fatalf("args don't marshal: %v", err)
		}
	})
}

func FuzzParseMessagesRequest(f *testing.F) {
	f.Add([]byte(`{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"t"}]}`))
	f.Add([]byte(`{"model":"claude","messages":[],"tool_choice":{"type":"tool","name":"t"},"thinking":{"type":"enabled"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		model, _, args, err := llmproxy.ParseMessagesRequest(body)
		if err != nil {
			return
		}
		if model == "" || args["model"] != model {
			t.Fatalf("accepted a request without a model: %q", body)
		}
	})
}

// FuzzSSEReader: no panics, and re-emitting the events' raw bytes reads back as the
// same events (what Vigil passes through unchanged is what it read).
func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("data: {\"a\":1}\n\nevent: x\ndata: y\n\n"))
	f.Add([]byte(": c\r\n\r\ndata: a\r\ndata: b\r\n\r\n"))
	f.Add([]byte("data: no end"))
	f.Add([]byte("\n\n\nevent: only\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		read := func(b []byte) ([]llmproxy.Event, []byte) {
			r := llmproxy.NewSSEReader(bytes.NewReader(b))
			var evs []llmproxy.Event
			var raw []byte
			for {
				e, err := r.Next()
				if err != nil {
					return evs, raw
				}
				raw = append(raw, e.Raw...)
				e.Data, e.Raw = bytes.Clone(e.Data), nil
				evs = append(evs, e)
			}
		}
		first, raw := read(in)
		second, raw2 := read(raw)
		if len(first) != len(second) || !bytes.Equal(raw, raw2) {
			t.Fatalf("round trip changed the stream: %q -> %q", raw, raw2)
		}
		for i := range first {
			if first[i].Name != second[i].Name || !bytes.Equal(first[i].Data, second[i].Data) {
				t.Fatalf("event %d changed: %+v -> %+v", i, first[i], second[i])
			}
		}
	})
}

func BenchmarkParseChatRequest(b *testing.B) {
	body := []byte(`{"model":"gpt-4o","temperature":0.2,"messages":[{"role":"system","content":"You are a support agent for a shop."},{"role":"user","content":"` + strings.Repeat("Where is my order? ", 50) + `"}],"tools":[{"type":"function","function":{"name":"lookup_order","parameters":{"type":"object"}}}]}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, _, err := llmproxy.ParseChatRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSSEReader(b *testing.B) {
	var stream bytes.Buffer
	for range 200 {
		stream.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"abc "},"finish_reason":null}]}` + "\n\n")
	}
	b.ReportAllocs()
	b.SetBytes(int64(stream.Len()))
	for b.Loop() {
		r := llmproxy.NewSSEReader(bytes.NewReader(stream.Bytes()))
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
}
