package aims

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Observation is one use Vigil saw on its way through: an agent of a system calling a
// model of a provider, or a tool of an MCP server.
type Observation struct {
	At time.Time
	// AgentID and SystemID are the inventory ids of the authenticated agent and its
	// system; both empty when the caller could not be attributed, and then Source
	// says what was seen (e.g. "key:vk_7hq2mf4x", "mcp:session-prefix").
	AgentID, SystemID string
	Source            string
	// Provider and Model are set for model calls; Server and Tool for tool calls.
	Provider, Model string
	Server, Tool    string
	// Count is how many uses at At this observation stands for (a reporter that
	// aggregates sends several at once); 0 means 1.
	Count int64
}

// UsageReporter is what the gateway pipeline calls for every model or tool call it
// forwards (after authentication, whatever the decision). ReportUsage MUST be cheap
// and safe for concurrent use; the pipeline SHOULD NOT fail a call because it fails.
type UsageReporter interface {
	ReportUsage(ctx context.Context, o Observation) error
}

var _ UsageReporter = (*Service)(nil)

// ReportUsage adds o to the aggregates of observed use.
func (s *Service) ReportUsage(ctx context.Context, o Observation) error {
	if o.At.IsZero() {
		o.At = s.now()
	}
	if o.AgentID == "" && o.Source == "" {
		o.Source = "unknown"
	}
	key := UsageKey{AgentID: o.AgentID, SystemID: o.SystemID, Provider: o.Provider, Model: o.Model, Server: o.Server, Tool: o.Tool, Source: o.Source}
	n := o.Count
	if n <= 0 {
		n = 1
	}
	if err := s.Store.AddUsage(ctx, key, o.At.UTC().Truncate(time.Microsecond), n); err != nil {
		return fmt.Errorf("couldn't record observed use: %w", err)
	}
	return nil
}

// Flag kinds: what discovery from traffic found out of line.
const (
	FlagUnregistered       = "unregistered_source"
	FlagUnclassified       = "unclassified_system"
	FlagUnapprovedModel    = "unapproved_model"
	FlagUnapprovedProvider = "unapproved_provider"
	FlagUnapprovedServer   = "unapproved_mcp_server"
	FlagUnapprovedTool     = "unapproved_tool"
)

// Flag is one finding of discovery from traffic.
type Flag struct {
	Kind      string    `json:"kind"`
	System    string    `json:"system,omitempty"`
	Agent     string    `json:"agent,omitempty"`
	Detail    string    `json:"detail"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Count     int64     `json:"count"`
}

// InventoryEntry is one AI system as the inventory shows it: its record, its agents,
// what it was seen using, and what is flagged.
type InventoryEntry struct {
	System inventory.System `json:"system"`
	// Record is nil while the system has no management-system record.
	Record *System            `json:"record"`
	Agents []inventory.Agent  `json:"agents"`
	Usage  []UsageAggregate   `json:"observed"`
	Flags  []Flag             `json:"flags"`
	Seen   map[string][]Usage `json:"seen"`
}

// Usage is one thing seen used, with first/last seen and count.
type Usage struct {
	Name      string    `json:"name"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Count     int64     `json:"count"`
	Approved  bool      `json:"approved"`
}

// approved reports whether name matches one of the patterns (exact, or a prefix
// ending in '*', or "*"). An empty list approves nothing.
func approved(patterns []string, name string) bool {
	for _, p := range patterns {
		if p == name || p == "*" || strings.HasSuffix(p, "*") && strings.HasPrefix(name, strings.TrimSuffix(p, "*")) {
			return true
		}
	}
	return false
}

func toolApproved(patterns []string, server, tool string) bool {
	for _, p := range patterns {
		ps, pt, _ := strings.Cut(p, "/")
		if approved([]string{ps}, server) && approved([]string{pt}, tool) {
			return true
		}
	}
	return false
}

