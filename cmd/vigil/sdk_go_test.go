package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
)

// TestOpenAIGoSDK drives the gateway with the official Go SDK (github.com/openai/openai-go):
// plain and streamed chat, tool calls allowed, denied-and-explained and held-then-
// approved (by a reviewer through the admin API) and held-then-denied, a provider 429
// and a policy denial in the SDK's own error type. Each case
// checks what the provider received (masked) and what the client got (restored), and
// the ledger holds both sides and verifies at the end.
func TestOpenAIGoSDK(t *testing.T) {
	r := newLLMRig(t)
	ctx := context.Background()
	client := openai.NewClient(option.WithBaseURL(r.url+"/v1"), option.WithAPIKey(r.agentKey), option.WithMaxRetries(0))
	const email = "ana.lopez@example.com"
	user := func(s string) openai.ChatCompletionNewParams {
		return openai.ChatCompletionNewParams{Model: "fake-gpt", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(s)},
			Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: "send_email"})}}
	}
	masked := func(t *testing.T) {
		t.Helper()
		if got := r.received(); strings.Contains(got, email) {
			t.Errorf("the provider received the address: %s", got)
		}
	}

	t.Run("chat", func(t *testing.T) {
		c, err := client.Chat.Completions.New(ctx, user("Write to "+email))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := c.Choices[0].Message.Content, "You said: Write to "+email; got != want {
			t.Errorf("content %q, want %q", got, want)
		}
		if c.Usage.PromptTokens == 0 {
			t.Errorf("usage %+v", c.Usage)
		}
		masked(t)
	})

	t.Run("chat stream", func(t *testing.T) {
		stream := client.Chat.Completions.NewStreaming(ctx, user("Stream to "+email))
		acc := openai.ChatCompletionAccumulator{}
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if got, want := acc.Choices[0].Message.Content, "You said: Stream to "+email; got != want {
			t.Errorf("content %q, want %q", got, want)
		}
		masked(t)
	})

	for _, tc := range []struct {
		tool    string
		allowed bool
		note    string
	}{
		{"send_email", true, ""},
		{"deny_wire_transfer", false, "Vigil removed the call to deny_wire_transfer: this tool is not allowed here (rule no-deny-tools)"},
		{"hold_wire", false, "Vigil removed the call to hold_wire: a reviewer denied this call: not today"},
		{"hold_ok_refund", true, ""},
	} {
		for _, streamed := range []bool{false, true} {
			name := tc.tool
			if streamed {
				name += " stream"
			}
			t.Run(name, func(t *testing.T) {
				p := user(`call tool ` + tc.tool + ` with {"to":"` + email + `"}`)
				var msg openai.ChatCompletionMessage
				var finish string
				if streamed {
					stream := client.Chat.Completions.NewStreaming(ctx, p)
					acc := openai.ChatCompletionAccumulator{}
					for stream.Next() {
						acc.AddChunk(stream.Current())
					}
					if err := stream.Err(); err != nil {
						t.Fatal(err)
					}
					msg, finish = acc.Choices[0].Message, acc.Choices[0].FinishReason
				} else {
					c, err := client.Chat.Completions.New(ctx, p)
					if err != nil {
						t.Fatal(err)
					}
					msg, finish = c.Choices[0].Message, c.Choices[0].FinishReason
				}
				if !tc.allowed {
					if len(msg.ToolCalls) != 0 || !strings.Contains(msg.Content, tc.note) || finish != "stop" {
						t.Errorf("message %+v finish %q; want the call removed and explained", msg, finish)
					}
					return
				}
				if len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Function.Name != tc.tool || finish != "tool_calls" {
					t.Fatalf("message %+v finish %q; want the call to %s", msg, finish, tc.tool)
				}
				var args map[string]string
				if err := json.Unmarshal([]byte(msg.ToolCalls[0].Function.Arguments), &args); err != nil || args["to"] != email {
					t.Errorf("arguments %q; want the restored address", msg.ToolCalls[0].Function.Arguments)
				}
				masked(t)
			})
		}
	}

	t.Run("responses tool call", func(t *testing.T) {
		resp, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: "fake-gpt",
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(`call tool deny_delete with {"who":"` + email + `"}`)}})
		if err != nil {
			t.Fatal(err)
		}
		if out := resp.OutputText(); !strings.Contains(out, "Vigil removed the call to deny_delete") {
			t.Errorf("output text %q; want the explanation", out)
		}
	})

	t.Run("provider 429", func(t *testing.T) {
		var raw *http.Response
		_, err := client.Chat.Completions.New(ctx, user("error 429"), option.WithResponseInto(&raw))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Type != "rate_limit_error" || !strings.Contains(apiErr.Message, "retry after 7 seconds") {
			t.Fatalf("error %v; want a 429 openai.Error", err)
		}
		if got := apiErr.Response.Header.Get("Retry-After"); got != "7" {
			t.Errorf("Retry-After %q, want 7", got)
		}
	})

	t.Run("policy denial", func(t *testing.T) {
		p := user("hi")
		p.Model = "deny-gpt"
		_, err := client.Chat.Completions.New(ctx, p)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 || apiErr.Code != "policy_denied" || !strings.Contains(apiErr.Message, "this model is not allowed here") {
			t.Fatalf("error %v; want a 403 openai.Error naming the rule's message", err)
		}
	})

	envs := ledgerEntries(t, r.m)
	if reqs, resps := ofType(envs, "model.request"), ofType(envs, "model.response"); len(reqs) < 10 || len(resps) < 9 {
		t.Errorf("ledger has %d requests and %d responses", len(reqs), len(resps))
	}
	decided := map[string]string{}
	for _, e := range ofType(envs, "decision") {
		decided[e.Attrs["tool"]] = e.Decision
	}
	if decided["send_email"] != "allow" || decided["deny_wire_transfer"] != "deny" || decided["hold_ok_refund"] != "allow" || decided["hold_wire"] != "deny" || decided["deny_delete"] != "deny" {
		t.Errorf("tool decisions in the ledger: %v", decided)
	}
}
