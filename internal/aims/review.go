package aims

import (
	"context"
	"sort"
	"time"
)

// CheckSummary is how one health check fared over a period.
type CheckSummary struct {
	Check  string        `json:"check"`
	Pass   int           `json:"pass"`
	Fail   int           `json:"fail"`
	Latest *HealthResult `json:"latest,omitempty"`
}

// OpenAction is an action not yet done, with where it comes from.
type OpenAction struct {
	From    string `json:"from"` // "incident INC-…" or "review MR-…"
	Action  Action `json:"action"`
	Overdue bool   `json:"overdue"`
}

// InputPack is the management review input (clause 9.3.2) compiled from the running
// system: status of actions, changes, performance (monitoring, audits, incidents and
// nonconformities), and the state of the SoA.
type InputPack struct {
	From           time.Time          `json:"from"`
	To             time.Time          `json:"to"`
	PreviousReview string             `json:"previous_review,omitempty"`
	Activity       *Activity          `json:"activity,omitempty"`
	Health         []CheckSummary     `json:"health"`
	Incidents      []IncidentStatus   `json:"incidents"`
	OpenActions    []OpenAction       `json:"open_actions"`
	Audits         []*Audit           `json:"audits"`
	Metrics        map[string]float64 `json:"metrics,omitempty"`
	Flags          []Flag             `json:"flags"`
	SoA            any                `json:"soa_summary"`
	PolicySignoffs []Signoff          `json:"policy_signoffs"`
}

// ReviewInputs compiles the input pack for [from, to).
func (s *Service) ReviewInputs(ctx context.Context, src Sources, from, to time.Time) (*InputPack, error) {
	p := &InputPack{From: from, To: to}
	soa, err := s.SoA(ctx, src, from, to)
	if err != nil {
		return nil, err
	}
	p.Activity, p.SoA = soa.Activity, soa.Summary
	hist, err := s.Store.HealthHistory(ctx, from, to)
	if err != nil {
		return nil, err
	}
	byCheck := map[string]*CheckSummary{}
	for _, c := range Checks {
		cs := &CheckSummary{Check: c.Name}
		byCheck[c.Name] = cs
		p.Health = append(p.Health, *cs)
	}
	for i := range hist {
		h := hist[i]
		cs := byCheck[h.Check]
		if cs == nil {
			continue
		}
		if h.Pass {
			cs.Pass++
		} else {
			cs.Fail++
		}
		cs.Latest = &h
	}
	for i, c := range Checks {
		p.Health[i] = *byCheck[c.Name]
	}
	now := s.now()
	incs, err := s.Incidents(ctx)
	if err != nil {
		return nil, err
	}
	for _, i := range incs {
		inc := i.Incident
		openInPeriod := inc.DetectedAt.Before(to) && (inc.ClosedAt.IsZero() || !inc.ClosedAt.Time.Before(from))
		if openInPeriod {
			p.Incidents = append(p.Incidents, i)
		}
		for _, a := range inc.Actions {
			if a.Status != "done" {
				p.OpenActions = append(p.OpenActions, OpenAction{From: "incident " + inc.ID, Action: a, Overdue: a.Due.Before(now)})
			}
		}
	}
	reviews, err := s.List(ctx, KindReview)
	if err != nil {
		return nil, err
	}
	var prev *Review
	for _, r := range reviews {
		rv := r.(*Review)
		for _, a := range rv.Actions {
			if a.Status != "done" {
				p.OpenActions = append(p.OpenActions, OpenAction{From: "review " + rv.ID, Action: a, Overdue: a.Due.Before(now)})
			}
		}
		if rv.Date.Time.Before(from) && (prev == nil || rv.Date.Time.After(prev.Date.Time)) {
			prev = rv
		}
	}
	if prev != nil {
		p.PreviousReview = prev.ID
	}
	audits, err := s.List(ctx, KindAudit)
	if err != nil {
		return nil, err
	}
	for _, r := range audits {
		a := r.(*Audit)
		d := a.Performed
		if d.IsZero() {
			d = a.Planned
		}
		if !d.Time.Before(from.Add(-24*time.Hour)) && d.Time.Before(to) {
			p.Audits = append(p.Audits, a)
		}
	}
	if src.Metrics != nil {
		p.Metrics, _ = src.Metrics.Metrics(ctx)
	}
	entries, orphans, err := s.Inventory(ctx)
	if err != nil {
		return nil, err
	}
	p.Flags = append(p.Flags, orphans...)
	for _, e := range entries {
		p.Flags = append(p.Flags, e.Flags...)
	}
	signs, err := s.Signoffs(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, so := range signs {
		if !so.At.Before(from) && so.At.Before(to) {
			p.PolicySignoffs = append(p.PolicySignoffs, so)
		}
	}
	sort.SliceStable(p.OpenActions, func(i, j int) bool { return p.OpenActions[i].Action.Due.Time.Before(p.OpenActions[j].Action.Due.Time) })
	return p, nil
}

// ReviewInputsFor compiles the input pack of a recorded review: from the previous
// review's date (or 90 days before) to the end of this review's date.
func (s *Service) ReviewInputsFor(ctx context.Context, src Sources, reviewID string) (*InputPack, error) {
	r, err := s.Get(ctx, KindReview, reviewID)
	if err != nil {
		return nil, err
	}
	rv := r.(*Review)
	to := rv.Date.Time.Add(24 * time.Hour)
	from := to.Add(-90 * 24 * time.Hour)
	reviews, err := s.List(ctx, KindReview)
	if err != nil {
		return nil, err
	}
	for _, x := range reviews {
		d := x.(*Review).Date.Time
		if d.Before(rv.Date.Time) && d.Add(24*time.Hour).After(from) {
			from = d.Add(24 * time.Hour)
		}
	}
	return s.ReviewInputs(ctx, src, from, to)
}

// PeriodMetrics are the monitoring figures of a period computed from the ledger and
// the health history, for when the live metrics registry is not at hand (an offline
// export).
func PeriodMetrics(a *Activity, health []HealthResult) map[string]float64 {
	m := map[string]float64{}
	if a != nil {
		m["vigil_ledger_entries"] = float64(a.Entries)
		for effect, n := range a.Decisions {
			m["vigil_decisions_"+effect] = float64(n)
		}
		m["vigil_approvals_requested"] = float64(a.ApprovalsRequested)
		m["vigil_approvals_decided"] = float64(a.ApprovalsDecided)
		m["vigil_approvals_timed_out"] = float64(a.ApprovalsTimedOut)
		m["vigil_pii_findings"] = float64(sumMap(a.PII))
		m["vigil_kill_switch_uses"] = float64(len(a.KillSwitch))
		m["vigil_policy_activations"] = float64(len(a.PolicyActivations))
	}
	pass := 0
	for _, h := range health {
		if h.Pass {
			pass++
		}
	}
	m["vigil_health_results"] = float64(len(health))
	m["vigil_health_results_passing"] = float64(pass)
	return m
}
