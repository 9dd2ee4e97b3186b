// Package vigil is the shared vocabulary of the gateway: who acts (Actor), what they
// try to do (Action), what governance decided (Decision), what the PII scanner found
// (Finding), what goes into the ledger (Event), and the error type whose codes every
// surface maps to its own wire format.
//
// It imports only the standard library so that every other package can depend on it
// without pulling anything else in.
package vigil

import (
	"time"
)

// ActorKind says what sort of principal an Actor is.
type ActorKind string

// The kinds of actor.
const (
	ActorAgent  ActorKind = "agent"  // an AI agent authenticated by its API key
	ActorUser   ActorKind = "user"   // a named person signed in to the console
	ActorToken  ActorKind = "token"  // an admin/role token used by automation or the CLI
	ActorSystem ActorKind = "system" // Vigil itself (timeouts, health checks, heartbeats)
)

// Role is what a human or token may do on the admin surfaces.
type Role string

// The roles, from most to least powerful. Admin implies every other role.
const (
	RoleAdmin    Role = "admin"    // everything, including keys, users and policy
	RoleReviewer Role = "reviewer" // decide approvals, suspend agents
	RoleAuditor  Role = "auditor"  // read everything, export evidence, record ledger events
	RoleViewer   Role = "viewer"   // read-only dashboards
)

// Roles lists every role in a stable order.
var Roles = []Role{RoleAdmin, RoleReviewer, RoleAuditor, RoleViewer}

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool {
	for _, x := range Roles {
		if r == x {
			return true
		}
	}
	return false
}

