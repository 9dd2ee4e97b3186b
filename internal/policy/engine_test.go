package policy_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-gateway/vigil/internal/policy"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// clock is a settable clock for engines under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 26, 14, 30, 10, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// memStore is a UsageStore in memory that can be told to fail.
type memStore struct {
	mu        sync.Mutex
	n         map[memKey]int64
	failAdd   error
	failRead  error
	adds      int
	reads     int
	lastPrune time.Time
}

type memKey struct {
	subject, metric string
	window          time.Duration
	start           int64
}

func newMemStore() *memStore { return &memStore{n: map[memKey]int64{}} }

func mkey(k policy.UsageKey) memKey { return memKey{k.Subject, k.Metric, k.Window, k.Start.Unix()} }

func (s *memStore) AddUsage(ctx context.Context, deltas []policy.UsageDelta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.adds++
	if s.failAdd != nil {
		return s.failAdd
	}
	for _, d := range deltas {
		s.n[mkey(d.Key)] += d.N
	}
	return nil
}

func (s *memStore) ReadUsage(ctx context.Context, keys []policy.UsageKey) ([]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.failRead != nil {
		return nil, s.failRead
	}
	out := make([]int64, len(keys))
	for i, k := range keys {
		out[i] = s.n[mkey(k)]
	}
	return out, nil
}

func (s *memStore) PruneUsage(ctx context.Context, t time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastPrune = t
	var n int64
	for k := range s.n {
		if k.start+int64(k.window/time.Second) <= t.Unix() {
			delete(s.n, k)
			n++
		}
	}
	return n, nil
}

// get returns a counter's value in the window of kind w holding t.
func (s *memStore) get(subject, metric string, w time.Duration, t time.Time) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[memKey{subject, metric, w, t.Truncate(w).Unix()}]
}

func (s *memStore) set(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

// recorder is a Recorder that keeps events and can be told to fail.
type recorder struct {
	mu     sync.Mutex
	events []vigil.Event
	fail   error
}

func (r *recorder) Record(ctx context.Context, e vigil.Event) (vigil.Receipt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return vigil.Receipt{}, r.fail
	}
	r.events = append(r.events, e)
	return vigil.Receipt{ID: fmt.Sprint(len(r.events)), Index: int64(len(r.events))}, nil
}

func (r *recorder) all() []vigil.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]vigil.Event(nil), r.events...)
}

func agentAction(agent, system string, kind vigil.ActionKind) vigil.Action {
	a := vigil.Action{Kind: kind, Actor: vigil.Actor{Kind: vigil.ActorAgent, ID: "id-" + agent, Name: agent, SystemID: "id-" + system, SystemName: system}}
	switch kind {
	case vigil.ToolCall, vigil.ToolResult:
		a.Tool = &vigil.Tool{Server: "crm", Name: "lookup", Annotations: vigil.ToolAnnotations{ReadOnlyHint: true}}
	case vigil.ModelCall, vigil.ModelResponse:
		a.Model = &vigil.Model{Provider: "openai", Name: "gpt-4o"}
	}
	return a
}

func activate(t *testing.T, e *policy.Engine, src string) *policy.Policy {
	t.Helper()
	p := mustCompile(t, src)
	if err := e.Activate(context.Background(), p, "user:test"); err != nil {
		t.Fatal(err)
	}
	return p
}

func decide(t *testing.T, e *policy.Engine, a vigil.Action) vigil.Decision {
	t.Helper()
	d, err := e.Decide(context.Background(), a)
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	return d
}

func TestDecideWithoutPolicy(t *testing.T) {
	e := policy.New(policy.Options{})
	d, err := e.Decide(context.Background(), agentAction("a", "s", vigil.ModelCall))
	if !errors.Is(err, policy.ErrNoPolicy) || d.Effect != vigil.Deny {
		t.Errorf("Decide without a policy = %s, %v; want deny, ErrNoPolicy", d.Effect, err)
	}
}

