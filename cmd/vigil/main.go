// Command vigil is the governance gateway for AI agents: one binary that serves the
// gateway (vigil serve) and the tools around it — ledger verification, PII scanning,
// policy tests, evidence export and the admin CLI.
//
// main only parses the command line and sets up signals; each subcommand is a function
// over an Env so tests can run it in-process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// Version is set at build time with -ldflags "-X main.Version=v1.2.3".
var Version = "dev"

// Env is what a subcommand may touch of the outside world.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

// commands lists the subcommands in the order --help shows them: the gateway, the
// admin commands that act on it through its API, the offline tools, then the tools
// for demos and development.
func commands() []command {
	return []command{
		{"serve", "run the gateway", runServe},
		{"agents", "create, list, suspend and resume agents; rotate, list and revoke their keys", runAgents},
		{"systems", "register, list and update AI systems; suspend and resume a whole system", runSystems},
		{"tokens", "create, list and revoke admin and role tokens", runTokens},
		{"users", "add, list, disable and enable console users; set their passwords", runUsers},
		{"approvals", "list and show held calls; approve or deny them", runApprovals},
		{"halt", "global kill switch: stop every agent at once, or show whether halted", runHalt},
		{"resume-all", "lift the global halt", runResumeAll},
		{"mcp", "review pinned MCP tool definitions and approve changed ones; list MCP sessions", runMCP},
		{"records", "ISO/IEC 42001 records as YAML; sign-offs, SoA, health checks, incidents", runRecords},
		{"evidence", "export a signed evidence bundle for a period; verify one offline", runEvidence},
		{"verify", "verify the tamper-evident ledger offline", runVerify},
		{"ledger", "export the ledger for audit, print proofs", runLedger},
		{"policy", "test and check policy files", runPolicy},
		{"pii", "scan or mask personal data and secrets; measure detection accuracy", runPII},
		{"fake-provider", "run a deterministic stand-in for the OpenAI and Anthropic APIs (demo, tests)", runFakeProvider},
		{"bench", "load-test the LLM gateway against the fake provider and report added latency", runBench},
		{"version", "print the version", runVersion},
	}
}

// errUsage marks an error caused by a bad command line; the usage has been printed.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	os.Exit(Run(ctx, env, os.Args[1:]))
}

// Run runs the command line args and returns the process exit code.
func Run(ctx context.Context, env *Env, args []string) int {
	err := dispatch(ctx, env, args)
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	var ex *exitError
	if errors.As(err, &ex) {
		if ex.msg != "" {
			fmt.Fprintln(env.Stderr, ex.msg)
		}
		return ex.code
	}
	fmt.Fprintf(env.Stderr, "vigil: %v\n", err)
	return 1
}

// exitError ends the process with a specific code (e.g. verify's "tampered" code).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func dispatch(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help" {
		if len(args) > 1 && args[0] == "help" {
			return dispatch(ctx, env, []string{args[1], "--help"})
		}
		usage(env.Stdout)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	if args[0] == "--version" {
		return runVersion(ctx, env, nil)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, env, args[1:])
		}
	}
	fmt.Fprintf(env.Stderr, "vigil: unknown command %q\n\n", args[0])
	usage(env.Stderr)
	return errUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `vigil is a governance gateway for AI agents: a tamper-evident ledger, real-time
policy, human oversight, PII masking and ISO/IEC 42001 records for every model and
tool call your agents make.

Usage:
  vigil <command> [flags]

Commands:
`)
	width := 0
	for _, c := range commands() {
		width = max(width, len(c.name))
	}
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprintf(w, `
Run "vigil <command> --help" for a command's flags.
Start with no configuration at all: "vigil serve".
`)
}

// newFlags returns a flag set for a subcommand whose --help prints the summary,
// the usage line and the flags.
func newFlags(env *Env, name, usageLine, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet("vigil "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: vigil %s %s\n\n%s\n", name, usageLine, strings.TrimSpace(summary))
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintf(out, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses args, turning --help into flag.ErrHelp (printed to stdout, exit 0)
// and other flag errors into errUsage.
func parse(fs *flag.FlagSet, env *Env, args []string) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "--help" || a == "-help" {
			fs.SetOutput(env.Stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	if err := fs.Parse(interspersed(fs, args)); err != nil {
		return errUsage
	}
	return nil
}

// interspersed moves flags that follow positional arguments in front of them, so
// "vigil agents suspend bot --reason x" works as users expect.
func interspersed(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return append(flags, pos...)
}

func runVersion(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "version", "", "Print the version of this binary and of Go it was built with.")
	if err := parse(fs, env, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "vigil version: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		fmt.Fprintf(env.Stdout, "vigil %s (%s)\n", v, bi.GoVersion)
		return nil
	}
	fmt.Fprintf(env.Stdout, "vigil %s\n", v)
	return nil
}
