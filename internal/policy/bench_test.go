package policy_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/policy"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// mixedPolicy returns a policy of n rules shaped like real ones: most are scoped to a
// tool, model or agent (by `match:` or by comparisons that get lifted out of CEL); one
// in seven runs CEL on every tool call and one in seven on every model call. It ends
// with two limits.
func mixedPolicy(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\ndefault: allow\nrules:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: r%d\n", i)
		switch i % 7 {
		case 0:
			fmt.Fprintf(&b, "    match: {tools: [\"srv%d/tool%d\"]}\n    when: args.amount > %d\n    effect: deny\n", i%20, i, i)
		case 1:
			fmt.Fprintf(&b, "    when: tool.name == \"tool%d\" && args.amount > 100\n    effect: deny\n", i)
		case 2:
			fmt.Fprintf(&b, "    match: {models: [\"model-%d*\"]}\n    effect: allow\n", i)
		case 3:
			fmt.Fprintf(&b, "    match: {agents: [\"team%d-*\"]}\n    when: tool.annotations.destructiveHint\n    effect: require_approval\n", i)
		case 4:
			fmt.Fprintf(&b, "    when: action.kind == \"tool_call\" && pii.total > %d\n    effect: deny\n", i%5+3)
		case 5:
			fmt.Fprintf(&b, "    when: action.kind == \"model_call\" && usage.calls.minute > %d\n    effect: deny\n", 1000+i)
		case 6:
			fmt.Fprintf(&b, "    match: {resources: [\"file:///srv/%d/*\"]}\n    effect: deny\n", i)
		}
	}
	b.WriteString("limits:\n  - id: rate\n    match: {agents: [\"support-*\"]}\n    calls_per_minute: 1000000\n" +
		"  - id: budget\n    per: system\n    cost_per_day: 100000\n")
	return b.String()
}

// allCELPolicy returns n rules that each run CEL on every action: the worst case.
func allCELPolicy(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\ndefault: allow\nrules:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: r%d\n    when: args.amount > %d || tool.annotations.title == \"t%d\"\n    effect: deny\n", i, 100000+i, i)
	}
	return b.String()
}

func benchAction() vigil.Action {
	return vigil.Action{Kind: vigil.ToolCall,
		Actor: vigil.Actor{Kind: vigil.ActorAgent, ID: "ag-1", Name: "support-bot", SystemID: "sys-1", SystemName: "helpdesk"},
		Tool:  &vigil.Tool{Server: "srv3", Name: "tool3", Annotations: vigil.DefaultToolAnnotations()},
		Args:  map[string]any{"amount": 50.0, "order": "A-1001"},
		PII:   vigil.PIISummary{Counts: map[string]int{"EMAIL_ADDRESS": 1}},
		Time:  time.Date(2026, 11, 26, 14, 30, 0, 0, time.UTC)}
}

var ruleCounts = []int{10, 100, 1000}

// BenchmarkEvaluate measures Policy.Evaluate alone (no usage metering).
func BenchmarkEvaluate(b *testing.B) {
	for _, shape := range []struct {
		name string
		gen  func(int) string
	}{{"mixed", mixedPolicy}, {"allCEL", allCELPolicy}} {
		for _, n := range ruleCounts {
			b.Run(fmt.Sprintf("%s/rules=%d", shape.name, n), func(b *testing.B) {
				p := mustCompile(b, shape.gen(n))
				a := benchAction()
				u := &policy.Usage{}
				if d := p.Evaluate(&a, u); d.Effect != vigil.Allow {
					b.Fatalf("benchmark action decided %s (%v), want allow: every rule must be looked at", d.Effect, d.Rules)
				}
				b.ReportAllocs()
				for b.Loop() {
					p.Evaluate(&a, u)
				}
			})
		}
	}
}

func benchEngine(b *testing.B, rules int) (*policy.Engine, context.Context, vigil.Action) {
	e := policy.New(policy.Options{})
	if err := e.Activate(context.Background(), mustCompile(b, mixedPolicy(rules)), "bench"); err != nil {
		b.Fatal(err)
	}
	return e, context.Background(), benchAction()
}

// BenchmarkDecide measures Engine.Decide: evaluation plus usage metering (in memory;
// the store is only touched by Flush, in the background).
func BenchmarkDecide(b *testing.B) {
	for _, n := range ruleCounts {
		b.Run(fmt.Sprintf("mixed/rules=%d", n), func(b *testing.B) {
			e, ctx, a := benchEngine(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Decide(ctx, a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecideLatency reports the distribution of single Decide calls: p50, p99
// and p99.9 in nanoseconds, measured call by call.
func BenchmarkDecideLatency(b *testing.B) {
	for _, n := range ruleCounts {
		b.Run(fmt.Sprintf("mixed/rules=%d", n), func(b *testing.B) {
			e, ctx, a := benchEngine(b, n)
			lat := make([]time.Duration, 0, 1<<20)
			for b.Loop() {
				start := time.Now()
				if _, err := e.Decide(ctx, a); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			at := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Nanoseconds()) }
			b.ReportMetric(at(0.50), "p50-ns")
			b.ReportMetric(at(0.99), "p99-ns")
			b.ReportMetric(at(0.999), "p99.9-ns")
		})
	}
}

// BenchmarkCompile measures compiling a policy (done at start and on reload only).
func BenchmarkCompile(b *testing.B) {
	src := []byte(mixedPolicy(100))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := policy.Compile("bench.yaml", src); err != nil {
			b.Fatal(err)
		}
	}
}
