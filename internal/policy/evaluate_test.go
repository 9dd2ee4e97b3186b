package policy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/vigil-gateway/vigil/internal/policy"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var ignoreElapsed = cmpopts.IgnoreFields(vigil.Decision{}, "Elapsed")

func toolCall(server, name string, args map[string]any) *vigil.Action {
	return &vigil.Action{Kind: vigil.ToolCall,
		Actor: vigil.Actor{Kind: vigil.ActorAgent, ID: "ag-1", Name: "support-bot", SystemName: "helpdesk", SystemID: "sys-1"},
		Tool:  &vigil.Tool{Server: server, Name: name, Annotations: vigil.DefaultToolAnnotations()},
		Args:  args, Time: time.Date(2026, 11, 26, 14, 30, 0, 0, time.UTC)}
}

func modelCall(provider, name string) *vigil.Action {
	return &vigil.Action{Kind: vigil.ModelCall,
		Actor: vigil.Actor{Kind: vigil.ActorAgent, ID: "ag-1", Name: "support-bot", SystemName: "helpdesk", SystemID: "sys-1"},
		Model: &vigil.Model{Provider: provider, Name: name}, Time: time.Date(2026, 11, 26, 14, 30, 0, 0, time.UTC)}
}

const semanticsPolicy = `version: 1
default: allow
rules:
  - id: lookups
    match: {tools: ["crm/get_*"]}
    effect: allow
    message: Lookups are fine.
  - id: destructive
    when: action.kind == "tool_call" && tool.annotations.destructiveHint
    effect: require_approval
  - id: refunds-over-100
    when: tool.name == "refund" && args.amount > 100
    effect: deny
    message: Refunds over 100 go through finance.
  - id: refund-currency
    when: tool.name == "refund" && args.currency != "EUR"
    effect: deny
    on_error: skip
  - id: silent-deny
    match: {tools: ["danger/*"]}
    effect: deny
`

