package oversight

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Defaults for Options.
const (
	DefaultTimeout          = 10 * time.Minute
	MaxTimeout              = 7 * 24 * time.Hour
	DefaultPollInterval     = 2 * time.Second
	DefaultSweepInterval    = time.Second
	DefaultProgressInterval = 5 * time.Second
	MaxApprovers            = 10
	MaxReasonLen            = 2000
)

// Options configure a Service.
type Options struct {
	Store  Store
	Ledger Recorder
	// Notifier carries notices to other replicas; nil for a single process.
	Notifier Notifier
	// Competence answers training questions. Nil means no training records exist:
	// requests whose spec names RequireTraining cannot be approved by anyone.
	Competence Competence
	// Sessions is this replica's registry of open work, closed by the kill switch.
	// Nil means none is tracked.
	Sessions *Sessions
	// Gate, if set, is asked whether an agent may act (its status, its system's, the
	// global halt) before a held call is raised and again before an approved one is
	// released, so a suspension racing a decision never lets a call through.
	Gate func(ctx context.Context, agent vigil.Actor) error
	// OnNotice, if set, is called (synchronously; keep it quick) with every notice this
	// replica acts on — the ones it publishes itself and those Receive gets from other
	// replicas — before anything else is done about it, in particular before open work
	// is closed. Caches of agent status (authentication) drop what they hold here, so a
	// call that registered its work after the drop cannot have been let in by a stale
	// entry.
	OnNotice func(Notice)
	// OnEvent, if set, is called (synchronously; keep it quick) after this replica
	// raised, decided, expired or cancelled a request. Webhooks hang off it.
	OnEvent func(kind NoticeKind, r Request)
	Metrics Metrics
	Log     *slog.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time

	// DefaultTimeout applies when an ApprovalSpec sets none. Default 10m.
	DefaultTimeout time.Duration
	// ExcludeOwner refuses approvals by the agent's owner (separation of duties).
	// cmd/vigil turns it on unless the configuration says exclude_owner: false.
	ExcludeOwner bool
	// PollInterval is how often a waiter re-reads its request in case a notice was
	// lost. Default 2s.
	PollInterval time.Duration
	// SweepInterval is how often Run expires overdue requests. Default 1s.
	SweepInterval time.Duration
	// ProgressInterval is how often Hold calls its progress callback. Default 5s.
	ProgressInterval time.Duration
}

// Service is the approval queue and the kill switch. It is safe for concurrent use.
type Service struct {
	opts   Options
	origin string

	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{} // request id → waiting channels
	subs    map[chan Notice]struct{}              // live views (console SSE)
}

// New checks opts and returns a Service. Call Run to expire overdue requests.
func New(opts Options) (*Service, error) {
	if opts.Store == nil || opts.Ledger == nil {
		return nil, errors.New("oversight: a store and a ledger are required")
	}
	if opts.DefaultTimeout == 0 {
		opts.DefaultTimeout = DefaultTimeout
	}
	if opts.DefaultTimeout < 0 || opts.DefaultTimeout > MaxTimeout {
		return nil, fmt.Errorf("oversight: default timeout %v must be between 0 and %v", opts.DefaultTimeout, MaxTimeout)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = DefaultSweepInterval
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = DefaultProgressInterval
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Service{
		opts: opts, origin: hex.EncodeToString(b[:]),
		waiters: map[string]map[chan struct{}]struct{}{}, subs: map[chan Notice]struct{}{},
	}, nil
}

func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Microsecond) }

// ExcludesOwner reports whether owners are kept from approving their agents' calls.
func (s *Service) ExcludesOwner() bool { return s.opts.ExcludeOwner }

// NewRequest is what a gateway pipeline knows about a call that policy held.
type NewRequest struct {
	Source Source
	// Agent is the authenticated agent (from auth.ActorOf).
	Agent     vigil.Actor
	SessionID string
	Tool      *vigil.Tool
	Model     *vigil.Model
	// Args are the call's arguments, already masked as policy says.
	Args map[string]any
	// Decision is the policy decision that asked for approval: its rules, message,
	// policy version and ApprovalSpec (nil means one reviewer, default timeout).
	Decision vigil.Decision
}

