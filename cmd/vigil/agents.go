package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"
)

func runAgents(ctx context.Context, env *Env, args []string) error {
	return dispatchAPI(ctx, env, "agents", "Manage AI agents and their API keys through the admin API (needs VIGIL_TOKEN).", args,
		agentsCreate(), agentsList(), agentsGet(), agentsSuspend(), agentsResume(), agentsRotate(), agentsKeys(), agentsRevokeKey())
}

// labelFlag collects repeated --label key=value flags.
type labelFlag map[string]string

func (l labelFlag) String() string { return "" }

func (l labelFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("label %q must be key=value", s)
	}
	l[k] = v
	return nil
}

type agentOut struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	System          string            `json:"system"`
	Owner           string            `json:"owner"`
	Labels          map[string]string `json:"labels"`
	Status          string            `json:"status"`
	SuspendedReason string            `json:"suspended_reason"`
	SuspendedBy     string            `json:"suspended_by"`
	APIKey          string            `json:"api_key"`
	CreatedAt       time.Time         `json:"created_at"`
}

func agentsCreate() apiCommand {
	var system, owner string
	labels := labelFlag{}
	return apiCommand{
		name:  "agents create",
		brief: "register an agent and print its API key (once)",
		usage: "--system SYSTEM [--owner WHO] [--label k=v]... NAME",
		help:  "Register an agent of an AI system and print its API key. The key is shown once and stored only as a hash.\nAn unknown system name registers that system, marked incomplete until its owner and purpose are set.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&system, "system", "", "the AI `SYSTEM` the agent acts for (name or id; required)")
			fs.StringVar(&owner, "owner", "", "the person or team accountable for the agent")
			fs.Var(labels, "label", "a `key=value` label for policy (repeatable)")
		},
		args: one("agent name"),
		check: func(in *invocation) error {
			if system == "" {
				return in.complain("--system is required: every agent acts for an AI system")
			}
			return nil
		},
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "POST", path: apiPath("agents"), body: map[string]any{"name": in.args[0], "system": system, "owner": owner, "labels": map[string]string(labels)}}, nil
		},
		show: decoded(func(w io.Writer, _ []string, a agentOut) {
			fmt.Fprintf(w, "Created agent %s (id %s) for system %s.\n\nAPI key (shown once; store it now):\n  %s\n", a.Name, a.ID, a.System, a.APIKey)
		}),
	}
}

func agentsList() apiCommand {
	var system string
	return apiCommand{
		name:  "agents list",
		brief: "list agents",
		usage: "[--system SYSTEM]",
		help:  "List agents, optionally of one system.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&system, "system", "", "only agents of this `SYSTEM`")
		},
		request: func(*invocation) (apiRequest, error) {
			path := apiPath("agents")
			if system != "" {
				path += "?system=" + url.QueryEscape(system)
			}
			return apiRequest{method: "GET", path: path}, nil
		},
		show: decoded(func(w io.Writer, _ []string, out struct{ Agents []agentOut }) {
			rows := [][]string{}
			for _, a := range out.Agents {
				rows = append(rows, []string{a.Name, a.System, a.Status, a.Owner, fmtLabels(a.Labels), a.ID})
			}
			table(w, []string{"NAME", "SYSTEM", "STATUS", "OWNER", "LABELS", "ID"}, rows)
		}),
	}
}

func fmtLabels(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ",")
}

func agentsGet() apiCommand {
	return apiCommand{
		name:  "agents get",
		brief: "show one agent",
		usage: "NAME|ID",
		help:  "Show one agent as JSON.",
		args:  one("agent name or id"),
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "GET", path: apiPath("agents", in.args[0])}, nil
		},
	}
}

