package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

func runApprovals(ctx context.Context, env *Env, args []string) error {
	return dispatchVerbs(ctx, env, "approvals", "Review held agent calls through the admin API (needs a reviewer or admin VIGIL_TOKEN).", []verb{
		{"list", "list approval requests (pending by default)", approvalsList},
		{"get", "show one request with its context, arguments and votes", approvalsGet},
		{"approve", "approve a request (optionally with edited arguments)", approvalsDecide("approve")},
		{"deny", "deny a request, with a reason", approvalsDecide("deny")},
	}, args)
}

type approvalOut struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Source     string `json:"source"`
	Agent      string `json:"agent"`
	System     string `json:"system"`
	Tool       *struct{ Server, Name string }
	Model      *struct{ Name string }
	Args       map[string]any `json:"args"`
	Rules      []string       `json:"rules"`
	Message    string         `json:"message"`
	Spec       struct{ Approvers int }
	Votes      []struct{ Verdict string }
	ExpiresAt  time.Time `json:"expires_at"`
	DecidedBy  string    `json:"decided_by"`
	Reason     string    `json:"reason"`
	EditedArgs any       `json:"edited_args"`
}

func (a approvalOut) subject() string {
	switch {
	case a.Tool != nil && a.Tool.Server != "":
		return a.Tool.Server + "/" + a.Tool.Name
	case a.Tool != nil:
		return a.Tool.Name
	case a.Model != nil:
		return "model " + a.Model.Name
	}
	return "?"
}

func (a approvalOut) approvals() string {
	n := 0
	for _, v := range a.Votes {
		if v.Verdict == "approve" {
			n++
		}
	}
	return fmt.Sprintf("%d/%d", n, max(1, a.Spec.Approvers))
}

func approvalsList(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "approvals list", "[--status STATUS] [--agent AGENT] [--system SYSTEM] [--limit N]",
		"List approval requests, newest first. Pending ones by default; --status all lists every status.")
	status := fs.String("status", "pending", "pending, approved, denied, expired, cancelled or all")
	agent := fs.String("agent", "", "only requests of this `AGENT` (name or id)")
	system := fs.String("system", "", "only requests of this AI `SYSTEM` (name or id)")
	limit := fs.Int("limit", 50, "at most `N` requests")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	q := url.Values{}
	if *status != "all" {
		q.Set("status", *status)
	}
	if *agent != "" {
		q.Set("agent", *agent)
	}
	if *system != "" {
		q.Set("system", *system)
	}
	q.Set("limit", strconv.Itoa(*limit))
	var raw json.RawMessage
	if err := c.do(ctx, "GET", "/api/approvals?"+q.Encode(), nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, raw)
	}
	var out struct{ Approvals []approvalOut }
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := [][]string{}
	for _, a := range out.Approvals {
		when := a.ExpiresAt.Local().Format(time.DateTime)
		if a.Status == "pending" {
			when = "expires " + time.Until(a.ExpiresAt).Round(time.Second).String()
		}
		rows = append(rows, []string{a.ID, a.Status, a.Agent, a.System, a.subject(), strings.Join(a.Rules, ","), a.approvals(), when})
	}
	table(env.Stdout, []string{"ID", "STATUS", "AGENT", "SYSTEM", "ACTION", "RULES", "APPROVALS", "WHEN"}, rows)
	return nil
}

func approvalsGet(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "approvals get", "ID", "Show one approval request as JSON: its context, arguments, votes and outcome.")
	client, _ := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	id, err := oneArg(fs, env, "approval id")
	if err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, "GET", "/api/approvals/"+url.PathEscape(id), nil, &raw); err != nil {
		return err
	}
	return printJSON(env.Stdout, raw)
}

func approvalsDecide(action string) func(ctx context.Context, env *Env, args []string) error {
	return func(ctx context.Context, env *Env, args []string) error {
		usage, summary := "[--reason TEXT] [--args JSON] ID", "Approve a held call. With --args the call goes ahead with these arguments instead (recorded as an\nedited approval). Four-eyes rules need approvals from several different reviewers."
		if action == "deny" {
			usage, summary = "--reason TEXT ID", "Deny a held call. The reason is required: it goes to the ledger and back to the agent."
		}
		fs := newFlags(env, "approvals "+action, usage, summary)
		reason := fs.String("reason", "", "why (required to deny; recorded in the ledger)")
		var edited *string
		if action == "approve" {
			edited = fs.String("args", "", "edited arguments as a JSON object")
		}
		client, asJSON := clientFlags(fs, env)
		if err := parse(fs, env, args); err != nil {
			return err
		}
		id, err := oneArg(fs, env, "approval id")
		if err != nil {
			return err
		}
		body := map[string]any{"reason": *reason}
		if edited != nil && *edited != "" {
			var a map[string]any
			if err := json.Unmarshal([]byte(*edited), &a); err != nil || a == nil {
				fmt.Fprintf(env.Stderr, "vigil approvals approve: --args must be a JSON object\n")
				return errUsage
			}
			body["args"] = a
		}
		c, err := client()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := c.do(ctx, "POST", "/api/approvals/"+url.PathEscape(id)+"/"+action, body, &raw); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env.Stdout, raw)
		}
		var a approvalOut
		if err := json.Unmarshal(raw, &a); err != nil {
			return err
		}
		if a.Status == "pending" {
			fmt.Fprintf(env.Stdout, "Approval recorded; request %s still needs more approvals (%s).\n", a.ID, a.approvals())
			return nil
		}
		fmt.Fprintf(env.Stdout, "Request %s is %s: %s may%s %s.\n", a.ID, a.Status, a.Agent, map[bool]string{true: "", false: " not"}[a.Status == "approved"], a.subject())
		return nil
	}
}
