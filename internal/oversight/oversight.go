// Package oversight is human oversight of agents (EU AI Act Art. 14, ISO/IEC 42001
// A.9): the approval queue where risky calls wait for named reviewers, the rules
// reviewers decide under (required roles, four-eyes, separation of duties, training),
// default deny on timeout, and the kill switch that stops an agent, an AI system or
// everything at once and closes their open work.
//
// Every request, decision, expiry, cancellation and halt is recorded in the ledger
// with who did it; arguments and reasons go in the erasable event body.
//
// The package holds no technology: storage, cross-replica notification, training
// records and metrics come in through the small interfaces declared here, and
// cmd/vigil wires the drivers.
package oversight

import (
	"context"
	"slices"
	"time"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Status is where an approval request stands. Pending is the only non-terminal one.
type Status string

// The statuses.
const (
	Pending   Status = "pending"
	Approved  Status = "approved"
	Denied    Status = "denied"
	Expired   Status = "expired"   // nobody decided in time: treated as a denial
	Cancelled Status = "cancelled" // the kill switch, or the caller stopped waiting
)

// Statuses lists every status in a stable order.
var Statuses = []Status{Pending, Approved, Denied, Expired, Cancelled}

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool {
	for _, x := range Statuses {
		if s == x {
			return true
		}
	}
	return false
}

// Terminal reports whether s is final: a request never leaves a terminal status.
func (s Status) Terminal() bool { return s != Pending && s.Valid() }

// Source is the ingress a held call came through.
type Source string

// The sources.
const (
	SourceMCP           Source = "mcp"             // an MCP tools/call through /mcp/{server}
	SourceModelToolCall Source = "model_tool_call" // a tool call a model proposed in its response
	SourceDecisionAPI   Source = "decision_api"    // POST /v1/decisions from an agent that runs tools in-process
	SourceModelCall     Source = "model_call"      // a request to a model
)

// Valid reports whether s is one of the sources.
func (s Source) Valid() bool {
	return s == SourceMCP || s == SourceModelToolCall || s == SourceDecisionAPI || s == SourceModelCall
}

// Verdict is what one reviewer said.
type Verdict string

// The verdicts.
const (
	Approve Verdict = "approve"
	Deny    Verdict = "deny"
)

// Vote is one reviewer's decision on a request.
type Vote struct {
	// Reviewer is the reviewer's vigil.Actor.String(), e.g. "user:alice".
	Reviewer string  `json:"reviewer"`
	Verdict  Verdict `json:"verdict"`
	Reason   string  `json:"reason,omitempty"`
	// Args, on an approval, are arguments the reviewer edited: the call goes ahead
	// with these instead of the agent's. Nil when the reviewer approved as asked.
	Args map[string]any `json:"args,omitempty"`
	At   time.Time      `json:"at"`
}

// Request is one held call waiting for (or decided by) people.
type Request struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	Source Source `json:"source"`

	AgentID    string `json:"agent_id"`
	AgentName  string `json:"agent"`
	AgentOwner string `json:"agent_owner,omitempty"`
	SystemID   string `json:"system_id"`
	SystemName string `json:"system"`
	SessionID  string `json:"session_id,omitempty"`

	// Tool is set for tool calls, Model for model calls.
	Tool  *vigil.Tool  `json:"tool,omitempty"`
	Model *vigil.Model `json:"model,omitempty"`
	// Args are the arguments as the caller gave them, already masked by the pipeline.
	Args map[string]any `json:"args,omitempty"`

	// Rules are the ids of the rules that asked for approval; Message is what they say.
	Rules   []string           `json:"rules"`
	Message string             `json:"message,omitempty"`
	Policy  string             `json:"policy,omitempty"`
	Spec    vigil.ApprovalSpec `json:"spec"`

	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	// DecidedBy is who made the request terminal: the deciding reviewer, whoever
	// pulled the kill switch, or "system:oversight" for an expiry.
	DecidedBy string `json:"decided_by,omitempty"`
	// Reason is why it ended: the denial's reason, the cancellation's, or the expiry.
	Reason string `json:"reason,omitempty"`
	// EditedArgs are the arguments the call goes ahead with when a reviewer approved
	// with edits (the last edit wins); nil otherwise.
	EditedArgs map[string]any `json:"edited_args,omitempty"`
	// Votes are the reviewers' decisions, oldest first.
	Votes []Vote `json:"votes"`
}

// Approvals is how many distinct approvals the request needs (at least one).
func (r Request) Approvals() int { return max(1, r.Spec.Approvers) }

// Subject names what the request is about: "server/tool", "tool" or "model NAME".
func (r Request) Subject() string {
	switch {
	case r.Tool != nil && r.Tool.Server != "":
		return r.Tool.Server + "/" + r.Tool.Name
	case r.Tool != nil:
		return r.Tool.Name
	case r.Model != nil:
		return "model " + r.Model.Name
	}
	return "?"
}

// ApprovedVotes counts the approve votes so far.
func (r Request) ApprovedVotes() int {
	n := 0
	for _, v := range r.Votes {
		if v.Verdict == Approve {
			n++
		}
	}
	return n
}

