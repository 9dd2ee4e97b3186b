package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
)

func runSystems(ctx context.Context, env *Env, args []string) error {
	return dispatchVerbs(ctx, env, "systems", "Manage the AI systems agents act for, through the admin API (needs VIGIL_TOKEN).", []verb{
		{"create", "register an AI system", systemsCreate},
		{"list", "list AI systems", systemsList},
		{"get", "show a system and its agents", systemsGet},
		{"update", "set a system's purpose, owner or lifecycle stage", systemsUpdate},
		{"suspend", "kill switch for every agent of a system", systemsStatus("suspend")},
		{"resume", "let a suspended system's agents act again", systemsStatus("resume")},
	}, args)
}

type systemOut struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Purpose   string `json:"purpose"`
	Owner     string `json:"owner"`
	Lifecycle string `json:"lifecycle"`
	Status    string `json:"status"`
	Complete  bool   `json:"complete"`
}

func systemsCreate(ctx context.Context, env *Env, args []string) error {
	return systemsWrite(ctx, env, args, "create")
}

func systemsUpdate(ctx context.Context, env *Env, args []string) error {
	return systemsWrite(ctx, env, args, "update")
}

func systemsWrite(ctx context.Context, env *Env, args []string, verb string) error {
	summary := "Register an AI system (the unit of the ISO/IEC 42001 inventory that agents belong to)."
	if verb == "update" {
		summary = "Set a system's purpose, owner or lifecycle stage; flags not given are left alone."
	}
	fs := newFlags(env, "systems "+verb, "[--purpose TEXT] [--owner WHO] [--lifecycle STAGE] NAME", summary)
	purpose := fs.String("purpose", "", "what the system is for (intended use)")
	owner := fs.String("owner", "", "the person or team accountable for the system")
	lifecycle := fs.String("lifecycle", "", "design, development, verification, deployment, operation or retired (default operation)")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	name, err := oneArg(fs, env, "system name")
	if err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	method, path := "POST", "/api/systems"
	body := map[string]string{"name": name, "purpose": *purpose, "owner": *owner, "lifecycle": *lifecycle}
	if verb == "update" {
		method, path = "PATCH", "/api/systems/"+url.PathEscape(name)
		delete(body, "name")
	}
	var raw json.RawMessage
	if err := c.do(ctx, method, path, body, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, raw)
	}
	var s systemOut
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "System %s (id %s): lifecycle %s, %s.\n", s.Name, s.ID, s.Lifecycle, completeness(s.Complete))
	return nil
}

func completeness(ok bool) string {
	if ok {
		return "record complete"
	}
	return "record incomplete (set --owner and --purpose)"
}

func systemsList(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "systems list", "", "List AI systems.")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, "GET", "/api/systems", nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, raw)
	}
	var out struct{ Systems []systemOut }
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := [][]string{}
	for _, s := range out.Systems {
		complete := "yes"
		if !s.Complete {
			complete = "no"
		}
		rows = append(rows, []string{s.Name, s.Status, s.Lifecycle, s.Owner, complete, s.ID})
	}
	table(env.Stdout, []string{"NAME", "STATUS", "LIFECYCLE", "OWNER", "COMPLETE", "ID"}, rows)
	return nil
}

func systemsGet(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "systems get", "NAME|ID", "Show an AI system and its agents as JSON.")
	client, _ := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	name, err := oneArg(fs, env, "system name or id")
	if err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, "GET", "/api/systems/"+url.PathEscape(name), nil, &raw); err != nil {
		return err
	}
	return printJSON(env.Stdout, raw)
}

func systemsStatus(action string) func(ctx context.Context, env *Env, args []string) error {
	return func(ctx context.Context, env *Env, args []string) error {
		summary := "Resume a suspended AI system."
		usage := "NAME|ID"
		if action == "suspend" {
			summary = "Suspend every agent of an AI system at once (kill switch), with a reason recorded in the ledger."
			usage = "--reason TEXT NAME|ID"
		}
		fs := newFlags(env, "systems "+action, usage, summary)
		reason := new(string)
		if action == "suspend" {
			reason = fs.String("reason", "", "why (required; shown to the agents and recorded)")
		}
		client, asJSON := clientFlags(fs, env)
		if err := parse(fs, env, args); err != nil {
			return err
		}
		name, err := oneArg(fs, env, "system name or id")
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
		if err := c.do(ctx, "POST", "/api/systems/"+url.PathEscape(name)+"/"+action, body, &raw); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env.Stdout, raw)
		}
		var s systemOut
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "System %s is %s.\n", s.Name, s.Status)
		return nil
	}
}
