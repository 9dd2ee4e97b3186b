package llmproxy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/enforce/enforcetest"
	"github.com/vigil-gateway/vigil/internal/fakeprovider"
	"github.com/vigil-gateway/vigil/internal/llmproxy"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

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
	masker   *enforcetest.Masker
	policy   *enforcetest.Policy
	holder   *enforcetest.Holder
	ledger   *enforcetest.Ledger
	usage    *enforcetest.Usage
	proxy    *llmproxy.Proxy
	provider []*llmproxy.Provider
}

func newRig(t testing.TB, opts ...func(*llmproxy.ProviderOptions)) *rig {
	t.Helper()
	r := &rig{fake: fakeprovider.New(fakeprovider.Options{APIKey: providerKey}), masker: enforcetest.NewMasker(), policy: &enforcetest.Policy{},
		holder: &enforcetest.Holder{}, ledger: &enforcetest.Ledger{}, usage: &enforcetest.Usage{}}
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