func TestEvaluate(t *testing.T) {
	p := mustCompile(t, semanticsPolicy)
	readOnly := toolCall("crm", "get_customer", nil)
	readOnly.Tool.Annotations = vigil.ToolAnnotations{ReadOnlyHint: true}
	approval := &vigil.ApprovalSpec{Roles: policy.DefaultApprovalRoles, Approvers: 1, Timeout: policy.DefaultApprovalTimeout}
	tests := []struct {
		name   string
		action *vigil.Action
		want   vigil.Decision
	}{
		{"no rule matches: the default decides", modelCall("openai", "gpt-4o"),
			vigil.Decision{Effect: vigil.Allow, Message: "no policy rule matched; the default is allow", Rules: []string{}}},
		{"one allow rule", readOnly,
			vigil.Decision{Effect: vigil.Allow, Message: "Lookups are fine.", Rules: []string{"lookups"}}},
		{"require_approval beats allow", toolCall("crm", "get_history", nil),
			vigil.Decision{Effect: vigil.RequireApproval, Message: "held for human approval by policy rule destructive",
				Rules: []string{"lookups", "destructive"}, Approval: approval}},
		{"deny beats require_approval, and the deny rule's message is given", toolCall("pay", "refund", map[string]any{"amount": 500.0, "currency": "EUR"}),
			vigil.Decision{Effect: vigil.Deny, Message: "Refunds over 100 go through finance.", Rules: []string{"destructive", "refunds-over-100"}}},
		{"a rule whose condition fails counts as deny", toolCall("pay", "refund", map[string]any{"currency": "EUR"}),
			vigil.Decision{Effect: vigil.Deny, Message: "denied: policy rule refunds-over-100 could not be evaluated: no such key: amount",
				Rules:  []string{"destructive", "refunds-over-100"},
				Errors: []vigil.RuleError{{Rule: "refunds-over-100", Error: "no such key: amount"}}}},
		{"on_error: skip leaves the rule out but records why", toolCall("pay", "refund", map[string]any{"amount": 5}),
			vigil.Decision{Effect: vigil.RequireApproval, Message: "held for human approval by policy rule destructive",
				Rules: []string{"destructive"}, Approval: approval,
				Errors: []vigil.RuleError{{Rule: "refund-currency", Error: "no such key: currency", Skipped: true}}}},
		{"a deny without message names its rule", toolCall("danger", "rm", nil),
			vigil.Decision{Effect: vigil.Deny, Message: "denied by policy rule silent-deny", Rules: []string{"destructive", "silent-deny"}}},
		{"first deny of several gives the message", toolCall("pay", "refund", map[string]any{"amount": 500, "currency": "USD"}),
			vigil.Decision{Effect: vigil.Deny, Message: "Refunds over 100 go through finance.", Rules: []string{"destructive", "refunds-over-100", "refund-currency"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Evaluate(tt.action, nil)
			tt.want.Policy = p.Version()
			if diff := cmp.Diff(tt.want, got, ignoreElapsed); diff != "" {
				t.Errorf("Evaluate mismatch (-want +got):\n%s", diff)
			}
			if got.Elapsed <= 0 {
				t.Errorf("Elapsed = %v, want > 0", got.Elapsed)
			}
		})
	}
}

func TestDefaultEffects(t *testing.T) {
	for _, e := range []vigil.Effect{vigil.Allow, vigil.Deny, vigil.RequireApproval} {
		p := mustCompile(t, fmt.Sprintf("version: 1\ndefault: %s\n", e))
		if got := p.Evaluate(modelCall("x", "y"), nil).Effect; got != e {
			t.Errorf("default %s: got %s", e, got)
		}
	}
}

// TestConditionVariables checks every variable and field the schema declares against
// an action that sets them all.
func TestConditionVariables(t *testing.T) {
	rich := toolCall("pay", "refund", map[string]any{"amount": 500.0, "currency": "EUR", "items": []any{"a", "b"}, "n": int64(3)})
	rich.Actor.Labels = map[string]string{"tier": "gold"}
	rich.Tool.Annotations.Title = "Refund"
	rich.PII = vigil.PIISummary{Counts: map[string]int{"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 0}}
	usage := &policy.Usage{
		Agent:  policy.Counters{Calls: policy.Window{Minute: 3, Hour: 30, Day: 300}, Cost: policy.Window{Day: 2_500_000}},
		System: policy.Counters{Tokens: policy.Window{Day: 1000}, ToolCalls: policy.Window{Hour: 7}},
	}
	model := modelCall("openai", "gpt-4o")
	resource := &vigil.Action{Kind: vigil.ResourceRead, Resource: "file:///etc/motd"}
	prompt := &vigil.Action{Kind: vigil.PromptGet, Resource: "summarise"}
	tests := []struct {
		when   string
		action *vigil.Action
		want   bool
	}{
		{`agent.id == "ag-1"`, rich, true},
		{`agent.name.startsWith("support")`, rich, true},
		{`agent.system == "helpdesk"`, rich, true},
		{`agent.labels.tier == "gold"`, rich, true},
		{`"tier" in agent.labels && !("team" in agent.labels)`, rich, true},
		{`action.kind == "tool_call"`, rich, true},
		{`action.kind in ["model_call", "model_response"]`, rich, false},
		{`tool.server == "pay" && tool.name == "refund"`, rich, true},
		{`tool.annotations.title == "Refund"`, rich, true},
		{`tool.annotations.destructiveHint && tool.annotations.openWorldHint`, rich, true},
		{`tool.annotations.readOnlyHint || tool.annotations.idempotentHint`, rich, false},
		{`has(tool.name) && !has(model.name)`, rich, true},
		{`model.name == "" && model.provider == ""`, rich, true},
		{`args.amount > 100 && args.amount == 500`, rich, true},
		{`args.n == 3 && args.n < 3.5`, rich, true},
		{`args.currency == "EUR" && size(args.items) == 2 && "amount" in args`, rich, true},
		{`resource.uri == "" && resource.name == ""`, rich, true},
		{`pii.total == 2 && pii.types == ["EMAIL_ADDRESS"] && pii.counts.EMAIL_ADDRESS == 2`, rich, true},
		{`has(pii.types)`, rich, true},
		{`usage.calls.minute == 3 && usage.calls.hour == 30 && usage.calls.day == 300`, rich, true},
		{`usage.cost.day == 2.5 && usage.cost.minute == 0.0`, rich, true},
		{`usage.tool_calls.hour == 0 && usage.tokens.day == 0`, rich, true},
		{`usage.system.tokens.day == 1000 && usage.system.tool_calls.hour == 7 && usage.system.calls.day == 0`, rich, true},
		{`now == timestamp("2026-11-26T14:30:00Z") && now.getHours() == 14`, rich, true},
		{`model.provider == "openai" && model.name.contains("4o")`, model, true},
		{`tool.annotations.destructiveHint || has(tool.name) || has(tool.annotations)`, model, false},
		{`pii.total == 0 && size(pii.types) == 0 && !has(pii.counts)`, model, true},
		{`resource.uri == "file:///etc/motd" && resource.name == ""`, resource, true},
		{`resource.name == "summarise" && resource.uri == ""`, prompt, true},
		{`agent.name == "" && size(agent.labels) == 0 && size(args) == 0`, prompt, true},
	}
	for _, tt := range tests {
		t.Run(tt.when, func(t *testing.T) {
			// As written, comparisons with literals are lifted out of CEL into the
			// rule's filter; behind "|| false" they are not, so CEL reads every field.
			for _, when := range []string{tt.when, "(" + tt.when + ") || false"} {
				p := mustCompile(t, fmt.Sprintf("version: 1\ndefault: allow\nrules:\n  - id: r\n    when: '%s'\n    effect: deny\n", strings.ReplaceAll(when, "'", "''")))
				d := p.Evaluate(tt.action, usage)
				if len(d.Errors) > 0 {
					t.Fatalf("%s: evaluation failed: %v", when, d.Errors)
				}
				if got := d.Effect == vigil.Deny; got != tt.want {
					t.Errorf("%s is %v, want %v", when, got, tt.want)
				}
			}
		})
	}
}

func TestApprovalsMergeStrictly(t *testing.T) {
	rule := func(id, approval string) string {
		s := fmt.Sprintf("  - id: %s\n    effect: require_approval\n", id)
		if approval != "" {
			s += "    approval: " + approval + "\n"
		}
		return s
	}
	tests := []struct {
		name  string
		rules []string
		want  *vigil.ApprovalSpec
	}{
		{"defaults", []string{rule("a", "")},
			&vigil.ApprovalSpec{Roles: []vigil.Role{vigil.RoleReviewer}, Approvers: 1, Timeout: 10 * time.Minute}},
		{"one spec as written", []string{rule("a", "{roles: [auditor, reviewer], approvers: 3, timeout: 1h}")},
			&vigil.ApprovalSpec{Roles: []vigil.Role{vigil.RoleAuditor, vigil.RoleReviewer}, Approvers: 3, Timeout: time.Hour}},
		{"roles intersect, most approvers, shortest timeout", []string{
			rule("a", "{roles: [reviewer, auditor], approvers: 1, timeout: 30m}"),
			rule("b", "{roles: [auditor, admin], approvers: 2, timeout: 1h}"),
			rule("c", "{roles: [viewer, auditor], approvers: 1, timeout: 5m}"),
		}, &vigil.ApprovalSpec{Roles: []vigil.Role{vigil.RoleAuditor}, Approvers: 2, Timeout: 5 * time.Minute}},
		{"disjoint roles leave admins", []string{
			rule("a", "{roles: [reviewer]}"),
			rule("b", "{roles: [auditor]}"),
		}, &vigil.ApprovalSpec{Roles: []vigil.Role{vigil.RoleAdmin}, Approvers: 1, Timeout: 10 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, "version: 1\ndefault: allow\nrules:\n"+strings.Join(tt.rules, ""))
			d := p.Evaluate(modelCall("x", "y"), nil)
			if d.Effect != vigil.RequireApproval {
				t.Fatalf("effect %s, want require_approval", d.Effect)
			}
			if diff := cmp.Diff(tt.want, d.Approval); diff != "" {
				t.Errorf("approval (-want +got):\n%s", diff)
			}
			// The caller owns what it got: changing it must not change the policy.
			d.Approval.Roles = append(d.Approval.Roles, vigil.RoleViewer)
			if len(d.Approval.Roles) > 0 {
				d.Approval.Roles[0] = "changed"
			}
			d.Rules = append(d.Rules, "changed")
			again := p.Evaluate(modelCall("x", "y"), nil)
			if diff := cmp.Diff(tt.want, again.Approval); diff != "" {
				t.Errorf("after changing a decision, the next one differs (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("deny wins and carries no approval", func(t *testing.T) {
		p := mustCompile(t, "version: 1\ndefault: allow\nrules:\n"+rule("a", "")+"  - id: b\n    effect: deny\n")
		d := p.Evaluate(modelCall("x", "y"), nil)
		if d.Effect != vigil.Deny || d.Approval != nil {
			t.Errorf("got %s with approval %+v, want deny without approval", d.Effect, d.Approval)
		}
	})
}

const limitsPolicy = `version: 1
default: allow
limits:
  - id: rate
    match: {agents: ["support-*"]}
    calls_per_minute: 10
    tool_calls_per_hour: 5
  - id: budget
    per: system
    cost_per_day: 0.5
    tokens_per_day: 1000
    message: the helpdesk spent today's budget
`

func TestLimits(t *testing.T) {
	p := mustCompile(t, limitsPolicy)
	other := modelCall("x", "y")
	other.Actor.Name = "marketing-bot"
	response := modelCall("x", "y")
	response.Kind = vigil.ModelResponse
	tests := []struct {
		name      string
		action    *vigil.Action
		usage     policy.Usage
		effect    vigil.Effect
		limit     string
		message   string
		rulesNone bool
	}{
		{"under every limit", modelCall("x", "y"), policy.Usage{Agent: policy.Counters{Calls: policy.Window{Minute: 9}}}, vigil.Allow, "", "", false},
		{"at the per-minute limit", modelCall("x", "y"), policy.Usage{Agent: policy.Counters{Calls: policy.Window{Minute: 10}}},
			vigil.Deny, "rate/calls_per_minute", "limit reached: 10 calls per minute per agent (limit rate)", true},
		{"scope: another agent has no rate limit", other, policy.Usage{Agent: policy.Counters{Calls: policy.Window{Minute: 50}}}, vigil.Allow, "", "", false},
		{"tool-call limit ignores model calls", modelCall("x", "y"), policy.Usage{Agent: policy.Counters{ToolCalls: policy.Window{Hour: 5}}}, vigil.Allow, "", "", false},
		{"tool-call limit stops tool calls", toolCall("s", "t", nil), policy.Usage{Agent: policy.Counters{ToolCalls: policy.Window{Hour: 5}}},
			vigil.Deny, "rate/tool_calls_per_hour", "5 tool calls per hour", true},
		{"cost under a fractional budget", modelCall("x", "y"), policy.Usage{System: policy.Counters{Cost: policy.Window{Day: 499_999}}}, vigil.Allow, "", "", false},
		{"cost at a fractional budget, custom message", modelCall("x", "y"), policy.Usage{System: policy.Counters{Cost: policy.Window{Day: 500_000}}},
			vigil.Deny, "budget/cost_per_day", "limit reached: the helpdesk spent today's budget", true},
		{"per system: the agent's own spend does not count", modelCall("x", "y"), policy.Usage{Agent: policy.Counters{Tokens: policy.Window{Day: 5000}}}, vigil.Allow, "", "", false},
		{"per system tokens", modelCall("x", "y"), policy.Usage{System: policy.Counters{Tokens: policy.Window{Day: 1000}}}, vigil.Deny, "budget/tokens_per_day", "", true},
		{"responses are never limited", response, policy.Usage{System: policy.Counters{Tokens: policy.Window{Day: 1000}}}, vigil.Allow, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Evaluate(tt.action, &tt.usage)
			if d.Effect != tt.effect || d.Limit != tt.limit {
				t.Errorf("got %s (limit %q), want %s (limit %q)", d.Effect, d.Limit, tt.effect, tt.limit)
			}
			if !strings.Contains(d.Message, tt.message) {
				t.Errorf("message %q, want it to contain %q", d.Message, tt.message)
			}
			if tt.rulesNone && (d.Rules == nil || len(d.Rules) != 0) {
				t.Errorf("Rules = %#v, want an empty list", d.Rules)
			}
		})
	}
}

func TestRulesIsNeverNil(t *testing.T) {
	p := mustCompile(t, "version: 1\ndefault: deny\n")
	if d := p.Evaluate(modelCall("x", "y"), nil); d.Rules == nil {
		t.Error("Rules is nil; the decision API promises a list")
	}
}
