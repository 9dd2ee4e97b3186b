package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

func runApprovals(ctx context.Context, env *Env, args []string) error {
	return dispatchAPI(ctx, env, "approvals", "Review held agent calls through the admin API (needs a reviewer or admin VIGIL_TOKEN).", args,
		approvalsList(), approvalsGet(), approvalsApprove(), approvalsDeny())
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

func approvalsList() apiCommand {
	var status, agent, system string
	var limit int
	return apiCommand{
		name:  "approvals list",
		brief: "list approval requests (pending by default)",
		usage: "[--status STATUS] [--agent AGENT] [--system SYSTEM] [--limit N]",
		help:  "List approval requests, newest first. Pending ones by default; --status all lists every status.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&status, "status", "pending", "pending, approved, denied, expired, cancelled or all")
			fs.StringVar(&agent, "agent", "", "only requests of this `AGENT` (name or id)")
			fs.StringVar(&system, "system", "", "only requests of this AI `SYSTEM` (name or id)")
			fs.IntVar(&limit, "limit", 50, "at most `N` requests")
		},
		request: func(*invocation) (apiRequest, error) {
			q := url.Values{}
			if status != "all" {
				q.Set("status", status)
			}
			if agent != "" {
				q.Set("agent", agent)
			}
			if system != "" {
				q.Set("system", system)
			}
			q.Set("limit", strconv.Itoa(limit))
			return apiRequest{method: "GET", path: apiPath("approvals") + "?" + q.Encode()}, nil
		},
		show: decoded(func(w io.Writer, _ []string, out struct{ Approvals []approvalOut }) {
			rows := [][]string{}
			for _, a := range out.Approvals {
				when := a.ExpiresAt.Local().Format(time.DateTime)
				if a.Status == "pending" {
					when = "expires " + time.Until(a.ExpiresAt).Round(time.Second).String()
				}
				rows = append(rows, []string{a.ID, a.Status, a.Agent, a.System, a.subject(), strings.Join(a.Rules, ","), a.approvals(), when})
			}
			table(w, []string{"ID", "STATUS", "AGENT", "SYSTEM", "ACTION", "RULES", "APPROVALS", "WHEN"}, rows)
		}),
	}
}

func approvalsGet() apiCommand {
	return apiCommand{
		name:  "approvals get",
		brief: "show one request with its context, arguments and votes",
		usage: "ID",
		help:  "Show one approval request as JSON: its context, arguments, votes and outcome.",
		args:  one("approval id"),
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "GET", path: apiPath("approvals", in.args[0])}, nil
		},
	}
}

func approvalsApprove() apiCommand {
	var reason, edited string
	var editedArgs map[string]any
	return apiCommand{
		name:  "approvals approve",
		brief: "approve a request (optionally with edited arguments)",
		usage: "[--reason TEXT] [--args JSON] ID",
		help:  "Approve a held call. With --args the call goes ahead with these arguments instead (recorded as an\nedited approval). Four-eyes rules need approvals from several different reviewers.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&reason, "reason", "", approvalReasonUsage)
			fs.StringVar(&edited, "args", "", "edited arguments as a JSON object")
		},
		args: one("approval id"),
		check: func(in *invocation) error {
			if edited == "" {
				return nil
			}
			if err := json.Unmarshal([]byte(edited), &editedArgs); err != nil || editedArgs == nil {
				return in.complain("--args must be a JSON object")
			}
			return nil
		},
		request: func(in *invocation) (apiRequest, error) {
			body := map[string]any{"reason": reason}
			if editedArgs != nil {
				body["args"] = editedArgs
			}
			return apiRequest{method: "POST", path: apiPath("approvals", in.args[0], "approve"), body: body}, nil
		},
		show: decoded(showDecision),
	}
}

func approvalsDeny() apiCommand {
	var reason string
	return apiCommand{
		name:  "approvals deny",
		brief: "deny a request, with a reason",
		usage: "--reason TEXT ID",
		help:  "Deny a held call. The reason is required: it goes to the ledger and back to the agent.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&reason, "reason", "", approvalReasonUsage)
		},
		args: one("approval id"),
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "POST", path: apiPath("approvals", in.args[0], "deny"), body: map[string]any{"reason": reason}}, nil
		},
		show: decoded(showDecision),
	}
}

const approvalReasonUsage = "why (required to deny; recorded in the ledger)"

// showDecision prints the state of a request after a reviewer's decision.
func showDecision(w io.Writer, _ []string, a approvalOut) {
	if a.Status == "pending" {
		fmt.Fprintf(w, "Approval recorded; request %s still needs more approvals (%s).\n", a.ID, a.approvals())
		return
	}
	fmt.Fprintf(w, "Request %s is %s: %s may%s %s.\n", a.ID, a.Status, a.Agent, map[bool]string{true: "", false: " not"}[a.Status == "approved"], a.subject())
}
