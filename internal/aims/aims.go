// Package aims keeps the records of an ISO/IEC 42001 AI management system beside the
// evidence Vigil produces, and links the two: the AI system inventory (extending the
// inventory's system record and discovered from traffic), AI policy documents with
// signed-off versions, risk and impact assessments, competence, controlled documents
// and communication records, the Statement of Applicability over the 38 Annex A
// controls with evidence computed from the running system, control health checks,
// internal audits and management reviews, incidents with corrective actions and EU AI
// Act Art. 73 clocks, and the signed evidence bundle an auditor verifies offline.
//
// Records are plain documents a compliance team can keep in git as YAML (ParseRecords,
// MarshalRecords); the Service validates them, records every change in the ledger and
// keeps them in a Store. The package does no network or SQL I/O of its own.
package aims

import (
	"context"
	"encoding/json"
	"time"
)

// IDPrefix namespaces Annex A control ids: ISO/IEC 42001 and ISO/IEC 27001 both number
// their Annex A controls A.5–A.8, so a bare "A.6.2.8" is ambiguous.
const IDPrefix = "iso42001:"

// Control is one Annex A control of the catalogue.
type Control struct {
	// ID is the prefixed control id, e.g. "iso42001:A.6.2.8".
	ID        string `json:"id"`
	Objective string `json:"objective"`
	SubGroup  string `json:"sub_group,omitempty"`
	Title     string `json:"title"`
	// NIST lists the NIST AI RMF 1.0 subcategories the crosswalk maps to this control.
	NIST []string `json:"nist_ai_rmf"`
	// EUAIAct lists the EU AI Act articles the control relates to.
	EUAIAct []string `json:"eu_ai_act"`
	// EvidenceKind is R (runtime), H (hybrid) or D (documents).
	EvidenceKind     string `json:"evidence_kind"`
	GatewayEvidence  string `json:"gateway_evidence"`
	DocumentEvidence string `json:"document_evidence"`
}

// Controls returns the 38 Annex A controls in catalogue order. The slice is a copy.
func Controls() []Control {
	out := make([]Control, len(catalogue))
	copy(out, catalogue)
	return out
}

// ControlByID returns the control with the prefixed id.
func ControlByID(id string) (Control, bool) {
	for _, c := range catalogue {
		if c.ID == id {
			return c, true
		}
	}
	return Control{}, false
}

// Date is a calendar day, written YYYY-MM-DD in records. The zero Date is "not set".
type Date struct{ time.Time }

// DateOf returns the day of t (in UTC).
func DateOf(t time.Time) Date {
	y, m, d := t.UTC().Date()
	return Date{time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
}

// ParseDate parses YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, err
	}
	return Date{t}, nil
}

// String is YYYY-MM-DD, or "" for the zero Date.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return d.Format(time.DateOnly)
}

// MarshalJSON writes "YYYY-MM-DD" (or null).
func (d Date) MarshalJSON() ([]byte, error) {
	if d.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(d.String())
}

// UnmarshalJSON reads "YYYY-MM-DD" or null.
func (d *Date) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d = Date{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == "" {
		*d = Date{}
		return nil
	}
	p, err := ParseDate(s)
	if err != nil {
		return err
	}
	*d = p
	return nil
}

// MarshalText and UnmarshalText let YAML use the same form.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads YYYY-MM-DD (empty is the zero Date).
func (d *Date) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = Date{}
		return nil
	}
	p, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = p
	return nil
}

// Before reports whether d is set and falls before the day of t.
func (d Date) Before(t time.Time) bool { return !d.IsZero() && d.Time.Before(DateOf(t).Time) }

// StoredRecord is a record as a Store keeps it: a JSON document addressed by kind and
// id. Stores never interpret Data.
type StoredRecord struct {
	Kind string
	ID   string
	// SystemID is the inventory id of the AI system the record belongs to, or "".
	SystemID  string
	Data      []byte
	UpdatedAt time.Time
	UpdatedBy string
}

// UsageKey identifies one aggregate of observed use: one (agent, system, provider,
// model, MCP server, tool) combination. Empty parts are "not applicable" (a model
// call has no tool).
type UsageKey struct {
	AgentID  string `json:"agent_id,omitempty"`
	SystemID string `json:"system_id,omitempty"`
	Provider string `json:"provider,omitempty"`
	Model    string `json:"model,omitempty"`
	Server   string `json:"server,omitempty"`
	Tool     string `json:"tool,omitempty"`
	// Source identifies a caller Vigil could not attribute to a registered agent
	// (e.g. "key:vk_7hq2mf4x"); empty for registered agents.
	Source string `json:"source,omitempty"`
}

// UsageAggregate is what Vigil has seen of one UsageKey.
type UsageAggregate struct {
	UsageKey
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Count     int64     `json:"count"`
}

// HealthResult is one evaluation of one control health check.
type HealthResult struct {
	Check  string    `json:"check"`
	At     time.Time `json:"at"`
	Pass   bool      `json:"pass"`
	Detail string    `json:"detail"`
}

// Verification is one run of ledger verification, as the verifier reported it.
type Verification struct {
	At time.Time `json:"at"`
	OK bool      `json:"ok"`
	// Size is the number of entries verified; Checkpoint the size of the newest
	// checkpoint verified.
	Size       int64  `json:"size"`
	Checkpoint int64  `json:"checkpoint"`
	Summary    string `json:"summary"`
	// Method names what did the verifying, e.g. "ledger.Verify".
	Method string `json:"method"`
}

// Store keeps the records.
//
// Lookups MUST return an error matching vigil.ErrNotFound when nothing matches;
// CreateRecord of an existing (kind, id) MUST return one matching vigil.ErrConflict.
// Times round-trip with microsecond precision in UTC. Implementations MUST be safe for
// concurrent use, including by several processes sharing one database.
type Store interface {
	CreateRecord(ctx context.Context, r StoredRecord) error
	// PutRecord creates or replaces the record (kind, id).
	PutRecord(ctx context.Context, r StoredRecord) error
	Record(ctx context.Context, kind, id string) (StoredRecord, error)
	// ListRecords returns every record of kind ordered by id.
	ListRecords(ctx context.Context, kind string) ([]StoredRecord, error)
	DeleteRecord(ctx context.Context, kind, id string) error

	// AddUsage adds n observations at time at to the aggregate of key: Count grows by
	// n, FirstSeen becomes the earliest and LastSeen the latest time seen. Concurrent
	// calls MUST NOT lose counts.
	AddUsage(ctx context.Context, key UsageKey, at time.Time, n int64) error
	// Usage returns every aggregate.
	Usage(ctx context.Context) ([]UsageAggregate, error)

	// AppendHealth records check results; HealthHistory returns those with
	// from <= At < to, ordered by time then check.
	AppendHealth(ctx context.Context, results []HealthResult) error
	HealthHistory(ctx context.Context, from, to time.Time) ([]HealthResult, error)

	// AppendVerification records a ledger verification run; Verifications returns
	// those with from <= At < to, oldest first.
	AppendVerification(ctx context.Context, v Verification) error
	Verifications(ctx context.Context, from, to time.Time) ([]Verification, error)
}
