package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// OversightStores are a driver's stores for human oversight: approval requests and
// the halt flag, webhook deliveries, and console users with their sessions.
type OversightStores struct {
	Approvals  oversight.Store
	Deliveries oversight.DeliveryStore
	Users      auth.UserStore
}

func testOversight(t *testing.T, st OversightStores) {
	t.Run("Requests", func(t *testing.T) { testRequests(t, st.Approvals) })
	t.Run("Votes", func(t *testing.T) { testVotes(t, st.Approvals) })
	t.Run("RacingVotes", func(t *testing.T) { testRacingVotes(t, st.Approvals) })
	t.Run("ExpireAndCancel", func(t *testing.T) { testExpireAndCancel(t, st.Approvals) })
	t.Run("Halt", func(t *testing.T) { testHalt(t, st.Approvals) })
	t.Run("Deliveries", func(t *testing.T) { testDeliveries(t, st.Deliveries) })
	t.Run("Users", func(t *testing.T) { testUsers(t, st.Users) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, st.Users) })
}

// newRequest returns a pending request created at now that expires an hour later.
func newRequest(agent, system string, approvers int) oversight.Request {
	return oversight.Request{
		ID: newID(), Status: oversight.Pending, Source: oversight.SourceMCP,
		AgentID: agent, AgentName: "bot-" + agent[len(agent)-4:], AgentOwner: "alice", SystemID: system, SystemName: "support",
		SessionID: "sess-1", Tool: &vigil.Tool{Server: "pay", Name: "refund", Annotations: vigil.DefaultToolAnnotations()},
		Args:  map[string]any{"amount": 500.0, "to": map[string]any{"iban": "[IBAN_CODE]"}},
		Rules: []string{"refunds-need-a-human"}, Message: "Refunds need a person.", Policy: "sha256:abc",
		Spec:      vigil.ApprovalSpec{Roles: []vigil.Role{vigil.RoleReviewer}, Approvers: approvers, Timeout: time.Hour, RequireTraining: "payments"},
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), Votes: []oversight.Vote{},
	}
}

func mustCreate(t *testing.T, s oversight.Store, r oversight.Request) oversight.Request {
	t.Helper()
	if err := s.CreateRequest(context.Background(), r); err != nil {
		t.Fatalf("CreateRequest: %v", err)
	}
	return r
}

func testRequests(t *testing.T, s oversight.Store) {
	ctx := context.Background()
	agent, system := newID(), newID()
	r := mustCreate(t, s, newRequest(agent, system, 1))
	got, err := s.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("Request() mismatch (-want +got):\n%s", diff)
	}
	if err := s.CreateRequest(ctx, r); !errors.Is(err, vigil.ErrConflict) {
		t.Errorf("CreateRequest(same id) = %v, want ErrConflict", err)
	}
	if _, err := s.Request(ctx, newID()); !errors.Is(err, vigil.ErrNotFound) {
		t.Errorf("Request(unknown) = %v, want ErrNotFound", err)
	}

	// A model call: no tool, no arguments.
	m := newRequest(newID(), system, 1)
	m.Source, m.Tool, m.Args, m.Model, m.CreatedAt = oversight.SourceModelCall, nil, nil, &vigil.Model{Provider: "openai", Name: "gpt-5"}, now.Add(time.Second)
	mustCreate(t, s, m)
	got, err = s.Request(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("model request round trip (-want +got):\n%s", diff)
	}

	third := newRequest(agent, system, 1)
	third.CreatedAt = now.Add(2 * time.Second)
	mustCreate(t, s, third)
	if _, err := s.Vote(ctx, third.ID, oversight.Vote{Reviewer: "user:bob", Verdict: oversight.Deny, Reason: "no", At: now}); err != nil {
		t.Fatal(err)
	}

	ids := func(rs []oversight.Request) []string {
		out := []string{}
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	cases := []struct {
		name string
		f    oversight.Filter
		want []string
	}{
		{"all, newest first", oversight.Filter{}, []string{third.ID, m.ID, r.ID}},
		{"pending", oversight.Filter{Status: oversight.Pending}, []string{m.ID, r.ID}},
		{"denied", oversight.Filter{Status: oversight.Denied}, []string{third.ID}},
		{"by agent", oversight.Filter{AgentID: agent}, []string{third.ID, r.ID}},
		{"by agent and status", oversight.Filter{AgentID: agent, Status: oversight.Pending}, []string{r.ID}},
		{"by system", oversight.Filter{SystemID: system}, []string{third.ID, m.ID, r.ID}},
		{"other system", oversight.Filter{SystemID: newID()}, []string{}},
		{"limit", oversight.Filter{Limit: 2}, []string{third.ID, m.ID}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.ListRequests(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, ids(got)); diff != "" {
				t.Errorf("ListRequests(%+v) (-want +got):\n%s", c.f, diff)
			}
		})
	}
	list, _ := s.ListRequests(ctx, oversight.Filter{Status: oversight.Denied})
	if len(list) != 1 || len(list[0].Votes) != 1 || list[0].Votes[0].Reviewer != "user:bob" {
		t.Errorf("ListRequests doesn't carry votes: %+v", list)
	}
	if n, err := s.CountPending(ctx); err != nil || n != 2 {
		t.Errorf("CountPending = %d, %v; want 2", n, err)
	}
}

