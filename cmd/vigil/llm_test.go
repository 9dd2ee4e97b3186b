package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/fakeprovider"
	"github.com/vigil-gateway/vigil/internal/ledger"
	"golang.org/x/mod/sumdb/tlog"
)

const fakeKey = "sk-fake-provider-key"

// llmPolicy is the policy the LLM end-to-end tests run under: models and tools named
// deny* are refused, tools named hold* need a human, everything else is allowed.
const llmPolicy = `version: 1
default: allow
rules:
  - id: no-deny-models
    when: action.kind == "model_call" && (model.name.startsWith("deny") || model.name == "fake-gpt-mini")
    effect: deny
    message: this model is not allowed here
  - id: no-deny-tools
    when: action.kind == "tool_call" && tool.name.startsWith("deny")
    effect: deny
    message: this tool is not allowed here
  - id: hold-tools
    when: action.kind == "tool_call" && tool.name.startsWith("hold")
    effect: require_approval
    approval: {approvers: 1, timeout: 1m}
`

// llmRig is a running gateway, as serve wires it (policy engine, PII engine,
// oversight, ledger), with providers pointing at a fake provider, an agent, and a
// reviewer who approves held tool calls named hold_ok* and denies the others.
type llmRig struct {
	m        *Main
	fake     *fakeprovider.Server
	fakeURL  string
	agentKey string
	url      string
}

// llmConfig is a configuration whose providers point at the fake provider.
func llmConfig(fakeURL, policyFile string) *config.Config {
	cfg := config.Default()
	cfg.Policy = policyFile
	cfg.Providers = []config.ProviderConfig{
		{Name: "fake-openai", Type: config.ProviderOpenAI, BaseURL: fakeURL + "/v1", APIKeyEnv: "FAKE_PROVIDER_KEY", Models: []string{"fake-gpt*", "fake-embed", "deny-gpt*"}},
		{Name: "fake-anthropic", Type: config.ProviderAnthropic, BaseURL: fakeURL + "/v1", APIKeyEnv: "FAKE_PROVIDER_KEY", Models: []string{"fake-claude*", "deny-claude*"}},
	}
	cfg.Prices = []config.Price{{Model: "fake-gpt*", Input: 2.5, Output: 10}, {Model: "fake-claude*", Input: 3, Output: 15}}
	cfg.ApplyDefaults()
	return cfg
}

func newLLMRig(t *testing.T) *llmRig { return newLLMRigB(t) }

// llmUpstream starts a fake provider and writes llmPolicy to a file in dir.
func llmUpstream(t testing.TB, dir string) (fake *fakeprovider.Server, url, policyFile string) {
	t.Helper()
	fake = fakeprovider.New(fakeprovider.Options{APIKey: fakeKey})
	fs := httptest.NewServer(fake)
	t.Cleanup(fs.Close)
	policyFile = filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(llmPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	return fake, fs.URL, policyFile
}

func newLLMRigB(t testing.TB) *llmRig {
	t.Helper()
	dir := t.TempDir()
	fake, fakeURL, policyFile := llmUpstream(t, dir)
	env := newTestEnv(map[string]string{"VIGIL_ADMIN_TOKEN": adminToken, "FAKE_PROVIDER_KEY": fakeKey})
	m := NewMain(&env.Env)
	m.Config = llmConfig(fakeURL, policyFile)
	m.Config.Listen = "127.0.0.1:0"
	m.Config.DataDir = filepath.Join(dir, "data")
	m.Config.Ledger.CheckpointInterval = 100 * time.Millisecond
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, env.stderr.String())
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() {
		stop()
		<-done
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	go func() { defer close(done); review(ctx, m.URL()) }()
	key, err := benchAgent(context.Background(), m.URL(), adminToken)
	if err != nil {
		t.Fatal(err)
	}
	return &llmRig{m: m, fake: fake, fakeURL: fakeURL, agentKey: key, url: m.URL()}
}

// review is the tests' reviewer: through the admin API, it approves pending tool
// calls named hold_ok* and denies the others with the reason "not today".
func review(ctx context.Context, base string) {
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/approvals?status=pending", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		var list struct {
			Approvals []struct {
				ID   string `json:"id"`
				Tool *struct {
					Name string `json:"name"`
				} `json:"tool"`
			} `json:"approvals"`
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&list)
			resp.Body.Close()
		}
		for _, a := range list.Approvals {
			verdict := "deny"
			if a.Tool != nil && strings.HasPrefix(a.Tool.Name, "hold_ok") {
				verdict = "approve"
			}
			req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/approvals/"+a.ID+"/"+verdict, strings.NewReader(`{"reason":"not today"}`))
			req.Header.Set("Authorization", "Bearer "+adminToken)
			req.Header.Set("Content-Type", "application/json")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// received returns the bodies the fake provider got, joined.
func (r *llmRig) received() string {
	var b strings.Builder
	for _, q := range r.fake.Requests() {
		b.Write(q.Body)
		b.WriteString("\n")
	}
	return b.String()
}

// ledgerEntries reads every ledger entry and checks the tree: the root recomputed
// from the entries' leaf hashes (RFC 6962, independently of the stored hashes) must be
// the root of the latest signed checkpoint.
func ledgerEntries(t *testing.T, m *Main) []ledger.Envelope {
	t.Helper()
	ctx := context.Background()
	// Publish a checkpoint covering everything appended so far. The background
	// publisher may win the compare-and-swap with a smaller tree, so try until the head
	// covers the tree as it was when we started.
	size, _, err := m.store.Ledger().TreeState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var head ledger.ParsedCheckpoint
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := m.ledger.PublishCheckpoint(ctx); err != nil {
			t.Fatal(err)
		}
		if head, err = m.ledger.Head(ctx); err != nil {
			t.Fatal(err)
		}
		if head.Size >= size {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covers the %d entries", size)
		}
		time.Sleep(20 * time.Millisecond)
	}
	entries, err := m.store.Ledger().Entries(ctx, 0, head.Size)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(entries)) != head.Size {
		t.Fatalf("%d entries under a checkpoint of size %d", len(entries), head.Size)
	}
	leaves := make([]tlog.Hash, len(entries))
	out := make([]ledger.Envelope, len(entries))
	for i, e := range entries {
		leaves[i] = tlog.RecordHash(e.Data)
		if out[i], err = ledger.ParseEnvelope(e.Data); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	if root := merkleRoot(leaves); root != head.Root {
		t.Fatalf("root recomputed from %d entries %x differs from the signed checkpoint's %x", len(leaves), root, head.Root)
	}
	return out
}