// Create raises an approval request, records it in the ledger and tells every
// replica. The request is pending until decided, expired or cancelled.
func (s *Service) Create(ctx context.Context, in NewRequest) (Request, error) {
	if !in.Source.Valid() {
		return Request{}, vigil.Errorf(vigil.EINVALID, "approval source %q is not one of mcp, model_tool_call, decision_api, model_call", in.Source)
	}
	if in.Agent.Kind != vigil.ActorAgent || in.Agent.ID == "" {
		return Request{}, vigil.Errorf(vigil.EINVALID, "an approval request is raised for an authenticated agent")
	}
	if in.Tool == nil && in.Model == nil {
		return Request{}, vigil.Errorf(vigil.EINVALID, "an approval request names the tool or the model it is about")
	}
	spec := vigil.ApprovalSpec{}
	if in.Decision.Approval != nil {
		spec = *in.Decision.Approval
	}
	spec.Roles = slices.Clone(spec.Roles)
	if len(spec.Roles) == 0 {
		spec.Roles = []vigil.Role{vigil.RoleReviewer}
	}
	for _, r := range spec.Roles {
		if !r.Valid() {
			return Request{}, vigil.Errorf(vigil.EINVALID, "approval role %q is not one of admin, reviewer, auditor, viewer", r)
		}
	}
	if spec.Approvers <= 0 {
		spec.Approvers = 1
	}
	if spec.Approvers > MaxApprovers {
		return Request{}, vigil.Errorf(vigil.EINVALID, "an approval may need at most %d approvers, not %d", MaxApprovers, spec.Approvers)
	}
	if spec.Timeout <= 0 {
		spec.Timeout = s.opts.DefaultTimeout
	}
	if spec.Timeout > MaxTimeout {
		return Request{}, vigil.Errorf(vigil.EINVALID, "an approval may wait at most %v, not %v", MaxTimeout, spec.Timeout)
	}
	now := s.now()
	r := Request{
		ID: uuid.Must(uuid.NewV7()).String(), Status: Pending, Source: in.Source,
		AgentID: in.Agent.ID, AgentName: in.Agent.Name, AgentOwner: in.Agent.Owner,
		SystemID: in.Agent.SystemID, SystemName: in.Agent.SystemName, SessionID: in.SessionID,
		Tool: in.Tool, Model: in.Model, Args: in.Args,
		Rules: slices.Clone(in.Decision.Rules), Message: in.Decision.Message, Policy: in.Decision.Policy,
		Spec: spec, CreatedAt: now, ExpiresAt: now.Add(spec.Timeout), Votes: []Vote{},
	}
	if r.Rules == nil {
		r.Rules = []string{}
	}
	if err := s.opts.Store.CreateRequest(ctx, r); err != nil {
		return Request{}, fmt.Errorf("couldn't store approval request: %w", err)
	}
	attrs := map[string]string{
		"approval": r.ID, "source": string(r.Source), "agent_name": r.AgentName, "system_name": r.SystemName,
		"approvers": strconv.Itoa(spec.Approvers), "roles": joinRoles(spec.Roles), "timeout": spec.Timeout.String(),
		"expires_at": r.ExpiresAt.Format(time.RFC3339Nano),
	}
	if r.Tool != nil {
		attrs["tool"], attrs["server"] = r.Tool.Name, r.Tool.Server
	}
	if r.Model != nil {
		attrs["model"], attrs["provider"] = r.Model.Name, r.Model.Provider
	}
	if spec.RequireTraining != "" {
		attrs["require_training"] = spec.RequireTraining
	}
	e := vigil.Event{
		Type: vigil.EventApprovalRequest, Time: now, Actor: in.Agent.String(), AgentID: r.AgentID, SystemID: r.SystemID,
		SessionID: r.SessionID, Policy: r.Policy, Decision: vigil.RequireApproval, Rules: r.Rules, Attrs: attrs,
		Body: body(map[string]any{"args": r.Args, "message": r.Message}),
	}
	if err := s.record(ctx, e); err != nil {
		// The request must not wait for a decision nobody can prove was asked for.
		if _, cerr := s.opts.Store.Cancel(context.WithoutCancel(ctx), Scope{ID: r.ID}, SystemActor.String(), "the ledger could not record the request", now); cerr != nil {
			s.opts.Log.Error("couldn't cancel an unrecorded approval request", "approval", r.ID, "err", cerr)
		}
		return Request{}, err
	}
	s.changed(ctx, NoticeCreated, r)
	return r, nil
}