func testVotes(t *testing.T, s oversight.Store) {
	ctx := context.Background()
	r := mustCreate(t, s, newRequest(newID(), newID(), 2))

	first := oversight.Vote{Reviewer: "user:bob", Verdict: oversight.Approve, Reason: "looks fine", At: now.Add(time.Minute)}
	got, err := s.Vote(ctx, r.ID, first)
	if err != nil {
		t.Fatal(err)
	}
	want := r
	want.Votes = []oversight.Vote{first}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after the first of two approvals (-want +got):\n%s", diff)
	}
	again := first
	again.At = now.Add(2 * time.Minute)
	if _, err := s.Vote(ctx, r.ID, again); !errors.Is(err, vigil.ErrConflict) {
		t.Errorf("second vote by the same reviewer = %v, want ErrConflict", err)
	}

	edited := map[string]any{"amount": 100.0}
	second := oversight.Vote{Reviewer: "token:oncall", Verdict: oversight.Approve, Args: edited, At: now.Add(3 * time.Minute)}
	got, err = s.Vote(ctx, r.ID, second)
	if err != nil {
		t.Fatal(err)
	}
	decided := second.At
	want.Status, want.DecidedAt, want.DecidedBy, want.EditedArgs = oversight.Approved, &decided, "token:oncall", edited
	want.Votes = []oversight.Vote{first, second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after the second approval (-want +got):\n%s", diff)
	}
	stored, err := s.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, stored); diff != "" {
		t.Errorf("stored after approval (-want +got):\n%s", diff)
	}
	late := oversight.Vote{Reviewer: "user:carol", Verdict: oversight.Deny, Reason: "too late", At: now.Add(4 * time.Minute)}
	if _, err := s.Vote(ctx, r.ID, late); !errors.Is(err, vigil.ErrConflict) {
		t.Errorf("vote on an approved request = %v, want ErrConflict", err)
	}

	// Any denial denies, even after an approval.
	d := mustCreate(t, s, newRequest(newID(), newID(), 2))
	if _, err := s.Vote(ctx, d.ID, first); err != nil {
		t.Fatal(err)
	}
	deny := oversight.Vote{Reviewer: "user:carol", Verdict: oversight.Deny, Reason: "amount too high", At: now.Add(2 * time.Minute)}
	got, err = s.Vote(ctx, d.ID, deny)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != oversight.Denied || got.Reason != "amount too high" || got.DecidedBy != "user:carol" || len(got.Votes) != 2 {
		t.Errorf("after a denial: %+v, want denied by carol with her reason and two votes", got)
	}

	// No vote at or after the expiry, and the refusal changes nothing.
	e := mustCreate(t, s, newRequest(newID(), newID(), 1))
	if _, err := s.Vote(ctx, e.ID, oversight.Vote{Reviewer: "user:bob", Verdict: oversight.Approve, At: e.ExpiresAt}); !errors.Is(err, vigil.ErrConflict) {
		t.Errorf("vote at the expiry = %v, want ErrConflict", err)
	}
	if got, _ := s.Request(ctx, e.ID); got.Status != oversight.Pending || len(got.Votes) != 0 {
		t.Errorf("a refused vote changed the request: %+v", got)
	}
	if _, err := s.Vote(ctx, newID(), first); !errors.Is(err, vigil.ErrNotFound) {
		t.Errorf("vote on an unknown request = %v, want ErrNotFound", err)
	}
}

