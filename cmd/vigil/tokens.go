package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

func runTokens(ctx context.Context, env *Env, args []string) error {
	return dispatchVerbs(ctx, env, "tokens", "Manage admin and role tokens for automation and the CLI (needs an admin VIGIL_TOKEN).", []verb{
		{"create", "create a token with a role and print it (once)", tokensCreate},
		{"list", "list tokens (prefixes only)", tokensList},
		{"revoke", "revoke a token at once", tokensRevoke},
	}, args)
}

func tokensCreate(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "tokens create", "--role ROLE [--ttl DURATION] NAME",
		"Create a role token. Roles: admin (everything), reviewer (decide approvals, suspend agents),\nauditor (read everything, export evidence), viewer (read-only).")
	role := fs.String("role", "", "admin, reviewer, auditor or viewer (required)")
	ttl := fs.Duration("ttl", 0, "how long the token lives (e.g. 720h); default: until revoked")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	name, err := oneArg(fs, env, "token name")
	if err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	body := map[string]string{"name": name, "role": *role}
	if *ttl > 0 {
		body["ttl"] = ttl.String()
	}
	var raw json.RawMessage
	if err := c.do(ctx, "POST", "/api/tokens", body, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, raw)
	}
	var t struct{ ID, Role, Token string }
	if err := json.Unmarshal(raw, &t); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Created %s token %s (id %s). Token (shown once; store it now):\n  %s\n", t.Role, name, t.ID, t.Token)
	return nil
}

func tokensList(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "tokens list", "", "List tokens: names, roles and prefixes, never the tokens.")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, "GET", "/api/tokens", nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, raw)
	}
	var out struct {
		Tokens []struct {
			ID, Name, Role, Prefix string
			CreatedBy              string     `json:"created_by"`
			ExpiresAt              *time.Time `json:"expires_at"`
			RevokedAt              *time.Time `json:"revoked_at"`
		}
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := [][]string{}
	for _, t := range out.Tokens {
		state := "active"
		if t.RevokedAt != nil {
			state = "revoked"
		} else if t.ExpiresAt != nil && time.Now().After(*t.ExpiresAt) {
			state = "expired"
		}
		rows = append(rows, []string{t.Name, t.Role, t.Prefix + "…", state, t.CreatedBy, t.ID})
	}
	table(env.Stdout, []string{"NAME", "ROLE", "PREFIX", "STATE", "CREATED BY", "ID"}, rows)
	return nil
}

func tokensRevoke(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "tokens revoke", "ID", "Revoke a token at once.")
	client, _ := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	id, err := oneArg(fs, env, "token id")
	if err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	if err := c.do(ctx, "DELETE", "/api/tokens/"+url.PathEscape(id), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Token %s revoked.\n", id)
	return nil
}
