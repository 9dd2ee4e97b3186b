package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"
)

func runMCP(ctx context.Context, env *Env, args []string) error {
	return dispatchAPI(ctx, env, "mcp", "Review the MCP gateway's pinned tool definitions and open sessions through the admin API (needs VIGIL_TOKEN).", args,
		mcpTools(), mcpShow(), mcpApprove(), mcpSessions())
}

// mcpVersion and mcpPin mirror the API's pin view.
type mcpVersion struct {
	Hash       string          `json:"hash"`
	Definition json.RawMessage `json:"definition"`
	SeenAt     time.Time       `json:"seen_at"`
}

type mcpPin struct {
	Server     string      `json:"server"`
	Tool       string      `json:"tool"`
	Status     string      `json:"status"`
	Approved   mcpVersion  `json:"approved"`
	ApprovedBy string      `json:"approved_by"`
	ApprovedAt time.Time   `json:"approved_at"`
	Pending    *mcpVersion `json:"pending"`
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

func mcpTools() apiCommand {
	var changed bool
	return apiCommand{
		name:  "mcp tools",
		brief: "list pinned tools (of one SERVER); --changed shows those awaiting approval",
		usage: "[--changed] [SERVER]",
		help:  "List the tools Vigil has pinned. A tool whose server changed its definition (name, title, description,\nschemas or annotations) is \"changed\": in pin mode agents don't see it until an admin approves the new version.",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&changed, "changed", false, "only tools whose new definition awaits approval")
		},
		check: func(in *invocation) error {
			if len(in.args) > 1 {
				return in.complain("want at most one SERVER")
			}
			return nil
		},
		request: func(in *invocation) (apiRequest, error) {
			q := url.Values{}
			if len(in.args) == 1 {
				q.Set("server", in.args[0])
			}
			if changed {
				q.Set("status", "changed")
			}
			path := apiPath("mcp", "tools")
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			return apiRequest{method: "GET", path: path}, nil
		},
		show: decoded(func(w io.Writer, _ []string, out struct{ Tools []mcpPin }) {
			rows := [][]string{}
			for _, p := range out.Tools {
				pending, by := "", p.ApprovedBy
				if p.Pending != nil {
					pending = short(p.Pending.Hash)
				}
				if by == "" {
					by = "(first seen)"
				}
				rows = append(rows, []string{p.Server, p.Tool, p.Status, short(p.Approved.Hash), pending, by})
			}
			table(w, []string{"SERVER", "TOOL", "STATUS", "APPROVED", "PENDING", "APPROVED BY"}, rows)
		}),
	}
}

// serverTool is the SERVER TOOL argument pair of mcp show and mcp approve.
var serverTool = &positional{2, "SERVER TOOL"}

func mcpShow() apiCommand {
	return apiCommand{
		name:  "mcp show",
		brief: "show a tool's approved and pending definitions",
		usage: "SERVER TOOL",
		help:  "Show a pinned tool: the approved definition and, when the server changed it, the pending one.",
		args:  serverTool,
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "GET", path: apiPath("mcp", "tools", in.args[0], in.args[1])}, nil
		},
		show: decoded(func(w io.Writer, _ []string, p mcpPin) {
			fmt.Fprintf(w, "%s/%s: %s\n\napproved %s (%s):\n", p.Server, p.Tool, p.Status, p.Approved.Hash, p.Approved.SeenAt.Format(time.RFC3339))
			printJSON(w, p.Approved.Definition)
			if p.Pending != nil {
				fmt.Fprintf(w, "\npending %s (seen %s):\n", p.Pending.Hash, p.Pending.SeenAt.Format(time.RFC3339))
				printJSON(w, p.Pending.Definition)
				fmt.Fprintf(w, "\nApprove it with: vigil mcp approve %s %s --hash %s\n", p.Server, p.Tool, p.Pending.Hash)
			}
		}),
	}
}

func mcpApprove() apiCommand {
	var hash string
	return apiCommand{
		name:  "mcp approve",
		brief: "approve a changed tool's new definition, so agents see it again",
		usage: "SERVER TOOL [--hash HASH]",
		help:  "Approve a changed tool's pending definition: agents see and may call it again, and the approval is recorded.\nWithout --hash the pending version is looked up and approved; with it, only that version is (safe when\nthe server might change the tool again meanwhile).",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&hash, "hash", "", "the pending definition's `HASH` (vigil mcp show prints it)")
		},
		args: serverTool,
		request: func(in *invocation) (apiRequest, error) {
			server, tool := in.args[0], in.args[1]
			path := apiPath("mcp", "tools", server, tool)
			if hash == "" {
				var p mcpPin
				if err := in.client.do(in.ctx, "GET", path, nil, &p); err != nil {
					return apiRequest{}, err
				}
				if p.Pending == nil {
					return apiRequest{}, fmt.Errorf("tool %s/%s has no pending definition: nothing to approve", server, tool)
				}
				hash = p.Pending.Hash
			}
			return apiRequest{method: "POST", path: path + "/approve", body: map[string]string{"hash": hash}}, nil
		},
		show: func(w io.Writer, args []string, _ json.RawMessage) error {
			fmt.Fprintf(w, "Approved %s/%s at %s.\n", args[0], args[1], short(hash))
			return nil
		},
	}
}

// mcpSessionList is the answer of GET /api/mcp/sessions.
type mcpSessionList struct {
	Sessions []struct {
		ID       string    `json:"id"`
		Server   string    `json:"server"`
		Agent    string    `json:"agent"`
		Protocol string    `json:"protocol"`
		Calls    int       `json:"calls_in_flight"`
		PID      int       `json:"pid"`
		Restarts int       `json:"restarts"`
		Created  time.Time `json:"created"`
	}
}

func mcpSessions() apiCommand {
	return apiCommand{
		name:  "mcp sessions",
		brief: "list open MCP sessions",
		help:  "List the open MCP sessions: server, agent, protocol, calls in flight, server process.",
		request: func(*invocation) (apiRequest, error) {
			return apiRequest{method: "GET", path: apiPath("mcp", "sessions")}, nil
		},
		show: decoded(func(w io.Writer, _ []string, out mcpSessionList) {
			rows := [][]string{}
			for _, s := range out.Sessions {
				rows = append(rows, []string{s.ID, s.Server, s.Agent, s.Protocol, fmt.Sprint(s.Calls), fmt.Sprint(s.PID), fmt.Sprint(s.Restarts), s.Created.Format(time.RFC3339)})
			}
			table(w, []string{"SESSION", "SERVER", "AGENT", "PROTOCOL", "CALLS", "PID", "RESTARTS", "SINCE"}, rows)
		}),
	}
}
