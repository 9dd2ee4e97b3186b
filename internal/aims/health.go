package aims

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// The control health checks (clause 9.1), in the order they are shown.
const (
	CheckLedgerVerified     = "ledger_verified"
	CheckAgentsThroughVigil = "agents_only_through_vigil"
	CheckPolicyLive         = "policy_live"
	CheckApprovalSLA        = "approvals_within_sla"
	CheckPIIMasking         = "pii_masking_every_route"
	CheckPolicyReview       = "ai_policy_review"
	CheckHighRiskAssessed   = "high_risk_assessed"
)

// Checks lists the checks with what each one asks.
var Checks = []struct{ Name, Question string }{
	{CheckLedgerVerified, "Was the ledger verified, and did it pass, within the last 24 hours?"},
	{CheckAgentsThroughVigil, "Is every registered agent seen through Vigil, with no traffic from unregistered sources or unapproved models?"},
	{CheckPolicyLive, "Does the live policy compile, and is it not in a failing state?"},
	{CheckApprovalSLA, "Were approvals answered by a person within their SLA?"},
	{CheckPIIMasking, "Is PII masking on for every route?"},
	{CheckPolicyReview, "Is every AI policy reviewed on time?"},
	{CheckHighRiskAssessed, "Does every high-risk system have a current risk and impact assessment?"},
}

// LedgerVerifier verifies the whole ledger. The ledger's verifier satisfies it
// through a small adapter in cmd/vigil. VerifyLedger reports what it found in the
// Verification (OK false for a tampered ledger); the error is for failing to run.
type LedgerVerifier interface {
	VerifyLedger(ctx context.Context) (Verification, error)
}

// PolicyState is what the policy engine says of the live policy.
type PolicyState struct {
	Hash     string `json:"hash"`
	Compiled bool   `json:"compiled"`
	// Failing is set while evaluation keeps erroring (rules failing closed).
	Failing bool   `json:"failing"`
	Error   string `json:"error,omitempty"`
}

// PolicyEngine reports the live policy's state. The policy engine satisfies it.
type PolicyEngine interface {
	PolicyState(ctx context.Context) (PolicyState, error)
}

// PIISettings reports the PII masking mode in force for every route (route name →
// mode: off, redact, mask, hash, tokenize, block). The PII/enforce wiring satisfies it.
type PIISettings interface {
	MaskingByRoute(ctx context.Context) (map[string]string, error)
}

// RecordVerification stores a ledger verification run and records it in the ledger;
// a failed run raises the ledger-verification signal. The ledger verifier (or the
// runner) calls it after each run.
func (s *Service) RecordVerification(ctx context.Context, v Verification) error {
	if v.At.IsZero() {
		v.At = s.now()
	}
	v.At = v.At.UTC().Truncate(time.Microsecond)
	if err := s.Store.AppendVerification(ctx, v); err != nil {
		return fmt.Errorf("couldn't store verification result: %w", err)
	}
	if _, err := s.record(ctx, aimsActor, EventVerification, "", map[string]string{
		"ok": fmt.Sprint(v.OK), "size": fmt.Sprint(v.Size), "checkpoint": fmt.Sprint(v.Checkpoint), "method": v.Method,
	}); err != nil {
		return err
	}
	if !v.OK {
		if _, _, err := s.LedgerVerificationFailed(ctx, v.Summary); err != nil {
			return err
		}
	}
	return nil
}

// LastVerification returns the newest verification within maxAge of now.
func (s *Service) LastVerification(ctx context.Context, maxAge time.Duration) (*Verification, error) {
	now := s.now()
	vs, err := s.Store.Verifications(ctx, now.Add(-maxAge), now.Add(time.Second))
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, nil
	}
	return &vs[len(vs)-1], nil
}

// Health evaluates the control health checks and watches the ledger for automatic
// incident signals. Nil sources fail their checks closed: what Vigil cannot see it
// does not vouch for.
type Health struct {
	Service  *Service
	Ledger   LedgerReader
	Verifier LedgerVerifier
	Policy   PolicyEngine
	PII      PIISettings
	// Interval between evaluations; VerifyInterval between ledger verifications.
	Interval       time.Duration
	VerifyInterval time.Duration
}