// merkleRoot is the RFC 6962 tree hash of leaves, computed naively.
func merkleRoot(leaves []tlog.Hash) tlog.Hash {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return tlog.NodeHash(merkleRoot(leaves[:k]), merkleRoot(leaves[k:]))
}

func ofType(envs []ledger.Envelope, typ string) []ledger.Envelope {
	var out []ledger.Envelope
	for _, e := range envs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// post sends a JSON body with the agent key and decodes the JSON answer.
func (r *llmRig) post(t *testing.T, path, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", r.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.agentKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("answer is not JSON: %q", raw)
	}
	return resp.StatusCode, resp.Header, out
}

// TestLLMGatewayThroughMain: the gateway as serve wires it today masks personal data,
// forwards a chat completion to the configured provider with the provider's key,
// restores the answer, records both sides in a ledger that verifies, and counts tokens
// and cost in /metrics.
func TestLLMGatewayThroughMain(t *testing.T) {
	r := newLLMRig(t)
	st, _, body := r.post(t, "/v1/chat/completions", `{"model":"fake-gpt","messages":[{"role":"user","content":"hello there, I am jane.doe@example.com"}]}`)
	if st != 200 || str(body, "choices", 0, "message", "content") != "You said: hello there, I am jane.doe@example.com" {
		t.Fatalf("chat = %d %v", st, body)
	}
	reqs := r.fake.Requests()
	if len(reqs) != 1 || reqs[0].Header["Authorization"] != "Bearer "+fakeKey {
		t.Fatalf("provider got %+v; want one request with the provider key", reqs)
	}
	if got := string(reqs[0].Body); strings.Contains(got, "jane.doe@") || !strings.Contains(got, "<EMAIL_ADDRESS_") {
		t.Errorf("provider received %s; want the address tokenized (pii.mode defaults to tokenize)", got)
	}
	st, _, body = r.post(t, "/v1/messages", `{"model":"fake-claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
	if st != 200 || str(body, "content", 0, "text") != "You said: hi" {
		t.Fatalf("messages = %d %v", st, body)
	}
	envs := ledgerEntries(t, r.m)
	reqEv, respEv := ofType(envs, "model.request"), ofType(envs, "model.response")
	if len(reqEv) != 2 || len(respEv) != 2 {
		t.Fatalf("ledger has %d requests and %d responses, want 2 and 2", len(reqEv), len(respEv))
	}
	for _, e := range append(reqEv, respEv...) {
		if e.Body == nil || e.Body.Len == 0 || e.Agent == "" {
			t.Errorf("entry %s %s: want a committed body and the agent", e.Type, e.ID)
		}
	}
	if respEv[0].Attrs["request"] != reqEv[0].ID || respEv[0].Counts["cost.micros"] == 0 {
		t.Errorf("response entry %+v; want it linked to its request, with cost", respEv[0])
	}
	resp, err := getWithToken(r.m.URL()+"/metrics", adminToken)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`vigil_llm_tokens_total{agent="bench-agent",direction="input",model="fake-gpt",system="bench"}`, `vigil_llm_cost_micros_total{agent="bench-agent",model="fake-claude",system="bench"}`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// GET /v1/models lists what the providers serve and policy allows this agent:
	// fake-gpt-mini is served but denied.
	st, models := call(t, "GET", r.m.URL()+"/v1/models", r.agentKey, nil)
	var ids []string
	for _, d := range models["data"].([]any) {
		ids = append(ids, d.(map[string]any)["id"].(string))
	}
	if st != 200 || strings.Join(ids, " ") != "fake-claude fake-embed fake-gpt" {
		t.Errorf("models = %d %v; want fake-claude, fake-embed and fake-gpt", st, ids)
	}
}

// TestPersonalDataIsMaskedAndRestored is the acceptance check: a request with
// an email address and a card number reaches the provider masked, and the client
// reads the restored answer; a denied model is refused in OpenAI's error shape.
func TestPersonalDataIsMaskedAndRestored(t *testing.T) {
	r := newLLMRig(t)
	const email, card = "jane.doe@example.com", "4111 1111 1111 1111"
	st, _, body := r.post(t, "/v1/chat/completions", `{"model":"fake-gpt","messages":[{"role":"user","content":"Refund card `+card+` and mail `+email+`"}]}`)
	if got, want := str(body, "choices", 0, "message", "content"), "You said: Refund card "+card+" and mail "+email; st != 200 || got != want {
		t.Fatalf("chat = %d %q, want %q", st, got, want)
	}
	got := r.received()
	if strings.Contains(got, email) || strings.Contains(got, card) || !strings.Contains(got, "<EMAIL_ADDRESS_") || !strings.Contains(got, "<CREDIT_CARD_") {
		t.Errorf("the provider received %s; want both values masked", got)
	}
	st, _, body = r.post(t, "/v1/chat/completions", `{"model":"deny-gpt","messages":[{"role":"user","content":"hi"}]}`)
	e, _ := body["error"].(map[string]any)
	if st != 403 || e["type"] != "permission_error" || e["code"] != "policy_denied" || !strings.Contains(str(e, "message"), "this model is not allowed here (rule no-deny-models)") {
		t.Errorf("denied model = %d %v; want 403 in OpenAI's shape", st, body)
	}
	envs := ledgerEntries(t, r.m)
	reqs := ofType(envs, "model.request")
	if len(reqs) != 2 || reqs[0].Counts["pii.EMAIL_ADDRESS"] != 1 || reqs[0].Counts["pii.CREDIT_CARD"] != 1 || reqs[1].Decision != "deny" {
		t.Errorf("request entries %+v", reqs)
	}
}

func str(m any, keys ...any) string {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			o, _ := m.(map[string]any)
			m = o[k]
		case int:
			a, _ := m.([]any)
			if k >= len(a) {
				return ""
			}
			m = a[k]
		}
	}
	s, _ := m.(string)
	return s
}

// TestKillSwitchEndsOpenModelCall: suspending an agent ends its model calls that are
// already in flight, not only its next ones.
func TestKillSwitchEndsOpenModelCall(t *testing.T) {
	r := newLLMRig(t)
	type result struct {
		status int
		body   string
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("POST", r.url+"/v1/chat/completions", strings.NewReader(
			`{"model":"fake-gpt-4o","stream":true,"messages":[{"role":"user","content":"slow 30s please"}]}`))
		req.Header.Set("Authorization", "Bearer "+r.agentKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{status: -1, body: err.Error()}
			return
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, string(raw)}
	}()
	waitFor(t, "the model call to be in flight", func() bool { return r.m.oversight.sessions.Len() > 0 })
	if st, body := call(t, "POST", r.url+"/api/agents/bench-agent/suspend", adminToken, map[string]string{"reason": "runaway spend"}); st != 200 {
		t.Fatalf("suspend = %d %v", st, body)
	}
	select {
	case got := <-done:
		if got.status == 200 && !strings.Contains(got.body, "runaway spend") {
			t.Errorf("the in-flight call finished normally after the suspension: %d %s", got.status, got.body)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the in-flight model call was not ended by the kill switch")
	}
}
