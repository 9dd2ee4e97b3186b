package llmproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"

	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// messagesDialect is POST /v1/messages (Anthropic's Messages API).
type messagesDialect struct{}

func (messagesDialect) source() string       { return enforce.SourceAnthropic }
func (messagesDialect) providerType() string { return TypeAnthropic }
func (messagesDialect) render(w http.ResponseWriter, r *http.Request, status int, err error) {
	RenderAnthropicError(w, r, status, err)
}

// ParseMessagesRequest reads an Anthropic messages request like ParseChatRequest.
func ParseMessagesRequest(body []byte) (model string, stream bool, args map[string]any, err error) {
	r, err := messagesDialect{}.parse(body)
	return r.Model, r.Stream, r.Args, err
}

func (messagesDialect) parse(body []byte) (request, error) {
	var mr struct {
		Model       string            `json:"model"`
		Stream      bool              `json:"stream"`
		MaxTokens   *float64          `json:"max_tokens"`
		Temperature *float64          `json:"temperature"`
		TopP        *float64          `json:"top_p"`
		TopK        *float64          `json:"top_k"`
		Messages    []json.RawMessage `json:"messages"`
		Tools       []toolDef         `json:"tools"`
		ToolChoice  json.RawMessage   `json:"tool_choice"`
		Thinking    *struct {
			Type string `json:"type"`
		} `json:"thinking"`
	}
	if err := decodeRequest(body, &mr); err != nil {
		return request{}, err
	}
	if mr.Model == "" {
		return request{}, vigil.Errorf(vigil.EINVALID, "model: Field required")
	}
	if mr.Messages == nil {
		return request{}, vigil.Errorf(vigil.EINVALID, "messages: Field required")
	}
	args := map[string]any{"model": mr.Model, "stream": mr.Stream, "messages": float64(len(mr.Messages))}
	setNum(args, "max_tokens", mr.MaxTokens)
	setNum(args, "temperature", mr.Temperature)
	setNum(args, "top_p", mr.TopP)
	setNum(args, "top_k", mr.TopK)
	setTools(args, mr.Tools)
	if tc := toolChoice(mr.ToolChoice); tc != "" {
		args["tool_choice"] = tc
	}
	if mr.Thinking != nil && mr.Thinking.Type != "" {
		args["thinking"] = mr.Thinking.Type
	}
	return request{Model: mr.Model, Stream: mr.Stream, Args: args}, nil
}

type anthropicUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
}

func (u anthropicUsage) input() int64 {
	return u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
}

// answer restores tokens in a message, takes its usage and judges its tool_use
// blocks: a removed call's block is replaced, in place, by a text block explaining
// the removal, and a message left without tool_use blocks stops with "end_turn"
// instead of "tool_use".
func (messagesDialect) answer(ctx context.Context, c *call, body []byte) ([]byte, error) {
	out, err := c.flight.Inbound(ctx, body)
	if err != nil {
		return nil, err
	}
	top, err := parseObject(out)
	if err != nil {
		return out, nil
	}
	var u anthropicUsage
	if json.Unmarshal(top["usage"], &u) == nil {
		c.setUsage(u.input(), u.OutputTokens)
	}
	blocks := top.objects("content")
	changed, left := false, 0
	for i, b := range blocks {
		if b.str("type") != "tool_use" {
			continue
		}
		v := c.judge(ctx, b.str("name"), argsJSON(b["input"]))
		switch {
		case !v.Allowed:
			blocks[i] = textBlock(v.Message)
			changed = true
		case v.Args != nil:
			b.set("input", v.Args)
			changed = true
			left++
		default:
			left++
		}
	}
	if !changed {
		return out, nil
	}
	top.set("content", blocks)
	if left == 0 && top.str("stop_reason") == "tool_use" {
		top.set("stop_reason", "end_turn")
	}
	return top.bytes(), nil
}

func textBlock(text string) object {
	b := object{"type": jsonString("text")}
	b.set("text", text)
	return b
}

