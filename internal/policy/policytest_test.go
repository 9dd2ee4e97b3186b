package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-gateway/vigil/internal/policy"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

func writeTestFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadTestsDecodesInputs(t *testing.T) {
	dir := writeTestFiles(t, map[string]string{
		"policies/p.yaml": "version: 1\ndefault: allow\n",
		"tests/t.yaml": `policy: ../policies/p.yaml
tests:
  - name: everything
    input:
      action: {kind: tool_call, id: ev-1}
      agent: {id: ag-1, name: bot, system: desk, labels: {tier: gold}}
      tool: {server: pay, name: refund, annotations: {title: Refund, readOnlyHint: true, openWorldHint: false}}
      args: {amount: 5.5, items: [a, b], nested: {k: v}}
      pii: {types: [EMAIL_ADDRESS], counts: {PHONE_NUMBER: 2}}
      usage:
        calls: {minute: 1, hour: 2, day: 3}
        cost: {day: 1.25}
        system: {tokens: {day: 9}}
      now: 2026-11-26T22:30:00+01:00
    want: {effect: allow, rules: [], message: matched, limit: ""}
  - input: {model: {provider: openai, name: gpt-4o}}
    want: deny
  - name: resource and prompt kinds are inferred
    input: {resource: {uri: "file:///x"}}
    want: allow
`,
	})
	tf, err := policy.LoadTests(filepath.Join(dir, "tests", "t.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if tf.Policy.Name() != filepath.Join(dir, "tests", "..", "policies", "p.yaml") {
		t.Errorf("policy loaded from %q", tf.Policy.Name())
	}
	want := []policy.TestCase{
		{Name: "everything", Line: 3,
			Action: vigil.Action{ID: "ev-1", Kind: vigil.ToolCall,
				Actor: vigil.Actor{Kind: vigil.ActorAgent, ID: "ag-1", Name: "bot", SystemID: "desk", SystemName: "desk", Labels: map[string]string{"tier": "gold"}},
				Tool: &vigil.Tool{Server: "pay", Name: "refund", Annotations: vigil.ToolAnnotations{
					Title: "Refund", ReadOnlyHint: true, DestructiveHint: true}}, // destructiveHint kept MCP's default
				Args: map[string]any{"amount": 5.5, "items": []any{"a", "b"}, "nested": map[string]any{"k": "v"}},
				PII:  vigil.PIISummary{Counts: map[string]int{"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 2}},
				Time: time.Date(2026, 11, 26, 21, 30, 0, 0, time.UTC)},
			Usage: policy.Usage{
				Agent:  policy.Counters{Calls: policy.Window{Minute: 1, Hour: 2, Day: 3}, Cost: policy.Window{Day: 1_250_000}},
				System: policy.Counters{Tokens: policy.Window{Day: 9}}},
			Want: policy.Want{Effect: vigil.Allow, Rules: []string{}, Message: "matched"}},
		{Name: "tests[1]", Line: 16,
			Action: vigil.Action{Kind: vigil.ModelCall, Model: &vigil.Model{Provider: "openai", Name: "gpt-4o"},
				Time: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)},
			Want: policy.Want{Effect: vigil.Deny}},
		{Name: "resource and prompt kinds are inferred", Line: 18,
			Action: vigil.Action{Kind: vigil.ResourceRead, Resource: "file:///x", Time: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)},
			Want:   policy.Want{Effect: vigil.Allow}},
	}
	opt := cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })
	if diff := cmp.Diff(want, tf.Cases, opt); diff != "" {
		t.Errorf("cases (-want +got):\n%s", diff)
	}
}

func TestTestRunReportsEachDifference(t *testing.T) {
	dir := writeTestFiles(t, map[string]string{
		"p.yaml": `version: 1
default: allow
rules:
  - id: no-refunds
    match: {tools: [refund]}
    effect: deny
    message: No refunds today.
limits:
  - id: rate
    calls_per_minute: 2
`,
		"t.yaml": `policy: p.yaml
tests:
  - name: all right
    input: {tool: {name: refund}}
    want: {effect: deny, rules: [no-refunds], message: refunds}
  - name: all wrong
    input: {tool: {name: refund}}
    want: {effect: allow, rules: [other], message: welcome, limit: rate/calls_per_minute}
  - name: limit
    input: {tool: {name: x}, usage: {calls: {minute: 2}}}
    want: {effect: deny, limit: rate/calls_per_minute, rules: []}
`,
	})
	tf, err := policy.LoadTests(filepath.Join(dir, "t.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var got [][]string
	for _, r := range tf.Run() {
		got = append(got, r.Failures)
	}
	want := [][]string{nil, {
		"effect: got deny, want allow",
		"rules: got [no-refunds], want [other]",
		`message: got "No refunds today.", want it to contain "welcome"`,
		`limit: got "", want "rate/calls_per_minute"`,
	}, nil}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
}

func TestLoadTestsProblems(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // substrings of the error's lines, in order
	}{
		{"policy is required", map[string]string{"t.yaml": "tests: []\n"},
			[]string{"t.yaml:1:1: policy is required"}},
		{"the policy's own problems", map[string]string{"p.yaml": "version: 1\ndefault: sometimes\n", "t.yaml": "policy: p.yaml\ntests: []\n"},
			[]string{`p.yaml:2:10: default "sometimes" is not one of`}},
		{"missing policy file", map[string]string{"t.yaml": "policy: nope.yaml\ntests: []\n"},
			[]string{"couldn't read policy"}},
		{"bad cases", map[string]string{"p.yaml": "version: 1\ndefault: allow\n", "t.yaml": `policy: p.yaml
tests:
  - name: one
    input: {action: {kind: tool_calls}, tool: {name: x, annotations: {destructive: true}}, now: yesterday}
    want: {effect: maybe}
  - name: two
    input: {agent: {nmae: x}, usage: {calls: {week: 3}}}
  - name: three
    input: {}
    want: deny
`},
			[]string{
				`t.yaml:4:28: test "one": input.action.kind "tool_calls" is not an action kind`,
				`t.yaml:4:71: test "one": input.tool.annotations: unknown field "destructive"`,
				`t.yaml:4:97: test "one": input.now must be an RFC 3339 time`,
				`t.yaml:5:20: test "one": want.effect "maybe" is not one of`,
				`t.yaml:7:21: test "two": input.agent: unknown field "nmae"`,
				`t.yaml:7:47: test "two": input.usage.calls: unknown field "week"`,
				`t.yaml:7:12: test "two": input.action.kind is required`,
				`t.yaml:6:5: test "two": want is required`,
				`t.yaml:9:12: test "three": input.action.kind is required`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTestFiles(t, tt.files)
			_, err := policy.LoadTests(filepath.Join(dir, "t.yaml"))
			if err == nil {
				t.Fatal("LoadTests succeeded")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(tt.want) > 1 {
				var ce *policy.CompileError
				if !errors.As(err, &ce) || len(lines) != len(tt.want) {
					t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(tt.want), err)
				}
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
		})
	}
}