// Actor is an authenticated principal. For agents, the Agent* and System* fields are
// set; for users and tokens, Roles is.
type Actor struct {
	Kind ActorKind `json:"kind"`
	ID   string    `json:"id"`
	Name string    `json:"name"`
	// Roles held by a user or token. Empty for agents.
	Roles []Role `json:"roles,omitempty"`

	// Agent fields (Kind == ActorAgent).
	SystemID   string            `json:"system_id,omitempty"`
	SystemName string            `json:"system,omitempty"`
	Owner      string            `json:"owner,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

// Has reports whether the actor holds role r. Admin holds every role.
func (a Actor) Has(r Role) bool {
	for _, x := range a.Roles {
		if x == r || x == RoleAdmin {
			return true
		}
	}
	return false
}

// String is the identity written to logs and the ledger, e.g. "user:alice".
func (a Actor) String() string {
	if a.Kind == "" {
		return "anonymous"
	}
	if a.Name != "" {
		return string(a.Kind) + ":" + a.Name
	}
	return string(a.Kind) + ":" + a.ID
}

// ActionKind is the sort of thing an agent is trying to do.
type ActionKind string

// The action kinds policy can distinguish (the CEL variable action.kind).
const (
	ModelCall     ActionKind = "model_call"
	ModelResponse ActionKind = "model_response"
	ToolCall      ActionKind = "tool_call"
	ToolResult    ActionKind = "tool_result"
	ResourceRead  ActionKind = "resource_read"
	PromptGet     ActionKind = "prompt_get"
)

// Model names a model and the provider that serves it.
type Model struct {
	Provider string `json:"provider,omitempty"`
	Name     string `json:"name"`
}

// ToolAnnotations are MCP's tool hints. The zero value is not MCP's default; use
// DefaultToolAnnotations for a tool that declares none.
type ToolAnnotations struct {
	Title           string `json:"title,omitempty"`
	ReadOnlyHint    bool   `json:"readOnlyHint"`
	DestructiveHint bool   `json:"destructiveHint"`
	IdempotentHint  bool   `json:"idempotentHint"`
	OpenWorldHint   bool   `json:"openWorldHint"`
}

// DefaultToolAnnotations are the values MCP says a client must assume when a tool
// declares nothing: not read-only, destructive, not idempotent, open world.
func DefaultToolAnnotations() ToolAnnotations {
	return ToolAnnotations{DestructiveHint: true, OpenWorldHint: true}
}

// Tool names an MCP tool (or an in-process tool described to the decision API).
type Tool struct {
	Server      string          `json:"server,omitempty"`
	Name        string          `json:"name"`
	Annotations ToolAnnotations `json:"annotations"`
}

// PIISummary is what policy and the ledger learn about personal data in a payload:
// types and counts, never values.
type PIISummary struct {
	Counts map[string]int `json:"counts,omitempty"`
}

// Types returns the entity types found, for the CEL variable pii.types.
func (s PIISummary) Types() []string {
	out := make([]string, 0, len(s.Counts))
	for t, n := range s.Counts {
		if n > 0 {
			out = append(out, t)
		}
	}
	return out
}

// Total is the number of findings of all types.
func (s PIISummary) Total() int {
	n := 0
	for _, c := range s.Counts {
		n += c
	}
	return n
}

// Action is one thing an agent is trying to do, normalised from whichever ingress it
// arrived through. It is what the policy engine evaluates.
type Action struct {
	// ID is the event id of the request this action belongs to.
	ID        string     `json:"id"`
	Kind      ActionKind `json:"kind"`
	Actor     Actor      `json:"actor"`
	SessionID string     `json:"session_id,omitempty"`
	Model     *Model     `json:"model,omitempty"`
	Tool      *Tool      `json:"tool,omitempty"`
	// Resource is the URI for resource_read, or the prompt name for prompt_get.
	Resource string `json:"resource,omitempty"`
	// Args are the call's arguments (tools) or request parameters (models), after masking.
	Args map[string]any `json:"args,omitempty"`
	PII  PIISummary     `json:"pii"`
	Time time.Time      `json:"time"`
}

// Effect is the outcome of a policy decision.
type Effect string

// The effects, in increasing order of precedence: deny beats require_approval beats allow.
const (
	Allow           Effect = "allow"
	RequireApproval Effect = "require_approval"
	Deny            Effect = "deny"
)

// Valid reports whether e is one of the three effects.
func (e Effect) Valid() bool { return e == Allow || e == Deny || e == RequireApproval }

// Precedence orders effects: the higher one wins when rules disagree.
func (e Effect) Precedence() int {
	switch e {
	case Allow:
		return 1
	case RequireApproval:
		return 2
	case Deny:
		return 3
	}
	return 0
}

// ApprovalSpec says who must approve a held action, and for how long it may wait.
type ApprovalSpec struct {
	Roles     []Role        `json:"roles,omitempty"`
	Approvers int           `json:"approvers"`
	Timeout   time.Duration `json:"timeout"`
	// RequireTraining, when set, names a competence that a reviewer must hold a current
	// training record for (ISO 42001 clause 7, EU AI Act Art. 26(2)).
	RequireTraining string `json:"require_training,omitempty"`
}

// RuleError records a rule whose condition could not be evaluated for an action.
type RuleError struct {
	Rule  string `json:"rule"`
	Error string `json:"error"`
	// Skipped is true when the rule says on_error: skip; otherwise the error counted as deny.
	Skipped bool `json:"skipped,omitempty"`
}

// Decision is the policy engine's verdict on one action, with its reasons.
type Decision struct {
	Effect  Effect `json:"effect"`
	Message string `json:"message,omitempty"`
	// Rules are the ids of the rules that matched (and of failed-closed rules).
	Rules []string `json:"rules"`
	// Policy is the content hash of the policy version that decided.
	Policy string `json:"policy"`
	// Approval is set when Effect is RequireApproval.
	Approval *ApprovalSpec `json:"approval,omitempty"`
	Errors   []RuleError   `json:"errors,omitempty"`
	// Limit names the limit that was reached, when a limit decided.
	Limit   string        `json:"limit,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Finding is one piece of personal data or secret found in a payload.
type Finding struct {
	Type string `json:"type"`
	// Value is the decoded text found. It MUST NOT be logged or written to the ledger.
	Value string `json:"value"`
	// Start and End are byte offsets into the scanned input (raw bytes, for JSON).
	Start      int     `json:"start"`
	End        int     `json:"end"`
	Score      float64 `json:"score"`
	Recognizer string  `json:"recognizer"`
	// Rule names the specific pattern for SECRET findings (e.g. "github-pat").
	Rule string `json:"rule,omitempty"`
}
