package mcpproxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The test binary doubles as an MCP server: run with MCPTEST_SERVER=stdio it serves
// over stdio, with MCPTEST_SERVER=http over streamable HTTP on MCPTEST_ADDR. It is a
// real server built with the official Go SDK, quick to start, and has tools to make
// it crash, report progress, ask the client for sampling and return personal data.
func TestMain(m *testing.M) {
	switch mode := os.Getenv("MCPTEST_SERVER"); mode {
	case "tasks", "tasks-http":
		runTaskServer(mode)
	case "stdio":
		if err := newTestServer().Run(context.Background(), &mcp.StdioTransport{}); err != nil {
			fmt.Fprintln(os.Stderr, "test server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	case "http":
		h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return newTestServer() },
			&mcp.StreamableHTTPOptions{Stateless: os.Getenv("MCPTEST_STATELESS") == "1"})
		if err := http.ListenAndServe(os.Getenv("MCPTEST_ADDR"), h); err != nil {
			fmt.Fprintln(os.Stderr, "test server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var objectSchema = json.RawMessage(`{"type":"object"}`)

func boolp(b bool) *bool { return &b }

func text(format string, args ...any) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf(format, args...)}}}
}

// newTestServer builds the server. MCPTEST_ECHO_DESC_FILE, when set, names a file
// holding the echo tool's description, so a test can change it between sessions (a
// rug pull).
func newTestServer() *mcp.Server {
	noop := func(context.Context, any) error { return nil }
	s := mcp.NewServer(&mcp.Implementation{Name: "vigil-test-server", Version: "1.0.0"},
		&mcp.ServerOptions{Instructions: "Test server for Vigil's MCP gateway.",
			SubscribeHandler:   func(ctx context.Context, r *mcp.SubscribeRequest) error { return noop(ctx, r) },
			UnsubscribeHandler: func(ctx context.Context, r *mcp.UnsubscribeRequest) error { return noop(ctx, r) }})
	echoDesc := "Echoes back the input"
	if f := os.Getenv("MCPTEST_ECHO_DESC_FILE"); f != "" {
		if b, err := os.ReadFile(f); err == nil {
			echoDesc = string(b)
		}
	}
	readOnly := &mcp.ToolAnnotations{ReadOnlyHint: true, DestructiveHint: boolp(false), IdempotentHint: true, OpenWorldHint: boolp(false)}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: echoDesc, Annotations: readOnly},
		func(ctx context.Context, req *mcp.CallToolRequest, in struct {
			Message string `json:"message"`
		}) (*mcp.CallToolResult, any, error) {
			return text("Echo: %s", in.Message), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "add", Description: "Adds two numbers", Annotations: readOnly},
		func(ctx context.Context, req *mcp.CallToolRequest, in struct {
			A float64 `json:"a"`
			B float64 `json:"b"`
		}) (*mcp.CallToolResult, any, error) {
			return text("%g", in.A+in.B), nil, nil
		})
	// No annotations: MCP's defaults make it destructive.
	s.AddTool(&mcp.Tool{Name: "delete_everything", Description: "Deletes everything", InputSchema: objectSchema},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text("deleted"), nil
		})
	s.AddTool(&mcp.Tool{Name: "whoami", Description: "Returns the user's contact details", InputSchema: objectSchema, Annotations: readOnly},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text("You are Alice, alice.smith@example.com"), nil
		})
	s.AddTool(&mcp.Tool{Name: "pid", Description: "Returns the server's process id", InputSchema: objectSchema, Annotations: readOnly},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text("%d", os.Getpid()), nil
		})
	s.AddTool(&mcp.Tool{Name: "crash", Description: "Exits the server process mid-call", InputSchema: objectSchema},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			os.Exit(3)
			return nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "slow", Description: "Reports progress, then answers", Annotations: readOnly},
		func(ctx context.Context, req *mcp.CallToolRequest, in struct {
			Steps int `json:"steps"`
			MS    int `json:"ms"`
		}) (*mcp.CallToolResult, any, error) {
			tok := req.Params.GetProgressToken()
			for i := 1; i <= in.Steps; i++ {
				select {
				case <-time.After(time.Duration(in.MS) * time.Millisecond):
				case <-ctx.Done():
					return nil, nil, ctx.Err()
				}
				if tok != nil {
					req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i), Total: float64(in.Steps)})
				}
			}
			return text("done after %d steps", in.Steps), nil, nil
		})
	s.AddTool(&mcp.Tool{Name: "ask_model", Description: "Asks the client's model (sampling)", InputSchema: objectSchema, Annotations: readOnly},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{MaxTokens: 10,
				Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "say hi to alice.smith@example.com"}}}})
			if err != nil {
				return nil, err
			}
			t, _ := res.Content.(*mcp.TextContent)
			if t == nil {
				return text("no text"), nil
			}
			// The count of @ tells the test what the server received, whatever the
			// masking of this result on its way back.
			return text("model said: %s (%d @)", t.Text, strings.Count(t.Text, "@")), nil
		})
	s.AddTool(&mcp.Tool{Name: "ask_user", Description: "Asks the client's user (elicitation)", InputSchema: objectSchema, Annotations: readOnly},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "Where should we write to alice.smith@example.com?",
				RequestedSchema: json.RawMessage(`{"type":"object","properties":{"email":{"type":"string"}}}`)})
			if err != nil {
				return nil, err
			}
			return text("user chose %s (%d @)", res.Action, strings.Count(fmt.Sprint(res.Content), "@")), nil
		})
	// The 2026-07-28 way to ask: an input_required result, answered on a retry of
	// the call with inputResponses.
	s.AddTool(&mcp.Tool{Name: "ask_user_mrtr", Description: "Asks the client's user with an input_required result", InputSchema: objectSchema, Annotations: readOnly},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if r, ok := req.Params.InputResponses["where"].(*mcp.ElicitResult); ok {
				return text("user chose %s (%d @)", r.Action, strings.Count(fmt.Sprint(r.Content), "@")), nil
			}
			return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"where": &mcp.ElicitParams{
				Message:         "Where should we write to alice.smith@example.com?",
				RequestedSchema: json.RawMessage(`{"type":"object","properties":{"email":{"type":"string"}}}`),
			}}}, nil
		})
	s.AddTool(&mcp.Tool{Name: "add_tool", Description: "Adds a tool named new_<n> (list_changed)", InputSchema: objectSchema},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			name := "new_" + strconv.Itoa(int(time.Now().UnixNano()%1000))
			s.AddTool(&mcp.Tool{Name: name, Description: "added later", InputSchema: objectSchema},
				func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) { return text("new"), nil })
			return text("%s", name), nil
		})
	s.AddTool(&mcp.Tool{Name: "header", Description: "Returns the X-Upstream-Auth header the server received", InputSchema: objectSchema, Annotations: readOnly},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if req.Extra == nil || req.Extra.Header == nil {
				return text("no headers (stdio)"), nil
			}
			return text("%s", req.Extra.Header.Get("X-Upstream-Auth")), nil
		})
	// log and touch exercise session state: a log message reaches only a client that
	// set a level, a resource update only a client subscribed to the resource.
	s.AddTool(&mcp.Tool{Name: "log", Description: "Logs at info level", InputSchema: objectSchema, Annotations: readOnly},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "info", Logger: "test", Data: "logged"})
			return text("ok"), nil
		})
	s.AddTool(&mcp.Tool{Name: "touch", Description: "Announces that test://contact changed", InputSchema: objectSchema, Annotations: readOnly},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			s.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: "test://contact"})
			return text("ok"), nil
		})
	// route mirrors arguments into Mcp-Param-* headers (x-mcp-header, 2026-07-28); a
	// stateless HTTP server of the SDK refuses a call whose headers don't match its
	// arguments. It answers with the headers it received.
	s.AddTool(&mcp.Tool{Name: "route", Description: "Routes a ticket", Annotations: readOnly, InputSchema: json.RawMessage(`{"type":"object","properties":{
		"owner":{"type":"string","x-mcp-header":"Owner"},
		"where":{"type":"object","properties":{"city":{"type":"string","x-mcp-header":"City"}}},
		"priority":{"type":"integer","x-mcp-header":"Priority"},
		"note":{"type":"string"}}}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if req.Extra == nil || req.Extra.Header == nil {
				return text("no headers (stdio)"), nil
			}
			h := req.Extra.Header
			return text("owner=%s city=%s priority=%s", h.Get("Mcp-Param-Owner"), h.Get("Mcp-Param-City"), h.Get("Mcp-Param-Priority")), nil
		})
	s.AddPrompt(&mcp.Prompt{Name: "greet", Description: "Greets someone", Arguments: []*mcp.PromptArgument{{Name: "name", Required: true}}},
		func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "Say hello to " + req.Params.Arguments["name"]}}}}, nil
		})
	s.AddResource(&mcp.Resource{URI: "test://contact", Name: "contact", MIMEType: "text/plain"},
		func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: "Write to bob@example.org"}}}, nil
		})
	// Servers put what they failed on into their error messages.
	s.AddResource(&mcp.Resource{URI: "test://account", Name: "account", MIMEType: "text/plain"},
		func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return nil, &jsonrpc.Error{Code: -32002, Message: "no account for erin.jones@example.com", Data: json.RawMessage(`{"email":"erin.jones@example.com"}`)}
		})
	return s
}
