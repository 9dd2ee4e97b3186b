package oversight_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/store/sqlite"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// ledger collects recorded events.
type ledger struct {
	mu     sync.Mutex
	events []vigil.Event
	fail   error
}

func (l *ledger) Record(_ context.Context, e vigil.Event) (vigil.Receipt, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return vigil.Receipt{}, l.fail
	}
	l.events = append(l.events, e)
	return vigil.Receipt{ID: e.ID, Index: int64(len(l.events) - 1)}, nil
}

func (l *ledger) ofType(typ string) []vigil.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []vigil.Event
	for _, e := range l.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// metrics records what the service reports.
type metrics struct {
	mu    sync.Mutex
	ended map[oversight.Status]int
}

func (m *metrics) Pending(int) {}
func (m *metrics) Ended(s oversight.Status, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ended[s]++
}

func (m *metrics) count(s oversight.Status) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ended[s]
}

type competence map[string]bool

func (c competence) Current(_ context.Context, reviewer, comp string, _ time.Time) (bool, error) {
	return c[reviewer+"/"+comp], nil
}

type fixture struct {
	svc     *oversight.Service
	store   oversight.Store
	ledger  *ledger
	clock   *clock
	metrics *metrics
}

func newFixture(t *testing.T, change func(*oversight.Options)) *fixture {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{store: db.Oversight(), ledger: &ledger{}, clock: &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)},
		metrics: &metrics{ended: map[oversight.Status]int{}}}
	opts := oversight.Options{Store: f.store, Ledger: f.ledger, Now: f.clock.Now, Metrics: f.metrics, ExcludeOwner: true,
		PollInterval: 50 * time.Millisecond, SweepInterval: 10 * time.Millisecond, ProgressInterval: 10 * time.Millisecond}
	if change != nil {
		change(&opts)
	}
	if f.svc, err = oversight.New(opts); err != nil {
		t.Fatal(err)
	}
	return f
}

var agent = vigil.Actor{Kind: vigil.ActorAgent, ID: "0193a6c0-0000-7000-8000-000000000001", Name: "refund-bot",
	SystemID: "0193a6c0-0000-7000-8000-0000000000aa", SystemName: "payments", Owner: "alice"}

func reviewer(name string, roles ...vigil.Role) vigil.Actor {
	if len(roles) == 0 {
		roles = []vigil.Role{vigil.RoleReviewer}
	}
	return vigil.Actor{Kind: vigil.ActorUser, ID: "id-" + name, Name: name, Roles: roles}
}

func held(spec *vigil.ApprovalSpec) oversight.NewRequest {
	return oversight.NewRequest{
		Source: oversight.SourceMCP, Agent: agent, SessionID: "mcp-1",
		Tool: &vigil.Tool{Server: "pay", Name: "refund"}, Args: map[string]any{"amount": 500.0, "iban": "[IBAN_CODE]"},
		Decision: vigil.Decision{Effect: vigil.RequireApproval, Rules: []string{"refunds-need-a-human"}, Message: "Refunds need a person.",
			Policy: "sha256:p1", Approval: spec},
	}
}

