package inventory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Recorder appends an event to the ledger and returns once it is durable.
type Recorder interface {
	Record(ctx context.Context, e vigil.Event) (vigil.Receipt, error)
}

// Service is the registry's behaviour: validation, defaults and ledger records on top
// of a Store.
type Service struct {
	Store  Store
	Ledger Recorder
	// Now is the clock; tests replace it.
	Now func() time.Time
	// OnChange, if set, is called after an agent or system changes status, so caches
	// (authentication, open sessions) can drop what they hold.
	OnChange func(agentID, systemID string)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

// SystemInput is what a caller may set on a system.
type SystemInput struct {
	Name      string `json:"name"`
	Purpose   string `json:"purpose"`
	Owner     string `json:"owner"`
	Lifecycle string `json:"lifecycle"`
}

func validName(kind, name string) error {
	if !NamePattern.MatchString(name) {
		return vigil.Errorf(vigil.EINVALID, "%s name %q must be 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit", kind, name)
	}
	return nil
}

func validLifecycle(l string) error {
	if l != "" && !slices.Contains(LifecycleStages, l) {
		return vigil.Errorf(vigil.EINVALID, "lifecycle %q is not one of %s", l, strings.Join(LifecycleStages, ", "))
	}
	return nil
}

// CreateSystem registers an AI system.
func (s *Service) CreateSystem(ctx context.Context, by vigil.Actor, in SystemInput) (System, error) {
	if err := validName("system", in.Name); err != nil {
		return System{}, err
	}
	if err := validLifecycle(in.Lifecycle); err != nil {
		return System{}, err
	}
	if in.Lifecycle == "" {
		in.Lifecycle = "operation"
	}
	now := s.now()
	sys := System{
		ID: uuid.Must(uuid.NewV7()).String(), Name: in.Name, Purpose: in.Purpose, Owner: in.Owner,
		Lifecycle: in.Lifecycle, Status: Active, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.Store.CreateSystem(ctx, sys); err != nil {
		return System{}, err
	}
	if err := s.record(ctx, by, vigil.EventSystemCreated, "", sys.ID, map[string]string{"name": sys.Name, "lifecycle": sys.Lifecycle}); err != nil {
		return System{}, err
	}
	return sys, nil
}

// UpdateSystem changes a system's descriptive fields; empty fields are left alone.
func (s *Service) UpdateSystem(ctx context.Context, by vigil.Actor, id string, in SystemInput) (System, error) {
	sys, err := s.Store.System(ctx, id)
	if err != nil {
		return System{}, err
	}
	if in.Name != "" && in.Name != sys.Name {
		return System{}, vigil.Errorf(vigil.EINVALID, "a system cannot be renamed; policy and the ledger refer to it by name")
	}
	if err := validLifecycle(in.Lifecycle); err != nil {
		return System{}, err
	}
	if in.Purpose != "" {
		sys.Purpose = in.Purpose
	}
	if in.Owner != "" {
		sys.Owner = in.Owner
	}
	if in.Lifecycle != "" {
		sys.Lifecycle = in.Lifecycle
	}
	sys.UpdatedAt = s.now()
	if err := s.Store.UpdateSystem(ctx, sys); err != nil {
		return System{}, err
	}
	if err := s.record(ctx, by, vigil.EventSystemChanged, "", sys.ID, map[string]string{"name": sys.Name, "lifecycle": sys.Lifecycle}); err != nil {
		return System{}, err
	}
	return sys, nil
}

// LookupSystem finds a system by id or by name.
func (s *Service) LookupSystem(ctx context.Context, idOrName string) (System, error) {
	if _, err := uuid.Parse(idOrName); err == nil {
		return s.Store.System(ctx, idOrName)
	}
	return s.Store.SystemByName(ctx, idOrName)
}

// LookupAgent finds an agent by id or by name.
func (s *Service) LookupAgent(ctx context.Context, idOrName string) (Agent, error) {
	if _, err := uuid.Parse(idOrName); err == nil {
		return s.Store.Agent(ctx, idOrName)
	}
	return s.Store.AgentByName(ctx, idOrName)
}

// AgentInput is what a caller may set on an agent.
type AgentInput struct {
	Name   string            `json:"name"`
	System string            `json:"system"`
	Owner  string            `json:"owner"`
	Labels map[string]string `json:"labels"`
}

// CreateAgent registers an agent. An unknown system name registers that system too,
// incomplete until its owner and purpose are filled in; created reports whether it did.
func (s *Service) CreateAgent(ctx context.Context, by vigil.Actor, in AgentInput) (a Agent, sys System, created bool, err error) {
	if err := validName("agent", in.Name); err != nil {
		return Agent{}, System{}, false, err
	}
	if in.System == "" {
		return Agent{}, System{}, false, vigil.Errorf(vigil.EINVALID, "system is required: every agent acts for an AI system")
	}
	for k, v := range in.Labels {
		if k == "" || len(k) > 63 || len(v) > 255 {
			return Agent{}, System{}, false, vigil.Errorf(vigil.EINVALID, "label %q: keys are 1-63 characters, values at most 255", k)
		}
	}
	sys, err = s.LookupSystem(ctx, in.System)
	if errors.Is(err, vigil.ErrNotFound) {
		sys, err = s.CreateSystem(ctx, by, SystemInput{Name: in.System})
		created = err == nil
	}
	if err != nil {
		return Agent{}, System{}, false, err
	}
	now := s.now()
	labels := map[string]string{}
	maps.Copy(labels, in.Labels)
	a = Agent{
		ID: uuid.Must(uuid.NewV7()).String(), Name: in.Name, SystemID: sys.ID, Owner: in.Owner,
		Labels: labels, Status: Active, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.Store.CreateAgent(ctx, a); err != nil {
		return Agent{}, System{}, false, err
	}
	if err := s.record(ctx, by, vigil.EventAgentCreated, a.ID, sys.ID, map[string]string{"name": a.Name}); err != nil {
		return Agent{}, System{}, false, err
	}
	return a, sys, created, nil
}

// SetAgentStatus suspends or resumes an agent (the per-agent kill switch). A
// suspension needs a reason; it is recorded with who pulled the switch.
func (s *Service) SetAgentStatus(ctx context.Context, by vigil.Actor, id string, st Status, reason string) (Agent, error) {
	a, err := s.LookupAgent(ctx, id)
	if err != nil {
		return Agent{}, err
	}
	typ, err := s.statusChange(st, reason)
	if err != nil {
		return Agent{}, err
	}
	now := s.now()
	a.Status, a.UpdatedAt = st, now
	if st == Suspended {
		a.SuspendedReason, a.SuspendedBy, a.SuspendedAt = reason, by.String(), &now
	} else {
		a.SuspendedReason, a.SuspendedBy, a.SuspendedAt = "", "", nil
	}
	if err := s.Store.UpdateAgent(ctx, a); err != nil {
		return Agent{}, err
	}
	if s.OnChange != nil {
		s.OnChange(a.ID, "")
	}
	if err := s.recordBody(ctx, by, typ, a.ID, a.SystemID, map[string]string{"name": a.Name, "scope": "agent"}, reason); err != nil {
		return Agent{}, err
	}
	return a, nil
}

// SetSystemStatus suspends or resumes every agent of a system at once.
func (s *Service) SetSystemStatus(ctx context.Context, by vigil.Actor, id string, st Status, reason string) (System, error) {
	sys, err := s.LookupSystem(ctx, id)
	if err != nil {
		return System{}, err
	}
	typ, err := s.statusChange(st, reason)
	if err != nil {
		return System{}, err
	}
	now := s.now()
	sys.Status, sys.UpdatedAt = st, now
	if st == Suspended {
		sys.SuspendedReason, sys.SuspendedBy, sys.SuspendedAt = reason, by.String(), &now
	} else {
		sys.SuspendedReason, sys.SuspendedBy, sys.SuspendedAt = "", "", nil
	}
	if err := s.Store.UpdateSystem(ctx, sys); err != nil {
		return System{}, err
	}
	if s.OnChange != nil {
		s.OnChange("", sys.ID)
	}
	if err := s.recordBody(ctx, by, typ, "", sys.ID, map[string]string{"name": sys.Name, "scope": "system"}, reason); err != nil {
		return System{}, err
	}
	return sys, nil
}

func (s *Service) statusChange(st Status, reason string) (string, error) {
	switch st {
	case Suspended:
		if strings.TrimSpace(reason) == "" {
			return "", vigil.Errorf(vigil.EINVALID, "a reason is required to suspend: it goes to the ledger and is shown to the agent")
		}
		return vigil.EventAgentSuspended, nil
	case Active:
		return vigil.EventAgentResumed, nil
	}
	return "", vigil.Errorf(vigil.EINVALID, "status %q is not active or suspended", st)
}

func (s *Service) record(ctx context.Context, by vigil.Actor, typ, agentID, systemID string, attrs map[string]string) error {
	return s.recordBody(ctx, by, typ, agentID, systemID, attrs, "")
}

func (s *Service) recordBody(ctx context.Context, by vigil.Actor, typ, agentID, systemID string, attrs map[string]string, body string) error {
	e := vigil.Event{Type: typ, Time: s.now(), Actor: by.String(), AgentID: agentID, SystemID: systemID, Attrs: attrs}
	if body != "" {
		e.Body = []byte(body)
	}
	if _, err := s.Ledger.Record(ctx, e); err != nil {
		return fmt.Errorf("couldn't record %s in the ledger: %w", typ, err)
	}
	return nil
}
