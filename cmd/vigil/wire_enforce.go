package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-gateway/vigil/internal/aims"
	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/decisionapi"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/policy"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// wirePolicy compiles the configured policy (a policy that does not compile stops
// the start), activates it, and starts the usage flusher, the file watcher and shadow
// mode. Background work stops when bg ends.
func (m *Main) wirePolicy(ctx, bg context.Context) (*policy.Engine, error) {
	cfg := m.Config
	engine := policy.New(policy.Options{
		Recorder: m.ledger, Usage: m.store.Usage(), FlushInterval: cfg.PolicyOptions.Flush(), Logger: m.Log,
	})
	p := policy.Builtin()
	if cfg.Policy != "" {
		var err error
		if p, err = policy.LoadFile(cfg.Policy); err != nil {
			return nil, err
		}
	}
	m.policyState = &policyState{engine: engine}
	if err := engine.Activate(ctx, p, "system:startup"); err != nil {
		return nil, fmt.Errorf("couldn't activate the policy: %w", err)
	}
	if cfg.PolicyOptions.Shadow != "" {
		cand, err := policy.LoadFile(cfg.PolicyOptions.Shadow)
		if err != nil {
			return nil, fmt.Errorf("shadow policy: %w", err)
		}
		engine.SetShadow(cand)
	}
	m.goBackground(func() {
		if err := engine.Run(bg); err != nil && bg.Err() == nil {
			m.Log.Error("policy usage flusher stopped", "err", err)
		}
	})
	if every, on := cfg.PolicyOptions.Watch(); on && cfg.Policy != "" {
		m.goBackground(func() {
			err := engine.Watch(bg, policy.WatchOptions{
				Path: cfg.Policy, Interval: every,
				OnActivate: func(p *policy.Policy) {
					m.policyState.set(nil)
					m.Log.Info("policy file changed; new version active", "version", p.Version())
				},
				OnError: func(err error) {
					m.policyState.set(err)
					m.Log.Error("policy file changed but was not activated; the previous version stays", "err", err)
				},
			})
			if err != nil && bg.Err() == nil {
				m.Log.Error("policy watcher stopped", "err", err)
			}
		})
	}
	m.Log.Info("policy active", "version", p.Version(), "source", p.Name())
	return engine, nil
}

// usageSink feeds token and cost usage from answers to the policy engine's counters.
type usageSink struct{ e *policy.Engine }

func (u usageSink) AddUsage(_ context.Context, a vigil.Action, us enforce.Usage) error {
	u.e.Observe(a.Actor, us.InputTokens+us.OutputTokens, float64(us.CostMicros)/1e6)
	return nil
}

// aimsObserver reports what each call used to the ISO 42001 inventory, off the
// request path: a slow or failing inventory never delays or fails a call. Uses are
// added up in memory and reported once per flush interval — per agent, model or tool,
// the first and last time seen and the count — instead of one database transaction
// per call, which at concurrency competed with the ledger for the one SQLite writer.
// The inventory lags by at most the interval; what is pending when Vigil stops is
// reported on the way out.
//
// Observe adds to the pending map under a mutex rather than sending to the flusher
// goroutine: a channel send woke that goroutine on every call, and on two cores each
// such wakeup cost an OS thread wakeup (docs/adr/0010-hot-path.md).
type aimsObserver struct {
	m     *Main
	svc   aims.UsageReporter
	every time.Duration

	mu      sync.Mutex
	pending map[aims.Observation]*seen // since the last flush; swapped out by take
}

// aimsFlushInterval is how often observed use is reported to the inventory.
const aimsFlushInterval = time.Second

func newAIMSObserver(m *Main, bg context.Context, svc aims.UsageReporter) *aimsObserver {
	o := &aimsObserver{m: m, svc: svc, every: aimsFlushInterval, pending: map[aims.Observation]*seen{}}
	m.goBackground(func() { o.run(bg) })
	return o
}

// seen is what was observed of one key (an Observation without its time) since the
// last flush.
type seen struct {
	first, last time.Time
	n           int64
}

func (o *aimsObserver) run(bg context.Context) {
	t := time.NewTicker(o.every)
	defer t.Stop()
	for {
		select {
		case <-bg.Done():
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			o.flush(ctx, o.take())
			cancel()
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(bg, 5*time.Second)
			o.flush(ctx, o.take())
			cancel()
		}
	}
}

// take returns what is pending and starts a new map, so reporting (database writes)
// happens outside the mutex Observe takes.
func (o *aimsObserver) take() map[aims.Observation]*seen {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.pending
	o.pending = make(map[aims.Observation]*seen, len(p))
	return p
}

func add(pending map[aims.Observation]*seen, ob aims.Observation) {
	at := ob.At
	ob.At, ob.Count = time.Time{}, 0
	s := pending[ob]
	if s == nil {
		pending[ob] = &seen{first: at, last: at, n: 1}
		return
	}
	if at.Before(s.first) {
		s.first = at
	}
	if at.After(s.last) {
		s.last = at
	}
	s.n++
}

