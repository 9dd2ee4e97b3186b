package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// plainCEL evaluates a condition without guard lifting or folding: the reference that
// the compiled rule must agree with. It returns "true", "false" or "error".
func plainCEL(t *testing.T, expr string, a *vigil.Action) string {
	t.Helper()
	env := theSchema().env
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		t.Fatal(iss.Err())
	}
	prg, err := env.Program(ast)
	if err != nil {
		t.Fatal(err)
	}
	act := newActivation(a, &noUsage, a.Time)
	defer act.free()
	out, _, err := prg.Eval(act)
	if err != nil {
		return "error"
	}
	return fmt.Sprint(out == types.True)
}

// TestGuardsAgreeWithCEL checks that lifting comparisons out of conditions into the
// filter, and removing them from the program, changes no outcome, errors included.
func TestGuardsAgreeWithCEL(t *testing.T) {
	conditions := []string{
		`tool.name == "refund"`,
		`tool.name == "refund" && args.amount > 100`,
		`"refund" == tool.name && tool.server == "pay" && args.amount > 100`,
		`action.kind == "tool_call" && tool.annotations.destructiveHint`,
		`action.kind in ["model_call", "tool_call"] && args.amount > 100`,
		`model.provider == "openai" && model.name == "gpt-4o"`,
		`agent.name == "support-bot" && agent.system == "helpdesk" && agent.id == "ag-1"`,
		`resource.uri == "file:///a" || resource.name == "p"`,
		`resource.uri == "" && resource.name == ""`,
		`tool.name == "" && action.kind == "model_call"`,
		`(tool.name == "refund" && args.amount > 100) && model.name == ""`,
		`tool.name == "refund" || args.amount > 100`,
		`tool.name != "refund" && args.amount > 100`,
		`tool.name in ["refund", "charge"] && args.amount > 100`,
	}
	at := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	actor := vigil.Actor{ID: "ag-1", Name: "support-bot", SystemName: "helpdesk"}
	actions := []*vigil.Action{
		{Kind: vigil.ToolCall, Actor: actor, Time: at, Tool: &vigil.Tool{Server: "pay", Name: "refund"}, Args: map[string]any{"amount": 500}},
		{Kind: vigil.ToolCall, Actor: actor, Time: at, Tool: &vigil.Tool{Server: "pay", Name: "refund"}},
		{Kind: vigil.ToolCall, Actor: actor, Time: at, Tool: &vigil.Tool{Server: "crm", Name: "charge", Annotations: vigil.DefaultToolAnnotations()}, Args: map[string]any{"amount": 5.0}},
		{Kind: vigil.ModelCall, Actor: actor, Time: at, Model: &vigil.Model{Provider: "openai", Name: "gpt-4o"}},
		{Kind: vigil.ModelCall, Time: at, Model: &vigil.Model{Name: "x"}, Args: map[string]any{"amount": 101}},
		{Kind: vigil.ResourceRead, Time: at, Resource: "file:///a"},
		{Kind: vigil.PromptGet, Time: at, Resource: "p"},
	}
	for _, cond := range conditions {
		p, err := Compile("p.yaml", []byte(fmt.Sprintf("version: 1\ndefault: allow\nrules:\n  - id: r\n    when: '%s'\n    effect: deny\n", strings.ReplaceAll(cond, "'", "''"))))
		if err != nil {
			t.Fatalf("%s: %v", cond, err)
		}
		for i, a := range actions {
			want := plainCEL(t, cond, a)
			d := p.Evaluate(a, nil)
			got := fmt.Sprint(d.Effect == vigil.Deny)
			if len(d.Errors) > 0 {
				got = "error"
			}
			if got != want {
				t.Errorf("%s on action %d: compiled rule says %s, plain CEL says %s", cond, i, got, want)
			}
		}
	}
}

// TestGuardsLeaveNothingToRun checks that a condition made only of liftable comparisons
// runs no CEL at all, and that other conditions keep a program.
func TestGuardsLeaveNothingToRun(t *testing.T) {
	for cond, wantProgram := range map[string]bool{
		`action.kind == "tool_call" && tool.name == "refund"`: false,
		`tool.server == "pay"`:                                false,
		`true`:                                                false,
		`tool.name == "refund" && args.amount > 100`:          true,
		`tool.name == "refund" || tool.name == "charge"`:      true,
	} {
		p, err := Compile("p.yaml", []byte(fmt.Sprintf("version: 1\ndefault: allow\nrules:\n  - id: r\n    when: '%s'\n    effect: deny\n", cond)))
		if err != nil {
			t.Fatalf("%s: %v", cond, err)
		}
		if got := p.rules[0].prg != nil; got != wantProgram {
			t.Errorf("%s: has a program = %v, want %v", cond, got, wantProgram)
		}
	}
}

func TestUsageNeeded(t *testing.T) {
	for src, want := range map[string]bool{
		"version: 1\ndefault: allow\n": false,
		"version: 1\ndefault: allow\nrules:\n  - id: r\n    when: tool.name == 'x'\n    effect: deny\n":       false,
		"version: 1\ndefault: allow\nrules:\n  - id: r\n    when: usage.calls.minute > 3\n    effect: deny\n": true,
		"version: 1\ndefault: allow\nlimits:\n  - id: l\n    calls_per_day: 3\n":                              true,
	} {
		p, err := Compile("p.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if p.needsUsage != want {
			t.Errorf("needsUsage = %v, want %v for\n%s", p.needsUsage, want, src)
		}
	}
}
