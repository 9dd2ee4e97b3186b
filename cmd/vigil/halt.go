package main

import (
	"context"
	"flag"
	"fmt"
	"io"
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
	var reason string
	var status bool
	return apiCommand{
		name:  "halt",
		usage: "--reason TEXT | --status",
		help:  "Global kill switch: stop every agent at once, on every replica. New calls are refused with the reason,\npending approvals are cancelled and open streams and sessions closed, until `vigil resume-all`.\nWho, when and why go to the ledger. Needs a reviewer or admin token.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&reason, "reason", "", "why (required; recorded and shown to every agent)")
			fs.BoolVar(&status, "status", false, "only show whether Vigil is halted")
		},
		check: func(in *invocation) error {
			if len(in.args) > 0 {
				return in.complain("unexpected argument %q (quote the reason: --reason \"…\")", in.args[0])
			}
			if !status && reason == "" {
				return in.complain("--reason is required (or --status to look)")
			}
			return nil
		},
		request: func(*invocation) (apiRequest, error) {
			if status {
				return apiRequest{method: "GET", path: apiPath("halt")}, nil
			}
			return apiRequest{method: "POST", path: apiPath("halt"), body: map[string]string{"reason": reason}}, nil
		},
		show: decoded(showHalt),
	}.run(ctx, env, args)
}

func runResumeAll(ctx context.Context, env *Env, args []string) error {
	var reason string
	return apiCommand{
		name:  "resume-all",
		usage: "[--reason TEXT]",
		help:  "Lift the global halt: agents may act again (each still subject to its own suspension).",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&reason, "reason", "", "why it is safe to resume (recorded)")
		},
		request: func(*invocation) (apiRequest, error) {
			return apiRequest{method: "DELETE", path: apiPath("halt"), body: map[string]string{"reason": reason}}, nil
		},
		show: decoded(showHalt),
	}.run(ctx, env, args)
}

func showHalt(w io.Writer, _ []string, h haltOut) {
	fmt.Fprintln(w, h)
}
