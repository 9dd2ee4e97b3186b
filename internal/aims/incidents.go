package aims

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Signal kinds: the automatic sources of incidents.
const (
	SignalHealthCheck        = "health_check"
	SignalLedgerVerification = "ledger_verification_failed"
	SignalDeniedBurst        = "denied_burst"
	SignalPIIInAnswer        = "pii_in_answer"
	SignalKillSwitch         = "kill_switch"
)

// Signal is something another subsystem (or aims itself) saw that should open an
// incident. While an incident opened by a signal with the same Key is not closed,
// further signals add occurrences to it instead of opening new ones.
type Signal struct {
	Kind string
	// Key deduplicates; default Kind + ":" + SystemID + ":" + AgentID.
	Key      string
	Title    string
	Detail   string
	SystemID string
	AgentID  string
	// Severity defaults to medium.
	Severity string
	At       time.Time
}

// IncidentOpener is the entry point other subsystems call when they see trouble:
// the ledger verifier on a failure, the enforce pipeline on bursts of denied
// high-risk actions or PII in a model's answer, oversight when the kill switch is
// used. It returns the incident and whether a new one was opened; a signal whose kind
// is switched off in the configuration opens nothing and returns a nil incident.
type IncidentOpener interface {
	Raise(ctx context.Context, sig Signal) (inc *Incident, opened bool, err error)
}

var _ IncidentOpener = (*Service)(nil)

func (s *Service) enabled(kind string) bool {
	a := s.opts().Auto
	switch kind {
	case SignalHealthCheck:
		return a.HealthCheck
	case SignalLedgerVerification:
		return a.LedgerVerification
	case SignalDeniedBurst:
		return a.DeniedBurst
	case SignalPIIInAnswer:
		return a.PIIInAnswer
	case SignalKillSwitch:
		return a.KillSwitch
	}
	return true // kinds other subsystems define are on
}

// system actor for what aims does by itself.
var aimsActor = vigil.Actor{Kind: vigil.ActorSystem, Name: "aims"}

// Raise opens an incident for sig, or adds an occurrence to the open one with the
// same key.
func (s *Service) Raise(ctx context.Context, sig Signal) (*Incident, bool, error) {
	if sig.Kind == "" {
		return nil, false, vigil.Errorf(vigil.EINVALID, "signal kind is required")
	}
	if !s.enabled(sig.Kind) {
		return nil, false, nil
	}
	if sig.Key == "" {
		sig.Key = sig.Kind + ":" + sig.SystemID + ":" + sig.AgentID
	}
	if sig.At.IsZero() {
		sig.At = s.now()
	}
	if sig.Severity == "" {
		sig.Severity = "medium"
	}
	if sig.Title == "" {
		sig.Title = strings.ReplaceAll(sig.Kind, "_", " ")
	}
	list, err := s.List(ctx, KindIncident)
	if err != nil {
		return nil, false, err
	}
	for _, r := range list {
		inc := r.(*Incident)
		if inc.SignalKey == sig.Key && inc.Status != "closed" && inc.Status != "resolved" {
			inc.Occurrences++
			if _, err := s.store(ctx, aimsActor, KindIncident, inc.ID, sig.SystemID, inc); err != nil {
				return nil, false, err
			}
			return inc, false, nil
		}
	}
	systemName := ""
	if sig.SystemID != "" {
		if sys, err := s.Registry.LookupSystem(ctx, sig.SystemID); err == nil {
			systemName = sys.Name
		} else if !errors.Is(err, vigil.ErrNotFound) {
			return nil, false, err
		}
	}
	inc := &Incident{
		ID: s.newID("INC"), Type: "incident", Title: sig.Title, Description: sig.Detail, System: systemName,
		Severity: sig.Severity, DetectedAt: sig.At.UTC().Truncate(time.Microsecond), AwareAt: s.now(), Status: "open",
		Source: "auto:" + sig.Kind, SignalKey: sig.Key, Occurrences: 1,
	}
	if errs := s.Validate(inc); len(errs) > 0 {
		return nil, false, fmt.Errorf("automatic incident is invalid: %w", errs)
	}
	if _, err := s.store(ctx, aimsActor, KindIncident, inc.ID, sig.SystemID, inc); err != nil {
		return nil, false, err
	}
	if _, err := s.record(ctx, aimsActor, EventIncident, sig.SystemID, map[string]string{"incident": inc.ID, "signal": sig.Kind, "severity": inc.Severity}); err != nil {
		return nil, false, err
	}
	s.log().Warn("incident opened", "incident", inc.ID, "signal", sig.Kind, "title", inc.Title)
	return inc, true, nil
}

// LedgerVerificationFailed opens (or adds to) the incident for a failed ledger
// verification. detail says what failed, e.g. the first bad index.
func (s *Service) LedgerVerificationFailed(ctx context.Context, detail string) (*Incident, bool, error) {
	return s.Raise(ctx, Signal{Kind: SignalLedgerVerification, Key: SignalLedgerVerification, Severity: "critical",
		Title: "Ledger verification failed", Detail: detail})
}