func agentsSuspend() apiCommand {
	var reason string
	return apiCommand{
		name:  "agents suspend",
		brief: "kill switch: refuse the agent's calls until resumed",
		usage: "--reason TEXT NAME|ID",
		help:  "Suspend an agent at once (kill switch): its calls are refused with the reason until it is resumed.\nWho, when and why go to the ledger.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&reason, "reason", "", "why (required; shown to the agent and recorded)")
		},
		args: one("agent name or id"),
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "POST", path: apiPath("agents", in.args[0], "suspend"), body: map[string]string{"reason": reason}}, nil
		},
		show: decoded(showAgentStatus),
	}
}

func agentsResume() apiCommand {
	return apiCommand{
		name:  "agents resume",
		brief: "let a suspended agent act again",
		usage: "NAME|ID",
		help:  "Resume a suspended agent.",
		args:  one("agent name or id"),
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "POST", path: apiPath("agents", in.args[0], "resume")}, nil
		},
		show: decoded(showAgentStatus),
	}
}

func showAgentStatus(w io.Writer, _ []string, a agentOut) {
	fmt.Fprintf(w, "Agent %s is %s.\n", a.Name, a.Status)
}

func agentsRotate() apiCommand {
	var grace time.Duration
	return apiCommand{
		name:  "agents rotate",
		brief: "issue a new API key and retire the old ones",
		usage: "[--grace DURATION] NAME|ID",
		help:  "Issue a new API key for an agent and retire its other keys, at once or after a grace period.",
		flags: func(fs *flag.FlagSet) {
			fs.DurationVar(&grace, "grace", 0, "how long the old keys keep working (e.g. 1h); default: retired at once")
		},
		args: one("agent name or id"),
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "POST", path: apiPath("agents", in.args[0], "rotate"), body: map[string]string{"grace": grace.String()}}, nil
		},
		show: decoded(func(w io.Writer, args []string, k struct {
			ID     string `json:"id"`
			APIKey string `json:"api_key"`
		}) {
			fmt.Fprintf(w, "New API key %s for %s (shown once; store it now):\n  %s\n", k.ID, args[0], k.APIKey)
		}),
	}
}

// agentKeys is the answer of GET /api/agents/{id}/keys.
type agentKeys struct {
	Keys []struct {
		ID        string     `json:"id"`
		Prefix    string     `json:"prefix"`
		CreatedAt time.Time  `json:"created_at"`
		ExpiresAt *time.Time `json:"expires_at"`
		RevokedAt *time.Time `json:"revoked_at"`
	}
}

func agentsKeys() apiCommand {
	return apiCommand{
		name:  "agents keys",
		brief: "list an agent's API keys (prefixes only)",
		usage: "NAME|ID",
		help:  "List an agent's API keys: prefixes and states, never the keys.",
		args:  one("agent name or id"),
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "GET", path: apiPath("agents", in.args[0], "keys")}, nil
		},
		show: decoded(func(w io.Writer, _ []string, out agentKeys) {
			rows := [][]string{}
			now := time.Now()
			for _, k := range out.Keys {
				state := "active"
				switch {
				case k.RevokedAt != nil:
					state = "revoked " + k.RevokedAt.Format(time.RFC3339)
				case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
					state = "expired " + k.ExpiresAt.Format(time.RFC3339)
				case k.ExpiresAt != nil:
					state = "expires " + k.ExpiresAt.Format(time.RFC3339)
				}
				rows = append(rows, []string{k.Prefix + "…", state, k.CreatedAt.Format(time.RFC3339), k.ID})
			}
			table(w, []string{"PREFIX", "STATE", "CREATED", "ID"}, rows)
		}),
	}
}

func agentsRevokeKey() apiCommand {
	return apiCommand{
		name:  "agents revoke-key",
		brief: "revoke one API key at once",
		usage: "NAME|ID KEY_ID",
		help:  "Revoke one of an agent's API keys at once.",
		args:  &positional{n: 2},
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "DELETE", path: apiPath("agents", in.args[0], "keys", in.args[1])}, nil
		},
		show: func(w io.Writer, args []string, _ json.RawMessage) error {
			fmt.Fprintf(w, "Key %s revoked.\n", args[1])
			return nil
		},
		showAlways: true,
	}
}