// messagesEvent is what Vigil reads of an Anthropic stream event.
type messagesEvent struct {
	Type         string `json:"type"`
	Index        int    `json:"index"`
	ContentBlock *struct {
		Type string `json:"type"`
	} `json:"content_block"`
	Delta *struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		PartialJSON string `json:"partial_json"`
		StopReason  string `json:"stop_reason"`
	} `json:"delta"`
	Usage   *anthropicUsage `json:"usage"`
	Message *struct {
		Usage anthropicUsage `json:"usage"`
	} `json:"message"`
}

// messagesStream filters a streamed message. Text deltas go through a stream filter
// per content block; a tool_use block's events are held from content_block_start to
// content_block_stop, then released whole (one input_json_delta) if allowed, or
// replaced at the same index by a text block explaining the removal.
type messagesStream struct {
	c       *call
	filters map[int]enforce.StreamFilter
	held    map[int]*heldBlock
	// assembled answer for the ledger
	message object
	blocks  map[int]*assembledBlock
	usage   anthropicUsage
	stop    string
	tools   int
}

type heldBlock struct {
	start object
	json  bytes.Buffer
}

type assembledBlock struct {
	block object
	text  bytes.Buffer
}

func (messagesDialect) stream(c *call) eventFilter {
	return &messagesStream{c: c, filters: map[int]enforce.StreamFilter{}, held: map[int]*heldBlock{}, blocks: map[int]*assembledBlock{}}
}

func (s *messagesStream) event(ctx context.Context, out []byte, ev *Event) ([]byte, error) {
	data := bytes.TrimSpace(ev.Data)
	if len(data) == 0 || data[0] != '{' {
		return ev.AppendTo(out), nil
	}
	var e messagesEvent
	if json.Unmarshal(data, &e) != nil {
		return ev.AppendTo(out), nil
	}
	switch e.Type {
	case "message_start":
		if e.Message != nil {
			s.usage = e.Message.Usage
			s.c.setUsage(s.usage.input(), s.usage.OutputTokens)
		}
		if o, err := parseObject(data); err == nil {
			s.message = o.child("message")
		}
		return s.restore(ctx, out, ev, data), nil
	case "content_block_start":
		o, err := parseObject(data)
		if err != nil {
			return ev.AppendTo(out), nil
		}
		block := o.child("content_block")
		if e.ContentBlock != nil && e.ContentBlock.Type == "tool_use" {
			s.held[e.Index] = &heldBlock{start: block}
			return out, nil
		}
		s.blocks[e.Index] = &assembledBlock{block: block}
		return ev.AppendTo(out), nil
	case "content_block_delta":
		if h := s.held[e.Index]; h != nil {
			if e.Delta != nil {
				h.json.WriteString(e.Delta.PartialJSON)
			}
			return out, nil
		}
		if e.Delta == nil || e.Delta.Type != "text_delta" {
			return ev.AppendTo(out), nil
		}
		f := s.filters[e.Index]
		if f == nil {
			f = s.c.flight.InboundStream(ctx)
			s.filters[e.Index] = f
		}
		rel := f.Write([]byte(e.Delta.Text))
		if b := s.blocks[e.Index]; b != nil {
			b.text.Write(rel)
		}
		if string(rel) == e.Delta.Text {
			return ev.AppendTo(out), nil
		}
		if len(rel) == 0 {
			return out, nil
		}
		return appendEvent(out, ev.Name, textDelta(e.Index, string(rel))), nil
	case "content_block_stop":
		if h := s.held[e.Index]; h != nil {
			delete(s.held, e.Index)
			return s.releaseTool(ctx, out, ev, e.Index, h), nil
		}
		if f := s.filters[e.Index]; f != nil {
			delete(s.filters, e.Index)
			if rest := f.Flush(); len(rest) > 0 {
				if b := s.blocks[e.Index]; b != nil {
					b.text.Write(rest)
				}
				out = appendEvent(out, "content_block_delta", textDelta(e.Index, string(rest)))
			}
		}
		return ev.AppendTo(out), nil
	case "message_delta":
		if e.Usage != nil {
			// message_delta usage is cumulative; input counts appear here too on some
			// servers.
			if e.Usage.OutputTokens > 0 {
				s.usage.OutputTokens = e.Usage.OutputTokens
			}
			if e.Usage.input() > 0 {
				s.usage.InputTokens, s.usage.CacheCreationInputTokens, s.usage.CacheReadInputTokens = e.Usage.InputTokens, e.Usage.CacheCreationInputTokens, e.Usage.CacheReadInputTokens
			}
			s.c.setUsage(s.usage.input(), s.usage.OutputTokens)
		}
		if e.Delta != nil {
			s.stop = e.Delta.StopReason
		}
		if e.Delta != nil && e.Delta.StopReason == "tool_use" && s.tools == 0 {
			o, err := parseObject(data)
			if err == nil {
				d := o.child("delta")
				d.set("stop_reason", "end_turn")
				o["delta"] = d.bytes()
				s.stop = "end_turn"
				return appendEvent(out, ev.Name, o.bytes()), nil
			}
		}
	}
	return ev.AppendTo(out), nil
}

