package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/vigil-gateway/vigil/internal/policy"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// policyCommands are the subcommands of "vigil policy".
func policyCommands() []command {
	return []command{
		{"test", "run policy test files; non-zero exit on any failure", runPolicyTest},
		{"check", "compile policy files and list every problem", runPolicyCheck},
	}
}

func runPolicy(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		w := env.Stdout
		if len(args) == 0 {
			w = env.Stderr
		}
		fmt.Fprintf(w, "Usage: vigil policy <command> [flags] FILE…\n\nWork with policy files without a running gateway.\n\nCommands:\n")
		for _, c := range policyCommands() {
			fmt.Fprintf(w, "  %-6s %s\n", c.name, c.summary)
		}
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	for _, c := range policyCommands() {
		if c.name == args[0] {
			return c.run(ctx, env, args[1:])
		}
	}
	fmt.Fprintf(env.Stderr, "vigil policy: unknown command %q (test, check)\n", args[0])
	return errUsage
}

func runPolicyTest(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "policy test", "[-v] FILE…", `
Run the test cases in each policy test file against the policy it names, and print
every failure with the decision the policy made and why. Exits 1 when a test fails or
a file has problems.

A test file:

  policy: policy.yaml            # relative to the test file
  tests:
    - name: big refund is denied
      input: {action: {kind: tool_call}, tool: {name: refund}, args: {amount: 500}}
      want: deny                 # or {effect: deny, rules: [...], message: substring, limit: id/metric}

An input may also set agent, model, resource, pii, usage and now (RFC 3339).`)
	verbose := fs.Bool("v", false, "also list the tests that pass")
	return forEachFile(fs, env, args, func(file string) bool {
		tf, err := policy.LoadTests(file)
		if err != nil {
			fmt.Fprintln(env.Stderr, err)
			return false
		}
		failed := 0
		results := tf.Run()
		for _, r := range results {
			if len(r.Failures) == 0 {
				if *verbose {
					fmt.Fprintf(env.Stdout, "ok   %s:%d: %s\n", file, r.Case.Line, r.Case.Name)
				}
				continue
			}
			failed++
			fmt.Fprintf(env.Stdout, "FAIL %s:%d: %s\n", file, r.Case.Line, r.Case.Name)
			for _, f := range r.Failures {
				fmt.Fprintf(env.Stdout, "     %s\n", f)
			}
			printDecision(env.Stdout, r.Got)
		}
		if failed > 0 {
			fmt.Fprintf(env.Stdout, "FAIL %s: %d of %d tests failed\n", file, failed, len(results))
			return false
		}
		fmt.Fprintf(env.Stdout, "ok   %s: %d tests against %s\n", file, len(results), tf.Policy)
		return true
	})
}

// forEachFile parses args, then runs do on each file named, and exits 1 when do
// reported a problem with any of them (after trying them all).
func forEachFile(fs *flag.FlagSet, env *Env, args []string, do func(file string) bool) error {
	if err := parse(fs, env, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	ok := true
	for _, file := range fs.Args() {
		ok = do(file) && ok
	}
	if !ok {
		return &exitError{code: 1}
	}
	return nil
}

// printDecision explains a decision under a failed test.
func printDecision(w io.Writer, d vigil.Decision) {
	fmt.Fprintf(w, "     got: %s: %q\n", d.Effect, d.Message)
	fmt.Fprintf(w, "     matched rules: [%s]\n", strings.Join(d.Rules, " "))
	if d.Limit != "" {
		fmt.Fprintf(w, "     limit: %s\n", d.Limit)
	}
	if d.Approval != nil {
		fmt.Fprintf(w, "     approval: roles %v, %d approvers, timeout %s\n", d.Approval.Roles, d.Approval.Approvers, d.Approval.Timeout)
	}
	for _, e := range d.Errors {
		how := "counted as deny"
		if e.Skipped {
			how = "skipped"
		}
		fmt.Fprintf(w, "     rule %s failed (%s): %s\n", e.Rule, how, e.Error)
	}
}

func runPolicyCheck(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "policy check", "FILE…", `
Compile each policy file and report every problem with its file, line, column and
rule id. Exits 0 when all compile, 1 otherwise. Nothing is evaluated or activated.`)
	return forEachFile(fs, env, args, func(file string) bool {
		p, err := policy.LoadFile(file)
		if err != nil {
			fmt.Fprintln(env.Stderr, err)
			return false
		}
		fmt.Fprintf(env.Stdout, "ok   %s\n", p)
		return true
	})
}
