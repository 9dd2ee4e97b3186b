package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

func (s *Server) messages(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model     string `json:"model"`
		Stream    bool   `json:"stream"`
		MaxTokens int    `json:"max_tokens"`
		Messages  []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	body, err := decode(r, &req)
	if err != nil || len(req.Messages) == 0 {
		writeError(w, r, 400, "messages: Field required")
		return
	}
	if req.MaxTokens == 0 {
		writeError(w, r, 400, "max_tokens: Field required")
		return
	}
	last := req.Messages[len(req.Messages)-1]
	var blocks []struct {
		Type    string          `json:"type"`
		Content json.RawMessage `json:"content"`
	}
	toolResult := false
	lastText := text(last.Content)
	if json.Unmarshal(last.Content, &blocks) == nil {
		for _, b := range blocks {
			if b.Type == "tool_result" {
				toolResult, lastText = true, text(b.Content)
			}
		}
	}
	sc := scriptFor(lastText, toolResult)
	if !sc.prelude(w, r) {
		return
	}
	var prompt strings.Builder
	for _, m := range req.Messages {
		prompt.WriteString(text(m.Content) + " ")
	}
	in, out := tokens(prompt.String()), tokens(sc.reply)
	mid := id("msg", body)
	stop := "end_turn"
	var content []map[string]any
	if len(sc.calls) == 0 {
		content = append(content, map[string]any{"type": "text", "text": sc.reply})
	}
	for i, c := range sc.calls {
		content = append(content, map[string]any{"type": "tool_use", "id": fmt.Sprintf("toolu_%d", i), "name": c.Name, "input": json.RawMessage(c.Args)})
		stop = "tool_use"
	}
	if !req.Stream {
		writeJSON(w, http.StatusOK, map[string]any{"id": mid, "type": "message", "role": "assistant", "model": req.Model,
			"content": content, "stop_reason": stop, "stop_sequence": nil,
			"usage": map[string]int64{"input_tokens": in, "output_tokens": out}})
		return
	}
	st := startSSE(w)
	st.send("message_start", map[string]any{"type": "message_start", "message": map[string]any{"id": mid, "type": "message", "role": "assistant",
		"model": req.Model, "content": []any{}, "stop_reason": nil, "stop_sequence": nil, "usage": map[string]int64{"input_tokens": in, "output_tokens": 1}}})
	for i, b := range content {
		if b["type"] == "text" {
			st.send("content_block_start", map[string]any{"type": "content_block_start", "index": i, "content_block": map[string]string{"type": "text", "text": ""}})
			st.send("ping", map[string]string{"type": "ping"})
			for _, piece := range chunks(sc.reply, s.opts.ChunkBytes) {
				if r.Context().Err() != nil {
					return
				}
				st.send("content_block_delta", map[string]any{"type": "content_block_delta", "index": i, "delta": map[string]string{"type": "text_delta", "text": piece}})
			}
		} else {
			st.send("content_block_start", map[string]any{"type": "content_block_start", "index": i,
				"content_block": map[string]any{"type": "tool_use", "id": b["id"], "name": b["name"], "input": map[string]any{}}})
			args := string(b["input"].(json.RawMessage))
			for _, piece := range chunks(args, 5) {
				st.send("content_block_delta", map[string]any{"type": "content_block_delta", "index": i, "delta": map[string]string{"type": "input_json_delta", "partial_json": piece}})
			}
		}
		st.send("content_block_stop", map[string]any{"type": "content_block_stop", "index": i})
	}
	st.send("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil}, "usage": map[string]int64{"output_tokens": out}})
	st.send("message_stop", map[string]string{"type": "message_stop"})
}
