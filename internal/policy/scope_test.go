package policy

import (
	"fmt"
	"path"
	"testing"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

func TestPatterns(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"refund", "refund", true},
		{"refund", "refunds", false},
		{"*", "", true},
		{"*", "anything/at all", true},
		{"support-*", "support-bot", true},
		{"support-*", "support-", true},
		{"support-*", "xsupport-bot", false},
		{"*-bot", "support-bot", true},
		{"*-bot", "support-bots", false},
		{"get_*_by_id", "get_customer_by_id", true},
		{"get_*_by_id", "get_customer_by_ids", false},
		{"a*b*c", "abbbc", true},
		{"a*b*c", "acb", false},
		{"a*b*c", "aXbYbZc", true},
		{"gpt-4?", "gpt-4o", true},
		{"gpt-4?", "gpt-4", false},
		{"gpt-4?", "gpt-4oo", false},
		{"?", "é", true}, // one character, not one byte
		{"*?", "", false},
		{"**", "x", true},
		{"a*", "", false},
	}
	for _, tt := range tests {
		p := compilePattern(tt.pattern)
		if got := p.match(tt.s); got != tt.want {
			t.Errorf("%q matches %q = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
		if p.op != opGlob {
			// The shortcut must agree with the general matcher.
			if g := globMatch(tt.pattern, tt.s); g != tt.want {
				t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.s, g, tt.want)
			}
		}
	}
}

// FuzzGlobAgreesWithPathMatch checks globMatch against path.Match on inputs without
// "/" (where path.Match's "*" is also "any run of characters") and without the syntax
// only path.Match has.
func FuzzGlobAgreesWithPathMatch(f *testing.F) {
	for _, s := range [][2]string{{"a*b", "axxb"}, {"*?x", "yx"}, {"??", "ab"}, {"*a*a*", "banana"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		for _, r := range pattern + s {
			if r == '/' || r == '[' || r == '\\' || r == ']' || r == '-' || r == '^' {
				return
			}
		}
		want, err := path.Match(pattern, s)
		if err != nil {
			return
		}
		if got := globMatch(pattern, s); got != want {
			t.Errorf("globMatch(%q, %q) = %v, path.Match says %v", pattern, s, got, want)
		}
		p := compilePattern(pattern)
		if got := p.match(s); got != want {
			t.Errorf("pattern %q (op %d) matches %q = %v, path.Match says %v", pattern, p.op, s, got, want)
		}
	})
}

func TestScopes(t *testing.T) {
	agent := vigil.Actor{Kind: vigil.ActorAgent, ID: "ag-1", Name: "support-bot", SystemName: "helpdesk"}
	tool := &vigil.Action{Kind: vigil.ToolCall, Actor: agent, Tool: &vigil.Tool{Server: "pay", Name: "refund"}}
	model := &vigil.Action{Kind: vigil.ModelCall, Actor: agent, Model: &vigil.Model{Provider: "openai", Name: "gpt-4o"}}
	res := &vigil.Action{Kind: vigil.ResourceRead, Actor: agent, Resource: "file:///srv/kb/faq.md"}
	tests := []struct {
		match  string
		action *vigil.Action
		want   bool
	}{
		{"{tools: [refund]}", tool, true},
		{"{tools: [pay/refund]}", tool, true},
		{"{tools: ['pay/*']}", tool, true},
		{"{tools: ['*/refund']}", tool, true},
		{"{tools: [bank/refund]}", tool, false},
		{"{tools: [other, 'pay/ref*']}", tool, true},
		{"{tools: ['*']}", model, false}, // a model call has no tool
		{"{servers: [pay]}", tool, true},
		{"{servers: ['*']}", model, false},
		{"{models: ['gpt-4*'], providers: [openai]}", model, true},
		{"{models: ['gpt-4*'], providers: [azure]}", model, false},
		{"{models: ['*']}", tool, false},
		{"{agents: ['support-*'], systems: [helpdesk]}", tool, true},
		{"{agents: ['support-*'], systems: [sales]}", tool, false},
		{"{kinds: [model_call, tool_call]}", tool, true},
		{"{kinds: [model_call]}", tool, false},
		{"{resources: ['file:///srv/kb/*']}", res, true},
		{"{resources: ['*']}", tool, false},
		{"{agents: ['*'], kinds: [resource_read], resources: ['*.md']}", res, true},
	}
	for _, tt := range tests {
		t.Run(tt.match, func(t *testing.T) {
			src := fmt.Sprintf("version: 1\ndefault: allow\nrules:\n  - id: r\n    match: %s\n    effect: deny\n", tt.match)
			p, err := Compile("p.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Evaluate(tt.action, nil).Effect == vigil.Deny; got != tt.want {
				t.Errorf("match %s on %s = %v, want %v", tt.match, tt.action.Kind, got, tt.want)
			}
		})
	}
}