// WithVote returns r with v added and the outcome it leads to: a denial denies at
// once; the approval that brings the distinct approvals to Approvals() approves; a
// non-nil v.Args becomes EditedArgs (the last edit wins). A terminal outcome sets
// DecidedAt, DecidedBy and Reason from v. Stores apply it inside the transaction that
// holds the request, after checking it is pending, v.At is before ExpiresAt and
// v.Reviewer has not voted, so the rule lives here once for every driver.
func (r Request) WithVote(v Vote) Request {
	r.Votes = append(slices.Clone(r.Votes), v)
	if v.Args != nil {
		r.EditedArgs = v.Args
	}
	switch {
	case v.Verdict == Deny:
		r.Status = Denied
	case r.ApprovedVotes() >= r.Approvals():
		r.Status = Approved
	}
	if r.Status != Pending {
		at := v.At
		r.DecidedAt, r.DecidedBy, r.Reason = &at, v.Reviewer, v.Reason
	}
	return r
}

// FinalArgs are the arguments the call should go ahead with once approved.
func (r Request) FinalArgs() map[string]any {
	if r.EditedArgs != nil {
		return r.EditedArgs
	}
	return r.Args
}

// Filter selects requests to list. Zero fields match everything.
type Filter struct {
	Status   Status
	AgentID  string
	SystemID string
	// Limit caps the result (newest first); 0 means the store's default of 100.
	Limit int
}

// Scope selects the pending requests a cancellation applies to: one request, every
// request of an agent or of a system, or (All) every pending request.
type Scope struct {
	ID       string
	AgentID  string
	SystemID string
	All      bool
}

// Halt is the global kill switch: when On, every agent is refused.
type Halt struct {
	On     bool      `json:"on"`
	Reason string    `json:"reason,omitempty"`
	By     string    `json:"by,omitempty"`
	At     time.Time `json:"at,omitzero"`
}

// Store keeps approval requests, their votes and the global halt flag. It is the
// only shared state between replicas, so every state change is a conditional
// update: two replicas racing on one request MUST produce exactly one transition.
//
// Lookups MUST return an error matching vigil.ErrNotFound when nothing matches.
// Implementations MUST be safe for concurrent use.
type Store interface {
	// CreateRequest stores a new pending request. An existing id MUST be refused with
	// an error matching vigil.ErrConflict.
	CreateRequest(ctx context.Context, r Request) error
	// Request returns one request with its votes.
	Request(ctx context.Context, id string) (Request, error)
	// ListRequests returns the requests matching f, newest first, with their votes.
	ListRequests(ctx context.Context, f Filter) ([]Request, error)
	// Vote atomically adds v to request id and returns the request as it then stands.
	// It MUST change nothing and return an error matching vigil.ErrConflict when the
	// request is not pending, when v.At is not before its ExpiresAt, or when
	// v.Reviewer has already voted on it. A deny vote makes the request Denied; an
	// approve vote makes it Approved when the distinct approve votes reach
	// r.Approvals(), and a non-nil v.Args becomes its EditedArgs. The terminal
	// transition sets DecidedAt (v.At), DecidedBy (v.Reviewer) and Reason (v.Reason).
	Vote(ctx context.Context, id string, v Vote) (Request, error)
	// ExpireDue moves up to limit pending requests whose ExpiresAt is not after now
	// to Expired (DecidedAt now, DecidedBy by, Reason reason) and returns them as
	// changed. A request is returned by exactly one of any concurrent callers.
	ExpireDue(ctx context.Context, now time.Time, by, reason string, limit int) ([]Request, error)
	// Cancel moves the pending requests in scope to Cancelled and returns them as
	// changed. A request is returned by exactly one of any concurrent callers.
	Cancel(ctx context.Context, scope Scope, by, reason string, at time.Time) ([]Request, error)
	// CountPending counts pending requests (expired or not yet swept).
	CountPending(ctx context.Context) (int, error)

	// Halt returns the global kill switch; the zero Halt when it was never set.
	Halt(ctx context.Context) (Halt, error)
	// SetHalt stores the global kill switch.
	SetHalt(ctx context.Context, h Halt) error
}

// Recorder appends an event to the ledger and returns once it is durable.
type Recorder interface {
	Record(ctx context.Context, e vigil.Event) (vigil.Receipt, error)
}

// Competence answers whether a reviewer holds a current training record for a
// competence (ISO/IEC 42001 clause 7.2, EU AI Act Art. 26(2)). reviewer is the
// reviewer's vigil.Actor.String(). The ISO 42001 records implement it.
type Competence interface {
	Current(ctx context.Context, reviewer string, competence string, at time.Time) (bool, error)
}

// Notifier carries notices to the other replicas. Each replica passes what it
// receives to Service.Receive. Delivery is best effort: waiters also poll, so a lost
// notice delays a release by at most the poll interval, never strands it.
type Notifier interface {
	Notify(ctx context.Context, n Notice) error
}

// Metrics is told about the queue. Implementations MUST be safe for concurrent use.
type Metrics interface {
	// Pending reports how many requests are pending across all replicas.
	Pending(n int)
	// Ended reports a request that reached status after waiting for waited.
	Ended(status Status, waited time.Duration)
}

// Event types this package writes to the ledger beside vigil.EventApprovalRequest
// and vigil.EventApprovalDecision (one per vote).
const (
	EventApprovalExpired   = "approval.expired"
	EventApprovalCancelled = "approval.cancelled"
	EventHalted            = "gateway.halted"
	EventUnhalted          = "gateway.resumed"
)

// SystemActor is the identity the expirer acts as.
var SystemActor = vigil.Actor{Kind: vigil.ActorSystem, Name: "oversight"}