func TestActivateRecordsEachVersion(t *testing.T) {
	rec := &recorder{}
	clk := newClock()
	e := policy.New(policy.Options{Recorder: rec, Now: clk.Now})
	ctx := context.Background()
	src1 := "version: 1\ndefault: allow\n"
	p1, _ := policy.Compile("policy.yaml", []byte(src1))
	p2, _ := policy.Compile("api", []byte("version: 1\ndefault: deny\nrules:\n  - id: r\n    effect: allow\n    match: {kinds: [tool_call]}\n"))
	for _, step := range []struct {
		p  *policy.Policy
		by string
	}{{p1, "system:startup"}, {p1, "user:bob"}, {p2, "user:alice"}} {
		if err := e.Activate(ctx, step.p, step.by); err != nil {
			t.Fatalf("Activate: %v", err)
		}
	}
	want := []vigil.Event{
		{Type: vigil.EventPolicyActivated, Time: clk.Now(), Actor: "system:startup", Policy: p1.Version(),
			Attrs: map[string]string{"version": p1.Version(), "activated_by": "system:startup", "source": "policy.yaml", "rules": "0", "limits": "0"},
			Body:  []byte(src1)},
		// Activating the live version again records nothing.
		{Type: vigil.EventPolicyActivated, Time: clk.Now(), Actor: "user:alice", Policy: p2.Version(),
			Attrs: map[string]string{"version": p2.Version(), "activated_by": "user:alice", "source": "api", "rules": "1", "limits": "0", "previous": p1.Version()},
			Body:  p2.Bytes()},
	}
	if diff := cmp.Diff(want, rec.all()); diff != "" {
		t.Errorf("recorded events (-want +got):\n%s", diff)
	}
	if d := decide(t, e, agentAction("a", "s", vigil.ModelCall)); d.Policy != p2.Version() || d.Effect != vigil.Deny {
		t.Errorf("decision by %s: %s, want deny by the live version %s", d.Policy, d.Effect, p2.Version())
	}
}

func TestActivateKeepsOldPolicyWhenRecordingFails(t *testing.T) {
	rec := &recorder{}
	e := policy.New(policy.Options{Recorder: rec})
	old := activate(t, e, "version: 1\ndefault: allow\n")
	rec.fail = errors.New("ledger unavailable")
	err := e.Activate(context.Background(), mustCompile(t, "version: 1\ndefault: deny\n"), "user:alice")
	if err == nil || !strings.Contains(err.Error(), "ledger unavailable") {
		t.Errorf("Activate = %v, want the recording error", err)
	}
	if e.Policy() != old {
		t.Errorf("live policy changed to %s although its activation was not recorded", e.Policy())
	}
}

func TestReloadKeepsOldPolicyWhenNewOneIsBroken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := policy.New(policy.Options{})
	ctx := context.Background()
	write("version: 1\ndefault: allow\n")
	good, err := e.Reload(ctx, path, "user:alice")
	if err != nil {
		t.Fatal(err)
	}
	write("version: 1\ndefault: allow\nrules:\n  - id: r\n    when: tool.nmae == 'x'\n    effect: deny\n")
	_, err = e.Reload(ctx, path, "user:alice")
	var ce *policy.CompileError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), path+":5:15: rule r: when: undefined field 'nmae'") {
		t.Fatalf("Reload of a broken policy = %v, want a CompileError saying why", err)
	}
	if e.Policy() != good {
		t.Errorf("live policy is %s, want the old %s", e.Policy(), good)
	}
	if d := decide(t, e, agentAction("a", "s", vigil.ModelCall)); d.Policy != good.Version() {
		t.Errorf("decided by %s, want the old version", d.Policy)
	}
	if _, err := e.Reload(ctx, filepath.Join(t.TempDir(), "missing.yaml"), "user:alice"); err == nil || e.Policy() != good {
		t.Errorf("Reload of a missing file = %v; live %s", err, e.Policy())
	}
}