// DeniedHighRiskBurst opens (or adds to) the incident for count denied high-risk
// actions by one agent within window.
func (s *Service) DeniedHighRiskBurst(ctx context.Context, agentID, systemID string, count int, window time.Duration) (*Incident, bool, error) {
	return s.Raise(ctx, Signal{Kind: SignalDeniedBurst, SystemID: systemID, AgentID: agentID, Severity: "high",
		Title: "Burst of denied high-risk actions", Detail: fmt.Sprintf("agent %s had %d high-risk actions denied within %s", agentID, count, window)})
}

// PIIInAnswer opens (or adds to) the incident for personal data found in a model's
// answer. counts are findings by entity type, never values.
func (s *Service) PIIInAnswer(ctx context.Context, agentID, systemID, model string, counts map[string]int64) (*Incident, bool, error) {
	types := make([]string, 0, len(counts))
	for t, n := range counts {
		types = append(types, fmt.Sprintf("%s×%d", t, n))
	}
	sort.Strings(types)
	return s.Raise(ctx, Signal{Kind: SignalPIIInAnswer, SystemID: systemID, AgentID: agentID, Severity: "high",
		Title: "Personal data in a model's answer", Detail: fmt.Sprintf("model %s answered with %s", model, strings.Join(types, ", "))})
}

// KillSwitchUsed opens (or adds to) the incident for a use of the kill switch on an
// agent or a whole system.
func (s *Service) KillSwitchUsed(ctx context.Context, agentID, systemID, by, reason string) (*Incident, bool, error) {
	what := "agent " + agentID
	if agentID == "" {
		what = "system " + systemID
	}
	return s.Raise(ctx, Signal{Kind: SignalKillSwitch, SystemID: systemID, AgentID: agentID, Severity: "high",
		Title: "Kill switch used", Detail: fmt.Sprintf("%s suspended %s: %s", by, what, reason)})
}

// Deadline returns the EU AI Act Art. 73 reporting deadline of a serious incident,
// counted from when the organisation became aware; ok is false for others.
func Deadline(inc *Incident, c Art73Clocks) (time.Time, bool) {
	if !inc.Serious {
		return time.Time{}, false
	}
	start := inc.AwareAt
	if start.IsZero() {
		start = inc.DetectedAt
	}
	switch inc.Category {
	case "widespread_infringement", "critical_infrastructure":
		return start.Add(c.Widespread), true
	case "death":
		return start.Add(c.Death), true
	}
	return start.Add(c.General), true
}

// IncidentStatus is an incident with its computed deadline and action state.
type IncidentStatus struct {
	Incident *Incident `json:"incident"`
	// Deadline is the Art. 73 reporting deadline, for serious incidents.
	Deadline *time.Time `json:"art73_deadline,omitempty"`
	// ReportOverdue is set when the deadline passed without a report.
	ReportOverdue  bool `json:"report_overdue"`
	OpenActions    int  `json:"open_actions"`
	OverdueActions int  `json:"overdue_actions"`
}

// Incidents returns every incident with its deadline and action state, newest first.
func (s *Service) Incidents(ctx context.Context) ([]IncidentStatus, error) {
	list, err := s.List(ctx, KindIncident)
	if err != nil {
		return nil, err
	}
	now := s.now()
	clocks := s.opts().Art73
	out := make([]IncidentStatus, 0, len(list))
	for _, r := range list {
		inc := r.(*Incident)
		st := IncidentStatus{Incident: inc}
		if d, ok := Deadline(inc, clocks); ok {
			st.Deadline = &d
			st.ReportOverdue = inc.ReportedAt.IsZero() && now.After(d)
		}
		for _, a := range inc.Actions {
			if a.Status != "done" {
				st.OpenActions++
				if a.Due.Before(now) {
					st.OverdueActions++
				}
			}
		}
		out = append(out, st)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Incident.DetectedAt.After(out[j].Incident.DetectedAt) })
	return out, nil
}

// resolveSignal marks the open incident of an automatic signal resolved when the
// condition it reported has cleared (a health check passing again). People still
// close it: root cause and effectiveness are theirs to record.
func (s *Service) resolveSignal(ctx context.Context, key string, at time.Time) error {
	list, err := s.List(ctx, KindIncident)
	if err != nil {
		return err
	}
	for _, r := range list {
		inc := r.(*Incident)
		if inc.SignalKey != key || inc.Status != "open" {
			continue
		}
		inc.Status = "resolved"
		inc.Description = strings.TrimSpace(inc.Description + "\nThe condition cleared at " + at.UTC().Format(time.RFC3339) + ".")
		systemID := ""
		if inc.System != "" {
			if sys, err := s.Registry.LookupSystem(ctx, inc.System); err == nil {
				systemID = sys.ID
			}
		}
		if _, err := s.store(ctx, aimsActor, KindIncident, inc.ID, systemID, inc); err != nil {
			return err
		}
	}
	return nil
}
