package oversight

import (
	"context"
	"sync"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Sessions is the registry of an agent's cancellable in-flight work on this replica:
// open model streams, MCP sessions, held calls. The gateway registers each piece of
// work when it starts; the kill switch cancels all of an agent's, a system's or
// everyone's, on every replica (through the notices Service.Receive gets).
//
// The zero value is ready to use. It is safe for concurrent use.
type Sessions struct {
	mu   sync.Mutex
	next uint64
	open map[uint64]session
}

type session struct {
	agentID, systemID string
	cancel            context.CancelCauseFunc
}

// Track registers work done by agent and returns a context that is cancelled, with
// an *vigil.Error of code ESUSPENDED as its cause (context.Cause), when the kill
// switch stops the agent, its system or everything. Call done when the work ends;
// it releases the registration and cancels the context.
//
// Register before starting the long part of the work, then check the agent's status
// once more (authenticate again): a suspension that landed between authentication
// and Track has already closed what it found and would miss this.
func (s *Sessions) Track(ctx context.Context, agent vigil.Actor) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	s.mu.Lock()
	if s.open == nil {
		s.open = map[uint64]session{}
	}
	s.next++
	id := s.next
	s.open[id] = session{agentID: agent.ID, systemID: agent.SystemID, cancel: cancel}
	s.mu.Unlock()
	return ctx, func() {
		s.mu.Lock()
		delete(s.open, id)
		s.mu.Unlock()
		cancel(nil)
	}
}

// Close cancels the work in scope (Scope.ID is ignored) with cause and returns how
// many pieces of work it cancelled.
func (s *Sessions) Close(scope Scope, cause error) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, w := range s.open {
		if scope.All || scope.AgentID != "" && w.agentID == scope.AgentID || scope.SystemID != "" && w.systemID == scope.SystemID {
			w.cancel(cause)
			delete(s.open, id)
			n++
		}
	}
	return n
}

// Len is the number of pieces of work registered.
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}
