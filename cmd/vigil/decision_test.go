package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/policy"
)

// startWithExamplePolicy runs a gateway on a copy of examples/policy.yaml and
// registers the support agent it is written for.
func startWithExamplePolicy(t *testing.T) (m *Main, policyPath, agentKey string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	policyPath = filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyPath, src, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Policy = policyPath
	cfg.PolicyOptions.WatchInterval = 100 * time.Millisecond
	m, _ = runMain(t, cfg)
	st, body := call(t, "POST", m.URL()+"/api/agents", adminToken, map[string]any{"name": "support-bot", "system": "support-assistant"})
	if st != 201 {
		t.Fatalf("create agent = %d %v", st, body)
	}
	return m, policyPath, body["api_key"].(string)
}

// TestDecisionAPIWithExamplePolicy is issue 4's end-to-end: the decision API answers
// per the example policy, each decision is in the ledger with the policy version and
// rule ids, and a broken policy never replaces the live one.
func TestDecisionAPIWithExamplePolicy(t *testing.T) {
	m, policyPath, key := startWithExamplePolicy(t)
	base := m.URL()
	src, _ := os.ReadFile(policyPath)
	version := policy.Version(src)

	st, ans := call(t, "POST", base+"/v1/decisions", key, map[string]any{
		"action": "tool_call", "tool": map[string]any{"server": "payments", "name": "refund"}, "args": map[string]any{"amount": 40}})
	if st != 200 || ans["decision"] != "allow" || ans["policy"] != version {
		t.Fatalf("small refund = %d %v; want allow under policy %s", st, ans, version)
	}
	if rules := ans["rules"].([]any); len(rules) != 1 || rules[0] != "small-refunds" {
		t.Errorf("small refund rules = %v", rules)
	}
	allowID := ans["id"].(string)

	st, ans = call(t, "POST", base+"/v1/decisions", key, map[string]any{
		"action": "tool_call", "tool": map[string]any{"server": "payments", "name": "refund"}, "args": map[string]any{"amount": 9000}})
	if st != 200 || ans["decision"] != "deny" || !strings.Contains(ans["message"].(string), "finance workflow") {
		t.Fatalf("huge refund = %d %v", st, ans)
	}
	denyID := ans["id"].(string)

	// A refund without an amount fails closed for the rules that need it.
	st, ans = call(t, "POST", base+"/v1/decisions", key, map[string]any{
		"action": "tool_call", "tool": map[string]any{"server": "payments", "name": "refund"}, "args": map[string]any{"note": "x"}})
	if st != 200 || ans["decision"] != "deny" {
		t.Errorf("refund without amount = %d %v; want deny (fail closed)", st, ans)
	}

	// A mid-sized refund needs a human: pending, then approved through the admin API.
	st, ans = call(t, "POST", base+"/v1/decisions", key, map[string]any{
		"action": "tool_call", "tool": map[string]any{"server": "payments", "name": "refund"}, "args": map[string]any{"amount": 500}})
	if st != 202 || ans["decision"] != "pending" || ans["approval"] == nil {
		t.Fatalf("mid refund = %d %v; want pending with an approval id", st, ans)
	}
	pendID, approvalID := ans["id"].(string), ans["approval"].(string)
	if st, ans = call(t, "GET", base+"/v1/decisions/"+pendID, key, nil); ans["decision"] != "pending" {
		t.Errorf("GET before the decision = %d %v", st, ans)
	}
	waited := make(chan map[string]any, 1)
	go func() {
		_, got := call(t, "GET", base+"/v1/decisions/"+pendID+"?wait=30s", key, nil)
		waited <- got
	}()
	if st, body := call(t, "POST", base+"/api/approvals/"+approvalID+"/approve", adminToken, map[string]any{"reason": "customer verified"}); st != 200 {
		t.Fatalf("approve = %d %v", st, body)
	}
	if got := <-waited; got["decision"] != "allow" || !strings.Contains(got["message"].(string), "token:bootstrap") {
		t.Errorf("waiting GET after approval = %v; want allow naming the approver", got)
	}

	st, ans = call(t, "POST", base+"/v1/decisions/"+allowID+"/outcome", key, map[string]any{"status": "ok", "result": map[string]any{"refund_id": "r-1", "customer": "jane@example.org"}})
	if st != 201 {
		t.Fatalf("outcome = %d %v", st, ans)
	}

	// Each decision is in the ledger with the policy version and rule ids; the outcome
	// body was masked before it was recorded.
	if err := m.ledger.PublishCheckpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	envs := ledgerEnvelopes(t, m)
	for id, wantEffect := range map[string]string{allowID: "allow", denyID: "deny"} {
		e, ok := envs[id]
		if !ok {
			t.Fatalf("decision %s is not in the ledger", id)
		}
		if e.Decision != wantEffect || e.Policy != version || len(e.Rules) == 0 {
			t.Errorf("ledger entry %s = %+v; want %s with policy %s and rule ids", id, e, wantEffect, version)
		}
	}
	activations := 0
	for _, e := range envs {
		if e.Type == "policy.activated" && e.Policy == version {
			activations++
		}
	}
	if activations == 0 {
		t.Error("the policy's activation at start is not in the ledger")
	}

	// A broken policy posted to the API is refused with its problems; the old one stays.
	req, _ := http.NewRequest("POST", base+"/api/policy", strings.NewReader("version: 1\ndefault: allow\nrules:\n  - id: bad\n    when: nosuch.var == 1\n    effect: deny\n"))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !bytes.Contains(body, []byte("nosuch")) || !bytes.Contains(body, []byte(`"problems"`)) {
		t.Errorf("broken policy POST = %d %s", resp.StatusCode, body)
	}
	if st, got := call(t, "GET", base+"/api/policy", adminToken, nil); st != 200 || got["version"] != version {
		t.Errorf("live policy after a broken POST = %v, want %s", got["version"], version)
	}

	// The same through the file watcher: a broken edit is ignored, a good one activates.
	if err := os.WriteFile(policyPath, []byte("version: 1\ndefault: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // several watch intervals
	if _, got := call(t, "GET", base+"/api/policy", adminToken, nil); got["version"] != version {
		t.Fatalf("a broken policy file replaced the live policy: %v", got["version"])
	}
	good := []byte("version: 1\ndefault: deny\nrules: []\n")
	if err := os.WriteFile(policyPath, good, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the changed policy file to be activated", func() bool {
		_, got := call(t, "GET", base+"/api/policy", adminToken, nil)
		return got["version"] == policy.Version(good)
	})
	st, ans = call(t, "POST", base+"/v1/decisions", key, map[string]any{
		"action": "tool_call", "tool": map[string]any{"server": "payments", "name": "refund"}, "args": map[string]any{"amount": 40}})
	if ans["decision"] != "deny" || ans["policy"] != policy.Version(good) {
		t.Errorf("after reload = %d %v; want deny under the new version", st, ans)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s. It waits for
// something that must happen, never asserts how fast.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ledgerEnvelopes reads every ledger entry of a running gateway, by event id.
func ledgerEnvelopes(t *testing.T, m *Main) map[string]ledger.Envelope {
	t.Helper()
	ctx := context.Background()
	size, _, err := m.store.Ledger().TreeState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := m.store.Ledger().Entries(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ledger.Envelope{}
	for _, e := range entries {
		env, err := ledger.ParseEnvelope(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		out[env.ID] = env
	}
	return out
}

// TestApprovalNeedsCurrentTraining: a rule that requires training keeps reviewers
// without a current competence record out of its queue (ISO 42001 clause 7, EU AI Act
// Art. 26(2)); a current record lets them in.
func TestApprovalNeedsCurrentTraining(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(path, []byte(`version: 1
default: allow
rules:
  - id: wires-need-trained-eyes
    match: {tools: ["bank/wire"]}
    effect: require_approval
    approval: {roles: [reviewer], approvers: 1, timeout: 10m, require_training: payments-oversight}
`), 0o644)
	cfg := config.Default()
	cfg.Policy = path
	m, _ := runMain(t, cfg)
	base := m.URL()
	_, agent := call(t, "POST", base+"/api/agents", adminToken, map[string]any{"name": "treasury-bot", "system": "treasury"})
	key := agent["api_key"].(string)
	_, ans := call(t, "POST", base+"/v1/decisions", key, map[string]any{"action": "tool_call", "tool": map[string]any{"server": "bank", "name": "wire"}, "args": map[string]any{"amount": 10}})
	approval, _ := ans["approval"].(string)
	if ans["decision"] != "pending" || approval == "" {
		t.Fatalf("wire = %v; want pending", ans)
	}
	st, body := call(t, "POST", base+"/api/approvals/"+approval+"/approve", adminToken, map[string]any{"reason": "ok"})
	if st != 403 || !strings.Contains(errMessage(body), "payments-oversight") {
		t.Fatalf("approval without training = %d %v; want 403 naming the competence", st, body)
	}
	rec := map[string]any{"id": "C-9", "person": "token:bootstrap", "competence": "payments-oversight",
		"evidence": "course PAY-1", "obtained": time.Now().AddDate(0, -1, 0).Format("2006-01-02"), "expires": time.Now().AddDate(1, 0, 0).Format("2006-01-02")}
	if st, body := call(t, "PUT", base+"/api/records/competence/C-9", adminToken, rec); st != 201 && st != 200 {
		t.Fatalf("put competence record = %d %v", st, body)
	}
	if st, body := call(t, "POST", base+"/api/approvals/"+approval+"/approve", adminToken, map[string]any{"reason": "ok"}); st != 200 {
		t.Fatalf("approval with a current training record = %d %v", st, body)
	}
}

// TestHealthChecksSeeLivePolicyAndMasking: the management system's checks read the
// live policy and PII settings from the running gateway (they fail closed when they
// can't), so a default deployment passes them.
func TestHealthChecksSeeLivePolicyAndMasking(t *testing.T) {
	m, _ := runMain(t, nil)
	req, _ := http.NewRequest("POST", m.URL()+"/api/aims/health/run", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, check := range []string{"policy_live", "pii_masking_every_route"} {
		i := bytes.Index(raw, []byte(`"check":"`+check+`"`))
		if i < 0 {
			t.Fatalf("health results lack %s: %s", check, raw)
		}
		end := bytes.IndexByte(raw[i:], '}')
		if !bytes.Contains(raw[i:i+end], []byte(`"pass":true`)) {
			t.Errorf("%s does not pass on a default deployment: %s", check, raw[i:i+end])
		}
	}
}
