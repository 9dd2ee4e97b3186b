package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// text reads a content field: a string, or an array of parts with "text".
func text(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Type    string          `json:"type"`
		Text    string          `json:"text"`
		Content json.RawMessage `json:"content"`
	}
	if json.Unmarshal(raw, &parts) != nil {
		return ""
	}
	var b strings.Builder
	for _, p := range parts {
		t := p.Text
		if t == "" && len(p.Content) > 0 {
			t = text(p.Content)
		}
		if t == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		b.WriteString(t)
	}
	return b.String()
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model    string `json:"model"`
		Stream   bool   `json:"stream"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	body, err := decode(r, &req)
	if err != nil || len(req.Messages) == 0 {
		writeError(w, r, 400, "want a JSON body with model and messages")
		return
	}
	last := req.Messages[len(req.Messages)-1]
	sc := scriptFor(text(last.Content), last.Role == "tool")
	if last.Role != "tool" {
		for i := len(req.Messages) - 1; i >= 0; i-- {
			if req.Messages[i].Role == "user" {
				sc = scriptFor(text(req.Messages[i].Content), false)
				break
			}
		}
	}
	if !sc.prelude(w, r) {
		return
	}
	var prompt strings.Builder
	for _, m := range req.Messages {
		prompt.WriteString(text(m.Content))
		prompt.WriteString(" ")
	}
	in, out := tokens(prompt.String()), tokens(sc.reply)
	cid := id("chatcmpl", body)
	usage := map[string]int64{"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out}
	finish := "stop"
	if len(sc.calls) > 0 {
		finish = "tool_calls"
	}
	if !req.Stream {
		msg := map[string]any{"role": "assistant", "content": sc.reply, "refusal": nil}
		if len(sc.calls) > 0 {
			msg["content"] = nil
			var calls []map[string]any
			for i, c := range sc.calls {
				calls = append(calls, map[string]any{"id": fmt.Sprintf("call_%d", i), "type": "function", "function": map[string]string{"name": c.Name, "arguments": c.Args}})
			}
			msg["tool_calls"] = calls
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id": cid, "object": "chat.completion", "created": 1700000000, "model": req.Model,
			"choices": []map[string]any{{"index": 0, "message": msg, "finish_reason": finish, "logprobs": nil}},
			"usage":   usage, "system_fingerprint": "fp_fake",
		})
		return
	}
	st := startSSE(w)
	chunk := func(delta map[string]any, finish any) map[string]any {
		c := map[string]any{"id": cid, "object": "chat.completion.chunk", "created": 1700000000, "model": req.Model, "system_fingerprint": "fp_fake",
			"choices": []map[string]any{{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": nil}}}
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			c["usage"] = nil
		}
		return c
	}
	st.send("", chunk(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil))
	if len(sc.calls) == 0 {
		for _, piece := range chunks(sc.reply, s.opts.ChunkBytes) {
			if r.Context().Err() != nil {
				return
			}
			st.send("", chunk(map[string]any{"content": piece}, nil))
		}
	}
	for i, c := range sc.calls {
		st.send("", chunk(map[string]any{"tool_calls": []map[string]any{{"index": i, "id": fmt.Sprintf("call_%d", i), "type": "function", "function": map[string]string{"name": c.Name, "arguments": ""}}}}, nil))
		for _, piece := range chunks(c.Args, 5) {
			st.send("", chunk(map[string]any{"tool_calls": []map[string]any{{"index": i, "function": map[string]string{"arguments": piece}}}}, nil))
		}
	}
	st.send("", chunk(map[string]any{}, finish))
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		st.send("", map[string]any{"id": cid, "object": "chat.completion.chunk", "created": 1700000000, "model": req.Model, "choices": []any{}, "usage": usage})
	}
	st.send("", "[DONE]")
}

func (s *Server) responses(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model  string          `json:"model"`
		Stream bool            `json:"stream"`
		Input  json.RawMessage `json:"input"`
	}
	body, err := decode(r, &req)
	if err != nil {
		writeError(w, r, 400, "want a JSON body with model and input")
		return
	}
	var last string
	toolResult := false
	var prompt strings.Builder
	var items []struct {
		Type    string          `json:"type"`
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
		Output  json.RawMessage `json:"output"`
	}
	if json.Unmarshal(req.Input, &last) != nil {
		if json.Unmarshal(req.Input, &items) != nil {
			writeError(w, r, 400, "input must be a string or a list of items")
			return
		}
		for _, it := range items {
			switch {
			case it.Type == "function_call_output":
				last, toolResult = text(it.Output), true
			case it.Role == "user":
				last, toolResult = text(it.Content), false
			}
			prompt.WriteString(text(it.Content) + " ")
		}
	} else {
		prompt.WriteString(last)
	}
	sc := scriptFor(last, toolResult)
	if !sc.prelude(w, r) {
		return
	}
	rid := id("resp", body)
	in, out := tokens(prompt.String()), tokens(sc.reply)
	var output []map[string]any
	msgID := "msg_" + rid[5:]
	textPart := func(t string) map[string]any {
		return map[string]any{"type": "output_text", "text": t, "annotations": []any{}, "logprobs": []any{}}
	}
	if len(sc.calls) == 0 {
		output = append(output, map[string]any{"type": "message", "id": msgID, "status": "completed", "role": "assistant", "content": []any{textPart(sc.reply)}})
	}
	for i, c := range sc.calls {
		output = append(output, map[string]any{"type": "function_call", "id": fmt.Sprintf("fc_%d", i), "call_id": fmt.Sprintf("call_%d", i), "name": c.Name, "arguments": c.Args, "status": "completed"})
	}
	resp := func(status string, output []map[string]any) map[string]any {
		r := map[string]any{"id": rid, "object": "response", "created_at": 1700000000, "status": status, "model": req.Model,
			"output": output, "parallel_tool_calls": true, "tool_choice": "auto", "tools": []any{}, "error": nil, "incomplete_details": nil,
			"instructions": nil, "metadata": map[string]any{}, "temperature": 1.0, "top_p": 1.0, "text": map[string]any{"format": map[string]string{"type": "text"}}}
		if status == "completed" {
			r["usage"] = map[string]any{"input_tokens": in, "output_tokens": out, "total_tokens": in + out,
				"input_tokens_details": map[string]int{"cached_tokens": 0}, "output_tokens_details": map[string]int{"reasoning_tokens": 0}}
		} else {
			r["usage"] = nil
		}
		return r
	}
	if !req.Stream {
		writeJSON(w, http.StatusOK, resp("completed", output))
		return
	}
	st := startSSE(w)
	seq := 0
	send := func(typ string, v map[string]any) {
		v["type"] = typ
		v["sequence_number"] = seq
		seq++
		st.send(typ, v)
	}
	send("response.created", map[string]any{"response": resp("in_progress", []map[string]any{})})
	send("response.in_progress", map[string]any{"response": resp("in_progress", []map[string]any{})})
	for i, item := range output {
		if item["type"] == "message" {
			send("response.output_item.added", map[string]any{"output_index": i, "item": map[string]any{"type": "message", "id": msgID, "status": "in_progress", "role": "assistant", "content": []any{}}})
			send("response.content_part.added", map[string]any{"item_id": msgID, "output_index": i, "content_index": 0, "part": textPart("")})
			for _, piece := range chunks(sc.reply, s.opts.ChunkBytes) {
				if r.Context().Err() != nil {
					return
				}
				send("response.output_text.delta", map[string]any{"item_id": msgID, "output_index": i, "content_index": 0, "delta": piece, "logprobs": []any{}})
			}
			send("response.output_text.done", map[string]any{"item_id": msgID, "output_index": i, "content_index": 0, "text": sc.reply, "logprobs": []any{}})
			send("response.content_part.done", map[string]any{"item_id": msgID, "output_index": i, "content_index": 0, "part": textPart(sc.reply)})
			send("response.output_item.done", map[string]any{"output_index": i, "item": item})
			continue
		}
		added := map[string]any{}
		for k, v := range item {
			added[k] = v
		}
		added["arguments"], added["status"] = "", "in_progress"
		send("response.output_item.added", map[string]any{"output_index": i, "item": added})
		args := item["arguments"].(string)
		for _, piece := range chunks(args, 5) {
			send("response.function_call_arguments.delta", map[string]any{"item_id": item["id"], "output_index": i, "delta": piece})
		}
		send("response.function_call_arguments.done", map[string]any{"item_id": item["id"], "output_index": i, "arguments": args})
		send("response.output_item.done", map[string]any{"output_index": i, "item": item})
	}
	send("response.completed", map[string]any{"response": resp("completed", output)})
}
