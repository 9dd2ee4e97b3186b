package llmproxy_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/fakeprovider"
	"github.com/vigil-gateway/vigil/internal/llmproxy"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// The fakes stand in for the PII engine, the policy engine, oversight and the ledger
// until the real ones are wired; cmd/vigil's end-to-end tests use the real graph.

// fakeMasker tokenizes email addresses as <EMAIL_n> per call and restores them.
type fakeMasker struct {
	mu     sync.Mutex
	vault  map[string]string // token -> value
	values map[string]string // value -> token
}

var emailRe = regexp.MustCompile(`[a-z0-9.]+@[a-z0-9]+\.example`)
var tokenRe = regexp.MustCompile(`<EMAIL_[0-9]+>`)

func newMasker() *fakeMasker {
	return &fakeMasker{vault: map[string]string{}, values: map[string]string{}}
}

func (m *fakeMasker) MaskJSON(_ context.Context, _ enforce.Scope, doc []byte) ([]byte, vigil.PIISummary, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	out := emailRe.ReplaceAllFunc(doc, func(v []byte) []byte {
		n++
		t, ok := m.values[string(v)]
		if !ok {
			t = "<EMAIL_" + itoa(len(m.vault)+1) + ">"
			m.vault[t], m.values[string(v)] = string(v), t
		}
		return []byte(t)
	})
	sum := vigil.PIISummary{Counts: map[string]int{}}
	if n > 0 {
		sum.Counts["EMAIL_ADDRESS"] = n
	}
	return out, sum, nil
}

func (m *fakeMasker) restore(doc []byte) ([]byte, vigil.PIISummary) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	out := tokenRe.ReplaceAllFunc(doc, func(t []byte) []byte {
		if v, ok := m.vault[string(t)]; ok {
			n++
			return []byte(v)
		}
		return t
	})
	sum := vigil.PIISummary{Counts: map[string]int{}}
	if n > 0 {
		sum.Counts["EMAIL_ADDRESS"] = n
	}
	return out, sum
}

func (m *fakeMasker) InboundJSON(_ context.Context, _ enforce.Scope, doc []byte) ([]byte, vigil.PIISummary, error) {
	out, sum := m.restore(doc)
	return out, sum, nil
}

func (m *fakeMasker) InboundText(ctx context.Context, s enforce.Scope, t []byte) ([]byte, vigil.PIISummary, error) {
	return m.InboundJSON(ctx, s, t)
}

func (m *fakeMasker) InboundStream(context.Context, enforce.Scope) enforce.StreamFilter {
	return &fakeFilter{m: m, sum: vigil.PIISummary{Counts: map[string]int{}}}
}

// fakeFilter holds back text from an unclosed '<' (a token may be split there).
type fakeFilter struct {
	m    *fakeMasker
	held []byte
	sum  vigil.PIISummary
}

func (f *fakeFilter) Write(chunk []byte) []byte {
	buf := append(f.held, chunk...)
	cut := len(buf)
	if i := bytes.LastIndexByte(buf, '<'); i >= 0 && !bytes.Contains(buf[i:], []byte(">")) && len(buf)-i < 32 {
		cut = i
	}
	f.held = append([]byte(nil), buf[cut:]...)
	out, sum := f.m.restore(buf[:cut])
	f.sum.Counts["EMAIL_ADDRESS"] += sum.Counts["EMAIL_ADDRESS"]
	return out
}

func (f *fakeFilter) Flush() []byte {
	out, sum := f.m.restore(f.held)
	f.sum.Counts["EMAIL_ADDRESS"] += sum.Counts["EMAIL_ADDRESS"]
	f.held = nil
	return out
}

func (f *fakeFilter) Summary() vigil.PIISummary { return f.sum }

// fakePolicy denies models and tools named deny*, holds tools named hold*.
type fakePolicy struct {
	mu   sync.Mutex
	seen []vigil.Action
}

func (p *fakePolicy) Decide(_ context.Context, a vigil.Action) (vigil.Decision, error) {
	p.mu.Lock()
	p.seen = append(p.seen, a)
	p.mu.Unlock()
	name := ""
	if a.Tool != nil {
		name = a.Tool.Name
	} else if a.Model != nil {
		name = a.Model.Name
	}
	switch {
	case strings.HasPrefix(name, "deny"):
		return vigil.Decision{Effect: vigil.Deny, Rules: []string{"no-" + name}, Message: name + " is not allowed here", Policy: "p1"}, nil
	case strings.HasPrefix(name, "hold"):
		return vigil.Decision{Effect: vigil.RequireApproval, Rules: []string{"human"}, Policy: "p1"}, nil
	}
	return vigil.Decision{Effect: vigil.Allow, Rules: []string{"ok"}, Policy: "p1"}, nil
}

func (p *fakePolicy) actions() []vigil.Action {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]vigil.Action(nil), p.seen...)
}

