package llmproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"

	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// responsesDialect is POST /v1/responses (OpenAI's Responses API).
type responsesDialect struct{ openAIRoute }

func (responsesDialect) parse(body []byte) (request, error) {
	var rr struct {
		Model              string          `json:"model"`
		Stream             bool            `json:"stream"`
		Input              json.RawMessage `json:"input"`
		MaxOutputTokens    *float64        `json:"max_output_tokens"`
		Temperature        *float64        `json:"temperature"`
		TopP               *float64        `json:"top_p"`
		PreviousResponseID string          `json:"previous_response_id"`
		Store              *bool           `json:"store"`
		Background         *bool           `json:"background"`
		Tools              []toolDef       `json:"tools"`
		ToolChoice         json.RawMessage `json:"tool_choice"`
	}
	if err := decodeRequest(body, &rr); err != nil {
		return request{}, err
	}
	if rr.Model == "" {
		return request{}, vigil.Errorf(vigil.EINVALID, "field \"model\" is required")
	}
	args := map[string]any{"model": rr.Model, "stream": rr.Stream}
	items := 0.0
	if b := bytes.TrimSpace(rr.Input); len(b) > 0 {
		items = 1
		if b[0] == '[' {
			var list []json.RawMessage
			if json.Unmarshal(b, &list) == nil {
				items = float64(len(list))
			}
		}
	}
	args["input_items"] = items
	setNum(args, "max_output_tokens", rr.MaxOutputTokens)
	setNum(args, "temperature", rr.Temperature)
	setNum(args, "top_p", rr.TopP)
	if rr.PreviousResponseID != "" {
		args["previous_response"] = true
	}
	if rr.Store != nil {
		args["store"] = *rr.Store
	}
	if rr.Background != nil {
		args["background"] = *rr.Background
	}
	setTools(args, rr.Tools)
	if tc := toolChoice(rr.ToolChoice); tc != "" {
		args["tool_choice"] = tc
	}
	return request{Model: rr.Model, Stream: rr.Stream, Args: args}, nil
}

type responsesUsage struct {
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
}

// answer restores tokens in a response, takes its usage and judges its function
// calls: a removed call's output item is replaced, in place, by an assistant message
// item whose text explains the removal.
func (responsesDialect) answer(ctx context.Context, c *call, body []byte) ([]byte, error) {
	out, err := c.flight.Inbound(ctx, body)
	if err != nil {
		return nil, err
	}
	top, err := parseObject(out)
	if err != nil {
		return out, nil
	}
	var u responsesUsage
	if json.Unmarshal(top["usage"], &u) == nil {
		c.setUsage(u.InputTokens, u.OutputTokens)
	}
	output := top.objects("output")
	changed := false
	for i, item := range output {
		if item.str("type") != "function_call" {
			continue
		}
		if repl, ok := judgeFunctionCall(ctx, c, item, i); ok {
			output[i] = repl
			changed = true
		}
	}
	if !changed {
		return out, nil
	}
	top.set("output", output)
	return top.bytes(), nil
}

// judgeFunctionCall judges a function_call output item whose arguments are already
// restored. It returns the item to send instead and true when it changed: a message
// item explaining a removal, or the item with reviewer-edited arguments.
func judgeFunctionCall(ctx context.Context, c *call, item object, n int) (object, bool) {
	v := c.judge(ctx, item.str("name"), argsJSON(item["arguments"]))
	if !v.Allowed {
		return explanationItem(item.str("id"), n, v.Message), true
	}
	if v.Args != nil {
		item.set("arguments", string(mustMarshal(v.Args)))
		return item, true
	}
	return item, false
}

// explanationItem is the assistant message that replaces a removed function call.
func explanationItem(callItemID string, n int, text string) object {
	id := "msg_vigil_" + strconv.Itoa(n)
	if callItemID != "" {
		id = "msg_vigil_" + callItemID
	}
	it := object{"type": jsonString("message"), "id": jsonString(id), "status": jsonString("completed"), "role": jsonString("assistant")}
	it.set("content", []map[string]any{{"type": "output_text", "text": text, "annotations": []any{}}})
	return it
}