// Evaluate runs every check once, stores the results and, for failing checks, raises
// the health-check signal (one open incident per check) — at once for a check that
// passed before, and for one that never passed only after Options.Auto.SetupGrace
// from the first evaluation (its detail says until when).
func (h *Health) Evaluate(ctx context.Context) ([]HealthResult, error) {
	s := h.Service
	now := s.now()
	var out []HealthResult
	add := func(name string, pass bool, format string, args ...any) {
		out = append(out, HealthResult{Check: name, At: now, Pass: pass, Detail: fmt.Sprintf(format, args...)})
	}
	o := s.opts()

	// Ledger verified within the window: fail closed without a result.
	v, err := s.LastVerification(ctx, o.VerificationMaxAge)
	switch {
	case err != nil:
		return nil, err
	case v == nil:
		add(CheckLedgerVerified, false, "no ledger verification recorded in the last %s (failing closed until one passes)", o.VerificationMaxAge)
	case !v.OK:
		add(CheckLedgerVerified, false, "the last verification (%s, %s) FAILED: %s", v.At.Format(time.RFC3339), v.Method, v.Summary)
	default:
		add(CheckLedgerVerified, true, "verified at %s by %s: %s", v.At.Format(time.RFC3339), v.Method, v.Summary)
	}

	// Agents seen only through Vigil — as far as Vigil can know.
	pass, detail, err := h.agentsThroughVigil(ctx, now)
	if err != nil {
		return nil, err
	}
	add(CheckAgentsThroughVigil, pass, "%s", detail)

	// Live policy.
	live, found, err := LivePolicy(ctx, h.Ledger)
	if err != nil {
		return nil, err
	}
	switch {
	case h.Policy != nil:
		st, err := h.Policy.PolicyState(ctx)
		switch {
		case err != nil:
			add(CheckPolicyLive, false, "the policy engine did not answer: %v", err)
		case !st.Compiled:
			add(CheckPolicyLive, false, "the live policy does not compile: %s", st.Error)
		case st.Failing:
			add(CheckPolicyLive, false, "the live policy %s is failing: %s", st.Hash, st.Error)
		default:
			add(CheckPolicyLive, true, "policy %s compiled and evaluating", st.Hash)
		}
	case found:
		add(CheckPolicyLive, false, "policy %s was activated at %s, but the policy engine does not report its state to aims (failing closed)", live.Hash, live.At.Format(time.RFC3339))
	default:
		add(CheckPolicyLive, false, "no policy has been activated (no policy.activated event in the ledger)")
	}

	// Approvals within SLA: an expiry is no answer (the default deny kept the call
	// safe, but no person oversaw it), so every expiry fails the check, as do
	// decisions after the SLA and requests still pending past it.
	window := max(7*24*time.Hour, 2*o.ApprovalSLA)
	act, err := ScanActivity(ctx, h.Ledger, now.Add(-window), now.Add(time.Second), o.ApprovalSLA)
	if err != nil {
		return nil, err
	}
	switch unanswered := int(act.ApprovalsTimedOut) + len(act.ApprovalsLate) + len(act.ApprovalsOverdue); {
	case unanswered > 0:
		add(CheckApprovalSLA, false, "%d of %d approvals in the last %s were not answered by a person within %s: %d expired with no decision, %d decided or cancelled late, %d still pending past the SLA (longest wait %s)",
			unanswered, act.ApprovalsRequested, window, o.ApprovalSLA, act.ApprovalsTimedOut, len(act.ApprovalsLate), len(act.ApprovalsOverdue), act.ApprovalMaxWait.Round(time.Second))
	case act.ApprovalsRequested == 0:
		add(CheckApprovalSLA, true, "no approvals requested in the last %s", window)
	case act.ApprovalsPending > 0:
		add(CheckApprovalSLA, true, "%d approvals requested in the last %s: those decided were answered by a person within %s, %d still pending within it (longest wait %s)",
			act.ApprovalsRequested, window, o.ApprovalSLA, act.ApprovalsPending, act.ApprovalMaxWait.Round(time.Second))
	default:
		add(CheckApprovalSLA, true, "%d approvals requested in the last %s, all answered by a person within %s (longest wait %s)",
			act.ApprovalsRequested, window, o.ApprovalSLA, act.ApprovalMaxWait.Round(time.Second))
	}

	// PII masking on every route.
	if h.PII == nil {
		add(CheckPIIMasking, false, "the PII masking settings are not reported to aims (failing closed)")
	} else if modes, err := h.PII.MaskingByRoute(ctx); err != nil {
		add(CheckPIIMasking, false, "couldn't read PII settings: %v", err)
	} else {
		var off []string
		for route, mode := range modes {
			if mode == "" || mode == "off" {
				off = append(off, route)
			}
		}
		sort.Strings(off)
		if len(modes) == 0 || len(off) > 0 {
			add(CheckPIIMasking, false, "PII masking is off on %d of %d routes: %s", len(off), len(modes), strings.Join(off, ", "))
		} else {
			add(CheckPIIMasking, true, "PII masking is on for all %d routes", len(modes))
		}
	}

	// AI policy review.
	pols, err := s.Policies(ctx)
	if err != nil {
		return nil, err
	}
	var overdue, unsigned []string
	for _, p := range pols {
		if p.Overdue {
			overdue = append(overdue, fmt.Sprintf("%s (due %s)", p.Policy.ID, p.Policy.NextReview))
		}
		if !p.Signed {
			unsigned = append(unsigned, p.Policy.ID)
		}
	}
	switch {
	case len(pols) == 0:
		add(CheckPolicyReview, false, "no AI policy is recorded (clause 5.2)")
	case len(overdue) > 0:
		add(CheckPolicyReview, false, "review overdue: %s", strings.Join(overdue, ", "))
	case len(unsigned) > 0:
		add(CheckPolicyReview, false, "the current version has no leader's sign-off: %s", strings.Join(unsigned, ", "))
	default:
		add(CheckPolicyReview, true, "%d AI policies, all signed off and within their review dates", len(pols))
	}

	// High-risk systems assessed.
	pass, detail, err = h.highRiskAssessed(ctx, now)
	if err != nil {
		return nil, err
	}
	add(CheckHighRiskAssessed, pass, "%s", detail)

	// A failing check opens an incident if it passed before (a control stopped
	// working) or the setup grace is over (a control never put in place).
	st, err := s.healthState(ctx)
	if err != nil {
		return nil, err
	}
	if st.First.IsZero() {
		st.First = now
	}
	graceEnds := st.First.Add(o.Auto.SetupGrace)
	raise := make([]bool, len(out))
	for i := range out {
		r := &out[i]
		_, passed := st.Passed[r.Check]
		switch {
		case r.Pass:
			st.Passed[r.Check] = now
		case passed || !now.Before(graceEnds):
			raise[i] = true
		case s.enabled(SignalHealthCheck):
			r.Detail += fmt.Sprintf(" [never passed yet: no incident is opened for it before %s, the end of the setup grace]", graceEnds.Format(time.RFC3339))
		}
	}

	if err := s.Store.AppendHealth(ctx, out); err != nil {
		return nil, fmt.Errorf("couldn't store health results: %w", err)
	}
	if err := s.putHealthState(ctx, st); err != nil {
		return nil, err
	}
	for i, r := range out {
		if r.Pass {
			if err := s.resolveSignal(ctx, SignalHealthCheck+":"+r.Check, r.At); err != nil {
				return out, err
			}
			continue
		}
		if !raise[i] {
			continue
		}
		if _, _, err := s.Raise(ctx, Signal{Kind: SignalHealthCheck, Key: SignalHealthCheck + ":" + r.Check, Severity: "medium",
			Title: "Control health check failing: " + r.Check, Detail: r.Detail, At: now}); err != nil {
			return out, err
		}
	}
	return out, nil
}

