package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"time"
)

func runMCP(ctx context.Context, env *Env, args []string) error {
	return dispatchVerbs(ctx, env, "mcp", "Review the MCP gateway's pinned tool definitions and open sessions through the admin API (needs VIGIL_TOKEN).", []verb{
		{"tools", "list pinned tools (of one SERVER); --changed shows those awaiting approval", mcpTools},
		{"show", "show a tool's approved and pending definitions", mcpShow},
		{"approve", "approve a changed tool's new definition, so agents see it again", mcpApprove},
		{"sessions", "list open MCP sessions", mcpSessions},
	}, args)
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

func mcpTools(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "mcp tools", "[--changed] [SERVER]",
		"List the tools Vigil has pinned. A tool whose server changed its definition (name, title, description,\nschemas or annotations) is \"changed\": in pin mode agents don't see it until an admin approves the new version.")
	changed := fs.Bool("changed", false, "only tools whose new definition awaits approval")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(env.Stderr, "vigil mcp tools: want at most one SERVER")
		return errUsage
	}
	c, err := client()
	if err != nil {
		return err
	}
	q := url.Values{}
	if fs.NArg() == 1 {
		q.Set("server", fs.Arg(0))
	}
	if *changed {
		q.Set("status", "changed")
	}
	path := "/api/mcp/tools"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var raw json.RawMessage
	if err := c.do(ctx, "GET", path, nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, raw)
	}
	var out struct{ Tools []mcpPin }
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
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
	table(env.Stdout, []string{"SERVER", "TOOL", "STATUS", "APPROVED", "PENDING", "APPROVED BY"}, rows)
	return nil
}

func mcpShow(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "mcp show", "SERVER TOOL", "Show a pinned tool: the approved definition and, when the server changed it, the pending one.")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	server, tool, err := twoArgs(fs, env)
	if err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, "GET", "/api/mcp/tools/"+url.PathEscape(server)+"/"+url.PathEscape(tool), nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, raw)
	}
	var p mcpPin
	if err := json.Unmarshal(raw, &p); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s/%s: %s\n\napproved %s (%s):\n", p.Server, p.Tool, p.Status, p.Approved.Hash, p.Approved.SeenAt.Format(time.RFC3339))
	printJSON(env.Stdout, p.Approved.Definition)
	if p.Pending != nil {
		fmt.Fprintf(env.Stdout, "\npending %s (seen %s):\n", p.Pending.Hash, p.Pending.SeenAt.Format(time.RFC3339))
		printJSON(env.Stdout, p.Pending.Definition)
		fmt.Fprintf(env.Stdout, "\nApprove it with: vigil mcp approve %s %s --hash %s\n", p.Server, p.Tool, p.Pending.Hash)
	}
	return nil
}

func mcpApprove(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "mcp approve", "SERVER TOOL [--hash HASH]",
		"Approve a changed tool's pending definition: agents see and may call it again, and the approval is recorded.\nWithout --hash the pending version is looked up and approved; with it, only that version is (safe when\nthe server might change the tool again meanwhile).")
	hash := fs.String("hash", "", "the pending definition's `HASH` (vigil mcp show prints it)")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	server, tool, err := twoArgs(fs, env)
	if err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	path := "/api/mcp/tools/" + url.PathEscape(server) + "/" + url.PathEscape(tool)
	if *hash == "" {
		var p mcpPin
		if err := c.do(ctx, "GET", path, nil, &p); err != nil {
			return err
		}
		if p.Pending == nil {
			return fmt.Errorf("tool %s/%s has no pending definition: nothing to approve", server, tool)
		}
		*hash = p.Pending.Hash
	}
	var raw json.RawMessage
	if err := c.do(ctx, "POST", path+"/approve", map[string]string{"hash": *hash}, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, raw)
	}
	fmt.Fprintf(env.Stdout, "approved %s/%s at %s\n", server, tool, short(*hash))
	return nil
}

func mcpSessions(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "mcp sessions", "", "List the open MCP sessions: server, agent, protocol, calls in flight, server process.")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, "GET", "/api/mcp/sessions", nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, raw)
	}
	var out struct {
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
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := [][]string{}
	for _, s := range out.Sessions {
		rows = append(rows, []string{s.ID, s.Server, s.Agent, s.Protocol, fmt.Sprint(s.Calls), fmt.Sprint(s.PID), fmt.Sprint(s.Restarts), s.Created.Format(time.RFC3339)})
	}
	table(env.Stdout, []string{"SESSION", "SERVER", "AGENT", "PROTOCOL", "CALLS", "PID", "RESTARTS", "SINCE"}, rows)
	return nil
}

// twoArgs checks that exactly SERVER and TOOL were given.
func twoArgs(fs *flag.FlagSet, env *Env) (string, string, error) {
	if fs.NArg() != 2 {
		fmt.Fprintf(env.Stderr, "%s: want SERVER TOOL\n", fs.Name())
		fs.Usage()
		return "", "", errUsage
	}
	return fs.Arg(0), fs.Arg(1), nil
}
