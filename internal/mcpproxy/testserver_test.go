package mcpproxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

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
	s := mcp.NewServer(&mcp.Implementation{Name: "vigil-test-server", Version: "1.0.0"},
		&mcp.ServerOptions{Instructions: "Test server for Vigil's MCP gateway."})
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
				Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "say hi"}}}})
			if err != nil {
				return nil, err
			}
			t, _ := res.Content.(*mcp.TextContent)
			if t == nil {
				return text("no text"), nil
			}
			return text("model said: %s", t.Text), nil
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
	s.AddPrompt(&mcp.Prompt{Name: "greet", Description: "Greets someone", Arguments: []*mcp.PromptArgument{{Name: "name", Required: true}}},
		func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "Say hello to " + req.Params.Arguments["name"]}}}}, nil
		})
	s.AddResource(&mcp.Resource{URI: "test://contact", Name: "contact", MIMEType: "text/plain"},
		func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: "Write to bob@example.org"}}}, nil
		})
	return s
}
