package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

type haltOut struct {
	On     bool      `json:"on"`
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

func (h haltOut) String() string {
	if h.On {
		return fmt.Sprintf("Vigil is HALTED: every agent is refused. Halted by %s at %s: %s", h.By, h.At.Local().Format(time.DateTime), h.Reason)
	}
	if h.By == "" {
		return "Vigil is not halted."
	}
	return fmt.Sprintf("Vigil is not halted (resumed by %s at %s).", h.By, h.At.Local().Format(time.DateTime))
}

func runHalt(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "halt", "--reason TEXT | --status",
		"Global kill switch: stop every agent at once, on every replica. New calls are refused with the reason,\npending approvals are cancelled and open streams and sessions closed, until `vigil resume-all`.\nWho, when and why go to the ledger. Needs a reviewer or admin VIGIL_TOKEN.")
	reason := fs.String("reason", "", "why (required; recorded and shown to every agent)")
	status := fs.Bool("status", false, "only show whether Vigil is halted")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "vigil halt: unexpected argument %q (quote the reason: --reason \"…\")\n", fs.Arg(0))
		return errUsage
	}
	if !*status && *reason == "" {
		fmt.Fprintln(env.Stderr, "vigil halt: --reason is required (or --status to look)")
		return errUsage
	}
	c, err := client()
	if err != nil {
		return err
	}
	method, body := "POST", any(map[string]string{"reason": *reason})
	if *status {
		method, body = "GET", nil
	}
	return haltCall(ctx, env, c, method, body, *asJSON)
}

func runResumeAll(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "resume-all", "[--reason TEXT]", "Lift the global halt: agents may act again (each still subject to its own suspension).")
	reason := fs.String("reason", "", "why it is safe to resume (recorded)")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	return haltCall(ctx, env, c, "DELETE", map[string]string{"reason": *reason}, *asJSON)
}

func haltCall(ctx context.Context, env *Env, c *apiClient, method string, body any, asJSON bool) error {
	var raw json.RawMessage
	if err := c.do(ctx, method, "/api/halt", body, &raw); err != nil {
		return err
	}
	if asJSON {
		return printJSON(env.Stdout, raw)
	}
	var h haltOut
	if err := json.Unmarshal(raw, &h); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, h)
	return nil
}
