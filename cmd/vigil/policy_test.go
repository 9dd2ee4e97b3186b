package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runPolicyCLI runs the vigil command line in-process.
func runPolicyCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code = Run(context.Background(), env, args)
	return out.String(), errb.String(), code
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestExamplePolicyTests is how CI exercises examples/policy.yaml and its tests.
func TestExamplePolicyTests(t *testing.T) {
	file := filepath.Join("..", "..", "examples", "policy_test.yaml")
	stdout, stderr, code := runPolicyCLI(t, "policy", "test", "-v", file)
	if code != 0 {
		t.Fatalf("vigil policy test %s: exit %d\nstdout:\n%s\nstderr:\n%s", file, code, stdout, stderr)
	}
	if !strings.Contains(stdout, "ok   "+file+": ") || strings.Contains(stdout, "FAIL") {
		t.Errorf("stdout does not report the file as passing:\n%s", stdout)
	}
	stdout, stderr, code = runPolicyCLI(t, "policy", "check", filepath.Join("..", "..", "examples", "policy.yaml"))
	if code != 0 {
		t.Fatalf("vigil policy check: exit %d\n%s%s", code, stdout, stderr)
	}
}

const cliPolicy = `version: 1
default: allow
rules:
  - id: refunds-over-100
    when: tool.name == "refund" && args.amount > 100
    effect: deny
    message: Refunds over 100 go through finance.
`

func TestPolicyTestReportsFailuresWithTheirDecision(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"policy.yaml": cliPolicy,
		"policy_test.yaml": `policy: policy.yaml
tests:
  - name: passes
    input: {tool: {name: refund}, args: {amount: 500}}
    want: deny
  - name: wrong expectation
    input: {tool: {name: refund}, args: {amount: 500}}
    want: {effect: allow, message: nope}
  - name: missing amount fails closed
    input: {tool: {name: refund}, args: {}}
    want: allow
`,
	})
	file := filepath.Join(dir, "policy_test.yaml")
	stdout, _, code := runPolicyCLI(t, "policy", "test", file)
	if code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	for _, want := range []string{
		"FAIL " + file + ":6: wrong expectation",
		"effect: got deny, want allow",
		`message: got "Refunds over 100 go through finance.", want it to contain "nope"`,
		"matched rules: [refunds-over-100]",
		"FAIL " + file + ":9: missing amount fails closed",
		"rule refunds-over-100 failed (counted as deny): no such key: amount",
		"FAIL " + file + ": 2 of 3 tests failed",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "passes") {
		t.Errorf("a passing test was listed without -v:\n%s", stdout)
	}
}

func TestPolicyCheck(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"good.yaml": cliPolicy,
		"bad.yaml": `version: 1
default: allow
rules:
  - id: typo
    when: tool.annotations.destructivehint
    effect: deny
`,
	})
	if stdout, stderr, code := runPolicyCLI(t, "policy", "check", filepath.Join(dir, "good.yaml")); code != 0 || !strings.Contains(stdout, "ok") {
		t.Errorf("check good.yaml: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	bad := filepath.Join(dir, "bad.yaml")
	_, stderr, code := runPolicyCLI(t, "policy", "check", bad)
	if code != 1 {
		t.Errorf("check bad.yaml: exit %d, want 1", code)
	}
	if want := bad + ":5:27: rule typo: when: undefined field 'destructivehint'"; !strings.Contains(stderr, want) {
		t.Errorf("stderr = %q, want it to contain %q", stderr, want)
	}
}

func TestPolicyUsage(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"policy", "--help"}, 0, "Usage: vigil policy <command>"},
		{[]string{"policy", "test", "--help"}, 0, "Usage: vigil policy test [-v] FILE…"},
		{[]string{"policy", "check", "--help"}, 0, "Usage: vigil policy check FILE…"},
		{[]string{"policy"}, 2, "Usage: vigil policy <command>"},
		{[]string{"policy", "test"}, 2, "Usage: vigil policy test"},
		{[]string{"policy", "frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"policy", "test", "does-not-exist.yaml"}, 1, "couldn't read policy tests"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, stderr, code := runPolicyCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit code = %d, want %d", code, tt.code)
			}
			if !strings.Contains(stdout+stderr, tt.contains) {
				t.Errorf("output lacks %q:\nstdout: %s\nstderr: %s", tt.contains, stdout, stderr)
			}
		})
	}
}