func (f *fixture) create(t *testing.T, spec *vigil.ApprovalSpec) oversight.Request {
	t.Helper()
	r, err := f.svc.Create(context.Background(), held(spec))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCreateRecordsContextAndKeepsArgsOutOfTheLeaf(t *testing.T) {
	f := newFixture(t, nil)
	r := f.create(t, nil)
	if r.Status != oversight.Pending || r.Spec.Approvers != 1 || r.Spec.Timeout != oversight.DefaultTimeout || r.Spec.Roles[0] != vigil.RoleReviewer {
		t.Errorf("defaults not applied: %+v", r)
	}
	if !r.ExpiresAt.Equal(f.clock.Now().Add(oversight.DefaultTimeout)) {
		t.Errorf("ExpiresAt = %v, want created + default timeout", r.ExpiresAt)
	}
	got, err := f.svc.Get(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("stored request (-want +got):\n%s", diff)
	}
	evs := f.ledger.ofType(vigil.EventApprovalRequest)
	if len(evs) != 1 {
		t.Fatalf("ledger has %d approval requests, want 1", len(evs))
	}
	e := evs[0]
	if e.Actor != "agent:refund-bot" || e.AgentID != agent.ID || e.Attrs["approval"] != r.ID || e.Attrs["tool"] != "refund" ||
		e.Policy != "sha256:p1" || !cmp.Equal(e.Rules, []string{"refunds-need-a-human"}) {
		t.Errorf("request event lacks its context: %+v", e)
	}
	leaf, _ := json.Marshal(e)
	if strings.Contains(string(leaf), "IBAN_CODE") || strings.Contains(string(leaf), "500") {
		t.Errorf("arguments leaked into the ledger leaf: %s", leaf)
	}
	if !strings.Contains(string(e.Body), "IBAN_CODE") {
		t.Errorf("arguments missing from the erasable body: %s", e.Body)
	}

	for name, in := range map[string]oversight.NewRequest{
		"bad source":    {Source: "carrier-pigeon", Agent: agent, Tool: &vigil.Tool{Name: "x"}},
		"not an agent":  {Source: oversight.SourceMCP, Agent: reviewer("bob"), Tool: &vigil.Tool{Name: "x"}},
		"no subject":    {Source: oversight.SourceMCP, Agent: agent},
		"too many":      held(&vigil.ApprovalSpec{Approvers: 11}),
		"too long":      held(&vigil.ApprovalSpec{Timeout: 8 * 24 * time.Hour}),
		"unknown role":  held(&vigil.ApprovalSpec{Roles: []vigil.Role{"boss"}}),
		"decision api?": {Source: oversight.SourceDecisionAPI, Agent: vigil.Actor{Kind: vigil.ActorAgent}, Tool: &vigil.Tool{Name: "x"}},
	} {
		if _, err := f.svc.Create(context.Background(), in); vigil.ErrorCode(err) != vigil.EINVALID {
			t.Errorf("%s: Create = %v, want EINVALID", name, err)
		}
	}
}

func TestReviewerRules(t *testing.T) {
	trained := competence{"user:bob/payments": true}
	cases := []struct {
		name       string
		competence oversight.Competence
		spec       *vigil.ApprovalSpec
		who        vigil.Actor
		decision   oversight.Decision
		code       vigil.Code
		msg        string
	}{
		{"reviewer approves", nil, nil, reviewer("bob"), oversight.Decision{Verdict: oversight.Approve}, "", ""},
		{"admin holds every role", nil, nil, reviewer("root", vigil.RoleAdmin), oversight.Decision{Verdict: oversight.Approve}, "", ""},
		{"role token approves", nil, nil, vigil.Actor{Kind: vigil.ActorToken, ID: "t", Name: "oncall", Roles: []vigil.Role{vigil.RoleReviewer}}, oversight.Decision{Verdict: oversight.Approve}, "", ""},
		{"viewer may not", nil, nil, reviewer("vic", vigil.RoleViewer), oversight.Decision{Verdict: oversight.Approve}, vigil.EFORBIDDEN, "needs one of the roles reviewer"},
		{"viewer may not deny either", nil, nil, reviewer("vic", vigil.RoleViewer), oversight.Decision{Verdict: oversight.Deny, Reason: "no"}, vigil.EFORBIDDEN, "roles"},
		{"spec names another role", nil, &vigil.ApprovalSpec{Roles: []vigil.Role{vigil.RoleAuditor}}, reviewer("bob"), oversight.Decision{Verdict: oversight.Approve}, vigil.EFORBIDDEN, "auditor"},
		{"owner may not approve", nil, nil, reviewer("alice"), oversight.Decision{Verdict: oversight.Approve}, vigil.EFORBIDDEN, "separation of duties"},
		{"owner written as user:NAME", nil, nil, reviewer("ALICE"), oversight.Decision{Verdict: oversight.Approve}, vigil.EFORBIDDEN, "owns agent refund-bot"},
		{"owner may deny", nil, nil, reviewer("alice"), oversight.Decision{Verdict: oversight.Deny, Reason: "not now"}, "", ""},
		{"agent may not decide", nil, nil, agent, oversight.Decision{Verdict: oversight.Approve}, vigil.EFORBIDDEN, "agents cannot decide"},
		{"denial needs a reason", nil, nil, reviewer("bob"), oversight.Decision{Verdict: oversight.Deny, Reason: "  "}, vigil.EINVALID, "needs a reason"},
		{"no such verdict", nil, nil, reviewer("bob"), oversight.Decision{Verdict: "maybe"}, vigil.EINVALID, "not approve or deny"},
		{"edits only with approval", nil, nil, reviewer("bob"), oversight.Decision{Verdict: oversight.Deny, Reason: "x", Args: map[string]any{}}, vigil.EINVALID, "edited arguments"},
		{"training but no records", nil, &vigil.ApprovalSpec{RequireTraining: "payments"}, reviewer("bob"), oversight.Decision{Verdict: oversight.Approve}, vigil.EFORBIDDEN, "keeps no training records"},
		{"training but no records: deny works", nil, &vigil.ApprovalSpec{RequireTraining: "payments"}, reviewer("bob"), oversight.Decision{Verdict: oversight.Deny, Reason: "untrained"}, "", ""},
		{"untrained reviewer", trained, &vigil.ApprovalSpec{RequireTraining: "payments"}, reviewer("carol"), oversight.Decision{Verdict: oversight.Approve}, vigil.EFORBIDDEN, `no current training record for "payments"`},
		{"trained reviewer", trained, &vigil.ApprovalSpec{RequireTraining: "payments"}, reviewer("bob"), oversight.Decision{Verdict: oversight.Approve}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(o *oversight.Options) { o.Competence = c.competence })
			r := f.create(t, c.spec)
			got, err := f.svc.Decide(context.Background(), c.who, r.ID, c.decision)
			if c.code == "" {
				if err != nil {
					t.Fatalf("Decide = %v, want success", err)
				}
				want := map[oversight.Verdict]oversight.Status{oversight.Approve: oversight.Approved, oversight.Deny: oversight.Denied}[c.decision.Verdict]
				if got.Status != want || got.DecidedBy != c.who.String() {
					t.Errorf("after Decide: status %s by %s, want %s by %s", got.Status, got.DecidedBy, want, c.who)
				}
				return
			}
			if vigil.ErrorCode(err) != c.code || !strings.Contains(vigil.ErrorMessage(err), c.msg) {
				t.Fatalf("Decide = %v, want %s mentioning %q", err, c.code, c.msg)
			}
			if now, _ := f.svc.Get(context.Background(), r.ID); now.Status != oversight.Pending || len(now.Votes) != 0 {
				t.Errorf("a refused decision changed the request: %+v", now)
			}
		})
	}
}

