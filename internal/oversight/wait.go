package oversight

import (
	"context"
	"time"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Wait blocks until request id is terminal and returns it, or returns ctx's error.
// It is released the moment a decision is made on any replica (through Receive), and
// re-reads the store every poll interval in case a notice was lost. A request past
// its expiry is expired on the spot rather than left to the sweeper.
func (s *Service) Wait(ctx context.Context, id string) (Request, error) {
	return s.wait(ctx, id, nil, nil)
}

// Hold raises a request for a held call and waits for its outcome: the gateway
// pipeline's step 5. While it waits, progress (if not nil) is called every progress
// interval with the request and how long it has waited, so an MCP proxy can send
// progress notifications and clients don't time out.
//
// It returns the terminal request; only Approved lets the call go ahead, with
// r.FinalArgs(). If ctx ends first (the caller went away, or the kill switch
// cancelled the work it tracks), the request is cancelled and ctx's cause returned.
// With a Gate, a suspension that lands while the request waits turns an approval
// into the gate's error.
func (s *Service) Hold(ctx context.Context, in NewRequest, progress func(r Request, waited time.Duration)) (Request, error) {
	if s.opts.Gate != nil {
		if err := s.opts.Gate(ctx, in.Agent); err != nil {
			return Request{}, err
		}
	}
	r, err := s.Create(ctx, in)
	if err != nil {
		return Request{}, err
	}
	var tick <-chan time.Time
	var onTick func()
	if progress != nil {
		t := time.NewTicker(s.opts.ProgressInterval)
		defer t.Stop()
		start := time.Now()
		tick, onTick = t.C, func() { progress(r, time.Since(start)) }
	}
	out, err := s.wait(ctx, r.ID, tick, onTick)
	if err != nil {
		if ctx.Err() != nil {
			reason := "the caller stopped waiting"
			if cause := context.Cause(ctx); vigil.ErrorCode(cause) == vigil.ESUSPENDED {
				reason = vigil.ErrorMessage(cause)
			}
			if _, cerr := s.cancel(context.WithoutCancel(ctx), Scope{ID: r.ID}, in.Agent.String(), reason); cerr != nil {
				s.opts.Log.Warn("couldn't cancel an abandoned approval request", "approval", r.ID, "err", cerr)
			}
			return Request{}, context.Cause(ctx)
		}
		return Request{}, err
	}
	if out.Status == Approved && s.opts.Gate != nil {
		if err := s.opts.Gate(ctx, in.Agent); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (s *Service) wait(ctx context.Context, id string, tick <-chan time.Time, onTick func()) (Request, error) {
	ch := s.watch(id)
	defer s.unwatch(id, ch)
	for {
		// Read after registering, so a notice that arrives in between is not lost.
		r, err := s.Get(ctx, id)
		if err != nil {
			return Request{}, err
		}
		if r.Status.Terminal() {
			return r, nil
		}
		left := r.ExpiresAt.Sub(s.now())
		if left <= 0 {
			if err := s.sweep(ctx); err != nil {
				return Request{}, err
			}
			continue
		}
		timer := time.NewTimer(min(left, s.opts.PollInterval))
	sleep:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return Request{}, ctx.Err()
			case <-ch:
				break sleep
			case <-timer.C:
				break sleep
			case <-tick:
				onTick()
			}
		}
		timer.Stop()
	}
}

func (s *Service) watch(id string) chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiters[id] == nil {
		s.waiters[id] = map[chan struct{}]struct{}{}
	}
	s.waiters[id][ch] = struct{}{}
	return ch
}

func (s *Service) unwatch(id string, ch chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.waiters[id], ch)
	if len(s.waiters[id]) == 0 {
		delete(s.waiters, id)
	}
}

// Waiting is how many callers wait on this replica.
func (s *Service) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, w := range s.waiters {
		n += len(w)
	}
	return n
}

// Receive takes a notice from another replica (the Notifier's listener calls it):
// it releases waiters, closes the open work of a suspended agent or system, and
// updates live views. Notices this replica sent itself are ignored.
func (s *Service) Receive(n Notice) {
	if n.Origin != "" && n.Origin == s.origin {
		return
	}
	s.deliver(n)
}

func (s *Service) deliver(n Notice) {
	if s.opts.OnNotice != nil {
		s.opts.OnNotice(n)
	}
	if s.opts.Sessions != nil {
		switch n.Kind {
		case NoticeSuspended:
			cause := vigil.Errorf(vigil.ESUSPENDED, "AI system is suspended: %s", n.Reason)
			if n.AgentID != "" {
				cause = vigil.Errorf(vigil.ESUSPENDED, "agent is suspended: %s", n.Reason)
			}
			s.opts.Sessions.Close(Scope{AgentID: n.AgentID, SystemID: n.SystemID}, cause)
		case NoticeHalted:
			s.opts.Sessions.Close(Scope{All: true}, vigil.Errorf(vigil.ESUSPENDED, "Vigil is halted: every agent is stopped: %s", n.Reason))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	wake := func(w map[chan struct{}]struct{}) {
		for ch := range w {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	switch {
	case n.ID != "":
		wake(s.waiters[n.ID])
	case n.Kind == NoticeResync || n.Kind == NoticeHalted || n.Kind == NoticeSuspended:
		for _, w := range s.waiters {
			wake(w)
		}
	}
	for ch := range s.subs {
		select {
		case ch <- n:
		default: // a slow view misses a notice; it resyncs on the next one it gets
		}
	}
}

// Subscribe returns a channel of every notice this replica sees, for live views.
// Call cancel when done; the channel is then closed.
func (s *Service) Subscribe() (<-chan Notice, func()) {
	ch := make(chan Notice, 64)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.subs[ch]; ok {
			delete(s.subs, ch)
			close(ch)
		}
	}
}