// responsesEvent is what Vigil reads of a Responses stream event.
type responsesEvent struct {
	Type         string `json:"type"`
	ItemID       string `json:"item_id"`
	OutputIndex  int    `json:"output_index"`
	ContentIndex int    `json:"content_index"`
	Delta        string `json:"delta"`
	Item         *struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"item"`
}

// responsesStream filters a streamed response. Text deltas go through a stream
// filter per content part; a function call's events are held from
// output_item.added to output_item.done, then released whole (one arguments delta) if
// allowed, or replaced by the events of an assistant message explaining the removal
// at the same output index. Summary events that repeat text (output_text.done,
// content_part.done, output_item.done, response.completed) are restored without being
// counted twice, and response.completed carries the same replacements.
type responsesStream struct {
	c       *call
	filters map[string]enforce.StreamFilter
	held    map[int]bool
	// replaced maps a function call item id to the item the agent got instead.
	replaced map[string]object
	final    []byte
}

func (responsesDialect) stream(c *call) eventFilter {
	return &responsesStream{c: c, filters: map[string]enforce.StreamFilter{}, held: map[int]bool{}, replaced: map[string]object{}}
}

func partKey(itemID string, content int) string { return itemID + "#" + strconv.Itoa(content) }

func (s *responsesStream) event(ctx context.Context, out []byte, ev *Event) ([]byte, error) {
	data := bytes.TrimSpace(ev.Data)
	if len(data) == 0 || data[0] != '{' {
		return ev.AppendTo(out), nil
	}
	var e responsesEvent
	if json.Unmarshal(data, &e) != nil {
		return ev.AppendTo(out), nil
	}
	switch e.Type {
	case "response.output_text.delta":
		key := partKey(e.ItemID, e.ContentIndex)
		f := s.filters[key]
		if f == nil {
			f = s.c.flight.InboundStream(ctx)
			s.filters[key] = f
		}
		rel := f.Write([]byte(e.Delta))
		if string(rel) == e.Delta {
			return ev.AppendTo(out), nil
		}
		if len(rel) == 0 {
			return out, nil
		}
		o, err := parseObject(data)
		if err != nil {
			return ev.AppendTo(out), nil
		}
		o.set("delta", string(rel))
		return appendEvent(out, ev.Name, o.bytes()), nil
	case "response.output_text.done":
		if f := s.filters[partKey(e.ItemID, e.ContentIndex)]; f != nil {
			delete(s.filters, partKey(e.ItemID, e.ContentIndex)) // flushed once: it counts its findings
			if rest := f.Flush(); len(rest) > 0 {
				o := object{"type": jsonString("response.output_text.delta"), "item_id": jsonString(e.ItemID),
					"output_index": mustMarshal(e.OutputIndex), "content_index": mustMarshal(e.ContentIndex)}
				o.set("delta", string(rest))
				out = appendEvent(out, "response.output_text.delta", o.bytes())
			}
		}
		return s.restore(ctx, out, ev, data), nil
	case "response.output_item.added":
		if e.Item != nil && e.Item.Type == "function_call" {
			s.held[e.OutputIndex] = true
			return out, nil
		}
	case "response.function_call_arguments.delta", "response.function_call_arguments.done":
		if s.held[e.OutputIndex] {
			return out, nil
		}
	case "response.output_item.done":
		if s.held[e.OutputIndex] {
			delete(s.held, e.OutputIndex)
			return s.releaseCall(ctx, out, ev, data, e.OutputIndex), nil
		}
		return s.restore(ctx, out, ev, data), nil
	case "response.completed", "response.incomplete", "response.failed":
		return s.complete(ctx, out, ev, data), nil
	case "response.content_part.done", "response.created", "response.in_progress":
		return s.restore(ctx, out, ev, data), nil
	}
	return ev.AppendTo(out), nil
}

// restore passes an event that repeats content, with tokens restored.
func (s *responsesStream) restore(ctx context.Context, out []byte, ev *Event, data []byte) []byte {
	r, err := s.c.flight.Restore(ctx, data)
	if err != nil || bytes.Equal(r, data) {
		return ev.AppendTo(out)
	}
	return appendEvent(out, ev.Name, r)
}

// releaseCall judges a held function call once its item is done and appends what
// the agent gets.
func (s *responsesStream) releaseCall(ctx context.Context, out []byte, ev *Event, data []byte, n int) []byte {
	o, err := parseObject(data)
	if err != nil {
		return ev.AppendTo(out)
	}
	item := o.child("item")
	if item == nil {
		return ev.AppendTo(out)
	}
	if args := item.str("arguments"); args != "" {
		item.set("arguments", string(restoreArgs(ctx, s.c.flight, []byte(args))))
	}
	id := item.str("id")
	repl, changed := judgeFunctionCall(ctx, s.c, item, n)
	if changed {
		s.replaced[id] = repl
	}
	seq := o["sequence_number"]
	mk := func(typ string, fields object) []byte {
		fields["type"] = jsonString(typ)
		if seq != nil {
			fields["sequence_number"] = seq
		}
		return appendEvent(nil, typ, fields.bytes())
	}
	idx := mustMarshal(n)
	if repl.str("type") == "function_call" {
		args := repl.str("arguments")
		added := object{}
		for k, v := range repl {
			added[k] = v
		}
		added.set("arguments", "")
		added.set("status", "in_progress")
		out = append(out, mk("response.output_item.added", object{"output_index": idx, "item": added.bytes()})...)
		out = append(out, mk("response.function_call_arguments.delta", object{"item_id": jsonString(id), "output_index": idx, "delta": jsonString(args)})...)
		out = append(out, mk("response.function_call_arguments.done", object{"item_id": jsonString(id), "output_index": idx, "arguments": jsonString(args)})...)
		o["item"] = repl.bytes()
		return appendEvent(out, ev.Name, o.bytes())
	}
	// Removed: the events of a one-part assistant message in its place.
	mid := repl.str("id")
	text := repl.objects("content")[0].str("text")
	empty := object{"type": jsonString("message"), "id": jsonString(mid), "status": jsonString("in_progress"), "role": jsonString("assistant"), "content": json.RawMessage("[]")}
	part := func(t string) json.RawMessage {
		return mustMarshal(map[string]any{"type": "output_text", "text": t, "annotations": []any{}})
	}
	mid0 := jsonString(mid)
	out = append(out, mk("response.output_item.added", object{"output_index": idx, "item": empty.bytes()})...)
	out = append(out, mk("response.content_part.added", object{"item_id": mid0, "output_index": idx, "content_index": json.RawMessage("0"), "part": part("")})...)
	out = append(out, mk("response.output_text.delta", object{"item_id": mid0, "output_index": idx, "content_index": json.RawMessage("0"), "delta": jsonString(text)})...)
	out = append(out, mk("response.output_text.done", object{"item_id": mid0, "output_index": idx, "content_index": json.RawMessage("0"), "text": jsonString(text)})...)
	out = append(out, mk("response.content_part.done", object{"item_id": mid0, "output_index": idx, "content_index": json.RawMessage("0"), "part": part(text)})...)
	out = append(out, mk("response.output_item.done", object{"output_index": idx, "item": repl.bytes()})...)
	return out
}

// complete passes the final event with tokens restored, judged calls replaced and
// usage taken; its response is the assembled answer for the ledger.
func (s *responsesStream) complete(ctx context.Context, out []byte, ev *Event, data []byte) []byte {
	r, err := s.c.flight.Restore(ctx, data)
	if err != nil {
		r = data
	}
	o, err := parseObject(r)
	if err != nil {
		return ev.AppendTo(out)
	}
	resp := o.child("response")
	if resp == nil {
		s.final = r
		return appendEvent(out, ev.Name, r)
	}
	var u responsesUsage
	if json.Unmarshal(resp["usage"], &u) == nil {
		s.c.setUsage(u.InputTokens, u.OutputTokens)
	}
	if len(s.replaced) > 0 {
		output := resp.objects("output")
		for i, item := range output {
			if repl, ok := s.replaced[item.str("id")]; ok && item.str("type") == "function_call" {
				output[i] = repl
			}
		}
		resp.set("output", output)
		o["response"] = resp.bytes()
		r = o.bytes()
	}
	s.final = resp.bytes()
	if bytes.Equal(r, data) {
		return ev.AppendTo(out)
	}
	return appendEvent(out, ev.Name, r)
}

func (s *responsesStream) end(ctx context.Context, out []byte) ([]byte, []byte) {
	for _, f := range s.filters {
		f.Flush()
	}
	return out, s.final
}