// fakeHolder approves tools named hold-ok*, and denies the rest with a reason.
type fakeHolder struct {
	mu  sync.Mutex
	got []enforce.HoldRequest
}

func (h *fakeHolder) Hold(_ context.Context, r enforce.HoldRequest) (enforce.HoldResult, error) {
	h.mu.Lock()
	h.got = append(h.got, r)
	h.mu.Unlock()
	if r.Action.Tool != nil && strings.HasPrefix(r.Action.Tool.Name, "hold_ok") {
		return enforce.HoldResult{ApprovalID: "ap-1", Status: "approved", Reviewers: []string{"user:rita"}}, nil
	}
	return enforce.HoldResult{ApprovalID: "ap-2", Status: "denied", Reviewers: []string{"user:rita"}, Reason: "not today"}, nil
}

type fakeLedger struct {
	mu     sync.Mutex
	events []vigil.Event
}

func (l *fakeLedger) Record(_ context.Context, e vigil.Event) (vigil.Receipt, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	return vigil.Receipt{ID: e.ID, Index: int64(len(l.events) - 1)}, nil
}

func (l *fakeLedger) all() []vigil.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]vigil.Event(nil), l.events...)
}

// ofType returns the events of a type.
func (l *fakeLedger) ofType(typ string) []vigil.Event {
	var out []vigil.Event
	for _, e := range l.all() {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

type fakeUsage struct {
	mu  sync.Mutex
	got []enforce.Usage
}

func (u *fakeUsage) AddUsage(_ context.Context, _ vigil.Action, us enforce.Usage) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.got = append(u.got, us)
	return nil
}

type fakeAuth struct{}

const agentKey = "vk_test_agent_key_0123456789"

func (fakeAuth) AuthenticateAgent(_ context.Context, secret string) (vigil.Actor, error) {
	switch secret {
	case agentKey:
		return vigil.Actor{Kind: vigil.ActorAgent, ID: "ag-1", Name: "bot", SystemID: "sys-1", SystemName: "support"}, nil
	case "vk_suspended_agent_key_0123":
		return vigil.Actor{}, vigil.Errorf(vigil.ESUSPENDED, "agent \"bot\" is suspended: runaway")
	}
	return vigil.Actor{}, vigil.Errorf(vigil.EUNAUTHORIZED, "invalid or missing credentials")
}

const providerKey = "sk-provider-secret"

// rig is a proxy in front of the fake provider, with fakes for everything else.
type rig struct {
	url      string
	fake     *fakeprovider.Server
	fakeURL  string
	masker   *fakeMasker
	policy   *fakePolicy
	holder   *fakeHolder
	ledger   *fakeLedger
	usage    *fakeUsage
	proxy    *llmproxy.Proxy
	provider []*llmproxy.Provider
}

func newRig(t testing.TB, opts ...func(*llmproxy.ProviderOptions)) *rig {
	t.Helper()
	r := &rig{fake: fakeprovider.New(fakeprovider.Options{APIKey: providerKey}), masker: newMasker(), policy: &fakePolicy{},
		holder: &fakeHolder{}, ledger: &fakeLedger{}, usage: &fakeUsage{}}
	fs := httptest.NewServer(r.fake)
	t.Cleanup(fs.Close)
	r.fakeURL = fs.URL
	var router llmproxy.Router
	for _, o := range []llmproxy.ProviderOptions{
		{Name: "fake-openai", Type: llmproxy.TypeOpenAI, BaseURL: fs.URL + "/v1", APIKey: providerKey, Models: []string{"fake-gpt*", "deny-*", "fake-embed"}},
		{Name: "fake-anthropic", Type: llmproxy.TypeAnthropic, BaseURL: fs.URL + "/v1", APIKey: providerKey, Models: []string{"fake-claude*"}},
	} {
		for _, f := range opts {
			f(&o)
		}
		p, err := llmproxy.NewProvider(o)
		if err != nil {
			t.Fatal(err)
		}
		router = append(router, p)
	}
	r.provider = router
	pl := &enforce.Pipeline{PII: r.masker, Policy: r.policy, Oversight: r.holder, Ledger: r.ledger, Usage: r.usage}
	r.proxy = &llmproxy.Proxy{Auth: fakeAuth{}, Pipeline: pl, Router: router,
		Prices: llmproxy.Prices{{Model: "fake-gpt*", Input: 2.5, Output: 10}, {Model: "fake-claude*", Input: 3, Output: 15}}}
	mux := web.NewMux(web.Errors{})
	r.proxy.Register(mux)
	srv := httptest.NewServer(web.Middleware{Log: discard(), MaxBodyBytes: 1 << 20}.Wrap(mux))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// post sends body to path with the agent key and returns the response.
func (r *rig) post(t testing.TB, path, body string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", r.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+agentKey)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// received is the bodies the fake provider got, as text.
func (r *rig) received() []string {
	var out []string
	for _, q := range r.fake.Requests() {
		out = append(out, string(q.Body))
	}
	return out
}
