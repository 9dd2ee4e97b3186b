package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
)

func runAgents(ctx context.Context, env *Env, args []string) error {
	return dispatchVerbs(ctx, env, "agents", "Manage AI agents and their API keys through the admin API (needs VIGIL_TOKEN).", []verb{
		{"create", "register an agent and print its API key (once)", agentsCreate},
		{"list", "list agents", agentsList},
		{"get", "show one agent", agentsGet},
		{"suspend", "kill switch: refuse the agent's calls until resumed", agentsStatus("suspend")},
		{"resume", "let a suspended agent act again", agentsStatus("resume")},
		{"rotate", "issue a new API key and retire the old ones", agentsRotate},
		{"keys", "list an agent's API keys (prefixes only)", agentsKeys},
		{"revoke-key", "revoke one API key at once", agentsRevokeKey},
	}, args)
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

func agentsCreate(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "agents create", "--system SYSTEM [--owner WHO] [--label k=v]... NAME",
		"Register an agent of an AI system and print its API key. The key is shown once and stored only as a hash.\nAn unknown system name registers that system, marked incomplete until its owner and purpose are set.")
	system := fs.String("system", "", "the AI `SYSTEM` the agent acts for (name or id; required)")
	owner := fs.String("owner", "", "the person or team accountable for the agent")
	labels := labelFlag{}
	fs.Var(labels, "label", "a `key=value` label for policy (repeatable)")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	name, err := oneArg(fs, env, "agent name")
	if err != nil {
		return err
	}
	if *system == "" {
		fmt.Fprintln(env.Stderr, "vigil agents create: --system is required: every agent acts for an AI system")
		return errUsage
	}
	c, err := client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, "POST", "/api/agents", map[string]any{"name": name, "system": *system, "owner": *owner, "labels": map[string]string(labels)}, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, raw)
	}
	var a agentOut
	if err := json.Unmarshal(raw, &a); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Created agent %s (id %s) for system %s.\n\nAPI key (shown once; store it now):\n  %s\n", a.Name, a.ID, a.System, a.APIKey)
	return nil
}

func agentsList(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "agents list", "[--system SYSTEM]", "List agents, optionally of one system.")
	system := fs.String("system", "", "only agents of this `SYSTEM`")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	path := "/api/agents"
	if *system != "" {
		path += "?system=" + url.QueryEscape(*system)
	}
	var raw json.RawMessage
	if err := c.do(ctx, "GET", path, nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, raw)
	}
	var out struct{ Agents []agentOut }
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := [][]string{}
	for _, a := range out.Agents {
		rows = append(rows, []string{a.Name, a.System, a.Status, a.Owner, fmtLabels(a.Labels), a.ID})
	}
	table(env.Stdout, []string{"NAME", "SYSTEM", "STATUS", "OWNER", "LABELS", "ID"}, rows)
	return nil
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

func agentsGet(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "agents get", "NAME|ID", "Show one agent as JSON.")
	client, _ := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	name, err := oneArg(fs, env, "agent name or id")
	if err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, "GET", "/api/agents/"+url.PathEscape(name), nil, &raw); err != nil {
		return err
	}
	return printJSON(env.Stdout, raw)
}

func agentsStatus(action string) func(ctx context.Context, env *Env, args []string) error {
	return func(ctx context.Context, env *Env, args []string) error {
		summary := "Resume a suspended agent."
		usage := "NAME|ID"
		if action == "suspend" {
			summary = "Suspend an agent at once (kill switch): its calls are refused with the reason until it is resumed.\nWho, when and why go to the ledger."
			usage = "--reason TEXT NAME|ID"
		}
		fs := newFlags(env, "agents "+action, usage, summary)
		reason := new(string)
		if action == "suspend" {
			reason = fs.String("reason", "", "why (required; shown to the agent and recorded)")
		}
		client, asJSON := clientFlags(fs, env)
		if err := parse(fs, env, args); err != nil {
			return err
		}
		name, err := oneArg(fs, env, "agent name or id")
		if err != nil {
			return err
		}
		c, err := client()
		if err != nil {
			return err
		}
		var body any
		if action == "suspend" {
			body = map[string]string{"reason": *reason}
		}
		var raw json.RawMessage
		if err := c.do(ctx, "POST", "/api/agents/"+url.PathEscape(name)+"/"+action, body, &raw); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env.Stdout, raw)
		}
		var a agentOut
		if err := json.Unmarshal(raw, &a); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "Agent %s is %s.\n", a.Name, a.Status)
		return nil
	}
}

func agentsRotate(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "agents rotate", "[--grace DURATION] NAME|ID", "Issue a new API key for an agent and retire its other keys, at once or after a grace period.")
	grace := fs.Duration("grace", 0, "how long the old keys keep working (e.g. 1h); default: retired at once")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	name, err := oneArg(fs, env, "agent name or id")
	if err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, "POST", "/api/agents/"+url.PathEscape(name)+"/rotate", map[string]string{"grace": grace.String()}, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, raw)
	}
	var k struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal(raw, &k); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "New API key %s for %s (shown once; store it now):\n  %s\n", k.ID, name, k.APIKey)
	return nil
}

func agentsKeys(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "agents keys", "NAME|ID", "List an agent's API keys: prefixes and states, never the keys.")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	name, err := oneArg(fs, env, "agent name or id")
	if err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, "GET", "/api/agents/"+url.PathEscape(name)+"/keys", nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, raw)
	}
	var out struct {
		Keys []struct {
			ID        string     `json:"id"`
			Prefix    string     `json:"prefix"`
			CreatedAt time.Time  `json:"created_at"`
			ExpiresAt *time.Time `json:"expires_at"`
			RevokedAt *time.Time `json:"revoked_at"`
		}
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
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
	table(env.Stdout, []string{"PREFIX", "STATE", "CREATED", "ID"}, rows)
	return nil
}

func agentsRevokeKey(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "agents revoke-key", "NAME|ID KEY_ID", "Revoke one of an agent's API keys at once.")
	client, _ := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return errUsage
	}
	c, err := client()
	if err != nil {
		return err
	}
	if err := c.do(ctx, "DELETE", "/api/agents/"+url.PathEscape(fs.Arg(0))+"/keys/"+url.PathEscape(fs.Arg(1)), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Key %s revoked.\n", fs.Arg(1))
	return nil
}