func textDelta(index int, text string) []byte {
	return mustMarshal(map[string]any{"type": "content_block_delta", "index": index, "delta": map[string]string{"type": "text_delta", "text": text}})
}

// restore passes an event that may repeat content (message_start), tokens restored.
func (s *messagesStream) restore(ctx context.Context, out []byte, ev *Event, data []byte) []byte {
	r, err := s.c.flight.Restore(ctx, data)
	if err != nil || bytes.Equal(r, data) {
		return ev.AppendTo(out)
	}
	return appendEvent(out, ev.Name, r)
}

// releaseTool judges an assembled tool_use block and appends what the agent gets.
func (s *messagesStream) releaseTool(ctx context.Context, out []byte, ev *Event, index int, h *heldBlock) []byte {
	input := bytes.TrimSpace(h.json.Bytes())
	if len(input) == 0 {
		input = bytes.TrimSpace(h.start["input"])
	}
	if len(input) == 0 {
		input = []byte("{}")
	}
	input = restoreArgs(ctx, s.c.flight, input)
	v := s.c.judge(ctx, h.start.str("name"), argsJSON(input))
	if !v.Allowed {
		b := textBlock(v.Message)
		s.blocks[index] = &assembledBlock{block: b}
		s.blocks[index].text.WriteString(v.Message)
		out = appendEvent(out, "content_block_start", mustMarshal(map[string]any{"type": "content_block_start", "index": index, "content_block": map[string]string{"type": "text", "text": ""}}))
		out = appendEvent(out, "content_block_delta", textDelta(index, v.Message))
		return ev.AppendTo(out)
	}
	if v.Args != nil {
		input = mustMarshal(v.Args)
	}
	s.tools++
	full := object{}
	for k, val := range h.start {
		full[k] = val
	}
	full["input"] = json.RawMessage(input)
	s.blocks[index] = &assembledBlock{block: full}
	start := object{"type": jsonString("content_block_start"), "index": mustMarshal(index)}
	h.start["input"] = json.RawMessage("{}")
	start["content_block"] = h.start.bytes()
	out = appendEvent(out, "content_block_start", start.bytes())
	out = appendEvent(out, "content_block_delta", mustMarshal(map[string]any{"type": "content_block_delta", "index": index, "delta": map[string]string{"type": "input_json_delta", "partial_json": string(input)}}))
	return ev.AppendTo(out)
}

func (s *messagesStream) end(ctx context.Context, out []byte) ([]byte, []byte) {
	for i, f := range s.filters {
		if rest := f.Flush(); len(rest) > 0 {
			if b := s.blocks[i]; b != nil {
				b.text.Write(rest)
			}
		}
	}
	msg := s.message
	if msg == nil {
		msg = object{"type": jsonString("message"), "role": jsonString("assistant")}
	}
	idx := make([]int, 0, len(s.blocks))
	for i := range s.blocks {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	content := make([]json.RawMessage, 0, len(idx))
	for _, i := range idx {
		b := s.blocks[i]
		if b.block.str("type") == "text" {
			b.block.set("text", b.text.String())
		}
		content = append(content, b.block.bytes())
	}
	msg.set("content", content)
	if s.stop != "" {
		msg.set("stop_reason", s.stop)
	}
	msg.set("usage", s.usage)
	return out, msg.bytes()
}
