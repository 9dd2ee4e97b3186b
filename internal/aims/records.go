package aims

import (
	"time"

	"gopkg.in/yaml.v3"
)

// The record kinds, as written in the `kind:` key of a YAML record.
const (
	KindSystem        = "system"
	KindPolicy        = "policy"
	KindRisk          = "risk"
	KindImpact        = "impact_assessment"
	KindCompetence    = "competence"
	KindDocument      = "document"
	KindCommunication = "communication"
	KindApplicability = "applicability"
	KindAudit         = "audit"
	KindReview        = "review"
	KindIncident      = "incident"
)

// Kinds that are not written by people but kept by the Service.
const (
	kindPolicyVersion = "policy_version"
	kindSignoff       = "signoff"
	kindState         = "state"
)

// RecordKinds lists the kinds a YAML record may have, in the order exports write them.
var RecordKinds = []string{KindSystem, KindPolicy, KindRisk, KindImpact, KindCompetence, KindDocument,
	KindCommunication, KindApplicability, KindAudit, KindReview, KindIncident}

// Record is one management-system record. Every kind below implements it.
type Record interface {
	// Kind is the record's kind (one of RecordKinds).
	Kind() string
	// Key is the record's id within its kind.
	Key() string
	// SystemName names the AI system the record belongs to, or "".
	SystemName() string
}

