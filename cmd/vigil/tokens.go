package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"
)

func runTokens(ctx context.Context, env *Env, args []string) error {
	return dispatchAPI(ctx, env, "tokens", "Manage admin and role tokens for automation and the CLI, through the admin API (needs an admin VIGIL_TOKEN).", args,
		tokensCreate(), tokensList(), tokensRevoke())
}

func tokensCreate() apiCommand {
	var role string
	var ttl time.Duration
	return apiCommand{
		name:  "tokens create",
		brief: "create a token with a role and print it (once)",
		usage: "--role ROLE [--ttl DURATION] NAME",
		help:  "Create a role token. Roles: admin (everything), reviewer (decide approvals, suspend agents),\nauditor (read everything, export evidence), viewer (read-only).",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&role, "role", "", "admin, reviewer, auditor or viewer (required)")
			fs.DurationVar(&ttl, "ttl", 0, "how long the token lives (e.g. 720h); default: until revoked")
		},
		args: one("token name"),
		request: func(in *invocation) (apiRequest, error) {
			body := map[string]string{"name": in.args[0], "role": role}
			if ttl > 0 {
				body["ttl"] = ttl.String()
			}
			return apiRequest{method: "POST", path: apiPath("tokens"), body: body}, nil
		},
		show: decoded(func(w io.Writer, args []string, t struct{ ID, Role, Token string }) {
			fmt.Fprintf(w, "Created %s token %s (id %s). Token (shown once; store it now):\n  %s\n", t.Role, args[0], t.ID, t.Token)
		}),
	}
}

// tokenList is the answer of GET /api/tokens.
type tokenList struct {
	Tokens []struct {
		ID, Name, Role, Prefix string
		CreatedBy              string     `json:"created_by"`
		ExpiresAt              *time.Time `json:"expires_at"`
		RevokedAt              *time.Time `json:"revoked_at"`
	}
}

func tokensList() apiCommand {
	return apiCommand{
		name:  "tokens list",
		brief: "list tokens (prefixes only)",
		help:  "List tokens: names, roles and prefixes, never the tokens.",
		request: func(*invocation) (apiRequest, error) {
			return apiRequest{method: "GET", path: apiPath("tokens")}, nil
		},
		show: decoded(func(w io.Writer, _ []string, out tokenList) {
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
			table(w, []string{"NAME", "ROLE", "PREFIX", "STATE", "CREATED BY", "ID"}, rows)
		}),
	}
}

func tokensRevoke() apiCommand {
	return apiCommand{
		name:  "tokens revoke",
		brief: "revoke a token at once",
		usage: "ID",
		help:  "Revoke a token at once.",
		args:  one("token id"),
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "DELETE", path: apiPath("tokens", in.args[0])}, nil
		},
		show: func(w io.Writer, args []string, _ json.RawMessage) error {
			fmt.Fprintf(w, "Token %s revoked.\n", args[0])
			return nil
		},
		showAlways: true,
	}
}