// healthState is what incident automation remembers of the checks: when they were
// first evaluated, and when each last passed.
type healthState struct {
	First  time.Time            `json:"first"`
	Passed map[string]time.Time `json:"passed"`
}

const healthStateID = "health"

func (s *Service) healthState(ctx context.Context) (healthState, error) {
	st := healthState{Passed: map[string]time.Time{}}
	rec, err := s.Store.Record(ctx, kindState, healthStateID)
	switch {
	case errors.Is(err, vigil.ErrNotFound):
		return st, nil
	case err != nil:
		return st, err
	}
	if err := json.Unmarshal(rec.Data, &st); err != nil {
		return st, fmt.Errorf("couldn't decode health state: %w", err)
	}
	if st.Passed == nil {
		st.Passed = map[string]time.Time{}
	}
	return st, nil
}

func (s *Service) putHealthState(ctx context.Context, st healthState) error {
	data, _ := json.Marshal(st)
	return s.Store.PutRecord(ctx, StoredRecord{Kind: kindState, ID: healthStateID, Data: data, UpdatedAt: s.now(), UpdatedBy: aimsActor.String()})
}

func (h *Health) agentsThroughVigil(ctx context.Context, now time.Time) (bool, string, error) {
	s := h.Service
	entries, orphans, err := s.Inventory(ctx)
	if err != nil {
		return false, "", err
	}
	usage, err := s.Store.Usage(ctx)
	if err != nil {
		return false, "", err
	}
	used := map[string]bool{}
	for _, u := range usage {
		used[u.AgentID] = true
	}
	var never, flagged []string
	agents := 0
	for _, e := range entries {
		for _, a := range e.Agents {
			if a.Status != inventory.Active {
				continue
			}
			agents++
			if !used[a.ID] && now.Sub(a.CreatedAt) > s.opts().NeverSeenGrace {
				never = append(never, a.Name)
			}
		}
		for _, f := range e.Flags {
			who := e.System.Name
			if f.Agent != "" {
				who += "/" + f.Agent
			}
			flagged = append(flagged, fmt.Sprintf("%s: %s", who, f.Detail))
		}
	}
	for _, f := range orphans {
		flagged = append(flagged, f.Detail)
	}
	const limit = " (Vigil sees only traffic through itself: an agent calling a provider directly is visible only as an agent with no traffic here)"
	if len(never) > 0 || len(flagged) > 0 {
		var parts []string
		if len(never) > 0 {
			parts = append(parts, fmt.Sprintf("%d registered agents never seen through Vigil: %s", len(never), strings.Join(never, ", ")))
		}
		if len(flagged) > 0 {
			parts = append(parts, fmt.Sprintf("%d flags from traffic: %s", len(flagged), strings.Join(flagged, "; ")))
		}
		return false, strings.Join(parts, "; ") + limit, nil
	}
	return true, fmt.Sprintf("all %d active agents seen through Vigil; no unregistered or unapproved traffic", agents) + limit, nil
}