// MarshalYAML writes a Date as an unquoted YAML timestamp (YYYY-MM-DD).
func (d Date) MarshalYAML() (any, error) {
	if d.IsZero() {
		return nil, nil
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!timestamp", Value: d.String()}, nil
}

// System is the ISO/IEC 42001 inventory record of an AI system (clause 4, A.4). Its id
// is the inventory system's name; name, purpose, owner and lifecycle are the inventory's
// own fields (one record, not two), the rest is kept by aims under the same system id.
type System struct {
	// ID is the system's name in the inventory (a-z, 0-9, '.', '_', '-').
	ID string `yaml:"id" json:"id"`
	// Purpose is what the system is for; IntendedUse how it is meant to be used
	// (and, by omission, what is out of scope).
	Purpose     string `yaml:"purpose" json:"purpose"`
	IntendedUse string `yaml:"intended_use,omitempty" json:"intended_use,omitempty"`
	// Owner is the accountable person or team.
	Owner string `yaml:"owner" json:"owner"`
	// Lifecycle is one of inventory.LifecycleStages.
	Lifecycle string `yaml:"lifecycle,omitempty" json:"lifecycle,omitempty"`
	// Role is the organisation's EU AI Act role for this system: provider, deployer
	// or provider_and_deployer.
	Role string `yaml:"role" json:"role"`
	// OutOfScope excludes the system from the AI management system (clause 4.3).
	OutOfScope          bool     `yaml:"out_of_scope,omitempty" json:"out_of_scope,omitempty"`
	DataCategories      []string `yaml:"data_categories,omitempty" json:"data_categories,omitempty"`
	DecisionsInfluenced []string `yaml:"decisions_influenced,omitempty" json:"decisions_influenced,omitempty"`
	AffectedPeople      []string `yaml:"affected_people,omitempty" json:"affected_people,omitempty"`
	// RiskClass is the EU AI Act class: prohibited, high, limited, minimal or gpai;
	// RiskRationale says why (e.g. "Annex III 5(b): creditworthiness").
	RiskClass     string `yaml:"risk_class" json:"risk_class"`
	RiskRationale string `yaml:"risk_rationale" json:"risk_rationale"`
	// AnnexIII is the Annex III point for high-risk systems, e.g. "5(b)".
	AnnexIII string `yaml:"annex_iii,omitempty" json:"annex_iii,omitempty"`
	// Models, Providers, MCPServers and Tools are what the system is approved to use.
	// Entries may end in '*' to match a prefix ("gpt-4o*"); Tools are "server/tool".
	// Traffic outside these lists is flagged.
	Models     []string `yaml:"models,omitempty" json:"models,omitempty"`
	Providers  []string `yaml:"providers,omitempty" json:"providers,omitempty"`
	MCPServers []string `yaml:"mcp_servers,omitempty" json:"mcp_servers,omitempty"`
	Tools      []string `yaml:"tools,omitempty" json:"tools,omitempty"`
}

// Policy is an AI policy document (clause 5.2, A.2). Each distinct text is a version;
// a version is identified by its content hash and signed off by a named leader in the
// ledger.
type Policy struct {
	ID      string `yaml:"id" json:"id"`
	Title   string `yaml:"title" json:"title"`
	Version string `yaml:"version" json:"version"`
	Owner   string `yaml:"owner" json:"owner"`
	// Text is the policy itself (Markdown). Its SHA-256 is the version's hash.
	Text          string `yaml:"text" json:"text"`
	EffectiveFrom Date   `yaml:"effective_from,omitempty" json:"effective_from"`
	// NextReview is when the policy must next be reviewed (A.2.4); past it, the
	// policy is overdue.
	NextReview Date `yaml:"next_review" json:"next_review"`
	// Signoff asks for the current version to be signed off by a named leader: on
	// import, a version not yet signed by that leader is signed (a ledger event over
	// the version's hash).
	Signoff *SignoffRequest `yaml:"signoff,omitempty" json:"signoff,omitempty"`
	// EnforcedBy lists the content hashes of policy-as-code versions that implement
	// this AI policy (the hash attr of the ledger's policy.activated events).
	EnforcedBy []string `yaml:"enforced_by,omitempty" json:"enforced_by,omitempty"`
}

// SignoffRequest names the leader who approves a policy version.
type SignoffRequest struct {
	Leader string `yaml:"leader" json:"leader"`
	Title  string `yaml:"title,omitempty" json:"title,omitempty"`
}

// Signoff is a recorded approval of one policy version: a ledger event over its hash.
type Signoff struct {
	Policy  string    `json:"policy"`
	Version string    `json:"version"`
	Hash    string    `json:"hash"`
	Leader  string    `json:"leader"`
	Title   string    `json:"title,omitempty"`
	At      time.Time `json:"at"`
	// RecordedBy is the actor who recorded it; EventID and Index locate the ledger
	// event.
	RecordedBy string `json:"recorded_by"`
	EventID    string `json:"event_id"`
	Index      int64  `json:"ledger_index"`
}

// Risk is one AI risk of one system (6.1.2, 6.1.3, 8.2, 8.3), scored likelihood ×
// impact on the configured scale, before (inherent) and after (residual) treatment.
type Risk struct {
	ID          string `yaml:"id" json:"id"`
	System      string `yaml:"system" json:"system"`
	Title       string `yaml:"title" json:"title"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	Owner       string `yaml:"owner" json:"owner"`
	Likelihood  int    `yaml:"likelihood" json:"likelihood"`
	Impact      int    `yaml:"impact" json:"impact"`
	// ResidualLikelihood and ResidualImpact are the scores once treatments are done.
	ResidualLikelihood int `yaml:"residual_likelihood" json:"residual_likelihood"`
	ResidualImpact     int `yaml:"residual_impact" json:"residual_impact"`
	// Option is the treatment option: mitigate, avoid, transfer or accept.
	Option     string      `yaml:"option" json:"option"`
	Status     string      `yaml:"status" json:"status"`
	AssessedAt Date        `yaml:"assessed_at" json:"assessed_at"`
	NextReview Date        `yaml:"next_review" json:"next_review"`
	Treatments []Treatment `yaml:"treatments,omitempty" json:"treatments,omitempty"`
}

// Treatment is one measure against a risk, linked to the Annex A controls it
// implements and to the technical controls that enforce it.
type Treatment struct {
	ID          string `yaml:"id" json:"id"`
	Description string `yaml:"description" json:"description"`
	// Controls are prefixed Annex A ids ("iso42001:A.9.2").
	Controls []string `yaml:"controls,omitempty" json:"controls,omitempty"`
	// Technical are Vigil controls: "policy-rule:<id>", "pii:<setting>",
	// "approval:<rule id>", "config:<key>".
	Technical []string `yaml:"technical,omitempty" json:"technical,omitempty"`
	Owner     string   `yaml:"owner" json:"owner"`
	Due       Date     `yaml:"due,omitempty" json:"due"`
	// Status is planned, in_progress or done.
	Status string `yaml:"status" json:"status"`
}

// ImpactAssessment is an AI system impact assessment (6.1.4, 8.4, A.5), with the
// EU AI Act Art. 27 fundamental rights impact assessment fields when one is needed.
type ImpactAssessment struct {
	ID     string `yaml:"id" json:"id"`
	System string `yaml:"system" json:"system"`
	Title  string `yaml:"title" json:"title"`
	// Individuals assesses impacts on individuals and groups (A.5.4); Societal on
	// society (A.5.5).
	Individuals string `yaml:"individuals" json:"individuals"`
	Societal    string `yaml:"societal" json:"societal"`
	FRIA        *FRIA  `yaml:"fria,omitempty" json:"fria,omitempty"`
	// Status is draft or approved; an approved assessment names who approved it.
	Status     string `yaml:"status" json:"status"`
	AssessedAt Date   `yaml:"assessed_at" json:"assessed_at"`
	ApprovedBy string `yaml:"approved_by,omitempty" json:"approved_by,omitempty"`
	ApprovedAt Date   `yaml:"approved_at,omitempty" json:"approved_at"`
	NextReview Date   `yaml:"next_review" json:"next_review"`
}

// FRIA holds the EU AI Act Art. 27(1)(a)–(f) elements.
type FRIA struct {
	DeployerProcesses  string   `yaml:"deployer_processes" json:"deployer_processes"`
	PeriodAndFrequency string   `yaml:"period_and_frequency" json:"period_and_frequency"`
	AffectedCategories []string `yaml:"affected_categories" json:"affected_categories"`
	SpecificRisks      string   `yaml:"specific_risks" json:"specific_risks"`
	HumanOversight     string   `yaml:"human_oversight" json:"human_oversight"`
	Measures           string   `yaml:"measures" json:"measures"`
	ComplaintMechanism string   `yaml:"complaint_mechanism,omitempty" json:"complaint_mechanism,omitempty"`
	// AuthorityNotified is when the market surveillance authority was notified
	// (Art. 27(3)).
	AuthorityNotified Date `yaml:"authority_notified,omitempty" json:"authority_notified"`
}

// Competence is a training or competence record of a person who holds an oversight
// or approval role (clause 7.2, A.4.6, EU AI Act Art. 26(2)).
type Competence struct {
	ID string `yaml:"id" json:"id"`
	// Person is the reviewer's identity as the oversight queue knows it.
	Person string `yaml:"person" json:"person"`
	// Competence names what was trained, e.g. "credit-decision-oversight"; policy
	// rules refer to it in approval.require_training.
	Competence string `yaml:"competence" json:"competence"`
	Evidence   string `yaml:"evidence,omitempty" json:"evidence,omitempty"`
	Obtained   Date   `yaml:"obtained" json:"obtained"`
	// Expires is the first day the record is no longer current.
	Expires Date `yaml:"expires" json:"expires"`
}

// Document is a controlled document (clause 7.5): version, owner, approval, review.
type Document struct {
	ID         string   `yaml:"id" json:"id"`
	Title      string   `yaml:"title" json:"title"`
	Version    string   `yaml:"version" json:"version"`
	Owner      string   `yaml:"owner" json:"owner"`
	ApprovedBy string   `yaml:"approved_by,omitempty" json:"approved_by,omitempty"`
	ApprovedAt Date     `yaml:"approved_at,omitempty" json:"approved_at"`
	NextReview Date     `yaml:"next_review" json:"next_review"`
	Location   string   `yaml:"location,omitempty" json:"location,omitempty"`
	RelatesTo  []string `yaml:"relates_to,omitempty" json:"relates_to,omitempty"`
}

// Communication records who was told what, and when (clause 7.4; EU AI Act
// Art. 26(7) workers, 26(11) affected persons, Art. 73 authorities).
type Communication struct {
	ID     string `yaml:"id" json:"id"`
	Date   Date   `yaml:"date" json:"date"`
	System string `yaml:"system,omitempty" json:"system,omitempty"`
	// Audience is workers, workers_representatives, affected_persons, provider,
	// authority, customers, staff or other.
	Audience string `yaml:"audience" json:"audience"`
	// Basis is the obligation it meets, e.g. "EU AI Act Art. 26(7)".
	Basis   string `yaml:"basis,omitempty" json:"basis,omitempty"`
	Summary string `yaml:"summary" json:"summary"`
	Channel string `yaml:"channel,omitempty" json:"channel,omitempty"`
	By      string `yaml:"by" json:"by"`
}

// Applicability is the Statement of Applicability entry for one Annex A control.
type Applicability struct {
	// ID is the prefixed control id.
	ID         string `yaml:"id" json:"id"`
	Applicable bool   `yaml:"applicable" json:"applicable"`
	// Justification says why the control is included or excluded.
	Justification string `yaml:"justification" json:"justification"`
	// Status is not_started, planned, partial or implemented (not_applicable when
	// excluded).
	Status string `yaml:"status" json:"status"`
	Owner  string `yaml:"owner,omitempty" json:"owner,omitempty"`
	// Evidence lists document evidence (document ids, links); automatic evidence is
	// computed from the running system.
	Evidence []string `yaml:"evidence,omitempty" json:"evidence,omitempty"`
	// Risks lists the risk ids this control treats.
	Risks []string `yaml:"risks,omitempty" json:"risks,omitempty"`
}

// Audit is an internal audit (clause 9.2).
type Audit struct {
	ID         string         `yaml:"id" json:"id"`
	Title      string         `yaml:"title" json:"title"`
	Scope      string         `yaml:"scope" json:"scope"`
	Auditor    string         `yaml:"auditor" json:"auditor"`
	Planned    Date           `yaml:"planned" json:"planned"`
	Performed  Date           `yaml:"performed,omitempty" json:"performed"`
	Status     string         `yaml:"status" json:"status"`
	Findings   []AuditFinding `yaml:"findings,omitempty" json:"findings,omitempty"`
	Conclusion string         `yaml:"conclusion,omitempty" json:"conclusion,omitempty"`
}

// AuditFinding is one finding of an audit; a nonconformity links to the incident
// record (type nonconformity) that tracks its correction.
type AuditFinding struct {
	ID string `yaml:"id" json:"id"`
	// Type is major_nonconformity, minor_nonconformity, observation or opportunity.
	Type        string `yaml:"type" json:"type"`
	Description string `yaml:"description" json:"description"`
	Control     string `yaml:"control,omitempty" json:"control,omitempty"`
	Incident    string `yaml:"incident,omitempty" json:"incident,omitempty"`
}

// Review is a management review (clause 9.3). Its input pack is compiled from the
// running system for the period since the previous review.
type Review struct {
	ID        string   `yaml:"id" json:"id"`
	Date      Date     `yaml:"date" json:"date"`
	Chair     string   `yaml:"chair" json:"chair"`
	Attendees []string `yaml:"attendees,omitempty" json:"attendees,omitempty"`
	Notes     string   `yaml:"notes,omitempty" json:"notes,omitempty"`
	Decisions []string `yaml:"decisions,omitempty" json:"decisions,omitempty"`
	Actions   []Action `yaml:"actions,omitempty" json:"actions,omitempty"`
}

// Incident is an incident or nonconformity with its corrective actions (clause 10.2).
// A serious incident under the EU AI Act carries an Art. 73 reporting deadline.
type Incident struct {
	ID string `yaml:"id" json:"id"`
	// Type is incident or nonconformity.
	Type        string `yaml:"type" json:"type"`
	Title       string `yaml:"title" json:"title"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	System      string `yaml:"system,omitempty" json:"system,omitempty"`
	// Severity is low, medium, high or critical.
	Severity string `yaml:"severity" json:"severity"`
	// Serious marks an EU AI Act serious incident (Art. 3(49)); Category picks its
	// Art. 73 clock: general (15 days), widespread_infringement or
	// critical_infrastructure (2 days), death (10 days).
	Serious  bool   `yaml:"serious,omitempty" json:"serious,omitempty"`
	Category string `yaml:"category,omitempty" json:"category,omitempty"`
	// DetectedAt is when it happened or was detected; AwareAt when the organisation
	// became aware of it (the Art. 73 clock starts here; defaults to DetectedAt).
	DetectedAt time.Time `yaml:"detected_at" json:"detected_at"`
	AwareAt    time.Time `yaml:"aware_at,omitempty" json:"aware_at"`
	// Status is open, investigating, resolved or closed.
	Status string `yaml:"status" json:"status"`
	// Source is manual, or auto:<signal> for incidents Vigil opened itself.
	Source string `yaml:"source,omitempty" json:"source,omitempty"`
	// SignalKey is the automatic signal's deduplication key: while an incident with
	// the key is not closed, the signal adds an occurrence instead of a new incident.
	SignalKey string `yaml:"signal_key,omitempty" json:"signal_key,omitempty"`
	// Occurrences counts how often an automatic signal recurred while open.
	Occurrences   int            `yaml:"occurrences,omitempty" json:"occurrences,omitempty"`
	RootCause     string         `yaml:"root_cause,omitempty" json:"root_cause,omitempty"`
	Actions       []Action       `yaml:"actions,omitempty" json:"actions,omitempty"`
	Effectiveness *Effectiveness `yaml:"effectiveness,omitempty" json:"effectiveness,omitempty"`
	// ReportedAt is when the authority was notified.
	ReportedAt time.Time `yaml:"reported_at,omitempty" json:"reported_at"`
	ClosedAt   Date      `yaml:"closed_at,omitempty" json:"closed_at"`
}

// Action is a corrective, preventive or containment action, or a review action.
type Action struct {
	ID          string `yaml:"id" json:"id"`
	Description string `yaml:"description" json:"description"`
	// Type is corrective, preventive, containment or improvement.
	Type   string `yaml:"type,omitempty" json:"type,omitempty"`
	Owner  string `yaml:"owner" json:"owner"`
	Due    Date   `yaml:"due" json:"due"`
	Status string `yaml:"status" json:"status"`
	Done   Date   `yaml:"done,omitempty" json:"done"`
}

// Effectiveness is the check that corrective actions worked (clause 10.2 e).
type Effectiveness struct {
	CheckedAt Date   `yaml:"checked_at" json:"checked_at"`
	By        string `yaml:"by" json:"by"`
	Effective bool   `yaml:"effective" json:"effective"`
	Notes     string `yaml:"notes,omitempty" json:"notes,omitempty"`
}

func (r *System) Kind() string                 { return KindSystem }
func (r *Policy) Kind() string                 { return KindPolicy }
func (r *Risk) Kind() string                   { return KindRisk }
func (r *ImpactAssessment) Kind() string       { return KindImpact }
func (r *Competence) Kind() string             { return KindCompetence }
func (r *Document) Kind() string               { return KindDocument }
func (r *Communication) Kind() string          { return KindCommunication }
func (r *Applicability) Kind() string          { return KindApplicability }
func (r *Audit) Kind() string                  { return KindAudit }
func (r *Review) Kind() string                 { return KindReview }
func (r *Incident) Kind() string               { return KindIncident }
func (r *System) Key() string                  { return r.ID }
func (r *Policy) Key() string                  { return r.ID }
func (r *Risk) Key() string                    { return r.ID }
func (r *ImpactAssessment) Key() string        { return r.ID }
func (r *Competence) Key() string              { return r.ID }
func (r *Document) Key() string                { return r.ID }
func (r *Communication) Key() string           { return r.ID }
func (r *Applicability) Key() string           { return r.ID }
func (r *Audit) Key() string                   { return r.ID }
func (r *Review) Key() string                  { return r.ID }
func (r *Incident) Key() string                { return r.ID }
func (r *System) SystemName() string           { return r.ID }
func (r *Policy) SystemName() string           { return "" }
func (r *Risk) SystemName() string             { return r.System }
func (r *ImpactAssessment) SystemName() string { return r.System }
func (r *Competence) SystemName() string       { return "" }
func (r *Document) SystemName() string         { return "" }
func (r *Communication) SystemName() string    { return r.System }
func (r *Applicability) SystemName() string    { return "" }
func (r *Audit) SystemName() string            { return "" }
func (r *Review) SystemName() string           { return "" }
func (r *Incident) SystemName() string         { return r.System }

// NewRecord returns an empty record of kind, or nil for an unknown kind.
func NewRecord(kind string) Record {
	switch kind {
	case KindSystem:
		return &System{}
	case KindPolicy:
		return &Policy{}
	case KindRisk:
		return &Risk{}
	case KindImpact:
		return &ImpactAssessment{}
	case KindCompetence:
		return &Competence{}
	case KindDocument:
		return &Document{}
	case KindCommunication:
		return &Communication{}
	case KindApplicability:
		return &Applicability{}
	case KindAudit:
		return &Audit{}
	case KindReview:
		return &Review{}
	case KindIncident:
		return &Incident{}
	}
	return nil
}
