// Package inventory is the registry of AI systems and the agents that act for them:
// who they are, who owns them, whether they may act (the kill switch state), and the
// API keys they authenticate with. It is the seed of the ISO/IEC 42001 AI system
// inventory that package aims builds on.
//
// Every change is recorded in the ledger before it is acknowledged.
package inventory

import (
	"context"
	"regexp"
	"time"
)

// Status says whether an agent or system may act.
type Status string

// The statuses.
const (
	Active    Status = "active"
	Suspended Status = "suspended"
)

// Lifecycle stages of an AI system (ISO/IEC 22989 / 42001 A.6.2).
var LifecycleStages = []string{"design", "development", "verification", "deployment", "operation", "retired"}

// System is an AI system: the unit of the inventory that agents belong to.
type System struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Purpose string `json:"purpose"`
	Owner   string `json:"owner"`
	// Lifecycle is one of LifecycleStages.
	Lifecycle string `json:"lifecycle"`
	Status    Status `json:"status"`
	// SuspendedReason is why the kill switch is on, when Status is Suspended.
	SuspendedReason string     `json:"suspended_reason,omitempty"`
	SuspendedBy     string     `json:"suspended_by,omitempty"`
	SuspendedAt     *time.Time `json:"suspended_at,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

// Complete reports whether the record has what the inventory needs (owner and
// purpose); systems registered implicitly by creating an agent start incomplete.
func (s System) Complete() bool { return s.Owner != "" && s.Purpose != "" }

// Agent is an AI agent: a caller of models and tools that acts for one system.
type Agent struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	SystemID string            `json:"system_id"`
	Owner    string            `json:"owner"`
	Labels   map[string]string `json:"labels"`
	Status   Status            `json:"status"`
	// SuspendedReason is why the kill switch is on, when Status is Suspended.
	SuspendedReason string     `json:"suspended_reason,omitempty"`
	SuspendedBy     string     `json:"suspended_by,omitempty"`
	SuspendedAt     *time.Time `json:"suspended_at,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

// NamePattern is what agent and system names must look like: they appear in policy
// globs, URLs and the ledger.
var NamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Store keeps systems and agents.
//
// Lookups MUST return an error matching vigil.ErrNotFound when nothing matches;
// creating a duplicate name MUST return one matching vigil.ErrConflict.
// Implementations MUST be safe for concurrent use.
type Store interface {
	CreateSystem(ctx context.Context, s System) error
	UpdateSystem(ctx context.Context, s System) error
	System(ctx context.Context, id string) (System, error)
	SystemByName(ctx context.Context, name string) (System, error)
	ListSystems(ctx context.Context) ([]System, error)

	CreateAgent(ctx context.Context, a Agent) error
	UpdateAgent(ctx context.Context, a Agent) error
	Agent(ctx context.Context, id string) (Agent, error)
	AgentByName(ctx context.Context, name string) (Agent, error)
	// ListAgents lists all agents, or those of one system when systemID is not "".
	ListAgents(ctx context.Context, systemID string) ([]Agent, error)
}
