package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Defaults for Options.
const (
	DefaultFlushInterval = time.Second
	DefaultShadowKeep    = 100
)

// ErrNoPolicy is returned by Decide before any policy was activated; check with
// errors.Is.
var ErrNoPolicy = errors.New("no policy is active")

// Recorder appends events to the ledger. Record MUST return only once the event is
// durable; the engine activates a policy only after its activation was recorded.
type Recorder interface {
	Record(ctx context.Context, e vigil.Event) (vigil.Receipt, error)
}

// Options configure an Engine. The zero value is a working engine that counts usage in
// memory and records nothing.
type Options struct {
	// Recorder receives a policy.activated event for every activation. Nil records
	// nothing (tests, the CLI).
	Recorder Recorder
	// Usage keeps the usage counters where every replica sees them. Nil keeps them in
	// this process only.
	Usage UsageStore
	// FlushInterval is how often Run writes this process's counts to Usage and reads
	// everyone else's. It bounds how far a replica's view of another's usage lags.
	// Default DefaultFlushInterval.
	FlushInterval time.Duration
	// ShadowKeep is how many recent differences shadow mode keeps. Default
	// DefaultShadowKeep.
	ShadowKeep int
	// Logger receives background problems (a failed usage flush). Default: discarded.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Engine decides actions against the live policy. It is safe for concurrent use.
//
// The live policy sits behind an atomic pointer: Decide never waits for an
// activation, and sees either the old policy or the new one, whole.
type Engine struct {
	opts   Options
	live   atomic.Pointer[Policy]
	shadow atomic.Pointer[shadow]
	meter  *meter

	activateMu sync.Mutex // serialises activations, so the ledger's order is theirs
}

// New returns an engine with no policy; activate one before deciding.
func New(opts Options) *Engine {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.ShadowKeep <= 0 {
		opts.ShadowKeep = DefaultShadowKeep
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Engine{opts: opts, meter: newMeter(opts.Usage)}
}

// Policy returns the live policy, or nil before the first activation.
func (e *Engine) Policy() *Policy { return e.live.Load() }

// Decide decides a against the live policy, counting it toward its agent's and
// system's usage unless it is denied.
//
// The error is non-nil only when the engine could not decide: no policy is active
// (ErrNoPolicy), or the counts a limit needs could not be read from the usage store.
// The decision returned with an error is a deny that says so, so a caller that fails
// closed can use it as it is.
func (e *Engine) Decide(ctx context.Context, a vigil.Action) (vigil.Decision, error) {
	start := time.Now()
	p := e.live.Load()
	if p == nil {
		return vigil.Decision{Effect: vigil.Deny, Message: "denied: no policy is active", Rules: []string{}}, ErrNoPolicy
	}
	// Evaluation needs the action and usage at stable addresses; pooling them saves
	// two allocations per decision. Nothing in a Decision points into them.
	s := scratches.Get().(*scratch)
	defer s.free()
	s.a = a
	now := e.opts.Now()
	if s.a.Time.IsZero() {
		s.a.Time = now
	}
	var res reservation
	var err error
	s.u, res, err = e.meter.admit(ctx, &s.a, now, p.needsUsage)
	if err != nil {
		return vigil.Decision{Effect: vigil.Deny, Message: "denied: usage counters are unavailable",
			Rules: []string{}, Policy: p.version, Elapsed: time.Since(start)}, err
	}
	d := p.Evaluate(&s.a, &s.u)
	if d.Effect == vigil.Deny {
		e.meter.release(res)
	}
	d.Elapsed = time.Since(start)
	if sh := e.shadow.Load(); sh != nil {
		// After the live decision is complete, and outside its Elapsed.
		sh.observe(&s.a, &s.u, &d)
	}
	return d, nil
}

// scratch holds one decision's action and usage.
type scratch struct {
	a vigil.Action
	u Usage
}

var scratches = sync.Pool{New: func() any { return new(scratch) }}

func (s *scratch) free() {
	*s = scratch{}
	scratches.Put(s)
}

// Observe adds tokens and cost (in the deployment's currency) that a response used to
// the acting agent's and system's usage. The LLM proxy calls it once the response's
// usage is known. Negative amounts are ignored. It never blocks on I/O.
func (e *Engine) Observe(actor vigil.Actor, tokens int64, cost float64) {
	var micros int64
	if cost > 0 && !math.IsInf(cost, 0) {
		micros = int64(math.Round(min(cost, math.MaxInt64/MicrosPerUnit) * MicrosPerUnit))
	}
	e.meter.observe(&actor, e.opts.Now(), max(tokens, 0), micros)
}

// Activate makes p the live policy, after recording a policy.activated event naming
// its version, its source and by (the actor activating it, e.g. "user:alice"). If the
// event cannot be recorded, the live policy stays as it was. Activating the version
// that is already live does nothing. Only compiled policies exist, so only a policy
// that compiled can ever be activated.
func (e *Engine) Activate(ctx context.Context, p *Policy, by string) error {
	if p == nil {
		return errors.New("couldn't activate policy: nil policy")
	}
	e.activateMu.Lock()
	defer e.activateMu.Unlock()
	prev := e.live.Load()
	if prev != nil && prev.version == p.version {
		return nil
	}
	if e.opts.Recorder != nil {
		ev := vigil.Event{
			Type:   vigil.EventPolicyActivated,
			Time:   e.opts.Now(),
			Actor:  by,
			Policy: p.version,
			// Version and actor are in Policy and Actor too; attrs repeat them so the
			// event reads whole on its own.
			Attrs: map[string]string{
				"version":      p.version,
				"activated_by": by,
				"source":       p.name,
				"rules":        strconv.Itoa(len(p.rules)),
				"limits":       strconv.Itoa(len(p.limits)),
			},
			Body: p.Bytes(),
		}
		if prev != nil {
			ev.Attrs["previous"] = prev.version
		}
		if _, err := e.opts.Recorder.Record(ctx, ev); err != nil {
			return fmt.Errorf("couldn't record activation of policy %s: %w", p.version, err)
		}
	}
	e.live.Store(p)
	if s := e.shadow.Load(); s != nil {
		// Counts compare two versions; a new live version starts a new comparison.
		e.shadow.Store(newShadow(s.candidate, p, e.opts.Now(), e.opts.ShadowKeep))
	}
	return nil
}

// Reload compiles the policy at path and activates it. When it does not compile (the
// error is then a *CompileError) or cannot be activated, the live policy stays and the
// error says why.
func (e *Engine) Reload(ctx context.Context, path, by string) (*Policy, error) {
	p, err := LoadFile(path)
	if err != nil {
		return nil, err
	}
	if err := e.Activate(ctx, p, by); err != nil {
		return nil, err
	}
	return p, nil
}

// Flush writes this process's usage counts to the store and reads every recently
// active subject's counts back. Run calls it periodically; call it at shutdown so that
// nothing counted is lost.
func (e *Engine) Flush(ctx context.Context) error {
	return e.meter.flush(ctx, e.opts.Now())
}

// Run flushes usage every Options.FlushInterval until ctx is done, then flushes a last
// time (allowing it five seconds) and returns. Flush errors are logged, and the counts
// kept for the next try.
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(e.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return e.Flush(fctx)
		case <-t.C:
			if err := e.Flush(ctx); err != nil && ctx.Err() == nil {
				e.opts.Logger.Warn("policy: usage flush failed; counts kept for the next one", "err", err)
			}
		}
	}
}