// testRacingVotes is the four-eyes rule under concurrency: many reviewers approving
// at once (as on several replicas) produce exactly N counted approvals and exactly
// one transition to approved; one reviewer voting many times counts once.
func testRacingVotes(t *testing.T, s oversight.Store) {
	ctx := context.Background()
	const reviewers, need = 8, 3
	r := mustCreate(t, s, newRequest(newID(), newID(), need))
	var wg sync.WaitGroup
	results := make(chan oversight.Request, reviewers)
	errs := make(chan error, reviewers)
	for i := range reviewers {
		wg.Go(func() {
			got, err := s.Vote(ctx, r.ID, oversight.Vote{Reviewer: fmt.Sprintf("user:r%d", i), Verdict: oversight.Approve, At: now.Add(time.Second)})
			if err != nil {
				errs <- err
				return
			}
			results <- got
		})
	}
	wg.Wait()
	close(results)
	close(errs)
	accepted, approved := 0, 0
	for got := range results {
		accepted++
		if got.Status == oversight.Approved {
			approved++
		}
	}
	for err := range errs {
		if !errors.Is(err, vigil.ErrConflict) {
			t.Errorf("racing vote failed with %v, want only ErrConflict refusals", err)
		}
	}
	if accepted != need || approved != 1 {
		t.Errorf("%d racing approvals: %d accepted and %d saw the approval; want %d and 1", reviewers, accepted, approved, need)
	}
	final, err := s.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != oversight.Approved || len(final.Votes) != need {
		t.Errorf("final request: status %s with %d votes, want approved with %d", final.Status, len(final.Votes), need)
	}

	same := mustCreate(t, s, newRequest(newID(), newID(), 2))
	var ok sync.Map
	for i := range 5 {
		wg.Go(func() {
			if _, err := s.Vote(ctx, same.ID, oversight.Vote{Reviewer: "user:bob", Verdict: oversight.Approve, At: now.Add(time.Second)}); err == nil {
				ok.Store(i, true)
			}
		})
	}
	wg.Wait()
	n := 0
	ok.Range(func(any, any) bool { n++; return true })
	if got, _ := s.Request(ctx, same.ID); n != 1 || len(got.Votes) != 1 || got.Status != oversight.Pending {
		t.Errorf("one reviewer voting 5 times at once: %d accepted, request %s with %d votes; want 1, pending, 1", n, got.Status, len(got.Votes))
	}
}

