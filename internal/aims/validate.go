package aims

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/vigil-gateway/vigil/internal/inventory"
)

// The closed vocabularies of the records.
var (
	RiskClasses      = []string{"prohibited", "high", "limited", "minimal", "gpai"}
	SystemRoles      = []string{"provider", "deployer", "provider_and_deployer"}
	RiskOptions      = []string{"mitigate", "avoid", "transfer", "accept"}
	RiskStatuses     = []string{"open", "treated", "accepted", "closed"}
	TreatmentStatus  = []string{"planned", "in_progress", "done"}
	ImpactStatuses   = []string{"draft", "approved"}
	Audiences        = []string{"workers", "workers_representatives", "affected_persons", "provider", "authority", "customers", "staff", "other"}
	SoAStatuses      = []string{"not_started", "planned", "partial", "implemented", "not_applicable"}
	AuditStatuses    = []string{"planned", "in_progress", "done"}
	FindingTypes     = []string{"major_nonconformity", "minor_nonconformity", "observation", "opportunity"}
	IncidentTypes    = []string{"incident", "nonconformity"}
	Severities       = []string{"low", "medium", "high", "critical"}
	IncidentStatuses = []string{"open", "investigating", "resolved", "closed"}
	Art73Categories  = []string{"general", "widespread_infringement", "critical_infrastructure", "death"}
	ActionTypes      = []string{"corrective", "preventive", "containment", "improvement"}
	ActionStatuses   = []string{"open", "in_progress", "done"}
	TechnicalKinds   = []string{"policy-rule", "pii", "approval", "config"}
)

// idPattern is what record ids look like: they appear in file names, URLs and links.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$`)

// validator checks one record, collecting every problem.
type validator struct {
	errs  FieldErrors
	scale int
}

func (v *validator) addf(field, format string, args ...any) { v.errs.add(field, format, args...) }

func (v *validator) required(field, value string) {
	if strings.TrimSpace(value) == "" {
		v.addf(field, "is required")
	}
}

func (v *validator) oneOf(field, value string, allowed []string, required bool) {
	if value == "" {
		if required {
			v.addf(field, "is required; one of %s", strings.Join(allowed, ", "))
		}
		return
	}
	if !slices.Contains(allowed, value) {
		v.addf(field, "%q is not one of %s", value, strings.Join(allowed, ", "))
	}
}

func (v *validator) id(field, value string) {
	if value != "" && !idPattern.MatchString(value) {
		v.addf(field, "%q must be 1-100 characters of letters, digits, '.', '_', ':' or '-'", value)
	}
}

func (v *validator) score(field string, n int) {
	if n < 1 || n > v.scale {
		v.addf(field, "%d is outside the scale 1..%d", n, v.scale)
	}
}

func (v *validator) control(field, id string) {
	if !strings.HasPrefix(id, IDPrefix) {
		v.addf(field, "%q must be a prefixed Annex A control id such as %sA.6.2.8 (ISO 27001 uses the same numbers)", id, IDPrefix)
		return
	}
	if _, ok := ControlByID(id); !ok {
		v.addf(field, "%q is not one of the 38 Annex A controls", id)
	}
}

