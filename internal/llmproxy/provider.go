package llmproxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Wire formats a provider speaks.
const (
	TypeOpenAI    = "openai"
	TypeAnthropic = "anthropic"
)

// ProviderOptions describe one upstream provider (cmd/vigil copies them from the
// configuration).
type ProviderOptions struct {
	Name string
	// Type is TypeOpenAI or TypeAnthropic.
	Type string
	// BaseURL is where the API lives; the route's path after "/v1" is appended.
	BaseURL string
	// APIKey is the provider's credential; empty sends none.
	APIKey string
	// APIKeyHeader, if set, carries APIKey as it is instead of the type's default
	// ("Authorization: Bearer" for openai, "x-api-key" for anthropic).
	APIKeyHeader string
	// Models are the model name patterns this provider serves ('*', '?').
	Models  []string
	Headers map[string]string
	// ConnectTimeout, FirstByteTimeout and TotalTimeout bound each call (defaults 5s,
	// 2m, 10m).
	ConnectTimeout, FirstByteTimeout, TotalTimeout time.Duration
	// Retries is how many more times a call is tried when no connection could be made.
	Retries int
	// MaxIdleConns is how many idle connections are kept for reuse (default 64).
	MaxIdleConns int
	// Transport replaces the tuned transport (tests).
	Transport http.RoundTripper
}

// Provider is an upstream model API with its own tuned connection pool.
type Provider struct {
	ProviderOptions
	base      *url.URL
	transport http.RoundTripper
}

// NewProvider validates o and builds the provider's transport: one pooled
// http.Transport per provider, so connections are reused across agents and calls.
func NewProvider(o ProviderOptions) (*Provider, error) {
	if o.Name == "" {
		return nil, errors.New("provider name is required")
	}
	if o.Type != TypeOpenAI && o.Type != TypeAnthropic {
		return nil, fmt.Errorf("provider %s: unknown type %q", o.Name, o.Type)
	}
	u, err := url.Parse(strings.TrimSuffix(o.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("provider %s: base URL %q is not an http(s) URL", o.Name, o.BaseURL)
	}
	if len(o.Models) == 0 {
		return nil, fmt.Errorf("provider %s: no model patterns", o.Name)
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.FirstByteTimeout <= 0 {
		o.FirstByteTimeout = 2 * time.Minute
	}
	if o.TotalTimeout <= 0 {
		o.TotalTimeout = 10 * time.Minute
	}
	if o.MaxIdleConns <= 0 {
		o.MaxIdleConns = 64
	}
	p := &Provider{ProviderOptions: o, base: u}
	p.transport = o.Transport
	if p.transport == nil {
		dialer := &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
		p.transport = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          o.MaxIdleConns,
			MaxIdleConnsPerHost:   o.MaxIdleConns,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   o.ConnectTimeout,
			ResponseHeaderTimeout: o.FirstByteTimeout,
			ExpectContinueTimeout: time.Second,
		}
	}
	p.transport = &retryTransport{base: p.transport, retries: o.Retries}
	return p, nil
}

// URL is the upstream URL for a route path such as "/v1/chat/completions"; the base
// URL's query (Azure's api-version) is kept.
func (p *Provider) URL(path string) *url.URL {
	u := *p.base
	u.Path = p.base.Path + strings.TrimPrefix(path, "/v1")
	u.RawPath = ""
	return &u
}

// authorize sets the provider's credential on h.
func (p *Provider) authorize(h http.Header) {
	switch {
	case p.APIKey == "":
	case p.APIKeyHeader != "":
		h.Set(p.APIKeyHeader, p.APIKey)
	case p.Type == TypeAnthropic:
		h.Set("X-Api-Key", p.APIKey)
	default:
		h.Set("Authorization", "Bearer "+p.APIKey)
	}
	if p.Type == TypeAnthropic && h.Get("Anthropic-Version") == "" {
		h.Set("Anthropic-Version", "2023-06-01")
	}
	for k, v := range p.Headers {
		h.Set(k, v)
	}
}

// Serves reports whether one of the provider's patterns matches model.
func (p *Provider) Serves(model string) bool {
	for _, pat := range p.Models {
		if Match(pat, model) {
			return true
		}
	}
	return false
}

// CloseIdleConnections closes the provider's idle connections.
func (p *Provider) CloseIdleConnections() {
	type closer interface{ CloseIdleConnections() }
	if c, ok := p.transport.(closer); ok {
		c.CloseIdleConnections()
	}
}

// Match reports whether name matches pattern, where '*' matches any run of
// characters (including '/' and none) and '?' exactly one.
func Match(pattern, name string) bool {
	// Iterative wildcard matching with backtracking to the last star: linear in
	// practice and never recursive, so hostile patterns can't blow the stack.
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == name[n]):
			p++
			n++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// isPattern reports whether s has wildcards.
func isPattern(s string) bool { return strings.ContainsAny(s, "*?") }

// Router picks the provider for a model: the first whose patterns match.
type Router []*Provider

// Route returns the provider for model, or nil.
func (r Router) Route(model string) *Provider {
	for _, p := range r {
		if p.Serves(model) {
			return p
		}
	}
	return nil
}

// retryTransport retries a request whose connection could not be established, up to
// retries more times with a short backoff. Those failures happen before any byte of
// the request is written, so the provider cannot have acted on it; every other error
// (a reset mid-request, a timeout waiting for the answer) is returned at once because
// the provider may have started work that costs money or has effects.
type retryTransport struct {
	base    http.RoundTripper
	retries int
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := t.base.RoundTrip(req)
		if err == nil || attempt >= t.retries || !isDialError(err) || req.GetBody == nil && req.Body != nil && req.Body != http.NoBody {
			return resp, err
		}
		if req.GetBody != nil {
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		backoff := time.Duration(50<<attempt) * time.Millisecond
		select {
		case <-req.Context().Done():
			return nil, err
		case <-time.After(backoff):
		}
	}
}

func (t *retryTransport) CloseIdleConnections() {
	type closer interface{ CloseIdleConnections() }
	if c, ok := t.base.(closer); ok {
		c.CloseIdleConnections()
	}
}

// isDialError reports whether err means no connection was made (refused,
// unreachable, DNS failure, connect timeout).
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "proxyconnect") {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}
