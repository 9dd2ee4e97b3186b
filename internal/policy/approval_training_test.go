package policy_test

import (
	"strings"
	"testing"

	"github.com/vigil-gateway/vigil/internal/policy"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

func TestRequireTraining(t *testing.T) {
	p, err := policy.Compile("t", []byte(`version: 1
default: allow
rules:
  - id: a
    match: {tools: ["pay/*"]}
    effect: require_approval
    approval: {require_training: payments-oversight}
  - id: b
    match: {tools: ["pay/wire"]}
    effect: require_approval
    approval: {require_training: aml-basics, approvers: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	d := p.Evaluate(&vigil.Action{Kind: vigil.ToolCall, Tool: &vigil.Tool{Server: "pay", Name: "wire"}}, nil)
	if d.Approval == nil || d.Approval.RequireTraining != "payments-oversight,aml-basics" || d.Approval.Approvers != 2 {
		t.Errorf("merged approval = %+v; want both trainings and 2 approvers", d.Approval)
	}
	d = p.Evaluate(&vigil.Action{Kind: vigil.ToolCall, Tool: &vigil.Tool{Server: "pay", Name: "refund"}}, nil)
	if d.Approval == nil || d.Approval.RequireTraining != "payments-oversight" {
		t.Errorf("single approval = %+v", d.Approval)
	}
	_, err = policy.Compile("t", []byte("version: 1\ndefault: allow\nrules:\n  - id: c\n    effect: require_approval\n    approval: {require_training: 'a, b'}\n"))
	if err == nil || !strings.Contains(err.Error(), "require_training must name one competence") {
		t.Errorf("two competences in one rule: %v", err)
	}
}