func (h *Health) highRiskAssessed(ctx context.Context, now time.Time) (bool, string, error) {
	s := h.Service
	systems, err := s.List(ctx, KindSystem)
	if err != nil {
		return false, "", err
	}
	risks, err := s.List(ctx, KindRisk)
	if err != nil {
		return false, "", err
	}
	impacts, err := s.List(ctx, KindImpact)
	if err != nil {
		return false, "", err
	}
	var bad []string
	n := 0
	for _, r := range systems {
		sys := r.(*System)
		if sys.RiskClass != "high" || sys.OutOfScope {
			continue
		}
		n++
		riskOK := slices.ContainsFunc(risks, func(x Record) bool {
			rk := x.(*Risk)
			return rk.System == sys.ID && !rk.NextReview.Before(now)
		})
		impactOK := slices.ContainsFunc(impacts, func(x Record) bool {
			ia := x.(*ImpactAssessment)
			return ia.System == sys.ID && ia.Status == "approved" && !ia.NextReview.Before(now)
		})
		if !riskOK {
			bad = append(bad, sys.ID+": no current risk assessment")
		}
		if !impactOK {
			bad = append(bad, sys.ID+": no current approved impact assessment")
		}
	}
	if len(bad) > 0 {
		return false, strings.Join(bad, "; "), nil
	}
	if n == 0 {
		return true, "no high-risk systems in scope", nil
	}
	return true, fmt.Sprintf("all %d high-risk systems have current risk and approved impact assessments", n), nil
}

