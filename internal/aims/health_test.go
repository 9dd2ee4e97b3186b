package aims_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/aims"
	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// approvalEnv is a management system with a real approval queue on the same ledger
// and clock, and one agent to raise requests for.
type approvalEnv struct {
	*env
	queue *oversight.Service
	agent vigil.Actor
	h     *aims.Health
}

func newApprovalEnv(t *testing.T) *approvalEnv {
	t.Helper()
	e := newEnv(t, aims.Options{ApprovalSLA: time.Hour})
	q, err := oversight.New(oversight.Options{Store: e.db.Oversight(), Ledger: e.log, Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	a, sys, _, err := e.inv.CreateAgent(context.Background(), admin, inventoryAgent("refunder", "payments"))
	if err != nil {
		t.Fatal(err)
	}
	return &approvalEnv{env: e, queue: q, h: &aims.Health{Service: e.svc, Ledger: e.db.Ledger()},
		agent: vigil.Actor{Kind: vigil.ActorAgent, ID: a.ID, Name: a.Name, SystemID: sys.ID, SystemName: sys.Name}}
}

// hold raises an approval request that waits at most timeout for approvers people.
func (e *approvalEnv) hold(t *testing.T, timeout time.Duration, approvers int) oversight.Request {
	t.Helper()
	r, err := e.queue.Create(context.Background(), oversight.NewRequest{
		Source: oversight.SourceDecisionAPI, Agent: e.agent, Tool: &vigil.Tool{Server: "payments", Name: "refund"},
		Decision: vigil.Decision{Effect: vigil.RequireApproval, Rules: []string{"refunds-need-a-human"},
			Approval: &vigil.ApprovalSpec{Roles: []vigil.Role{vigil.RoleReviewer}, Approvers: approvers, Timeout: timeout}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *approvalEnv) approve(t *testing.T, reviewer string, id string) error {
	t.Helper()
	_, err := e.queue.Decide(context.Background(), vigil.Actor{Kind: vigil.ActorUser, Name: reviewer, Roles: []vigil.Role{vigil.RoleReviewer}}, id, oversight.Decision{Verdict: oversight.Approve})
	return err
}

// evaluate runs the checks once and returns the results by check.
func evaluate(t *testing.T, h *aims.Health) map[string]aims.HealthResult {
	t.Helper()
	rs, err := h.Evaluate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]aims.HealthResult{}
	for _, r := range rs {
		m[r.Check] = r
	}
	if len(m) != len(aims.Checks) {
		t.Fatalf("%d results, want %d", len(m), len(aims.Checks))
	}
	return m
}

func (e *approvalEnv) slaCheck(t *testing.T) aims.HealthResult {
	t.Helper()
	return evaluate(t, e.h)[aims.CheckApprovalSLA]
}

func TestApprovalSLACheck(t *testing.T) {
	t.Run("an approval that expired unanswered fails", func(t *testing.T) {
		e := newApprovalEnv(t)
		r := e.hold(t, 3*time.Second, 1)
		e.now = e.now.Add(4 * time.Second)
		// A reviewer arriving too late finds it expired (and the expiry is recorded).
		if err := e.approve(t, "rita", r.ID); vigil.ErrorCode(err) != vigil.ECONFLICT {
			t.Fatalf("late approval: %v, want a conflict", err)
		}
		got := e.slaCheck(t)
		if got.Pass {
			t.Fatalf("an expired approval passed the SLA check: %s", got.Detail)
		}
		for _, want := range []string{"1 of 1 approvals", "1 expired with no decision", "longest wait 4s"} {
			if !strings.Contains(got.Detail, want) {
				t.Errorf("detail %q does not say %q", got.Detail, want)
			}
		}
	})
	t.Run("a pending approval older than the SLA fails", func(t *testing.T) {
		e := newApprovalEnv(t)
		e.hold(t, 3*time.Hour, 1)
		e.now = e.now.Add(30 * time.Minute)
		if got := e.slaCheck(t); !got.Pass || !strings.Contains(got.Detail, "1 still pending within it") {
			t.Errorf("pending within the SLA = %+v, want a pass saying it is pending", got)
		}
		e.now = e.now.Add(time.Hour)
		got := e.slaCheck(t)
		if got.Pass || !strings.Contains(got.Detail, "1 still pending past the SLA") || !strings.Contains(got.Detail, "longest wait 1h30m") {
			t.Errorf("pending past the SLA = %+v, want a failure naming it and its wait", got)
		}
	})
	t.Run("one vote of two does not answer; decisions in time pass", func(t *testing.T) {
		e := newApprovalEnv(t)
		two := e.hold(t, 2*time.Hour, 2)
		one := e.hold(t, 2*time.Hour, 1)
		e.now = e.now.Add(10 * time.Minute)
		if err := e.approve(t, "rita", two.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.approve(t, "rita", one.ID); err != nil {
			t.Fatal(err)
		}
		e.now = e.now.Add(20 * time.Minute)
		if err := e.approve(t, "sam", two.ID); err != nil {
			t.Fatal(err)
		}
		got := e.slaCheck(t)
		if !got.Pass || !strings.Contains(got.Detail, "2 approvals requested") || !strings.Contains(got.Detail, "longest wait 30m0s") {
			t.Errorf("decided in time = %+v, want a pass with the 30m wait of the two-person approval", got)
		}
	})
	t.Run("a decision after the SLA fails", func(t *testing.T) {
		e := newApprovalEnv(t)
		r := e.hold(t, 3*time.Hour, 1)
		e.now = e.now.Add(2 * time.Hour)
		if err := e.approve(t, "rita", r.ID); err != nil {
			t.Fatal(err)
		}
		got := e.slaCheck(t)
		if got.Pass || !strings.Contains(got.Detail, "1 decided or cancelled late") {
			t.Errorf("late decision = %+v, want a failure", got)
		}
	})
}

func TestAgentsCheckNamesEachFlagOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, aims.Options{})
	// "s" has no management-system record; its agents use two models and a tool, so
	// its use is in several aggregates, each of which showed the same flag before.
	a, sys, _, err := e.inv.CreateAgent(ctx, admin, inventoryAgent("bot", "s"))
	if err != nil {
		t.Fatal(err)
	}
	b, _, _, err := e.inv.CreateAgent(ctx, admin, inventoryAgent("bot-2", "s"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []aims.Observation{
		{AgentID: a.ID, SystemID: sys.ID, Provider: "openai", Model: "fake-gpt"},
		{AgentID: a.ID, SystemID: sys.ID, Provider: "anthropic", Model: "fake-claude"},
		{AgentID: b.ID, SystemID: sys.ID, Server: "tickets", Tool: "add_comment", Count: 3},
	} {
		if err := e.svc.ReportUsage(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	entries, _, err := e.svc.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if en.System.Name != "s" {
			continue
		}
		if len(en.Flags) != 1 || en.Flags[0].Kind != aims.FlagUnclassified || en.Flags[0].Count != 5 {
			t.Errorf("flags of s = %+v, want one unclassified_system flag counting all 5 uses", en.Flags)
		}
	}
	h := &aims.Health{Service: e.svc, Ledger: e.db.Ledger()}
	r := evaluate(t, h)[aims.CheckAgentsThroughVigil]
	if r.Pass || strings.Count(r.Detail, "traffic from a system with no management-system record") != 1 || !strings.Contains(r.Detail, "1 flags from traffic") {
		t.Errorf("detail = %q, want the flag once", r.Detail)
	}
}

func TestFreshInstallOpensNoIncidentUntilTheSetupGrace(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, aims.Options{Auto: aims.AutoIncidents{HealthCheck: true, SetupGrace: 7 * 24 * time.Hour}, NeverSeenGrace: time.Hour})
	// What a fresh vigil serve has: a verified ledger, the policy engine and PII
	// settings wired, no management-system records.
	if err := e.svc.RecordVerification(ctx, aims.Verification{OK: true, Size: 1, Summary: "intact", Method: "test"}); err != nil {
		t.Fatal(err)
	}
	h := &aims.Health{Service: e.svc, Ledger: e.db.Ledger(),
		PII: piiModes{"openai": "tokenize"}, Policy: policyState{aims.PolicyState{Hash: "sha256:abc", Compiled: true}}}
	evaluate := func() map[string]aims.HealthResult { t.Helper(); return evaluate(t, h) }
	open := func() []string {
		t.Helper()
		incs, err := e.svc.Incidents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, i := range incs {
			if i.Incident.Status == "open" {
				out = append(out, i.Incident.Title)
			}
		}
		return out
	}

	r := evaluate()
	if review := r[aims.CheckPolicyReview]; review.Pass || !strings.Contains(review.Detail, "no AI policy is recorded") || !strings.Contains(review.Detail, "setup grace") {
		t.Errorf("fresh install policy review = %+v, want a failure saying no incident opens yet", review)
	}
	if got := open(); len(got) != 0 {
		t.Errorf("a fresh install opened incidents: %v", got)
	}

	// A check that passed and then fails is a real failure: an incident at once.
	if !r[aims.CheckPIIMasking].Pass {
		t.Fatalf("PII check = %+v", r[aims.CheckPIIMasking])
	}
	h.PII = piiModes{"openai": "off"}
	e.now = e.now.Add(time.Minute)
	evaluate()
	if got := open(); len(got) != 1 || !strings.Contains(got[0], aims.CheckPIIMasking) {
		t.Errorf("after masking was switched off, open incidents = %v; want one for %s", got, aims.CheckPIIMasking)
	}

	// A check that never passed opens one once the grace is over.
	e.now = testNow.Add(7*24*time.Hour + time.Second)
	if err := e.svc.RecordVerification(ctx, aims.Verification{OK: true, Size: 1, Summary: "intact", Method: "test"}); err != nil {
		t.Fatal(err)
	}
	r = evaluate()
	if strings.Contains(r[aims.CheckPolicyReview].Detail, "setup grace") {
		t.Errorf("after the grace the detail still mentions it: %q", r[aims.CheckPolicyReview].Detail)
	}
	found := false
	for _, title := range open() {
		found = found || strings.Contains(title, aims.CheckPolicyReview)
	}
	if !found {
		t.Errorf("no incident for %s after the setup grace: %v", aims.CheckPolicyReview, open())
	}
}
