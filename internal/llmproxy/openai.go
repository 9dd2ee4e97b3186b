package llmproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// chatRequest is what Vigil reads of a chat completions request. Everything else in
// the body passes through untouched.
type chatRequest struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Messages            []json.RawMessage `json:"messages"`
	MaxTokens           *float64          `json:"max_tokens"`
	MaxCompletionTokens *float64          `json:"max_completion_tokens"`
	Temperature         *float64          `json:"temperature"`
	TopP                *float64          `json:"top_p"`
	N                   *float64          `json:"n"`
	Tools               []toolDef         `json:"tools"`
	ToolChoice          json.RawMessage   `json:"tool_choice"`
	ResponseFormat      *struct {
		Type string `json:"type"`
	} `json:"response_format"`
}

// ParseChatRequest reads a chat completions request: the model, whether it streams,
// and the parameters policy sees (never message content).
func ParseChatRequest(body []byte) (model string, stream bool, args map[string]any, err error) {
	r, err := parseChat(body)
	return r.Model, r.Stream, r.Args, err
}

func parseChat(body []byte) (request, error) {
	var cr chatRequest
	if err := decodeRequest(body, &cr); err != nil {
		return request{}, err
	}
	if cr.Model == "" {
		return request{}, vigil.Errorf(vigil.EINVALID, "field \"model\" is required")
	}
	if cr.Messages == nil {
		return request{}, vigil.Errorf(vigil.EINVALID, "field \"messages\" is required")
	}
	args := map[string]any{"model": cr.Model, "stream": cr.Stream, "messages": float64(len(cr.Messages))}
	setNum(args, "max_tokens", cr.MaxTokens)
	setNum(args, "max_completion_tokens", cr.MaxCompletionTokens)
	setNum(args, "temperature", cr.Temperature)
	setNum(args, "top_p", cr.TopP)
	setNum(args, "n", cr.N)
	setTools(args, cr.Tools)
	if tc := toolChoice(cr.ToolChoice); tc != "" {
		args["tool_choice"] = tc
	}
	if cr.ResponseFormat != nil && cr.ResponseFormat.Type != "" {
		args["response_format"] = cr.ResponseFormat.Type
	}
	req := request{Model: cr.Model, Stream: cr.Stream, Args: args}
	if cr.Stream && (cr.StreamOptions == nil || !cr.StreamOptions.IncludeUsage) {
		// Usage in a stream comes only when asked for: ask, and hide it from a client
		// that did not.
		req.patch = includeUsage
		req.stripUsage = true
	}
	return req, nil
}

// toolDef is a tool definition in any of the three APIs: OpenAI chat nests the name
// in "function"; Responses and Anthropic have it at the top; built-in tools have only
// a type.
type toolDef struct {
	Type     string `json:"type"`
	Name     string `json:"name"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

// setTools gives policy the names of the tools a request offers the model.
func setTools(args map[string]any, tools []toolDef) {
	if len(tools) == 0 {
		return
	}
	names := make([]any, 0, len(tools))
	for _, t := range tools {
		switch {
		case t.Function.Name != "":
			names = append(names, t.Function.Name)
		case t.Name != "":
			names = append(names, t.Name)
		default:
			names = append(names, t.Type)
		}
	}
	args["tools"] = names
}

func setNum(args map[string]any, k string, v *float64) {
	if v != nil {
		args[k] = *v
	}
}

// toolChoice is "auto", "none", "required" or the forced function's name.
func toolChoice(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Type     string `json:"type"`
		Name     string `json:"name"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &o) == nil {
		if o.Function.Name != "" {
			return o.Function.Name
		}
		if o.Name != "" {
			return o.Name
		}
		return o.Type
	}
	return ""
}

// includeUsage sets stream_options.include_usage in a chat request body, keeping
// every other byte: the member is inserted after the opening brace when absent.
func includeUsage(body []byte) []byte {
	o, err := parseObject(body)
	if err != nil {
		return body
	}
	if so, ok := o["stream_options"]; ok && string(bytes.TrimSpace(so)) != "null" {
		opts, err := parseObject(so)
		if err != nil {
			return body
		}
		opts["include_usage"] = json.RawMessage("true")
		o["stream_options"] = opts.bytes()
		return o.bytes()
	}
	if _, ok := o["stream_options"]; ok {
		o["stream_options"] = json.RawMessage(`{"include_usage":true}`)
		return o.bytes()
	}
	i := bytes.IndexByte(body, '{')
	out := make([]byte, 0, len(body)+40)
	out = append(out, body[:i+1]...)
	out = append(out, `"stream_options":{"include_usage":true}`...)
	if rest := bytes.TrimSpace(body[i+1:]); len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, body[i+1:]...)
}

// openAIRoute gives the OpenAI routes' dialects their pipeline source, the provider
// type they forward to and OpenAI's error shape.
type openAIRoute struct{}

func (openAIRoute) source() string       { return enforce.SourceOpenAI }
func (openAIRoute) providerType() string { return TypeOpenAI }
func (openAIRoute) render(w http.ResponseWriter, r *http.Request, status int, err error) {
	RenderOpenAIError(w, r, status, err)
}

// chatDialect is POST /v1/chat/completions.
type chatDialect struct{ openAIRoute }