// Inventory returns every AI system with its record, agents, observed use and flags,
// plus the flags that belong to no system (unattributed traffic).
func (s *Service) Inventory(ctx context.Context) ([]InventoryEntry, []Flag, error) {
	systems, err := s.Registry.Store.ListSystems(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't list systems: %w", err)
	}
	agents, err := s.Registry.Store.ListAgents(ctx, "")
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't list agents: %w", err)
	}
	usage, err := s.Store.Usage(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't read observed use: %w", err)
	}
	agentName := map[string]string{}
	agentSystem := map[string]string{}
	for _, a := range agents {
		agentName[a.ID], agentSystem[a.ID] = a.Name, a.SystemID
	}
	var orphan []Flag
	byID := map[string]*InventoryEntry{}
	out := make([]InventoryEntry, len(systems))
	for i, sys := range systems {
		out[i] = InventoryEntry{System: sys, Seen: map[string][]Usage{}}
		rec, err := s.system(ctx, sys.ID)
		if err != nil && !errors.Is(err, vigil.ErrNotFound) {
			return nil, nil, err
		}
		out[i].Record = rec
		byID[sys.ID] = &out[i]
	}
	for _, a := range agents {
		if e := byID[a.SystemID]; e != nil {
			e.Agents = append(e.Agents, a)
		}
	}
	// flag adds a finding, or adds u to the same finding from another aggregate: use
	// is aggregated per agent, provider, model, server and tool, so one finding (a
	// system with no record) is usually seen in several aggregates.
	flag := func(e *InventoryEntry, kind, detail string, u UsageAggregate) {
		f := Flag{Kind: kind, Agent: agentName[u.AgentID], Detail: detail, FirstSeen: u.FirstSeen, LastSeen: u.LastSeen, Count: u.Count}
		if kind == FlagUnclassified {
			f.Agent = "" // the system lacks the record, whichever agent called
		}
		list := &orphan
		if e != nil {
			f.System, list = e.System.Name, &e.Flags
		}
		i := slices.IndexFunc(*list, func(x Flag) bool {
			return x.Kind == f.Kind && x.System == f.System && x.Agent == f.Agent && x.Detail == f.Detail
		})
		if i < 0 {
			*list = append(*list, f)
			return
		}
		x := &(*list)[i]
		x.Count += f.Count
		if f.FirstSeen.Before(x.FirstSeen) {
			x.FirstSeen = f.FirstSeen
		}
		if f.LastSeen.After(x.LastSeen) {
			x.LastSeen = f.LastSeen
		}
	}
	seen := func(e *InventoryEntry, kind, name string, ok bool, u UsageAggregate) {
		list := e.Seen[kind]
		i := slices.IndexFunc(list, func(x Usage) bool { return x.Name == name })
		if i < 0 {
			list = append(list, Usage{Name: name, FirstSeen: u.FirstSeen, LastSeen: u.LastSeen, Approved: ok})
			i = len(list) - 1
		}
		x := &list[i]
		x.Count += u.Count
		if u.FirstSeen.Before(x.FirstSeen) {
			x.FirstSeen = u.FirstSeen
		}
		if u.LastSeen.After(x.LastSeen) {
			x.LastSeen = u.LastSeen
		}
		e.Seen[kind] = list
	}
	for _, u := range usage {
		sysID := u.SystemID
		if sysID == "" {
			sysID = agentSystem[u.AgentID]
		}
		e := byID[sysID]
		if u.AgentID == "" || agentName[u.AgentID] == "" || e == nil {
			src := u.Source
			if src == "" {
				src = "agent " + u.AgentID
			}
			flag(e, FlagUnregistered, fmt.Sprintf("traffic from %s, which is not a registered agent", src), u)
			continue
		}
		e.Usage = append(e.Usage, u)
		rec := e.Record
		if rec == nil {
			flag(e, FlagUnclassified, "traffic from a system with no management-system record (risk class, approved models)", u)
			rec = &System{}
		}
		if u.Model != "" {
			ok := approved(rec.Models, u.Model)
			seen(e, "models", u.Model, ok, u)
			if !ok && e.Record != nil {
				flag(e, FlagUnapprovedModel, fmt.Sprintf("model %q is not among the system's approved models", u.Model), u)
			}
		}
		if u.Provider != "" {
			ok := approved(rec.Providers, u.Provider)
			seen(e, "providers", u.Provider, ok, u)
			if !ok && e.Record != nil {
				flag(e, FlagUnapprovedProvider, fmt.Sprintf("provider %q is not among the system's approved providers", u.Provider), u)
			}
		}
		if u.Server != "" {
			ok := approved(rec.MCPServers, u.Server)
			seen(e, "mcp_servers", u.Server, ok, u)
			if !ok && e.Record != nil {
				flag(e, FlagUnapprovedServer, fmt.Sprintf("MCP server %q is not among the system's approved servers", u.Server), u)
			}
		}
		if u.Tool != "" {
			ok := toolApproved(rec.Tools, u.Server, u.Tool)
			seen(e, "tools", u.Server+"/"+u.Tool, ok, u)
			if !ok && e.Record != nil {
				flag(e, FlagUnapprovedTool, fmt.Sprintf("tool %s/%s is not among the system's approved tools", u.Server, u.Tool), u)
			}
		}
	}
	return out, orphan, nil
}