func TestWatchActivatesChangesAndReportsBrokenOnes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(s string) {
		t.Helper()
		// A different size guarantees the change is seen even where mtimes are coarse.
		// Written whole (rename), as this test is not about half-written files
		// (TestWatchWaitsForAFileToSettle is): a busy machine may pause a plain
		// write between truncating and writing for longer than a 5 ms poll.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write("version: 1\ndefault: allow\n")
	rec := &recorder{}
	e := policy.New(policy.Options{Recorder: rec})
	if _, err := e.Reload(context.Background(), path, "system:startup"); err != nil {
		t.Fatal(err)
	}
	activated := make(chan *policy.Policy, 10)
	failed := make(chan error, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- e.Watch(ctx, policy.WatchOptions{Path: path, Interval: 5 * time.Millisecond,
			OnActivate: func(p *policy.Policy) { activated <- p }, OnError: func(err error) { failed <- err }})
	}()

	write("version: 1\ndefault: deny\n")
	select {
	case p := <-activated:
		if p != e.Policy() || p.Version() != policy.Version([]byte("version: 1\ndefault: deny\n")) {
			t.Errorf("activated %s; live is %s", p, e.Policy())
		}
	case err := <-failed:
		t.Fatalf("a good change failed: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("a changed file was not activated")
	}
	live := e.Policy()

	write("version: 1\ndefault: deny\nrules:\n  - id: oops\n    effect: perhaps\n")
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), "keeping the live one") || !strings.Contains(err.Error(), "rule oops") {
			t.Errorf("error %q does not say why and that the live policy stays", err)
		}
	case <-activated:
		t.Fatal("a broken file was activated")
	case <-time.After(5 * time.Second):
		t.Fatal("a broken file was not reported")
	}
	time.Sleep(50 * time.Millisecond) // several polls: a lasting problem is reported once
	if len(failed) != 0 {
		t.Errorf("the same broken file was reported %d more times", len(failed))
	}
	if e.Policy() != live {
		t.Errorf("live policy changed to %s", e.Policy())
	}

	// A file that goes away is reported once, not on every poll.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), "couldn't read policy") {
			t.Errorf("error %q for a missing file", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a missing file was not reported")
	}
	time.Sleep(50 * time.Millisecond)
	if len(failed) != 0 {
		t.Errorf("the missing file was reported %d more times", len(failed))
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watch returned %v after cancel, want nil", err)
	}
	if got := len(rec.all()); got != 2 {
		t.Errorf("%d activations recorded, want 2 (start and the good change)", got)
	}
}

const rateLimited = `version: 1
default: allow
rules:
  - id: forbidden
    match: {tools: [forbidden]}
    effect: deny
  - id: busy
    when: usage.calls.minute >= 2 && usage.system.calls.minute >= 2
    effect: require_approval
limits:
  - id: rate
    calls_per_minute: 3
`

func TestDecideCountsCallsAndEnforcesLimits(t *testing.T) {
	clk := newClock()
	e := policy.New(policy.Options{Now: clk.Now})
	activate(t, e, rateLimited)
	call := agentAction("bot", "desk", vigil.ToolCall)
	forbidden := call
	forbidden.Tool = &vigil.Tool{Name: "forbidden"}
	// Denied calls do not count toward usage.
	for range 5 {
		if d := decide(t, e, forbidden); d.Effect != vigil.Deny || d.Limit != "" {
			t.Fatalf("forbidden tool: %s (limit %q)", d.Effect, d.Limit)
		}
	}
	var got []string
	for range 4 {
		d := decide(t, e, call)
		got = append(got, string(d.Effect)+" "+d.Limit)
	}
	want := []string{"allow ", "allow ", "require_approval ", "deny rate/calls_per_minute"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decisions in one minute (-want +got):\n%s", diff)
	}
	// Responses are not calls: neither counted nor limited.
	if d := decide(t, e, agentAction("bot", "desk", vigil.ToolResult)); d.Effect == vigil.Deny {
		t.Errorf("a tool result was denied: %s", d.Message)
	}
	// Another agent has its own counter.
	if d := decide(t, e, agentAction("other", "desk", vigil.ToolCall)); d.Effect != vigil.Allow {
		t.Errorf("another agent: %s %s", d.Effect, d.Limit)
	}
	// The next minute starts from zero.
	clk.Add(time.Minute)
	if d := decide(t, e, call); d.Effect != vigil.Allow {
		t.Errorf("next minute: %s %s", d.Effect, d.Limit)
	}
}