func TestOwnerMayApproveWhenNotExcluded(t *testing.T) {
	f := newFixture(t, func(o *oversight.Options) { o.ExcludeOwner = false })
	r := f.create(t, nil)
	if _, err := f.svc.Decide(context.Background(), reviewer("alice"), r.ID, oversight.Decision{Verdict: oversight.Approve}); err != nil {
		t.Errorf("owner's approval with exclude_owner off = %v, want it accepted", err)
	}
}

func TestFourEyes(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	r := f.create(t, &vigil.ApprovalSpec{Approvers: 2})
	got, err := f.svc.Decide(ctx, reviewer("bob"), r.ID, oversight.Decision{Verdict: oversight.Approve, Reason: "ok"})
	if err != nil || got.Status != oversight.Pending {
		t.Fatalf("first approval: %v, status %s; want still pending", err, got.Status)
	}
	_, err = f.svc.Decide(ctx, reviewer("bob"), r.ID, oversight.Decision{Verdict: oversight.Approve})
	if vigil.ErrorCode(err) != vigil.ECONFLICT || !strings.Contains(vigil.ErrorMessage(err), "needs 1 more approval") {
		t.Errorf("same reviewer twice = %v, want a conflict saying one more approval is needed", err)
	}
	edited := map[string]any{"amount": 100.0, "iban": "[IBAN_CODE]"}
	got, err = f.svc.Decide(ctx, reviewer("carol"), r.ID, oversight.Decision{Verdict: oversight.Approve, Args: edited})
	if err != nil || got.Status != oversight.Approved {
		t.Fatalf("second approval: %v, status %s; want approved", err, got.Status)
	}
	if diff := cmp.Diff(edited, got.FinalArgs()); diff != "" {
		t.Errorf("FinalArgs after an edited approval (-want +got):\n%s", diff)
	}
	_, err = f.svc.Decide(ctx, reviewer("dave"), r.ID, oversight.Decision{Verdict: oversight.Deny, Reason: "late"})
	if vigil.ErrorCode(err) != vigil.ECONFLICT || !strings.Contains(vigil.ErrorMessage(err), "already approved") {
		t.Errorf("decision on an approved request = %v, want a conflict", err)
	}
	evs := f.ledger.ofType(vigil.EventApprovalDecision)
	if len(evs) != 2 {
		t.Fatalf("ledger has %d decisions, want 2 (one per vote)", len(evs))
	}
	if evs[0].Actor != "user:bob" || evs[0].Attrs["approvals"] != "1/2" || evs[0].Attrs["status"] != "pending" ||
		evs[1].Actor != "user:carol" || evs[1].Attrs["approvals"] != "2/2" || evs[1].Attrs["edited"] != "true" || evs[1].Decision != vigil.Allow {
		t.Errorf("decision events = %+v", evs)
	}
	if !strings.Contains(string(evs[1].Body), `"amount":100`) || !strings.Contains(string(evs[0].Body), `"reason":"ok"`) {
		t.Errorf("edited arguments and reasons belong in the bodies: %s / %s", evs[0].Body, evs[1].Body)
	}
	if f.metrics.count(oversight.Approved) != 1 {
		t.Errorf("metrics saw %d approvals, want 1", f.metrics.count(oversight.Approved))
	}
}