// Get returns one request with its votes.
func (s *Service) Get(ctx context.Context, id string) (Request, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Request{}, vigil.NotFound("no approval request %q", id)
	}
	return s.opts.Store.Request(ctx, id)
}

// List returns the requests f selects, newest first.
func (s *Service) List(ctx context.Context, f Filter) ([]Request, error) {
	if f.Status != "" && !f.Status.Valid() {
		return nil, vigil.Errorf(vigil.EINVALID, "status %q is not one of pending, approved, denied, expired, cancelled", f.Status)
	}
	if f.Limit < 0 || f.Limit > 1000 {
		return nil, vigil.Errorf(vigil.EINVALID, "limit must be between 1 and 1000")
	}
	return s.opts.Store.ListRequests(ctx, f)
}

// Decision is what a reviewer says about a request.
type Decision struct {
	Verdict Verdict `json:"verdict"`
	// Reason is required for a denial and recorded either way.
	Reason string `json:"reason"`
	// Args, on an approval, replace the call's arguments (approve with edits).
	Args map[string]any `json:"args,omitempty"`
}

// Decide records reviewer's vote on request id. Refusals are *vigil.Error values:
// EFORBIDDEN for roles, separation of duties and training; ECONFLICT when the
// request is no longer pending, has expired, or the reviewer already voted;
// EINVALID for a denial without a reason. It returns the request after the vote:
// with N-of-M approvals it stays pending until the Nth distinct approval.
func (s *Service) Decide(ctx context.Context, reviewer vigil.Actor, id string, d Decision) (Request, error) {
	d.Reason = strings.TrimSpace(d.Reason)
	switch d.Verdict {
	case Approve:
	case Deny:
		if d.Reason == "" {
			return Request{}, vigil.Errorf(vigil.EINVALID, "a denial needs a reason: it is recorded in the ledger and returned to the agent")
		}
		if d.Args != nil {
			return Request{}, vigil.Errorf(vigil.EINVALID, "edited arguments go with an approval, not a denial")
		}
	default:
		return Request{}, vigil.Errorf(vigil.EINVALID, "verdict %q is not approve or deny", d.Verdict)
	}
	if len(d.Reason) > MaxReasonLen {
		return Request{}, vigil.Errorf(vigil.EINVALID, "reason is longer than %d bytes", MaxReasonLen)
	}
	r, err := s.Get(ctx, id)
	if err != nil {
		return Request{}, err
	}
	now := s.now()
	if r.Status != Pending {
		return r, vigil.Conflict("approval request %s is already %s", r.ID, r.Status)
	}
	if !now.Before(r.ExpiresAt) {
		s.sweep(ctx)
		return r, vigil.Conflict("approval request %s has expired; expiry counts as a denial", r.ID)
	}
	if err := s.mayDecide(ctx, reviewer, r, d.Verdict, now); err != nil {
		return r, err
	}
	v := Vote{Reviewer: reviewer.String(), Verdict: d.Verdict, Reason: d.Reason, Args: d.Args, At: now}
	after, err := s.opts.Store.Vote(ctx, r.ID, v)
	if errors.Is(err, vigil.ErrConflict) {
		return s.voteConflict(ctx, reviewer, r.ID)
	}
	if err != nil {
		return Request{}, fmt.Errorf("couldn't record the decision: %w", err)
	}
	attrs := map[string]string{
		"approval": r.ID, "verdict": string(d.Verdict), "status": string(after.Status),
		"approvals": fmt.Sprintf("%d/%d", after.ApprovedVotes(), after.Approvals()),
		"edited":    strconv.FormatBool(d.Args != nil),
	}
	e := vigil.Event{
		Type: vigil.EventApprovalDecision, Time: now, Actor: reviewer.String(), AgentID: r.AgentID, SystemID: r.SystemID,
		SessionID: r.SessionID, Policy: r.Policy, Rules: r.Rules, Attrs: attrs,
		Body: body(map[string]any{"reason": d.Reason, "args": d.Args}),
	}
	switch after.Status {
	case Approved:
		e.Decision = vigil.Allow
	case Denied:
		e.Decision = vigil.Deny
	}
	if err := s.record(ctx, e); err != nil {
		// The vote stands (the store has it); the caller learns the audit trail failed.
		s.changed(ctx, NoticeDecided, after)
		return after, err
	}
	s.changed(ctx, NoticeDecided, after)
	return after, nil
}