func TestObserveCountsTokensAndCost(t *testing.T) {
	clk := newClock()
	store := newMemStore()
	e := policy.New(policy.Options{Now: clk.Now, Usage: store})
	activate(t, e, `version: 1
default: allow
limits:
  - id: budget
    per: system
    tokens_per_day: 1000
  - id: spend
    cost_per_day: 1.5
`)
	a := agentAction("bot", "desk", vigil.ModelCall)
	decide(t, e, a)
	e.Observe(a.Actor, 600, 0.75)
	e.Observe(a.Actor, -50, -1) // ignored
	if d := decide(t, e, a); d.Effect != vigil.Allow {
		t.Fatalf("after 600 tokens: %s %s", d.Effect, d.Limit)
	}
	e.Observe(a.Actor, 300, 0.75)
	if d := decide(t, e, a); d.Limit != "spend/cost_per_day" {
		t.Errorf("after 1.50 spent: %s %q, want the cost limit", d.Effect, d.Limit)
	}
	// Another agent of the same system shares the system's token budget, not the
	// agent's spend.
	b := agentAction("bot-2", "desk", vigil.ModelCall)
	e.Observe(b.Actor, 100, 0)
	if d := decide(t, e, b); d.Limit != "budget/tokens_per_day" {
		t.Errorf("system at 1000 tokens: %s %q, want the system token limit", d.Effect, d.Limit)
	}
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	for _, c := range []struct {
		subject, metric string
		want            int64
	}{
		{"agent:id-bot", "tokens", 900},
		{"agent:id-bot", "cost", 1_500_000},
		{"agent:id-bot", "calls", 2}, // the third call was denied
		{"system:id-desk", "tokens", 1000},
		{"system:id-desk", "calls", 2},
	} {
		if got := store.get(c.subject, c.metric, day, clk.Now()); got != c.want {
			t.Errorf("store %s %s today = %d, want %d", c.subject, c.metric, got, c.want)
		}
	}
}

