package llmproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/vigil-gateway/vigil/internal/enforce"
)

// chatChunk is what Vigil reads of a chat.completion.chunk.
type chatChunk struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Created int64  `json:"created"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role      string  `json:"role"`
			Content   *string `json:"content"`
			ToolCalls []struct {
				Index    int    `json:"index"`
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *chatUsage `json:"usage"`
}

// chatStream filters a streamed chat completion. Text deltas go through each
// choice's stream filter (restoring tokens, holding back only a possible split
// token); tool-call deltas are held until the choice finishes, then each assembled
// call is judged and released whole as one delta, or replaced by a text delta that
// explains its removal. The usage chunk Vigil asked for is dropped when the agent did
// not ask for it.
type chatStream struct {
	c       *call
	choices map[int]*chatChoice
	order   []int
	id      string
	model   string
	created int64
	usage   *chatUsage
}

type chatChoice struct {
	index   int
	filter  enforce.StreamFilter
	text    strings.Builder // what the agent got, for the ledger
	role    string
	calls   []*pendingCall
	sent    []json.RawMessage // tool calls released, for the ledger
	finish  string
	done    bool
	hasText bool
}

type pendingCall struct {
	index          int
	id, typ, name  string
	args           bytes.Buffer
	restored, note string
}

func (chatDialect) stream(c *call) eventFilter {
	return &chatStream{c: c, choices: map[int]*chatChoice{}}
}

func (s *chatStream) choice(ctx context.Context, i int) *chatChoice {
	ch := s.choices[i]
	if ch == nil {
		ch = &chatChoice{index: i, filter: s.c.flight.InboundStream(ctx)}
		s.choices[i] = ch
		s.order = append(s.order, i)
	}
	return ch
}

func (s *chatStream) event(ctx context.Context, out []byte, ev *Event) ([]byte, error) {
	data := bytes.TrimSpace(ev.Data)
	if len(data) == 0 || data[0] != '{' {
		if string(data) == "[DONE]" {
			out = s.finishAll(ctx, out, nil)
		}
		return ev.AppendTo(out), nil
	}
	var ch chatChunk
	if json.Unmarshal(data, &ch) != nil {
		return ev.AppendTo(out), nil
	}
	s.id, s.model, s.created = ch.ID, ch.Model, ch.Created
	if ch.Usage != nil {
		s.usage = ch.Usage
		s.c.setUsage(ch.Usage.PromptTokens, ch.Usage.CompletionTokens)
		if len(ch.Choices) == 0 && s.c.req.stripUsage {
			return out, nil
		}
	}
	// Fast path: only text, and the filter released it unchanged.
	fast := true
	released := make([][]byte, len(ch.Choices))
	for i, c := range ch.Choices {
		st := s.choice(ctx, c.Index)
		if c.Delta.Role != "" {
			st.role = c.Delta.Role
		}
		if c.Delta.Content != nil && *c.Delta.Content != "" {
			in := []byte(*c.Delta.Content)
			released[i] = st.filter.Write(in)
			st.text.Write(released[i])
			st.hasText = true
			if !bytes.Equal(released[i], in) {
				fast = false
			}
		}
		if len(c.Delta.ToolCalls) > 0 || c.FinishReason != nil {
			fast = false
		}
	}
	if fast {
		return ev.AppendTo(out), nil
	}

	top, err := parseObject(data)
	if err != nil {
		return ev.AppendTo(out), nil
	}
	choices := top.objects("choices")
	keep := false
	for i, c := range ch.Choices {
		st := s.choice(ctx, c.Index)
		delta := choices[i].child("delta")
		if delta == nil {
			delta = object{}
		}
		for _, tc := range c.Delta.ToolCalls {
			pc := st.call(tc.Index)
			if tc.ID != "" {
				pc.id = tc.ID
			}
			if tc.Type != "" {
				pc.typ = tc.Type
			}
			pc.name += tc.Function.Name
			pc.args.WriteString(tc.Function.Arguments)
		}
		delete(delta, "tool_calls")
		if c.FinishReason == nil {
			if c.Delta.Content != nil {
				delta.set("content", string(released[i]))
			}
			choices[i]["delta"] = delta.bytes()
			if !emptyDelta(delta) || choices[i]["logprobs"] != nil && string(choices[i]["logprobs"]) != "null" {
				keep = true
			}
			continue
		}
		// The choice finishes: release its held-back text, then its judged tool calls,
		// then the finish chunk itself.
		text := append(released[i], st.filter.Flush()...)
		st.text.Write(text[len(released[i]):])
		if len(text) > 0 {
			out = s.appendDelta(out, top, st.index, object{"content": jsonString(string(text))})
		}
		delete(delta, "content")
		out = s.releaseCalls(ctx, out, top, st)
		finish := *c.FinishReason
		if finish == "tool_calls" && len(st.sent) == 0 {
			finish = "stop"
		}
		st.finish, st.done = finish, true
		choices[i].set("finish_reason", finish)
		choices[i]["delta"] = delta.bytes()
		keep = true
	}
	if !keep && ch.Usage == nil {
		return out, nil
	}
	top.set("choices", choices)
	return appendEvent(out, ev.Name, top.bytes()), nil
}

func (st *chatChoice) call(index int) *pendingCall {
	for _, pc := range st.calls {
		if pc.index == index {
			return pc
		}
	}
	pc := &pendingCall{index: index}
	st.calls = append(st.calls, pc)
	return pc
}

// emptyDelta reports whether a delta carries nothing for the agent.
func emptyDelta(d object) bool {
	for k, v := range d {
		s := string(v)
		if (k == "content" || k == "refusal") && (s == "null" || s == `""`) {
			continue
		}
		return false
	}
	return true
}

func jsonString(s string) json.RawMessage { return mustMarshal(s) }

// appendDelta appends a chunk that carries delta for choice index, shaped like tpl.
func (s *chatStream) appendDelta(out []byte, tpl object, index int, delta object) []byte {
	chunk := object{}
	for _, k := range []string{"id", "object", "created", "model", "system_fingerprint", "service_tier"} {
		if v, ok := tpl[k]; ok {
			chunk[k] = v
		}
	}
	chunk.set("choices", []object{{"index": mustMarshal(index), "delta": delta.bytes(), "finish_reason": json.RawMessage("null")}})
	return appendEvent(out, "", chunk.bytes())
}

// releaseCalls judges a choice's assembled tool calls and appends what the agent
// gets: allowed calls whole (renumbered so indices stay dense), removed ones as an
// explanation in a text delta.
func (s *chatStream) releaseCalls(ctx context.Context, out []byte, tpl object, st *chatChoice) []byte {
	var notes []string
	for _, pc := range st.calls {
		args := restoreArgs(ctx, s.c.flight, pc.args.Bytes())
		v := s.c.judge(ctx, pc.name, argsJSON(json.RawMessage(args)))
		if !v.Allowed {
			notes = append(notes, v.Message)
			continue
		}
		if v.Args != nil {
			args = mustMarshal(v.Args)
		}
		typ := pc.typ
		if typ == "" {
			typ = "function"
		}
		tc := object{"index": mustMarshal(len(st.sent)), "id": jsonString(pc.id), "type": jsonString(typ)}
		tc.set("function", map[string]string{"name": pc.name, "arguments": string(args)})
		out = s.appendDelta(out, tpl, st.index, object{"tool_calls": mustMarshal([]json.RawMessage{tc.bytes()})})
		delete(tc, "index")
		st.sent = append(st.sent, tc.bytes())
	}
	st.calls = nil
	if len(notes) > 0 {
		text := strings.Join(notes, "\n")
		if st.hasText {
			text = "\n\n" + text
		}
		st.text.WriteString(text)
		out = s.appendDelta(out, tpl, st.index, object{"content": jsonString(text)})
	}
	return out
}

// restoreArgs restores tokens in a tool call's arguments (a JSON object as text).
func restoreArgs(ctx context.Context, f *enforce.Flight, args []byte) []byte {
	if len(bytes.TrimSpace(args)) == 0 {
		return args
	}
	var out []byte
	var err error
	if json.Valid(args) {
		out, err = f.Inbound(ctx, args)
	} else {
		out, err = f.InboundText(ctx, args)
	}
	if err != nil {
		return args
	}
	return out
}

// finishAll releases whatever choices still hold (a stream that ended without a
// finish_reason).
func (s *chatStream) finishAll(ctx context.Context, out []byte, tpl object) []byte {
	if tpl == nil {
		tpl = object{"id": jsonString(s.id), "object": jsonString("chat.completion.chunk"), "created": mustMarshal(s.created), "model": jsonString(s.model)}
	}
	for _, i := range s.order {
		st := s.choices[i]
		if st.done {
			continue
		}
		if text := st.filter.Flush(); len(text) > 0 {
			st.text.Write(text)
			out = s.appendDelta(out, tpl, st.index, object{"content": jsonString(string(text))})
		}
		out = s.releaseCalls(ctx, out, tpl, st)
		st.done = true
	}
	return out
}

func (s *chatStream) end(ctx context.Context, out []byte) ([]byte, []byte) {
	out = s.finishAll(ctx, out, nil)
	// The assembled answer, shaped like a non-streamed chat completion.
	choices := make([]map[string]any, 0, len(s.order))
	order := slices.Clone(s.order)
	slices.Sort(order)
	for _, i := range order {
		st := s.choices[i]
		msg := map[string]any{"role": "assistant", "content": st.text.String()}
		if len(st.sent) > 0 {
			msg["tool_calls"] = st.sent
		}
		choices = append(choices, map[string]any{"index": i, "message": msg, "finish_reason": st.finish})
	}
	body := map[string]any{"id": s.id, "object": "chat.completion", "created": s.created, "model": s.model, "choices": choices}
	if s.usage != nil {
		body["usage"] = map[string]int64{"prompt_tokens": s.usage.PromptTokens, "completion_tokens": s.usage.CompletionTokens, "total_tokens": s.usage.PromptTokens + s.usage.CompletionTokens}
	}
	return out, mustMarshal(body)
}