func TestExpiryDenies(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	r := f.create(t, &vigil.ApprovalSpec{Timeout: time.Minute})
	f.clock.Add(time.Minute)
	_, err := f.svc.Decide(ctx, reviewer("bob"), r.ID, oversight.Decision{Verdict: oversight.Approve})
	if vigil.ErrorCode(err) != vigil.ECONFLICT {
		t.Fatalf("approval after expiry = %v, want a conflict", err)
	}
	// Refusing the late approval also swept the request.
	got, err := f.svc.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != oversight.Expired || got.DecidedBy != "system:oversight" {
		t.Errorf("after expiry: %s by %s, want expired by system:oversight", got.Status, got.DecidedBy)
	}
	if evs := f.ledger.ofType(oversight.EventApprovalExpired); len(evs) != 1 || evs[0].Decision != vigil.Deny {
		t.Errorf("expiry events = %+v, want one deny", evs)
	}
	if f.metrics.count(oversight.Expired) != 1 {
		t.Errorf("metrics saw %d expiries, want 1", f.metrics.count(oversight.Expired))
	}
}

func TestRunExpiresAndReleasesWaiters(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.svc.Run(ctx)
	r := f.create(t, &vigil.ApprovalSpec{Timeout: time.Minute})
	done := make(chan oversight.Request)
	go func() {
		got, err := f.svc.Wait(ctx, r.ID)
		if err != nil {
			t.Error(err)
		}
		done <- got
	}()
	f.clock.Add(2 * time.Minute)
	select {
	case got := <-done:
		if got.Status != oversight.Expired {
			t.Errorf("waiter released with %s, want expired", got.Status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiter not released by the expiry")
	}
}

// bus links services like PostgreSQL's NOTIFY links replicas; drop loses notices.
type bus struct {
	mu   sync.Mutex
	svcs []*oversight.Service
	drop bool
}

func (b *bus) Notify(_ context.Context, n oversight.Notice) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drop {
		return nil
	}
	wire := n.Encode()
	for _, s := range b.svcs {
		got, err := oversight.DecodeNotice(wire)
		if err != nil {
			return err
		}
		go s.Receive(got)
	}
	return nil
}

// TestWaiterOnAnotherReplica: a caller waits on replica A; a reviewer decides on
// replica B; A's waiter is released by the notice, or by polling if it was lost.
func TestWaiterOnAnotherReplica(t *testing.T) {
	for _, drop := range []bool{false, true} {
		name := map[bool]string{false: "notified", true: "notice lost"}[drop]
		t.Run(name, func(t *testing.T) {
			b := &bus{drop: drop}
			a := newFixture(t, func(o *oversight.Options) { o.Notifier = b; o.PollInterval = time.Hour })
			if drop {
				a = newFixture(t, func(o *oversight.Options) { o.Notifier = b; o.PollInterval = 20 * time.Millisecond })
			}
			replicaB, err := oversight.New(oversight.Options{Store: a.store, Ledger: a.ledger, Notifier: b, Now: a.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			b.svcs = []*oversight.Service{a.svc, replicaB}
			r := a.create(t, nil)
			done := make(chan oversight.Request, 1)
			go func() {
				got, err := a.svc.Wait(context.Background(), r.ID)
				if err != nil {
					t.Error(err)
				}
				done <- got
			}()
			for a.svc.Waiting() == 0 {
				time.Sleep(time.Millisecond)
			}
			if _, err := replicaB.Decide(context.Background(), reviewer("bob"), r.ID, oversight.Decision{Verdict: oversight.Deny, Reason: "no refunds today"}); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-done:
				if got.Status != oversight.Denied || got.Reason != "no refunds today" {
					t.Errorf("released with %s %q, want denied with the reason", got.Status, got.Reason)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("waiter on replica A never released")
			}
		})
	}
}

func TestHold(t *testing.T) {
	t.Run("progress until approved", func(t *testing.T) {
		f := newFixture(t, nil)
		var mu sync.Mutex
		var ticks []string
		ready := make(chan string, 1)
		done := make(chan oversight.Request, 1)
		go func() {
			got, err := f.svc.Hold(context.Background(), held(nil), func(r oversight.Request, waited time.Duration) {
				mu.Lock()
				defer mu.Unlock()
				ticks = append(ticks, r.ID)
				if len(ticks) == 2 {
					ready <- r.ID
				}
			})
			if err != nil {
				t.Error(err)
			}
			done <- got
		}()
		id := <-ready
		if _, err := f.svc.Decide(context.Background(), reviewer("bob"), id, oversight.Decision{Verdict: oversight.Approve}); err != nil {
			t.Fatal(err)
		}
		got := <-done
		if got.Status != oversight.Approved || got.ID != id {
			t.Errorf("Hold = %s %s, want approved %s", got.ID, got.Status, id)
		}
	})
	t.Run("caller gone cancels", func(t *testing.T) {
		f := newFixture(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := f.svc.Hold(ctx, held(nil), nil)
			errc <- err
		}()
		for f.svc.Waiting() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("Hold after the caller left = %v, want context.Canceled", err)
		}
		list, _ := f.svc.List(context.Background(), oversight.Filter{})
		if len(list) != 1 || list[0].Status != oversight.Cancelled || list[0].Reason != "the caller stopped waiting" {
			t.Errorf("abandoned request = %+v, want cancelled because the caller stopped waiting", list)
		}
	})
	t.Run("gate refuses a suspended agent even after approval", func(t *testing.T) {
		var mu sync.Mutex
		suspended := false
		f := newFixture(t, func(o *oversight.Options) {
			o.Gate = func(context.Context, vigil.Actor) error {
				mu.Lock()
				defer mu.Unlock()
				if suspended {
					return vigil.Errorf(vigil.ESUSPENDED, "agent is suspended")
				}
				return nil
			}
		})
		errc := make(chan error, 1)
		go func() {
			_, err := f.svc.Hold(context.Background(), held(nil), nil)
			errc <- err
		}()
		for f.svc.Waiting() == 0 {
			time.Sleep(time.Millisecond)
		}
		list, _ := f.svc.List(context.Background(), oversight.Filter{})
		mu.Lock()
		suspended = true
		mu.Unlock()
		if _, err := f.svc.Decide(context.Background(), reviewer("bob"), list[0].ID, oversight.Decision{Verdict: oversight.Approve}); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; vigil.ErrorCode(err) != vigil.ESUSPENDED {
			t.Errorf("Hold approved for a since-suspended agent = %v, want ESUSPENDED", err)
		}
	})
}

func TestKillSwitch(t *testing.T) {
	sessions := &oversight.Sessions{}
	f := newFixture(t, func(o *oversight.Options) { o.Sessions = sessions })
	ctx := context.Background()
	mine := f.create(t, nil)
	otherAgent := agent
	otherAgent.ID, otherAgent.Name = "0193a6c0-0000-7000-8000-000000000002", "other-bot"
	in := held(nil)
	in.Agent = otherAgent
	theirs, err := f.svc.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	stream, done := sessions.Track(ctx, agent)
	defer done()
	otherStream, otherDone := sessions.Track(ctx, otherAgent)
	defer otherDone()

	if err := f.svc.StatusChanged(ctx, agent.ID, "", true, "user:carol", "refund loop"); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.svc.Get(ctx, mine.ID); got.Status != oversight.Cancelled || !strings.Contains(got.Reason, "refund loop") || got.DecidedBy != "user:carol" {
		t.Errorf("suspended agent's request: %+v, want cancelled by carol with the reason", got)
	}
	if got, _ := f.svc.Get(ctx, theirs.ID); got.Status != oversight.Pending {
		t.Errorf("another agent's request was touched: %s", got.Status)
	}
	select {
	case <-stream.Done():
		if cause := context.Cause(stream); vigil.ErrorCode(cause) != vigil.ESUSPENDED || !strings.Contains(vigil.ErrorMessage(cause), "refund loop") {
			t.Errorf("stream closed with cause %v, want ESUSPENDED with the reason", cause)
		}
	default:
		t.Error("the suspended agent's open stream was not closed")
	}
	if otherStream.Err() != nil {
		t.Error("another agent's stream was closed")
	}

	if on, _, _ := f.svc.Halted(ctx); on {
		t.Fatal("halted before anyone halted")
	}
	if _, err := f.svc.SetHalt(ctx, reviewer("carol"), true, ""); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("halt without a reason = %v, want EINVALID", err)
	}
	h, err := f.svc.SetHalt(ctx, reviewer("carol"), true, "data leak")
	if err != nil {
		t.Fatal(err)
	}
	if on, reason, _ := f.svc.Halted(ctx); !on || reason != "data leak" || h.By != "user:carol" {
		t.Errorf("Halted = %v %q (by %s), want on with the reason, by carol", on, reason, h.By)
	}
	if got, _ := f.svc.Get(ctx, theirs.ID); got.Status != oversight.Cancelled {
		t.Errorf("pending request after a halt: %s, want cancelled", got.Status)
	}
	if otherStream.Err() == nil || sessions.Len() != 0 {
		t.Errorf("open work after a halt: %d sessions", sessions.Len())
	}
	if _, err := f.svc.SetHalt(ctx, reviewer("dave"), false, ""); err != nil {
		t.Fatal(err)
	}
	if on, _, _ := f.svc.Halted(ctx); on {
		t.Error("still halted after resume")
	}
	for _, typ := range []string{oversight.EventHalted, oversight.EventUnhalted} {
		if len(f.ledger.ofType(typ)) != 1 {
			t.Errorf("ledger lacks %s", typ)
		}
	}
	if evs := f.ledger.ofType(oversight.EventApprovalCancelled); len(evs) != 2 {
		t.Errorf("ledger has %d cancellations, want 2", len(evs))
	}
}

func TestNoticeRoundTrip(t *testing.T) {
	n := oversight.Notice{Kind: oversight.NoticeSuspended, AgentID: "a", Reason: strings.Repeat("é", 2000), Origin: "x"}
	got, err := oversight.DecodeNotice(n.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Reason) > oversight.MaxNoticeReason || !strings.HasPrefix(n.Reason, got.Reason) || got.AgentID != "a" {
		t.Errorf("decoded %+v", got)
	}
	if len(n.Encode()) > 8000 {
		t.Errorf("encoded notice is %d bytes, over NOTIFY's limit", len(n.Encode()))
	}
	if got, _ := oversight.DecodeNotice(""); got.Kind != oversight.NoticeResync {
		t.Errorf("empty payload decodes as %q, want resync", got.Kind)
	}
	if _, err := oversight.DecodeNotice("{"); err == nil {
		t.Error("garbage decoded")
	}
}

// OnNotice sees every suspension and halt, this replica's own and other replicas',
// before the open work they stop is closed: an authentication cache dropped there
// cannot let in a call whose work was registered after the drop.
func TestOnNoticeRunsBeforeWorkIsClosed(t *testing.T) {
	sessions := &oversight.Sessions{}
	var mu sync.Mutex
	var seen []string // kind and whether the agent's work was still open
	var stream context.Context
	f := newFixture(t, func(o *oversight.Options) {
		o.Sessions = sessions
		o.OnNotice = func(n oversight.Notice) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, string(n.Kind)+map[bool]string{true: " open", false: " closed"}[stream.Err() == nil])
		}
	})
	ctx := context.Background()
	track := func() func() {
		mu.Lock()
		defer mu.Unlock()
		s, done := sessions.Track(ctx, agent)
		stream = s
		return done
	}
	done := track()
	defer done()
	if err := f.svc.StatusChanged(ctx, agent.ID, "", true, "user:carol", "refund loop"); err != nil {
		t.Fatal(err)
	}
	done = track()
	defer done()
	if _, err := f.svc.SetHalt(ctx, reviewer("carol"), true, "leak"); err != nil {
		t.Fatal(err)
	}
	done = track()
	defer done()
	f.svc.Receive(oversight.Notice{Kind: oversight.NoticeSuspended, AgentID: agent.ID, Reason: "from B", Origin: "replica-b"})
	mu.Lock()
	defer mu.Unlock()
	want := []string{"suspended open", "halted open", "suspended open"}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("notices seen by OnNotice (-want +got):\n%s", diff)
	}
	if stream.Err() == nil {
		t.Error("the notice from another replica did not close the agent's work")
	}
}