func (chatDialect) parse(body []byte) (request, error) { return parseChat(body) }

// chatToolCall is a tool call in a chat completion message.
type chatToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type chatUsage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
}

// answer restores tokens in a chat completion, takes its usage and judges the tool
// calls in each choice. A removed call's explanation is added to the message's text
// content, and a choice left with no tool calls finishes with "stop" instead of
// "tool_calls", so the agent reads why instead of running the call.
func (chatDialect) answer(ctx context.Context, c *call, body []byte) ([]byte, error) {
	out, err := c.flight.Inbound(ctx, body)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Choices []struct {
			Message struct {
				ToolCalls []chatToolCall `json:"tool_calls"`
			} `json:"message"`
		} `json:"choices"`
		Usage *chatUsage `json:"usage"`
	}
	if json.Unmarshal(out, &resp) != nil {
		return out, nil // not a chat completion; pass it on as the provider sent it
	}
	if resp.Usage != nil {
		c.setUsage(resp.Usage.PromptTokens, resp.Usage.CompletionTokens)
	}
	judged := false
	for _, ch := range resp.Choices {
		if len(ch.Message.ToolCalls) > 0 {
			judged = true
		}
	}
	if !judged {
		return out, nil
	}
	top, err := parseObject(out)
	if err != nil {
		return out, nil
	}
	choices := top.objects("choices")
	changed := false
	for i, ch := range resp.Choices {
		if len(ch.Message.ToolCalls) == 0 {
			continue
		}
		msg := choices[i].child("message")
		var keep []json.RawMessage
		raws := msg.rawList("tool_calls")
		var notes []string
		for j, tc := range ch.Message.ToolCalls {
			v := c.judge(ctx, tc.Function.Name, argsJSON(json.RawMessage(tc.Function.Arguments)))
			switch {
			case !v.Allowed:
				notes = append(notes, v.Message)
				changed = true
			case v.Args != nil:
				t, _ := parseObject(raws[j])
				fn := t.child("function")
				fn.set("arguments", string(mustMarshal(v.Args)))
				t["function"] = fn.bytes()
				keep = append(keep, t.bytes())
				changed = true
			default:
				keep = append(keep, raws[j])
			}
		}
		if len(notes) == 0 && len(keep) == len(raws) {
			choices[i]["message"] = msg.bytes()
			continue
		}
		if len(keep) == 0 {
			delete(msg, "tool_calls")
			if choices[i].str("finish_reason") == "tool_calls" {
				choices[i].set("finish_reason", "stop")
			}
		} else {
			msg.set("tool_calls", keep)
		}
		if len(notes) > 0 {
			text := msg.str("content")
			if text != "" {
				text += "\n\n"
			}
			msg.set("content", text+strings.Join(notes, "\n"))
		}
		choices[i]["message"] = msg.bytes()
	}
	if !changed {
		return out, nil
	}
	top.set("choices", choices)
	return top.bytes(), nil
}

// rawList decodes the array member key into its raw elements.
func (o object) rawList(key string) []json.RawMessage {
	var out []json.RawMessage
	_ = json.Unmarshal(o[key], &out)
	return out
}

// embeddingsDialect is POST /v1/embeddings: the input is masked like any payload;
// the answer is vectors, so there is nothing to restore or judge, only usage.
type embeddingsDialect struct{ openAIRoute }

func (embeddingsDialect) parse(body []byte) (request, error) {
	var er struct {
		Model          string          `json:"model"`
		Input          json.RawMessage `json:"input"`
		Dimensions     *float64        `json:"dimensions"`
		EncodingFormat string          `json:"encoding_format"`
	}
	if err := decodeRequest(body, &er); err != nil {
		return request{}, err
	}
	if er.Model == "" {
		return request{}, vigil.Errorf(vigil.EINVALID, "field \"model\" is required")
	}
	if len(er.Input) == 0 {
		return request{}, vigil.Errorf(vigil.EINVALID, "field \"input\" is required")
	}
	args := map[string]any{"model": er.Model, "stream": false}
	inputs := 1.0
	if b := bytes.TrimSpace(er.Input); len(b) > 0 && b[0] == '[' {
		var list []json.RawMessage
		if json.Unmarshal(b, &list) == nil {
			inputs = float64(len(list))
		}
	}
	args["inputs"] = inputs
	setNum(args, "dimensions", er.Dimensions)
	if er.EncodingFormat != "" {
		args["encoding_format"] = er.EncodingFormat
	}
	return request{Model: er.Model, Args: args}, nil
}

func (embeddingsDialect) answer(_ context.Context, c *call, body []byte) ([]byte, error) {
	var resp struct {
		Usage *chatUsage `json:"usage"`
	}
	if json.Unmarshal(body, &resp) == nil && resp.Usage != nil {
		c.setUsage(resp.Usage.PromptTokens, 0)
	}
	return body, nil
}

func (embeddingsDialect) stream(c *call) eventFilter { return passFilter{} }

// passFilter passes events through (a stream where none was expected).
type passFilter struct{}

func (passFilter) event(_ context.Context, out []byte, ev *Event) ([]byte, error) {
	return ev.AppendTo(out), nil
}
func (passFilter) end(_ context.Context, out []byte) ([]byte, []byte) { return out, nil }
