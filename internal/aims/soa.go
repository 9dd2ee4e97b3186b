package aims

import (
	"bytes"
	"context"
	"encoding/csv"

	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// RoleAssignment is one principal holding one admin role.
type RoleAssignment struct {
	// Principal is the identity, e.g. "token:ci-deployer" or "user:alice".
	Principal string    `json:"principal"`
	Role      string    `json:"role"`
	Since     time.Time `json:"since"`
}

// RoleSource lists who holds which role now (tokens; console users when they
// exist). The auth wiring satisfies it.
type RoleSource interface {
	RoleAssignments(ctx context.Context) ([]RoleAssignment, error)
}

// MetricsSource returns the current monitoring metrics by name (counters summed over
// their labels). The metrics registry wiring satisfies it.
type MetricsSource interface {
	Metrics(ctx context.Context) (map[string]float64, error)
}

// Sources are where automatic SoA evidence comes from. A nil source means that
// evidence is not available, and the SoA says so rather than implying it exists.
type Sources struct {
	Ledger  LedgerReader
	Roles   RoleSource
	Metrics MetricsSource
}

// Evidence is one piece of evidence for a control.
type Evidence struct {
	// Source is where it came from: ledger, verification, health, inventory, roles,
	// metrics, records, or document (a reference a person gave).
	Source string `json:"source"`
	// Automatic is true for evidence computed from the running system.
	Automatic bool   `json:"automatic"`
	Summary   string `json:"summary"`
	// OK is false when the evidence shows the control not operating.
	OK bool `json:"ok"`
}

// SoAEntry is one control of the Statement of Applicability.
type SoAEntry struct {
	Control Control `json:"control"`
	// Assessed is false while no applicability statement exists for the control.
	Assessed      bool       `json:"assessed"`
	Applicable    bool       `json:"applicable"`
	Justification string     `json:"justification"`
	Status        string     `json:"status"`
	Owner         string     `json:"owner"`
	Evidence      []Evidence `json:"evidence"`
	// Risks are the risks whose treatments (or whose statement) link to the control.
	Risks []string `json:"risks"`
}

// SoA is the Statement of Applicability with its evidence for a period.
type SoA struct {
	Generated time.Time  `json:"generated"`
	From      time.Time  `json:"from"`
	To        time.Time  `json:"to"`
	Entries   []SoAEntry `json:"controls"`
	// Activity is the ledger activity the evidence was computed from.
	Activity *Activity `json:"activity,omitempty"`
	Summary  struct {
		Controls    int `json:"controls"`
		Applicable  int `json:"applicable"`
		Excluded    int `json:"excluded"`
		NotAssessed int `json:"not_assessed"`
		Implemented int `json:"implemented"`
		// WithAutomatic counts controls with automatic evidence from the system.
		WithAutomatic int `json:"with_automatic_evidence"`
	} `json:"summary"`
}

// facts is everything the evidence rules look at, gathered once.
type facts struct {
	act           *Activity
	checkpoints   []ledger.Checkpoint
	verifications []Verification
	health        []HealthResult
	inventory     []InventoryEntry
	orphans       []Flag
	roles         []RoleAssignment
	rolesErr      error
	metrics       map[string]float64
	policies      []PolicyStatus
	live          *PolicyActivation
	incidents     []IncidentStatus
	competences   []*Competence
	impacts       []*ImpactAssessment
	comms         []*Communication
	docs          []*Document
	now           time.Time
}

// SoA computes the Statement of Applicability for [from, to): every Annex A control
// with its applicability statement (if any), linked risks, document evidence and the
// automatic evidence the running system has.
func (s *Service) SoA(ctx context.Context, src Sources, from, to time.Time) (*SoA, error) {
	f, err := s.gather(ctx, src, from, to)
	if err != nil {
		return nil, err
	}
	stmts := map[string]*Applicability{}
	list, err := s.List(ctx, KindApplicability)
	if err != nil {
		return nil, err
	}
	for _, r := range list {
		stmts[r.Key()] = r.(*Applicability)
	}
	risks, err := s.List(ctx, KindRisk)
	if err != nil {
		return nil, err
	}
	linked := map[string][]string{}
	for _, r := range risks {
		rk := r.(*Risk)
		for _, t := range rk.Treatments {
			for _, c := range t.Controls {
				if !containsStr(linked[c], rk.ID) {
					linked[c] = append(linked[c], rk.ID)
				}
			}
		}
	}
	out := &SoA{Generated: s.now(), From: from, To: to, Activity: f.act}
	for _, c := range catalogue {
		e := SoAEntry{Control: c, Status: "not_assessed", Risks: linked[c.ID]}
		if st := stmts[c.ID]; st != nil {
			e.Assessed, e.Applicable, e.Justification, e.Status, e.Owner = true, st.Applicable, st.Justification, st.Status, st.Owner
			for _, r := range st.Risks {
				if !containsStr(e.Risks, r) {
					e.Risks = append(e.Risks, r)
				}
			}
			for _, d := range st.Evidence {
				e.Evidence = append(e.Evidence, Evidence{Source: "document", Summary: d, OK: true})
			}
		}
		sort.Strings(e.Risks)
		auto := evidenceFor(c.ID, f)
		e.Evidence = append(append([]Evidence{}, auto...), e.Evidence...)
		if e.Risks == nil {
			e.Risks = []string{}
		}
		out.Summary.Controls++
		switch {
		case !e.Assessed:
			out.Summary.NotAssessed++
		case e.Applicable:
			out.Summary.Applicable++
		default:
			out.Summary.Excluded++
		}
		if e.Status == "implemented" {
			out.Summary.Implemented++
		}
		if len(auto) > 0 {
			out.Summary.WithAutomatic++
		}
		out.Entries = append(out.Entries, e)
	}
	return out, nil
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Service) gather(ctx context.Context, src Sources, from, to time.Time) (*facts, error) {
	f := &facts{now: s.now()}
	var err error
	if src.Ledger != nil {
		if f.act, err = ScanActivity(ctx, src.Ledger, from, to, s.opts().ApprovalSLA); err != nil {
			return nil, err
		}
		cps, err := src.Ledger.Checkpoints(ctx, 0, 1<<62)
		if err != nil {
			return nil, fmt.Errorf("couldn't read checkpoints: %w", err)
		}
		for _, cp := range cps {
			at := time.UnixMicro(cp.CreatedAt)
			if !at.Before(from) && at.Before(to) {
				f.checkpoints = append(f.checkpoints, cp)
			}
		}
		if p, ok, err := LivePolicy(ctx, src.Ledger); err != nil {
			return nil, err
		} else if ok {
			f.live = &p
		}
	}
	if f.verifications, err = s.Store.Verifications(ctx, from, to); err != nil {
		return nil, err
	}
	if f.health, err = s.Store.HealthHistory(ctx, from, to); err != nil {
		return nil, err
	}
	if f.inventory, f.orphans, err = s.Inventory(ctx); err != nil {
		return nil, err
	}
	if src.Roles != nil {
		f.roles, f.rolesErr = src.Roles.RoleAssignments(ctx)
	}
	if src.Metrics != nil {
		if f.metrics, err = src.Metrics.Metrics(ctx); err != nil {
			f.metrics = nil
		}
	}
	if f.policies, err = s.Policies(ctx); err != nil {
		return nil, err
	}
	if f.incidents, err = s.Incidents(ctx); err != nil {
		return nil, err
	}
	for kind, dst := range map[string]func(Record){
		KindCompetence:    func(r Record) { f.competences = append(f.competences, r.(*Competence)) },
		KindImpact:        func(r Record) { f.impacts = append(f.impacts, r.(*ImpactAssessment)) },
		KindCommunication: func(r Record) { f.comms = append(f.comms, r.(*Communication)) },
		KindDocument:      func(r Record) { f.docs = append(f.docs, r.(*Document)) },
	} {
		list, err := s.List(ctx, kind)
		if err != nil {
			return nil, err
		}
		for _, r := range list {
			dst(r)
		}
	}
	return f, nil
}

func sumMap(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func fmtCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// evidenceFor is the automatic evidence for one control: the mapping from the
// running system's records to Annex A that the ADR (docs/adr/0009-aims.md) lists.
func evidenceFor(id string, f *facts) []Evidence {
	var out []Evidence
	add := func(source string, ok bool, format string, args ...any) {
		out = append(out, Evidence{Source: source, Automatic: true, OK: ok, Summary: fmt.Sprintf(format, args...)})
	}
	ctl := strings.TrimPrefix(id, IDPrefix)
	switch ctl {
	case "A.6.2.8": // event logs ← verification results and checkpoints
		if f.act != nil {
			add("ledger", true, "%d events recorded in the tamper-evident ledger in the period; %d signed checkpoints published", f.act.Entries, len(f.checkpoints))
		}
		passed := 0
		for _, v := range f.verifications {
			if v.OK {
				passed++
			}
		}
		if n := len(f.verifications); n > 0 {
			last := f.verifications[n-1]
			add("verification", passed == n && last.OK, "%d ledger verifications in the period, %d passed; last %s: %s", n, passed, last.At.Format(time.RFC3339), last.Summary)
		} else {
			add("verification", false, "no ledger verification recorded in the period")
		}
	case "A.6.2.6": // monitoring ← metrics and health checks
		if f.metrics != nil {
			add("metrics", true, "%d metrics exported at /metrics; HTTP requests served: %.0f", len(f.metrics), f.metrics["vigil_http_requests_total"])
		}
		if n := len(f.health); n > 0 {
			pass := 0
			for _, h := range f.health {
				if h.Pass {
					pass++
				}
			}
			add("health", pass == n, "%d control health check results in the period, %d passing", n, pass)
		}
	case "A.9.2": // responsible use ← decisions and approvals
		if f.act != nil {
			add("ledger", true, "%d policy decisions (%s); %d approvals requested, %d decided by people, %d timed out",
				sumMap(f.act.Decisions), fmtCounts(f.act.Decisions), f.act.ApprovalsRequested, f.act.ApprovalsDecided, f.act.ApprovalsTimedOut)
		}
	case "A.9.4": // intended use ← denials and flags
		if f.act != nil {
			add("ledger", true, "%d actions denied by policy in the period", f.act.Decisions[string(vigil.Deny)])
		}
		add("inventory", len(f.orphans) == 0, "%d flags of traffic from unregistered sources", len(f.orphans))
	case "A.3.2": // roles ← role assignments and approvers
		if f.rolesErr == nil && f.roles != nil {
			byRole := map[string]int64{}
			for _, r := range f.roles {
				byRole[r.Role]++
			}
			add("roles", true, "%d active role assignments (%s)", len(f.roles), fmtCounts(byRole))
		}
		if f.act != nil && len(f.act.Approvers) > 0 {
			add("ledger", true, "approvals decided by %s", strings.Join(f.act.Approvers, ", "))
		}
		owned := 0
		for _, e := range f.inventory {
			if e.System.Owner != "" {
				owned++
			}
		}
		add("inventory", owned == len(f.inventory), "%d of %d AI systems have a named owner", owned, len(f.inventory))
	case "A.4.2", "A.4.4", "A.10.3": // resources, tooling, suppliers ← observed inventory
		models, providers, tools, flags := map[string]bool{}, map[string]bool{}, map[string]bool{}, 0
		agents := 0
		for _, e := range f.inventory {
			agents += len(e.Agents)
			for _, u := range e.Seen["models"] {
				models[u.Name] = true
			}
			for _, u := range e.Seen["providers"] {
				providers[u.Name] = true
			}
			for _, u := range e.Seen["tools"] {
				tools[u.Name] = true
			}
			flags += len(e.Flags)
		}
		flags += len(f.orphans)
		switch ctl {
		case "A.4.2":
			add("inventory", true, "%d AI systems and %d agents registered; discovered from traffic: %d models, %d providers, %d tools", len(f.inventory), agents, len(models), len(providers), len(tools))
		case "A.4.4":
			add("inventory", flags == 0, "models and tools seen in traffic: %d and %d; %d flags of unapproved use", len(models), len(tools), flags)
		case "A.10.3":
			add("inventory", flags == 0, "providers seen in traffic: %s; %d flags of unapproved providers, models or tools", strings.Join(sortedKeys(providers), ", "), flags)
		}
	case "A.4.5":
		if f.metrics != nil {
			add("metrics", true, "process and request metrics exported (%d series)", len(f.metrics))
		}
	case "A.4.3", "A.7.4", "A.7.6": // data ← PII statistics
		if f.act != nil {
			if n := sumMap(f.act.PII); n > 0 {
				add("ledger", true, "%d personal-data findings detected and handled in the period (%s)", n, fmtCounts(f.act.PII))
			} else {
				add("ledger", true, "no personal-data findings recorded in the period")
			}
		}
	case "A.8.4", "A.3.3": // incident communication ← incident records
		serious, reported, overdue := 0, 0, 0
		for _, i := range f.incidents {
			if i.Incident.Serious {
				serious++
				if !i.Incident.ReportedAt.IsZero() {
					reported++
				}
			}
			if i.ReportOverdue {
				overdue++
			}
		}
		add("records", overdue == 0, "%d incidents recorded; %d serious (Art. 73), %d reported, %d past their reporting deadline", len(f.incidents), serious, reported, overdue)
	case "A.2.2": // AI policy ← sign-offs and the enforced hash
		signed := 0
		for _, p := range f.policies {
			if p.Signed {
				signed++
			}
		}
		add("records", len(f.policies) > 0 && signed == len(f.policies), "%d AI policies, %d with the current version signed off in the ledger", len(f.policies), signed)
		if f.live != nil {
			impl := ""
			for _, p := range f.policies {
				if containsStr(p.Policy.EnforcedBy, normHash(f.live.Hash)) {
					impl = p.Policy.ID
				}
			}
			if impl != "" {
				add("ledger", true, "live policy-as-code %s (activated %s) implements AI policy %s", f.live.Hash, f.live.At.Format(time.RFC3339), impl)
			} else {
				add("ledger", false, "live policy-as-code %s is not linked to any AI policy", f.live.Hash)
			}
		}
	case "A.2.4":
		overdue := 0
		for _, p := range f.policies {
			if p.Overdue {
				overdue++
			}
		}
		add("records", len(f.policies) > 0 && overdue == 0, "%d AI policies, %d past their review date", len(f.policies), overdue)
	case "A.4.6":
		current := 0
		for _, c := range f.competences {
			if !c.Obtained.Time.After(f.now) && c.Expires.Time.After(f.now) {
				current++
			}
		}
		add("records", current > 0, "%d competence records, %d current, for people in oversight and approval roles", len(f.competences), current)
	case "A.5.2", "A.5.3", "A.5.4", "A.5.5":
		approved := 0
		for _, ia := range f.impacts {
			if ia.Status == "approved" {
				approved++
			}
		}
		add("records", approved > 0, "%d impact assessments, %d approved", len(f.impacts), approved)
	case "A.8.2", "A.8.5":
		add("records", len(f.comms) > 0, "%d communication records (workers, affected persons, authorities)", len(f.comms))
	case "A.6.2.5":
		if f.act != nil {
			add("ledger", true, "%d policy activations and %d management-system record changes in the period", len(f.act.PolicyActivations), sumMap(f.act.RecordChanges))
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CSV renders the SoA as CSV, one row per control.
func (soa *SoA) CSV() ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"control", "title", "objective", "assessed", "applicable", "justification", "status", "owner", "automatic_evidence", "document_evidence", "risks", "eu_ai_act", "nist_ai_rmf"})
	for _, e := range soa.Entries {
		var auto, docs []string
		for _, ev := range e.Evidence {
			if ev.Automatic {
				mark := "ok"
				if !ev.OK {
					mark = "NOT OK"
				}
				auto = append(auto, fmt.Sprintf("[%s %s] %s", ev.Source, mark, ev.Summary))
			} else {
				docs = append(docs, ev.Summary)
			}
		}
		_ = w.Write([]string{e.Control.ID, e.Control.Title, e.Control.Objective, fmt.Sprint(e.Assessed), fmt.Sprint(e.Applicable),
			e.Justification, e.Status, e.Owner, strings.Join(auto, " | "), strings.Join(docs, " | "), strings.Join(e.Risks, " "),
			strings.Join(e.Control.EUAIAct, "; "), strings.Join(e.Control.NIST, "; ")})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