// mayDecide applies the reviewer rules: the spec's roles, separation of duties and
// training. Denials need only the role: stopping a call is always allowed to those
// who may review it, and asking for training to say no would fail open.
func (s *Service) mayDecide(ctx context.Context, reviewer vigil.Actor, r Request, v Verdict, now time.Time) error {
	if reviewer.Kind == vigil.ActorAgent || reviewer.Kind == "" {
		return vigil.Errorf(vigil.EFORBIDDEN, "agents cannot decide approval requests; a person (or a role token) must")
	}
	held := false
	for _, role := range r.Spec.Roles {
		held = held || reviewer.Has(role)
	}
	if !held {
		return vigil.Errorf(vigil.EFORBIDDEN, "%s may not decide this request: it needs one of the roles %s", reviewer, joinRoles(r.Spec.Roles))
	}
	if v != Approve {
		return nil
	}
	if reviewer.ID == r.AgentID {
		return vigil.Errorf(vigil.EFORBIDDEN, "separation of duties: nobody approves their own request")
	}
	if s.opts.ExcludeOwner && isOwner(r.AgentOwner, reviewer) {
		return vigil.Errorf(vigil.EFORBIDDEN, "separation of duties: %s owns agent %s and may not approve its requests; another reviewer must", reviewer, r.AgentName)
	}
	if r.Spec.RequireTraining != "" {
		// Several held rules may each name a competence (comma-separated): all are needed.
		for _, c := range strings.Split(r.Spec.RequireTraining, ",") {
			if s.opts.Competence == nil {
				return vigil.Errorf(vigil.EFORBIDDEN, "this request needs a reviewer trained in %q, but Vigil keeps no training records yet, so nobody can approve it; deny it or let it expire", c)
			}
			ok, err := s.opts.Competence.Current(ctx, reviewer.String(), c, now)
			if err != nil {
				return fmt.Errorf("couldn't check %s's training in %q: %w", reviewer, c, err)
			}
			if !ok {
				return vigil.Errorf(vigil.EFORBIDDEN, "%s has no current training record for %q, which this request needs", reviewer, c)
			}
		}
	}
	return nil
}

// isOwner reports whether the agent's owner names reviewer: "alice" and
// "user:alice" both name user alice (case-insensitive).
func isOwner(owner string, reviewer vigil.Actor) bool {
	owner = strings.TrimSpace(owner)
	if owner == "" || reviewer.Name == "" {
		return false
	}
	return strings.EqualFold(owner, reviewer.Name) || strings.EqualFold(owner, reviewer.String())
}

// voteConflict explains why the store refused a vote.
func (s *Service) voteConflict(ctx context.Context, reviewer vigil.Actor, id string) (Request, error) {
	r, err := s.opts.Store.Request(ctx, id)
	if err != nil {
		return Request{}, err
	}
	switch {
	case r.Status != Pending:
		return r, vigil.Conflict("approval request %s is already %s", r.ID, r.Status)
	case !s.now().Before(r.ExpiresAt):
		return r, vigil.Conflict("approval request %s has expired; expiry counts as a denial", r.ID)
	}
	return r, vigil.Conflict("%s has already decided on approval request %s; it needs %d more approval(s) from other reviewers", reviewer, r.ID, r.Approvals()-r.ApprovedVotes())
}

// cancel moves the requests in scope to Cancelled and records each.
func (s *Service) cancel(ctx context.Context, scope Scope, by, reason string) ([]Request, error) {
	now := s.now()
	done, err := s.opts.Store.Cancel(ctx, scope, by, reason, now)
	if err != nil {
		return nil, fmt.Errorf("couldn't cancel approval requests: %w", err)
	}
	var errs []error
	for _, r := range done {
		e := vigil.Event{
			Type: EventApprovalCancelled, Time: now, Actor: by, AgentID: r.AgentID, SystemID: r.SystemID,
			SessionID: r.SessionID, Policy: r.Policy, Decision: vigil.Deny, Rules: r.Rules,
			Attrs: map[string]string{"approval": r.ID, "status": string(Cancelled)}, Body: body(map[string]any{"reason": reason}),
		}
		if err := s.record(ctx, e); err != nil {
			errs = append(errs, err)
		}
		s.changed(ctx, NoticeCancelled, r)
	}
	return done, errors.Join(errs...)
}

