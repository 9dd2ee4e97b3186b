package vigil

import "time"

// Event types written to the ledger. Producers may define more; a type is a short
// dotted lowercase name, the first part naming the area.
const (
	EventModelRequest     = "model.request"
	EventModelResponse    = "model.response"
	EventToolCall         = "tool.call"
	EventToolResult       = "tool.result"
	EventResourceRead     = "resource.read"
	EventPromptGet        = "prompt.get"
	EventDecision         = "decision"
	EventDecisionOutcome  = "decision.outcome"
	EventApprovalRequest  = "approval.requested"
	EventApprovalDecision = "approval.decided"
	EventAgentCreated     = "agent.created"
	EventAgentChanged     = "agent.changed"
	EventAgentSuspended   = "agent.suspended"
	EventAgentResumed     = "agent.resumed"
	EventSystemCreated    = "system.created"
	EventSystemChanged    = "system.changed"
	EventTokenCreated     = "token.created"
	EventTokenRevoked     = "token.revoked"
	EventPolicyActivated  = "policy.activated"
	EventBodyErased       = "ledger.erasure"
	EventExternal         = "external"
)

// Event is one thing to record in the ledger. Everything but Body goes into the
// leaf in the clear, so it MUST NOT hold personal data or secrets: put those in Body,
// which is stored encrypted beside the tree and committed to by a salted digest.
type Event struct {
	// ID is unique per event; the ledger assigns a UUIDv7 when empty. Appending an ID
	// that is already in the ledger is refused (check with errors.Is(err, ErrConflict)).
	ID   string    `json:"id"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	// Actor is Actor.String() of whoever caused the event.
	Actor    string `json:"actor,omitempty"`
	AgentID  string `json:"agent,omitempty"`
	SystemID string `json:"system,omitempty"`
	// SessionID groups events of one conversation or MCP session; SessionSeq orders
	// them (the ledger's own order within a commit batch is arbitrary).
	SessionID  string `json:"session,omitempty"`
	SessionSeq int64  `json:"session_seq,omitempty"`
	// Policy is the content hash of the policy version that decided, if any.
	Policy   string   `json:"policy,omitempty"`
	Decision Effect   `json:"decision,omitempty"`
	Rules    []string `json:"rules,omitempty"`
	// Timings in microseconds, by step name ("policy", "pii", "upstream", ...).
	Timings map[string]int64 `json:"timings,omitempty"`
	// Counts such as PII findings by type, tokens in/out.
	Counts map[string]int64 `json:"counts,omitempty"`
	// Attrs are other non-personal facts: model, tool, server, status, approval id.
	Attrs map[string]string `json:"attrs,omitempty"`
	// Body is the erasable content: prompts, responses, arguments, reasons.
	Body []byte `json:"-"`
}

// Receipt is what the ledger returns once an event is durable.
type Receipt struct {
	ID    string `json:"id"`
	Index int64  `json:"index"`
}
