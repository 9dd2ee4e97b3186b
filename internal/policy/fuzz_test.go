package policy_test

import (
	"errors"
	"os"
	"testing"

	"github.com/vigil-gateway/vigil/internal/policy"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// fuzzActions are evaluated by every policy the loader fuzzer manages to compile.
var fuzzActions = []*vigil.Action{
	toolCall("pay", "refund", map[string]any{"amount": 500.0, "currency": "EUR"}),
	toolCall("crm", "get_customer", nil),
	modelCall("openai", "gpt-4o"),
	{Kind: vigil.ResourceRead, Resource: "file:///x"},
	{Kind: "unheard_of"},
}

// FuzzCompile feeds arbitrary bytes to the loader: it must return a policy or a
// *CompileError with at least one problem, never panic; a policy it returns must
// decide every action with a valid effect.
func FuzzCompile(f *testing.F) {
	for _, path := range []string{"../../examples/policy.yaml"} {
		if b, err := os.ReadFile(path); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{semanticsPolicy, limitsPolicy, rateLimited,
		"version: 1\ndefault: allow\nrules:\n  - id: a\n    when: |\n      args.x.y[3] > now\n    effect: deny\n",
		"version: 1\ndefault: deny\nrules: &r [{id: a, effect: allow}]\nlimits: *r\n",
		"version: 1\ndefault: allow\nrules:\n  - id: a\n    when: '[1,2,3].map(x, x * args.n).exists(y, y > 2)'\n    effect: deny\n    on_error: skip\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := policy.Compile("fuzz.yaml", src)
		if err != nil {
			var ce *policy.CompileError
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("error %v (%T) is not a CompileError with problems", err, err)
			}
			return
		}
		u := &policy.Usage{Agent: policy.Counters{Calls: policy.Window{Minute: 3}}}
		for _, a := range fuzzActions {
			if d := p.Evaluate(a, u); !d.Effect.Valid() || d.Policy != p.Version() || d.Rules == nil {
				t.Fatalf("decision %+v is not valid", d)
			}
		}
	})
}

// FuzzEvaluate decides arbitrary actions against a policy that reads every variable:
// whatever the action holds, the decision is valid and nothing panics.
func FuzzEvaluate(f *testing.F) {
	p, err := policy.LoadFile("../../examples/policy.yaml")
	if err != nil {
		f.Fatal(err)
	}
	extra := mustCompile(f, `version: 1
default: allow
rules:
  - id: everything
    when: |
      agent.labels.tier == "x" || args.amount > 3 || pii.counts.EMAIL_ADDRESS > 1 ||
      size(args.items) > 2 || resource.uri.startsWith(args.prefix) || usage.tokens.day > args.n ||
      tool.annotations.title.matches(args.re) || string(args.amount).size() > 3
    effect: deny
  - id: skipped
    when: args.x / args.y > 1
    effect: require_approval
    on_error: skip
`)
	f.Add("tool_call", "support-bot", "pay", "refund", "gpt-4o", "amount", "500", int64(2), 3.5, true)
	f.Add("model_call", "", "", "", "", "re", "[", int64(0), 0.0, false)
	f.Add("resource_read", "x", "y", "z", "w", "prefix", "file://", int64(-1), -1e300, true)
	f.Fuzz(func(t *testing.T, kind, agent, server, tool, model, key, s string, n int64, x float64, b bool) {
		a := &vigil.Action{Kind: vigil.ActionKind(kind),
			Actor: vigil.Actor{Name: agent, Labels: map[string]string{key: s}},
			Args:  map[string]any{key: s, "amount": x, "n": n, "y": n, "x": x, "items": []any{s, n, x, b}, "b": b},
			PII:   vigil.PIISummary{Counts: map[string]int{key: int(n % 7)}}, Resource: s}
		if server != "" || tool != "" {
			a.Tool = &vigil.Tool{Server: server, Name: tool, Annotations: vigil.ToolAnnotations{Title: s, DestructiveHint: b}}
		}
		if model != "" {
			a.Model = &vigil.Model{Name: model}
		}
		u := &policy.Usage{Agent: policy.Counters{Tokens: policy.Window{Day: n}, Cost: policy.Window{Day: n}}}
		for _, p := range []*policy.Policy{p, extra} {
			d := p.Evaluate(a, u)
			if !d.Effect.Valid() || d.Rules == nil || d.Message == "" && d.Effect != vigil.Allow {
				t.Fatalf("decision %+v is not valid", d)
			}
			for _, e := range d.Errors {
				if e.Rule == "" {
					t.Fatalf("internal failure: %v", e.Error)
				}
			}
		}
	})
}