// Cancel cancels one pending request (the caller no longer needs it).
func (s *Service) Cancel(ctx context.Context, by vigil.Actor, id, reason string) (Request, error) {
	done, err := s.cancel(ctx, Scope{ID: id}, by.String(), reason)
	if len(done) == 1 {
		return done[0], err
	}
	if err != nil {
		return Request{}, err
	}
	r, err := s.Get(ctx, id)
	if err != nil {
		return Request{}, err
	}
	return r, vigil.Conflict("approval request %s is already %s", r.ID, r.Status)
}

// sweep expires every overdue request and records each expiry.
func (s *Service) sweep(ctx context.Context) error {
	for {
		now := s.now()
		done, err := s.opts.Store.ExpireDue(ctx, now, SystemActor.String(), "no decision in time: expiry counts as a denial", 100)
		if err != nil {
			return fmt.Errorf("couldn't expire overdue approval requests: %w", err)
		}
		for _, r := range done {
			e := vigil.Event{
				Type: EventApprovalExpired, Time: now, Actor: SystemActor.String(), AgentID: r.AgentID, SystemID: r.SystemID,
				SessionID: r.SessionID, Policy: r.Policy, Decision: vigil.Deny, Rules: r.Rules,
				Attrs: map[string]string{"approval": r.ID, "status": string(Expired), "timeout": r.Spec.Timeout.String()},
			}
			if err := s.record(ctx, e); err != nil {
				s.opts.Log.Error("couldn't record an approval expiry", "approval", r.ID, "err", err)
			}
			s.changed(ctx, NoticeExpired, r)
		}
		if len(done) < 100 {
			return nil
		}
	}
}

// Run expires overdue requests (default deny) and keeps the pending gauge current
// until ctx ends. Every replica runs it; the store hands each expiry to one of them.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
			s.opts.Log.Warn("approval expiry sweep failed; retrying", "err", err)
		}
		if s.opts.Metrics != nil {
			if n, err := s.opts.Store.CountPending(ctx); err == nil {
				s.opts.Metrics.Pending(n)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// changed tells waiters, live views and other replicas about r, and runs the
// metrics and OnEvent hooks for what this replica did.
func (s *Service) changed(ctx context.Context, kind NoticeKind, r Request) {
	if r.Status.Terminal() && s.opts.Metrics != nil {
		at := r.CreatedAt
		if r.DecidedAt != nil {
			at = *r.DecidedAt
		}
		s.opts.Metrics.Ended(r.Status, at.Sub(r.CreatedAt))
	}
	if s.opts.OnEvent != nil && (kind != NoticeDecided || r.Status.Terminal()) {
		s.opts.OnEvent(kind, r)
	}
	s.publish(ctx, Notice{Kind: kind, ID: r.ID, AgentID: r.AgentID, SystemID: r.SystemID})
}

// publish delivers n here at once and to the other replicas through the Notifier.
func (s *Service) publish(ctx context.Context, n Notice) {
	n.Origin = s.origin
	s.deliver(n)
	if s.opts.Notifier == nil {
		return
	}
	if err := s.opts.Notifier.Notify(context.WithoutCancel(ctx), n); err != nil {
		// Other replicas' waiters fall back to polling; their live views lag.
		s.opts.Log.Warn("couldn't notify other replicas; they will catch up by polling", "kind", n.Kind, "err", err)
	}
}

func (s *Service) record(ctx context.Context, e vigil.Event) error {
	if _, err := s.opts.Ledger.Record(context.WithoutCancel(ctx), e); err != nil {
		return fmt.Errorf("couldn't record %s in the ledger: %w", e.Type, err)
	}
	return nil
}

// body is the erasable ledger body: arguments and reasons, never in the leaf.
func body(m map[string]any) []byte {
	m = maps.Clone(m)
	maps.DeleteFunc(m, func(_ string, v any) bool {
		switch x := v.(type) {
		case nil:
			return true
		case string:
			return x == ""
		case map[string]any:
			return x == nil
		}
		return false
	})
	if len(m) == 0 {
		return nil
	}
	b, _ := json.Marshal(m)
	return b
}

func joinRoles(roles []vigil.Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}
