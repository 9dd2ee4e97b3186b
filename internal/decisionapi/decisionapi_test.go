package decisionapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-gateway/vigil/internal/decisionapi"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/store/sqlite"
	"github.com/vigil-gateway/vigil/internal/store/storetest"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

type keyAuth map[string]vigil.Actor

func (k keyAuth) AuthenticateAgent(_ context.Context, s string) (vigil.Actor, error) {
	if a, ok := k[s]; ok {
		return a, nil
	}
	return vigil.Actor{}, vigil.Errorf(vigil.EUNAUTHORIZED, "invalid or missing credentials")
}

// refundPolicy denies refunds over 100, holds deletes, allows the rest.
type refundPolicy struct{}

func (refundPolicy) Decide(_ context.Context, a vigil.Action) (vigil.Decision, error) {
	switch {
	case a.Tool != nil && a.Tool.Name == "refund":
		amount, ok := a.Args["amount"].(float64)
		if !ok {
			return vigil.Decision{Effect: vigil.Deny, Rules: []string{"refunds-over-100"}, Policy: "p1", Message: "args.amount is missing"}, nil
		}
		if amount > 100 {
			return vigil.Decision{Effect: vigil.Deny, Rules: []string{"refunds-over-100"}, Policy: "p1", Message: "Refunds over 100 go through the finance workflow."}, nil
		}
	case a.Tool != nil && a.Tool.Name == "delete":
		return vigil.Decision{Effect: vigil.RequireApproval, Rules: []string{"deletes-need-a-human"}, Policy: "p1"}, nil
	}
	return vigil.Decision{Effect: vigil.Allow, Rules: []string{}, Policy: "p1"}, nil
}

// approvals is a Holder and Waiter whose outcomes the test sets.
type approvals struct {
	mu     sync.Mutex
	n      int
	status map[string]enforce.HoldResult
}

func (a *approvals) Hold(_ context.Context, r enforce.HoldRequest) (enforce.HoldResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n++
	id := "ap-" + string(rune('0'+a.n))
	res := enforce.HoldResult{ApprovalID: id, Status: "pending"}
	a.status[id] = res
	return res, nil
}

func (a *approvals) Wait(ctx context.Context, id string) (enforce.HoldResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status[id], nil
}

func setup(t *testing.T) (*httptest.Server, *approvals, ledger.Store) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "v.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l, err := ledger.Open(context.Background(), db.Ledger(), storetest.LedgerOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ap := &approvals{status: map[string]enforce.HoldResult{}}
	s := &decisionapi.Server{
		Auth: keyAuth{
			"key-a": {Kind: vigil.ActorAgent, ID: "agent-a", Name: "a"},
			"key-b": {Kind: vigil.ActorAgent, ID: "agent-b", Name: "b"},
		},
		Pipeline:  &enforce.Pipeline{Policy: refundPolicy{}, Oversight: ap, Ledger: l},
		Approvals: ap,
		Ledger:    db.Ledger(),
	}
	mux := web.NewMux(web.Errors{})
	s.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, ap, db.Ledger()
}

func do(t *testing.T, srv *httptest.Server, key, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, path, raw)
	}
	return resp.StatusCode, out
}