// HealthNow returns the latest result of every check (those never evaluated are
// missing).
func (s *Service) HealthNow(ctx context.Context, within time.Duration) ([]HealthResult, error) {
	now := s.now()
	hist, err := s.Store.HealthHistory(ctx, now.Add(-within), now.Add(time.Second))
	if err != nil {
		return nil, err
	}
	latest := map[string]HealthResult{}
	for _, r := range hist {
		latest[r.Check] = r
	}
	var out []HealthResult
	for _, c := range Checks {
		if r, ok := latest[c.Name]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// Run evaluates the checks every Interval and verifies the ledger every
// VerifyInterval (when a verifier is set) until ctx ends, and tails the ledger for
// automatic signals. Errors are logged, never fatal: the next tick tries again.
func (h *Health) Run(ctx context.Context) error {
	interval := h.Interval
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	verifyEvery := h.VerifyInterval
	if verifyEvery <= 0 {
		verifyEvery = time.Hour
	}
	log := h.Service.log()
	var lastVerify time.Time
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if h.Verifier != nil && (lastVerify.IsZero() || time.Since(lastVerify) >= verifyEvery) {
			lastVerify = time.Now()
			if err := h.Verify(ctx); err != nil && ctx.Err() == nil {
				log.Error("ledger verification didn't run", "err", err)
			}
		}
		if err := h.Watch(ctx); err != nil && ctx.Err() == nil {
			log.Error("couldn't watch the ledger for incident signals", "err", err)
		}
		if _, err := h.Evaluate(ctx); err != nil && ctx.Err() == nil {
			log.Error("couldn't evaluate control health checks", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunOnce watches the ledger for signals and evaluates the checks, as one tick of Run
// does (without verifying the ledger).
func (h *Health) RunOnce(ctx context.Context) ([]HealthResult, error) {
	if err := h.Watch(ctx); err != nil {
		return nil, err
	}
	return h.Evaluate(ctx)
}

// Verify runs the verifier once and records the result.
func (h *Health) Verify(ctx context.Context) error {
	v, err := h.Verifier.VerifyLedger(ctx)
	if err != nil {
		return err
	}
	return h.Service.RecordVerification(ctx, v)
}

// watchState is where the ledger watcher has read up to.
type watchState struct {
	Next int64 `json:"next"`
}

const watchStateID = "ledger_watch"

// Watch reads the ledger entries appended since the last call and raises signals:
// the kill switch (agent.suspended), bursts of denied actions of high-risk systems,
// and PII counted in model responses. On its first run it starts at the end of the
// ledger, so history is not replayed as new incidents.
func (h *Health) Watch(ctx context.Context) error {
	s := h.Service
	size, _, err := h.Ledger.TreeState(ctx)
	if err != nil {
		return err
	}
	var st watchState
	rec, err := s.Store.Record(ctx, kindState, watchStateID)
	switch {
	case errors.Is(err, vigil.ErrNotFound):
		st.Next = size
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(rec.Data, &st); err != nil {
			return fmt.Errorf("couldn't decode watch state: %w", err)
		}
	}
	if st.Next < size {
		highRisk := map[string]bool{}
		systems, err := s.Store.ListRecords(ctx, KindSystem)
		if err != nil {
			return err
		}
		for _, r := range systems {
			var sys System
			if json.Unmarshal(r.Data, &sys) == nil && sys.RiskClass == "high" {
				highRisk[r.ID] = true
			}
		}
		o := s.opts()
		denials := map[string][]time.Time{}
		err = scan(ctx, h.Ledger, st.Next, size, func(index int64, env ledger.Envelope) error {
			at, _ := time.Parse(time.RFC3339Nano, env.Time)
			switch env.Type {
			case vigil.EventAgentSuspended:
				_, _, err := s.KillSwitchUsed(ctx, env.Agent, env.System, env.Actor, "see ledger entry "+fmt.Sprint(index))
				return err
			case vigil.EventDecision:
				if env.Decision != string(vigil.Deny) || !(highRisk[env.System] || env.Attrs["risk"] == "high") {
					return nil
				}
				ts := append(denials[env.Agent], at)
				for len(ts) > 0 && at.Sub(ts[0]) > o.Auto.DeniedBurstWindow {
					ts = ts[1:]
				}
				denials[env.Agent] = ts
				if len(ts) >= o.Auto.DeniedBurstThreshold {
					denials[env.Agent] = nil
					_, _, err := s.DeniedHighRiskBurst(ctx, env.Agent, env.System, len(ts), o.Auto.DeniedBurstWindow)
					return err
				}
			case vigil.EventModelResponse:
				counts := map[string]int64{}
				for k, n := range env.Counts {
					if t, ok := PIIType(k); ok && n > 0 {
						counts[t] += n
					}
				}
				if len(counts) > 0 {
					_, _, err := s.PIIInAnswer(ctx, env.Agent, env.System, env.Attrs["model"], counts)
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		st.Next = size
	}
	data, _ := json.Marshal(st)
	return s.Store.PutRecord(ctx, StoredRecord{Kind: kindState, ID: watchStateID, Data: data, UpdatedAt: s.now(), UpdatedBy: aimsActor.String()})
}