func TestUsageIsSharedThroughTheStore(t *testing.T) {
	clk := newClock()
	store := newMemStore()
	src := "version: 1\ndefault: allow\nlimits:\n  - id: rate\n    calls_per_minute: 5\n"
	a := policy.New(policy.Options{Now: clk.Now, Usage: store})
	b := policy.New(policy.Options{Now: clk.Now, Usage: store})
	activate(t, a, src)
	activate(t, b, src)
	ctx := context.Background()
	call := agentAction("bot", "desk", vigil.ModelCall)
	for range 3 {
		decide(t, a, call)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// b meets the agent for the first time and reads its counts from the store.
	var got []vigil.Effect
	for range 3 {
		got = append(got, decide(t, b, call).Effect)
	}
	if diff := cmp.Diff([]vigil.Effect{vigil.Allow, vigil.Allow, vigil.Deny}, got); diff != "" {
		t.Errorf("replica b after a's 3 calls (-want +got):\n%s", diff)
	}
	// a learns of b's calls at its next flush.
	if d := decide(t, a, call); d.Effect != vigil.Allow {
		t.Fatalf("a before syncing: %s", d.Effect)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if d := decide(t, a, call); d.Limit != "rate/calls_per_minute" {
		t.Errorf("a after syncing: %s %q, want the rate limit", d.Effect, d.Limit)
	}
	if got := store.get("agent:id-bot", "calls", time.Minute, clk.Now()); got != 6 {
		t.Errorf("store holds %d calls, want 6 (3 by a, 2 by b, 1 more by a)", got)
	}
}

func TestUsageStoreOutage(t *testing.T) {
	clk := newClock()
	store := newMemStore()
	e := policy.New(policy.Options{Now: clk.Now, Usage: store})
	activate(t, e, "version: 1\ndefault: allow\nlimits:\n  - id: rate\n    calls_per_minute: 100\n")
	store.set(func() { store.failRead = errors.New("database down") })
	d, err := e.Decide(context.Background(), agentAction("bot", "desk", vigil.ModelCall))
	if err == nil || !strings.Contains(err.Error(), "database down") || d.Effect != vigil.Deny {
		t.Errorf("Decide with unreadable counts = %s, %v; want deny and the error", d.Effect, err)
	}

	// A policy that reads no usage never waits for the store.
	activate(t, e, "version: 1\ndefault: allow\n")
	if d := decide(t, e, agentAction("bot", "desk", vigil.ModelCall)); d.Effect != vigil.Allow {
		t.Errorf("policy without limits: %s", d.Effect)
	}
	store.set(func() { store.failAdd = errors.New("database down") })
	if err := e.Flush(context.Background()); err == nil {
		t.Error("Flush succeeded with a failing store")
	}
	store.set(func() { store.failAdd, store.failRead = nil, nil })
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := store.get("agent:id-bot", "calls", time.Hour, clk.Now()); got != 1 {
		t.Errorf("after the store came back: %d calls stored, want 1 (kept through the failed flush)", got)
	}
}

func TestUsageWindowsRollOverWhilePending(t *testing.T) {
	clk := newClock()
	store := newMemStore()
	e := policy.New(policy.Options{Now: clk.Now, Usage: store})
	activate(t, e, "version: 1\ndefault: allow\n")
	first := clk.Now()
	decide(t, e, agentAction("bot", "desk", vigil.ModelCall))
	clk.Add(time.Minute) // the minute rolls before anything was flushed
	decide(t, e, agentAction("bot", "desk", vigil.ModelCall))
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		w    time.Duration
		at   time.Time
		want int64
	}{{time.Minute, first, 1}, {time.Minute, clk.Now(), 1}, {time.Hour, clk.Now(), 2}} {
		if got := store.get("agent:id-bot", "calls", c.w, c.at); got != c.want {
			t.Errorf("calls in the %s window at %s = %d, want %d", c.w, c.at.Format(time.TimeOnly), got, c.want)
		}
	}
}

func TestRunFlushesWhenStopped(t *testing.T) {
	store := newMemStore()
	e := policy.New(policy.Options{Usage: store, FlushInterval: time.Hour})
	activate(t, e, "version: 1\ndefault: allow\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	decide(t, e, agentAction("bot", "desk", vigil.ToolCall))
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := store.get("agent:id-bot", "tool_calls", 24*time.Hour, time.Now()); got != 1 {
		t.Errorf("after Run stopped: %d tool calls stored, want 1", got)
	}
}

func TestShadowComparesWithoutChangingDecisions(t *testing.T) {
	clk := newClock()
	e := policy.New(policy.Options{Now: clk.Now, ShadowKeep: 2})
	live := activate(t, e, "version: 1\ndefault: allow\n")
	if _, ok := e.ShadowReport(); ok {
		t.Error("shadow report before shadow mode")
	}
	candidate := mustCompile(t, `version: 1
default: allow
rules:
  - id: big-refunds
    when: tool.name == "refund" && args.amount > 100
    effect: deny
  - id: broken
    when: tool.name == "explode" && args.missing
    effect: deny
`)
	e.SetShadow(candidate)
	refund := func(amount int) vigil.Action {
		a := agentAction("bot", "desk", vigil.ToolCall)
		a.Tool = &vigil.Tool{Server: "pay", Name: "refund"}
		a.Args = map[string]any{"amount": amount, "card": "4111 1111 1111 1111"}
		return a
	}
	explode := agentAction("bot", "desk", vigil.ToolCall)
	explode.Tool = &vigil.Tool{Name: "explode"}
	for _, a := range []vigil.Action{refund(50), refund(500), refund(700), agentAction("bot", "desk", vigil.ModelCall), explode, refund(900)} {
		if d := decide(t, e, a); d.Effect != vigil.Allow || d.Policy != live.Version() {
			t.Fatalf("live decision changed by the shadow: %s by %s", d.Effect, d.Policy)
		}
	}
	r, ok := e.ShadowReport()
	if !ok {
		t.Fatal("no shadow report")
	}
	if r.Live != live.Version() || r.Candidate != candidate.Version() || r.Decisions != 6 || r.Agreements != 2 || r.Differences != 4 {
		t.Errorf("report %s→%s: %d decisions, %d agreements, %d differences; want 6, 2, 4", r.Live, r.Candidate, r.Decisions, r.Agreements, r.Differences)
	}
	if diff := cmp.Diff([]policy.ShadowCount{{Live: vigil.Allow, Shadow: vigil.Allow, N: 2}, {Live: vigil.Allow, Shadow: vigil.Deny, N: 4}}, r.Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	// Two kept (ShadowKeep), newest first: refund(900), then the failing rule.
	if len(r.Recent) != 2 {
		t.Fatalf("%d recent differences, want 2", len(r.Recent))
	}
	if got := r.Recent[0].Shadow.Rules; !cmp.Equal(got, []string{"big-refunds"}) {
		t.Errorf("newest difference matched %v, want [big-refunds]", got)
	}
	if got := r.Recent[1].Shadow.Errors; len(got) != 1 || got[0].Rule != "broken" {
		t.Errorf("second newest difference errors = %v, want the broken rule", got)
	}
	want := policy.ActionSummary{Kind: vigil.ToolCall, AgentID: "id-bot", Agent: "bot", System: "desk",
		Tool: &vigil.Tool{Server: "pay", Name: "refund"}, ArgNames: []string{"amount", "card"}}
	if diff := cmp.Diff(want, r.Recent[0].Action); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if strings.Contains(fmt.Sprintf("%+v", r), "4111") {
		t.Error("the shadow report holds an argument value")
	}

	// A new live version starts a new comparison.
	next := activate(t, e, "version: 1\ndefault: allow\n# next\n")
	if r, _ := e.ShadowReport(); r.Live != next.Version() || r.Decisions != 0 || len(r.Recent) != 0 {
		t.Errorf("after activation: live %s, %d decisions, %d recent; want a fresh comparison", r.Live, r.Decisions, len(r.Recent))
	}
	e.SetShadow(nil)
	if _, ok := e.ShadowReport(); ok {
		t.Error("shadow report after SetShadow(nil)")
	}
}

// TestConcurrentUse runs decisions, observations, flushes, activations and shadow
// mode at once; run with -race. Every allowed call must reach the store exactly once.
func TestConcurrentUse(t *testing.T) {
	store := newMemStore()
	e := policy.New(policy.Options{Usage: store})
	policies := []*policy.Policy{
		mustCompile(t, "version: 1\ndefault: allow\nrules:\n  - id: odd\n    when: args.n % 2 == 1\n    effect: deny\n"),
		mustCompile(t, "version: 1\ndefault: allow\nrules:\n  - id: odd\n    when: args.n % 2 == 1\n    effect: deny\n# v2\n"),
	}
	if err := e.Activate(context.Background(), policies[0], "test"); err != nil {
		t.Fatal(err)
	}
	e.SetShadow(policies[1])
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				a := agentAction(fmt.Sprintf("bot-%d", w%2), "desk", vigil.ToolCall)
				a.Args = map[string]any{"n": i}
				d, err := e.Decide(ctx, a)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Effect == vigil.Allow {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
				e.Observe(a.Actor, 1, 0)
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range 50 {
			if err := e.Activate(ctx, policies[i%2], "test"); err != nil {
				t.Error(err)
			}
			e.ShadowReport()
		}
	}()
	go func() {
		defer wg.Done()
		for range 20 {
			if err := e.Flush(ctx); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	got := store.get("system:id-desk", "calls", 24*time.Hour, now)
	if got != int64(allowed) || allowed != 400 {
		t.Errorf("store counted %d system calls; %d were allowed (want 400)", got, allowed)
	}
	if tokens := store.get("system:id-desk", "tokens", 24*time.Hour, now); tokens != 800 {
		t.Errorf("store counted %d tokens, want 800", tokens)
	}
}
