package oversight

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Halted reports whether the global kill switch is on, and why. Agent
// authentication consults it on every call; an error MUST be treated as halted.
func (s *Service) Halted(ctx context.Context) (bool, string, error) {
	h, err := s.opts.Store.Halt(ctx)
	if err != nil {
		return true, "", fmt.Errorf("couldn't read the global kill switch: %w", err)
	}
	return h.On, h.Reason, nil
}

// HaltState returns the global kill switch with who set it, when and why.
func (s *Service) HaltState(ctx context.Context) (Halt, error) {
	return s.opts.Store.Halt(ctx)
}

// SetHalt turns the global kill switch on (every agent is refused, every pending
// approval cancelled, every open stream and session closed, on every replica) or
// off. Turning it on needs a reason. Who, when and why go to the ledger.
func (s *Service) SetHalt(ctx context.Context, by vigil.Actor, on bool, reason string) (Halt, error) {
	reason = strings.TrimSpace(reason)
	if on && reason == "" {
		return Halt{}, vigil.Errorf(vigil.EINVALID, "a reason is required to halt: it goes to the ledger and is shown to every agent")
	}
	if len(reason) > MaxReasonLen {
		return Halt{}, vigil.Errorf(vigil.EINVALID, "reason is longer than %d bytes", MaxReasonLen)
	}
	h := Halt{On: on, Reason: reason, By: by.String(), At: s.now()}
	if err := s.opts.Store.SetHalt(ctx, h); err != nil {
		return Halt{}, fmt.Errorf("couldn't store the global kill switch: %w", err)
	}
	typ, kind := EventUnhalted, NoticeUnhalted
	if on {
		typ, kind = EventHalted, NoticeHalted
	}
	// Stop first, record after: stopping must not depend on the audit trail.
	s.publish(ctx, Notice{Kind: kind, Reason: reason})
	var errs []error
	if on {
		if _, err := s.cancel(ctx, Scope{All: true}, by.String(), "Vigil was halted: "+reason); err != nil {
			errs = append(errs, err)
		}
	}
	e := vigil.Event{Type: typ, Time: h.At, Actor: by.String(), Attrs: map[string]string{"scope": "all"}, Body: body(map[string]any{"reason": reason})}
	if err := s.record(ctx, e); err != nil {
		errs = append(errs, err)
	}
	return h, errors.Join(errs...)
}

// StatusChanged carries out an agent's or a system's suspension (or resumption)
// beyond refusing new calls, which authentication does: it cancels their pending
// approvals and closes their open work on every replica. Exactly one of agentID and
// systemID is set; by (an Actor.String()) and reason say who pulled the switch and why.
func (s *Service) StatusChanged(ctx context.Context, agentID, systemID string, suspended bool, by, reason string) error {
	if (agentID == "") == (systemID == "") {
		return errors.New("oversight: StatusChanged needs exactly one of an agent and a system")
	}
	if !suspended {
		s.publish(ctx, Notice{Kind: NoticeResumed, AgentID: agentID, SystemID: systemID})
		return nil
	}
	s.publish(ctx, Notice{Kind: NoticeSuspended, AgentID: agentID, SystemID: systemID, Reason: reason})
	what := "agent"
	if systemID != "" {
		what = "AI system"
	}
	_, err := s.cancel(ctx, Scope{AgentID: agentID, SystemID: systemID}, by, fmt.Sprintf("the %s was suspended: %s", what, reason))
	return err
}