func testExpireAndCancel(t *testing.T, s oversight.Store) {
	ctx := context.Background()
	agentA, agentB, sysA, sysB := newID(), newID(), newID(), newID()
	due := newRequest(agentA, sysA, 1)
	due.ExpiresAt = now.Add(time.Minute)
	mustCreate(t, s, due)
	later := mustCreate(t, s, newRequest(agentA, sysA, 1))
	other := mustCreate(t, s, newRequest(agentB, sysA, 1))
	elsewhere := mustCreate(t, s, newRequest(newID(), sysB, 1))
	decided := newRequest(agentA, sysA, 1)
	decided.ExpiresAt = now.Add(time.Minute)
	mustCreate(t, s, decided)
	if _, err := s.Vote(ctx, decided.ID, oversight.Vote{Reviewer: "user:bob", Verdict: oversight.Approve, At: now}); err != nil {
		t.Fatal(err)
	}

	// Racing sweepers: each expiry is handed to exactly one of them.
	at := now.Add(time.Minute)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var expired []oversight.Request
	for range 4 {
		wg.Go(func() {
			got, err := s.ExpireDue(ctx, at, "system:oversight", "timed out", 10)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			expired = append(expired, got...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(expired) != 1 || expired[0].ID != due.ID {
		t.Fatalf("racing ExpireDue returned %d requests, want exactly the one due", len(expired))
	}
	want := due
	want.Status, want.DecidedAt, want.DecidedBy, want.Reason = oversight.Expired, &at, "system:oversight", "timed out"
	if diff := cmp.Diff(want, expired[0]); diff != "" {
		t.Errorf("expired request (-want +got):\n%s", diff)
	}
	if got, _ := s.Request(ctx, decided.ID); got.Status != oversight.Approved {
		t.Errorf("ExpireDue touched a decided request: now %s", got.Status)
	}

	cancel := func(scope oversight.Scope) []string {
		t.Helper()
		got, err := s.Cancel(ctx, scope, "user:carol", "agent suspended", now.Add(2*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for _, r := range got {
			if r.Status != oversight.Cancelled || r.DecidedBy != "user:carol" || r.Reason != "agent suspended" {
				t.Errorf("cancelled request %+v lacks its status, canceller or reason", r)
			}
			ids = append(ids, r.ID)
		}
		return ids
	}
	if diff := cmp.Diff([]string{later.ID}, cancel(oversight.Scope{AgentID: agentA})); diff != "" {
		t.Errorf("cancel agent A (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{other.ID}, cancel(oversight.Scope{SystemID: sysA})); diff != "" {
		t.Errorf("cancel system A (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{}, cancel(oversight.Scope{ID: other.ID})); diff != "" {
		t.Errorf("cancelling a cancelled request again (-want +got):\n%s", diff)
	}
	last := mustCreate(t, s, newRequest(newID(), sysB, 1))
	if diff := cmp.Diff([]string{last.ID}, cancel(oversight.Scope{ID: last.ID})); diff != "" {
		t.Errorf("cancel one (-want +got):\n%s", diff)
	}
	// Other subtests share the store, so "all" may find more than this one's.
	if all := cancel(oversight.Scope{All: true}); !slices.Contains(all, elsewhere.ID) || slices.Contains(all, last.ID) {
		t.Errorf("cancel all = %v, want it to hold %s and not the already-cancelled %s", all, elsewhere.ID, last.ID)
	}
	if n, _ := s.CountPending(ctx); n != 0 {
		t.Errorf("CountPending after cancelling all = %d", n)
	}
}

func testHalt(t *testing.T, s oversight.Store) {
	ctx := context.Background()
	got, err := s.Halt(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(oversight.Halt{}, got); diff != "" {
		t.Errorf("Halt() before any was set (-want +got):\n%s", diff)
	}
	for _, h := range []oversight.Halt{
		{On: true, Reason: "data leak", By: "user:carol", At: now},
		{On: false, By: "user:dave", At: now.Add(time.Hour)},
	} {
		if err := s.SetHalt(ctx, h); err != nil {
			t.Fatal(err)
		}
		got, err := s.Halt(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(h, got); diff != "" {
			t.Errorf("Halt() after SetHalt (-want +got):\n%s", diff)
		}
	}
}

func testDeliveries(t *testing.T, s oversight.DeliveryStore) {
	ctx := context.Background()
	a, b := newID(), newID()
	ds := []oversight.Delivery{
		{ID: newID(), Webhook: "ops", Event: "approval.requested", ApprovalID: a, Attempt: 1, Status: 0, Error: "connection refused", At: now, Duration: 1500 * time.Microsecond},
		{ID: newID(), Webhook: "ops", Event: "approval.requested", ApprovalID: a, Attempt: 2, Status: 200, At: now.Add(time.Second), Duration: time.Millisecond},
		{ID: newID(), Webhook: "slack", Event: "approval.requested", ApprovalID: b, Attempt: 1, Status: 200, At: now.Add(2 * time.Second)},
	}
	for _, d := range ds {
		if err := s.RecordDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListDeliveries(ctx, a, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]oversight.Delivery{ds[1], ds[0]}, got); diff != "" {
		t.Errorf("ListDeliveries(a) (-want +got):\n%s", diff)
	}
	got, err = s.ListDeliveries(ctx, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]oversight.Delivery{ds[2], ds[1]}, got); diff != "" {
		t.Errorf("ListDeliveries(all, 2) (-want +got):\n%s", diff)
	}
}

func testUsers(t *testing.T, s auth.UserStore) {
	ctx := context.Background()
	u := auth.User{ID: newID(), Name: "alice", Roles: []vigil.Role{vigil.RoleReviewer, vigil.RoleAuditor}, PasswordHash: "$argon2id$x",
		CreatedBy: "token:bootstrap", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	for name, get := range map[string]func() (auth.User, error){
		"User":       func() (auth.User, error) { return s.User(ctx, u.ID) },
		"UserByName": func() (auth.User, error) { return s.UserByName(ctx, "alice") },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(u, got); diff != "" {
			t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
		}
	}
	dup := u
	dup.ID = newID()
	if err := s.CreateUser(ctx, dup); !errors.Is(err, vigil.ErrConflict) {
		t.Errorf("CreateUser(duplicate name) = %v, want ErrConflict", err)
	}
	if _, err := s.UserByName(ctx, "nobody"); !errors.Is(err, vigil.ErrNotFound) {
		t.Errorf("UserByName(unknown) = %v, want ErrNotFound", err)
	}
	upd := u
	upd.Roles, upd.PasswordHash, upd.Disabled, upd.UpdatedAt = []vigil.Role{vigil.RoleViewer}, "$argon2id$y", true, now.Add(time.Hour)
	if err := s.UpdateUser(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.User(ctx, u.ID); !cmp.Equal(upd, got) {
		t.Errorf("after UpdateUser: %s", cmp.Diff(upd, got))
	}
	if err := s.UpdateUser(ctx, auth.User{ID: newID(), UpdatedAt: now}); !errors.Is(err, vigil.ErrNotFound) {
		t.Errorf("UpdateUser(unknown) = %v, want ErrNotFound", err)
	}
	bob := auth.User{ID: newID(), Name: "bob", Roles: []vigil.Role{vigil.RoleAdmin}, PasswordHash: "h", CreatedBy: "x", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateUser(ctx, bob); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "alice" || list[1].Name != "bob" {
		t.Errorf("ListUsers = %+v, want alice then bob", list)
	}
}

func testSessions(t *testing.T, s auth.UserStore) {
	ctx := context.Background()
	u := auth.User{ID: newID(), Name: "erin", Roles: []vigil.Role{vigil.RoleReviewer}, PasswordHash: "h", CreatedBy: "x", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	se := auth.Session{Hash: auth.Hash("vs_1"), UserID: u.ID, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}
	old := auth.Session{Hash: auth.Hash("vs_2"), UserID: u.ID, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Minute)}
	for _, x := range []auth.Session{se, old} {
		if err := s.CreateSession(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Session(ctx, se.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(se, got); diff != "" {
		t.Errorf("Session() (-want +got):\n%s", diff)
	}
	if err := s.TouchSession(ctx, se.Hash, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Session(ctx, se.Hash); !got.LastSeen.Equal(now.Add(time.Minute)) {
		t.Errorf("LastSeen after TouchSession = %v", got.LastSeen)
	}
	if n, err := s.DeleteExpiredSessions(ctx, now.Add(time.Minute)); err != nil || n != 1 {
		t.Errorf("DeleteExpiredSessions = %d, %v; want 1", n, err)
	}
	if _, err := s.Session(ctx, old.Hash); !errors.Is(err, vigil.ErrNotFound) {
		t.Errorf("expired session still there: %v", err)
	}
	if err := s.DeleteUserSessions(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, se.Hash); !errors.Is(err, vigil.ErrNotFound) {
		t.Errorf("session after DeleteUserSessions: %v, want ErrNotFound", err)
	}
	if err := s.DeleteSession(ctx, se.Hash); err != nil {
		t.Errorf("DeleteSession of a missing session = %v, want nil", err)
	}
	if err := s.TouchSession(ctx, se.Hash, now); !errors.Is(err, vigil.ErrNotFound) {
		t.Errorf("TouchSession(missing) = %v, want ErrNotFound", err)
	}
}