// flush reports pending: each key as one use at its first time and the rest at its
// last, so the inventory's first and last seen stay exact.
func (o *aimsObserver) flush(ctx context.Context, pending map[aims.Observation]*seen) {
	for ob, s := range pending {
		ob.At, ob.Count = s.first, 1
		err := o.svc.ReportUsage(ctx, ob)
		if err == nil && s.n > 1 {
			ob.At, ob.Count = s.last, s.n-1
			err = o.svc.ReportUsage(ctx, ob)
		}
		if err != nil {
			o.m.Log.Warn("couldn't report observed use to the inventory", "err", err)
		}
	}
}

func (o *aimsObserver) Observe(_ context.Context, a vigil.Action) {
	ob := aims.Observation{At: a.Time, AgentID: a.Actor.ID, SystemID: a.Actor.SystemID}
	if a.Model != nil {
		ob.Provider, ob.Model = a.Model.Provider, a.Model.Name
	}
	if a.Tool != nil {
		ob.Server, ob.Tool = a.Tool.Server, a.Tool.Name
	}
	o.mu.Lock()
	add(o.pending, ob)
	o.mu.Unlock()
}

// newPipeline assembles the governance pipeline every ingress shares.
func (m *Main) newPipeline(pol *policy.Engine, masker enforce.Masker, holder enforce.Holder, obs enforce.Observer, reg prometheus.Registerer) *enforce.Pipeline {
	return &enforce.Pipeline{
		PII: masker, Policy: pol, Oversight: holder, Ledger: m.ledger, Usage: usageSink{pol}, Observer: obs,
		Bodies: enforce.BodyMasked, Log: m.Log, Metrics: enforce.NewMetrics(reg),
	}
}

// oversightHolder is human oversight as the pipeline and the decision API use it.
type oversightHolder struct{ svc *oversight.Service }

var (
	_ enforce.Holder     = oversightHolder{}
	_ decisionapi.Waiter = oversightHolder{}
)

func (h oversightHolder) Hold(ctx context.Context, req enforce.HoldRequest) (enforce.HoldResult, error) {
	src := oversight.Source(req.Source)
	if req.Action.Kind == vigil.ModelCall {
		src = oversight.SourceModelCall
	}
	nr := oversight.NewRequest{
		Source: src, Agent: req.Action.Actor, SessionID: req.Action.SessionID,
		Tool: req.Action.Tool, Model: req.Action.Model, Args: req.Action.Args, Decision: req.Decision,
	}
	if !req.Wait {
		r, err := h.svc.Create(ctx, nr)
		if err != nil {
			return enforce.HoldResult{}, err
		}
		return toHoldResult(r), nil
	}
	var progress func(oversight.Request, time.Duration)
	if req.Progress != nil {
		progress = func(r oversight.Request, waited time.Duration) { req.Progress(r.ID, waited, r.ExpiresAt) }
	}
	r, err := h.svc.Hold(ctx, nr, progress)
	if err != nil {
		return enforce.HoldResult{}, err
	}
	return toHoldResult(r), nil
}

// Wait reports an approval's outcome, waiting while ctx lasts; when ctx ends first
// it reports the request as it stands.
func (h oversightHolder) Wait(ctx context.Context, id string) (enforce.HoldResult, error) {
	r, err := h.svc.Wait(ctx, id)
	if err != nil && ctx.Err() != nil {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err = h.svc.Get(rctx, id)
	}
	if err != nil {
		return enforce.HoldResult{}, err
	}
	return toHoldResult(r), nil
}

func toHoldResult(r oversight.Request) enforce.HoldResult {
	res := enforce.HoldResult{ApprovalID: r.ID, Status: string(r.Status), Reason: r.Reason, Args: r.EditedArgs}
	for _, v := range r.Votes {
		if v.Verdict == oversight.Approve {
			res.Reviewers = append(res.Reviewers, v.Reviewer)
		}
	}
	return res
}

// policyState reports the live policy to the management system's health check: it
// compiled (only compiled policies are ever live), and it is failing while the
// policy file holds a change that could not be activated — the live policy then no
// longer matches what its owners wrote.
type policyState struct {
	engine *policy.Engine
	mu     sync.Mutex
	err    error
}

func (p *policyState) set(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

func (p *policyState) PolicyState(context.Context) (aims.PolicyState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := aims.PolicyState{Hash: p.engine.Policy().Version(), Compiled: true}
	if p.err != nil {
		st.Failing, st.Error = true, p.err.Error()
	}
	return st, nil
}

// piiRoutes reports the masking mode in force on every route that carries agent
// traffic: one mode (pii.mode) for all of them.
type piiRoutes struct{ cfg *config.Config }

func (r piiRoutes) MaskingByRoute(context.Context) (map[string]string, error) {
	mode := r.cfg.PII.Mode
	if mode == "" {
		mode = "tokenize"
	}
	out := map[string]string{"openai": mode, "anthropic": mode, "decision_api": mode}
	for _, s := range r.cfg.MCPServers {
		out["mcp/"+s.Name] = mode
	}
	return out, nil
}