func TestDecisions(t *testing.T) {
	srv, ap, store := setup(t)

	st, ans := do(t, srv, "key-a", "POST", "/v1/decisions", `{"action":"tool_call","tool":{"server":"pay","name":"refund"},"args":{"amount":50}}`)
	if st != 200 || ans["decision"] != "allow" || ans["policy"] != "p1" || ans["id"] == "" {
		t.Fatalf("small refund = %d %v", st, ans)
	}
	allowID := ans["id"].(string)

	st, ans = do(t, srv, "key-a", "POST", "/v1/decisions", `{"action":"tool_call","tool":{"server":"pay","name":"refund"},"args":{"amount":500}}`)
	if st != 200 || ans["decision"] != "deny" || !strings.Contains(ans["message"].(string), "finance workflow") {
		t.Fatalf("big refund = %d %v", st, ans)
	}
	if rules, _ := ans["rules"].([]any); len(rules) != 1 || rules[0] != "refunds-over-100" {
		t.Errorf("big refund rules = %v", ans["rules"])
	}
	denyID := ans["id"].(string)

	st, ans = do(t, srv, "key-a", "POST", "/v1/decisions", `{"action":"tool_call","tool":{"name":"delete"},"args":{"id":7}}`)
	if st != 202 || ans["decision"] != "pending" || ans["approval"] != "ap-1" {
		t.Fatalf("delete = %d %v", st, ans)
	}
	pendID := ans["id"].(string)

	st, ans = do(t, srv, "key-a", "GET", "/v1/decisions/"+pendID, "")
	if st != 200 || ans["decision"] != "pending" {
		t.Errorf("GET pending = %d %v", st, ans)
	}
	ap.mu.Lock()
	ap.status["ap-1"] = enforce.HoldResult{ApprovalID: "ap-1", Status: "denied", Reason: "not on a Friday"}
	ap.mu.Unlock()
	st, ans = do(t, srv, "key-a", "GET", "/v1/decisions/"+pendID+"?wait=1s", "")
	if st != 200 || ans["decision"] != "deny" || !strings.Contains(ans["message"].(string), "not on a Friday") {
		t.Errorf("GET decided = %d %v", st, ans)
	}
	st, ans = do(t, srv, "key-a", "GET", "/v1/decisions/"+denyID, "")
	if st != 200 || ans["decision"] != "deny" {
		t.Errorf("GET deny = %d %v", st, ans)
	}

	// Another agent cannot see or complete these decisions.
	if st, _ = do(t, srv, "key-b", "GET", "/v1/decisions/"+allowID, ""); st != 404 {
		t.Errorf("other agent's GET = %d, want 404", st)
	}
	if st, _ = do(t, srv, "key-b", "POST", "/v1/decisions/"+allowID+"/outcome", `{"status":"ok","result":1}`); st != 404 {
		t.Errorf("other agent's outcome = %d, want 404", st)
	}

	st, ans = do(t, srv, "key-a", "POST", "/v1/decisions/"+allowID+"/outcome", `{"status":"ok","result":{"refunded":50}}`)
	if st != 201 || ans["decision"] != allowID {
		t.Fatalf("outcome = %d %v", st, ans)
	}

	// The ledger holds each decision with the policy hash and rules, and the outcome.
	size, _, _ := store.TreeState(context.Background())
	entries, _ := store.Entries(context.Background(), 0, size)
	byID := map[string]ledger.Envelope{}
	outcomes := 0
	for _, e := range entries {
		env, err := ledger.ParseEnvelope(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		byID[env.ID] = env
		if env.Type == vigil.EventToolResult && env.Attrs["request"] == allowID {
			outcomes++
		}
	}
	if e := byID[denyID]; e.Decision != "deny" || e.Policy != "p1" || len(e.Rules) != 1 || e.Rules[0] != "refunds-over-100" {
		t.Errorf("deny entry = %+v", e)
	}
	if e := byID[allowID]; e.Decision != "allow" || e.Type != vigil.EventToolCall {
		t.Errorf("allow entry = %+v", e)
	}
	if outcomes != 1 {
		t.Errorf("%d outcome entries for the allowed call, want 1", outcomes)
	}
}

func TestBadRequests(t *testing.T) {
	srv, _, _ := setup(t)
	cases := []struct {
		key, method, path, body string
		status                  int
		msg                     string
	}{
		{"", "POST", "/v1/decisions", `{}`, 401, "missing API key"},
		{"nope", "POST", "/v1/decisions", `{}`, 401, "invalid"},
		{"key-a", "POST", "/v1/decisions", `{"action":"launch"}`, 400, "action must be"},
		{"key-a", "POST", "/v1/decisions", `{"action":"tool_call"}`, 400, "needs \"tool\""},
		{"key-a", "POST", "/v1/decisions", `{"action":"model_call"}`, 400, "needs \"model\""},
		{"key-a", "POST", "/v1/decisions", `{"action":"tool_call","tool":{"name":"x"},"args":[1]}`, 400, "args"},
		{"key-a", "GET", "/v1/decisions/nope", ``, 404, "no ledger event"},
		{"key-a", "GET", "/v1/decisions/nope?wait=forever", ``, 400, "wait"},
		{"key-a", "POST", "/v1/decisions/nope/outcome", `{"status":"meh"}`, 400, "status must be"},
	}
	for _, c := range cases {
		st, body := do(t, srv, c.key, c.method, c.path, c.body)
		e, _ := body["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if st != c.status || !strings.Contains(msg, c.msg) {
			t.Errorf("%s %s %s = %d %v; want %d with %q", c.method, c.path, c.body, st, body, c.status, c.msg)
		}
	}
}