// Validate checks a record against the rules of its kind. scale is the risk scale
// (likelihood and impact run 1..scale). It returns nil when the record is valid.
func Validate(r Record, scale int) FieldErrors {
	v := &validator{scale: scale}
	v.id("id", r.Key())
	switch r := r.(type) {
	case *System:
		if !inventory.NamePattern.MatchString(r.ID) {
			v.addf("id", "%q is the system's inventory name: 1-63 characters of a-z, 0-9, '.', '_' or '-'", r.ID)
		}
		v.required("purpose", r.Purpose)
		v.required("owner", r.Owner)
		v.oneOf("lifecycle", r.Lifecycle, inventory.LifecycleStages, false)
		v.oneOf("role", r.Role, SystemRoles, true)
		v.oneOf("risk_class", r.RiskClass, RiskClasses, true)
		v.required("risk_rationale", r.RiskRationale)
		if r.RiskClass == "high" && r.AnnexIII == "" {
			v.addf("annex_iii", "is required for a high-risk system (the Annex III point, e.g. 5(b))")
		}
		for i, t := range r.Tools {
			if !strings.Contains(t, "/") {
				v.addf(fmt.Sprintf("tools[%d]", i), "%q must be server/tool (either part may be *)", t)
			}
		}
	case *Policy:
		v.required("title", r.Title)
		v.required("version", r.Version)
		v.required("owner", r.Owner)
		v.required("text", r.Text)
		if r.NextReview.IsZero() {
			v.addf("next_review", "is required (A.2.4: the policy is reviewed at planned intervals)")
		}
		if r.Signoff != nil {
			v.required("signoff.leader", r.Signoff.Leader)
		}
		for i, h := range r.EnforcedBy {
			if !hashPattern.MatchString(h) {
				v.addf(fmt.Sprintf("enforced_by[%d]", i), "%q is not a policy content hash (64 hex digits, optionally prefixed sha256:)", h)
			}
		}
	case *Risk:
		v.required("system", r.System)
		v.required("title", r.Title)
		v.required("owner", r.Owner)
		v.score("likelihood", r.Likelihood)
		v.score("impact", r.Impact)
		v.score("residual_likelihood", r.ResidualLikelihood)
		v.score("residual_impact", r.ResidualImpact)
		if r.ResidualLikelihood*r.ResidualImpact > r.Likelihood*r.Impact {
			v.addf("residual_impact", "residual score %d is above the inherent score %d; treatment cannot raise a risk", r.ResidualLikelihood*r.ResidualImpact, r.Likelihood*r.Impact)
		}
		v.oneOf("option", r.Option, RiskOptions, true)
		v.oneOf("status", r.Status, RiskStatuses, true)
		if r.AssessedAt.IsZero() {
			v.addf("assessed_at", "is required")
		}
		if r.NextReview.IsZero() {
			v.addf("next_review", "is required (8.2: risks are reassessed at planned intervals)")
		}
		if r.Option == "mitigate" && len(r.Treatments) == 0 {
			v.addf("treatments", "a risk being mitigated needs at least one treatment")
		}
		seen := map[string]bool{}
		for i, t := range r.Treatments {
			f := fmt.Sprintf("treatments[%d]", i)
			v.required(f+".id", t.ID)
			if seen[t.ID] {
				v.addf(f+".id", "%q appears twice", t.ID)
			}
			seen[t.ID] = true
			v.required(f+".description", t.Description)
			v.required(f+".owner", t.Owner)
			v.oneOf(f+".status", t.Status, TreatmentStatus, true)
			if len(t.Controls) == 0 && len(t.Technical) == 0 {
				v.addf(f+".controls", "link the treatment to at least one Annex A control or technical control")
			}
			for j, c := range t.Controls {
				v.control(fmt.Sprintf("%s.controls[%d]", f, j), c)
			}
			for j, c := range t.Technical {
				kind, ref, ok := strings.Cut(c, ":")
				if !ok || ref == "" || !slices.Contains(TechnicalKinds, kind) {
					v.addf(fmt.Sprintf("%s.technical[%d]", f, j), "%q must be KIND:REF with KIND one of %s", c, strings.Join(TechnicalKinds, ", "))
				}
			}
		}
	case *ImpactAssessment:
		v.required("system", r.System)
		v.required("title", r.Title)
		v.required("individuals", r.Individuals)
		v.required("societal", r.Societal)
		v.oneOf("status", r.Status, ImpactStatuses, true)
		if r.AssessedAt.IsZero() {
			v.addf("assessed_at", "is required")
		}
		if r.NextReview.IsZero() {
			v.addf("next_review", "is required")
		}
		if r.Status == "approved" {
			v.required("approved_by", r.ApprovedBy)
			if r.ApprovedAt.IsZero() {
				v.addf("approved_at", "is required when status is approved")
			}
		}
		if f := r.FRIA; f != nil {
			v.required("fria.deployer_processes", f.DeployerProcesses)
			v.required("fria.period_and_frequency", f.PeriodAndFrequency)
			if len(f.AffectedCategories) == 0 {
				v.addf("fria.affected_categories", "is required (Art. 27(1)(c))")
			}
			v.required("fria.specific_risks", f.SpecificRisks)
			v.required("fria.human_oversight", f.HumanOversight)
			v.required("fria.measures", f.Measures)
		}
	case *Competence:
		v.required("person", r.Person)
		v.required("competence", r.Competence)
		if r.Obtained.IsZero() {
			v.addf("obtained", "is required")
		}
		if r.Expires.IsZero() {
			v.addf("expires", "is required: training records for oversight roles expire")
		} else if !r.Obtained.IsZero() && !r.Obtained.Time.Before(r.Expires.Time) {
			v.addf("expires", "%s is not after obtained %s", r.Expires, r.Obtained)
		}
	case *Document:
		v.required("title", r.Title)
		v.required("version", r.Version)
		v.required("owner", r.Owner)
		if r.NextReview.IsZero() {
			v.addf("next_review", "is required")
		}
	case *Communication:
		if r.Date.IsZero() {
			v.addf("date", "is required")
		}
		v.oneOf("audience", r.Audience, Audiences, true)
		v.required("summary", r.Summary)
		v.required("by", r.By)
	case *Applicability:
		v.control("id", r.ID)
		v.required("justification", r.Justification)
		v.oneOf("status", r.Status, SoAStatuses, true)
		if !r.Applicable && r.Status != "" && r.Status != "not_applicable" {
			v.addf("status", "an excluded control has status not_applicable")
		}
		if r.Applicable && r.Status == "not_applicable" {
			v.addf("status", "an applicable control cannot be not_applicable")
		}
	case *Audit:
		v.required("title", r.Title)
		v.required("scope", r.Scope)
		v.required("auditor", r.Auditor)
		if r.Planned.IsZero() {
			v.addf("planned", "is required")
		}
		v.oneOf("status", r.Status, AuditStatuses, true)
		if r.Status == "done" && r.Performed.IsZero() {
			v.addf("performed", "is required when status is done")
		}
		for i, f := range r.Findings {
			p := fmt.Sprintf("findings[%d]", i)
			v.required(p+".id", f.ID)
			v.oneOf(p+".type", f.Type, FindingTypes, true)
			v.required(p+".description", f.Description)
			if f.Control != "" {
				v.control(p+".control", f.Control)
			}
			if strings.HasSuffix(f.Type, "_nonconformity") && f.Incident == "" {
				v.addf(p+".incident", "a nonconformity links to the incident record (type nonconformity) that tracks its correction")
			}
		}
	case *Review:
		if r.Date.IsZero() {
			v.addf("date", "is required")
		}
		v.required("chair", r.Chair)
		v.actions(r.Actions)
	case *Incident:
		v.oneOf("type", r.Type, IncidentTypes, true)
		v.required("title", r.Title)
		v.oneOf("severity", r.Severity, Severities, true)
		v.oneOf("status", r.Status, IncidentStatuses, true)
		if r.DetectedAt.IsZero() {
			v.addf("detected_at", "is required")
		}
		if r.Serious {
			v.oneOf("category", r.Category, Art73Categories, true)
		} else if r.Category != "" {
			v.addf("category", "is only for serious incidents (set serious: true)")
		}
		v.actions(r.Actions)
		if r.Status == "closed" {
			v.required("root_cause", r.RootCause)
			if r.Effectiveness == nil {
				v.addf("effectiveness", "is required to close: check that the corrective actions worked (10.2)")
			}
			for i, a := range r.Actions {
				if a.Status != "done" {
					v.addf(fmt.Sprintf("actions[%d].status", i), "action %q is %s; every action is done before closing", a.ID, a.Status)
				}
			}
		}
		if e := r.Effectiveness; e != nil {
			if e.CheckedAt.IsZero() {
				v.addf("effectiveness.checked_at", "is required")
			}
			v.required("effectiveness.by", e.By)
		}
	}
	return v.errs
}

func (v *validator) actions(as []Action) {
	seen := map[string]bool{}
	for i, a := range as {
		p := fmt.Sprintf("actions[%d]", i)
		v.required(p+".id", a.ID)
		if seen[a.ID] {
			v.addf(p+".id", "%q appears twice", a.ID)
		}
		seen[a.ID] = true
		v.required(p+".description", a.Description)
		v.required(p+".owner", a.Owner)
		if a.Due.IsZero() {
			v.addf(p+".due", "is required")
		}
		v.oneOf(p+".type", a.Type, ActionTypes, false)
		v.oneOf(p+".status", a.Status, ActionStatuses, true)
		if a.Status == "done" && a.Done.IsZero() {
			v.addf(p+".done", "is required when status is done")
		}
	}
}

var hashPattern = regexp.MustCompile(`^(sha256:)?[0-9a-f]{64}$`)
