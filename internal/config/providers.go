package config

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Provider types.
const (
	ProviderOpenAI    = "openai"
	ProviderAnthropic = "anthropic"
)

// Provider defaults.
const (
	DefaultConnectTimeout   = 5 * time.Second
	DefaultFirstByteTimeout = 2 * time.Minute
	DefaultTotalTimeout     = 10 * time.Minute
	DefaultProviderRetries  = 2
	DefaultMaxIdleConns     = 64
)

// ProviderConfig is one model provider the LLM gateway forwards to. Agents never see
// its credentials: Vigil authenticates agents with their own keys and calls the
// provider with the key named by APIKeyEnv.
type ProviderConfig struct {
	// Name identifies the provider in routing, the ledger ("provider" attribute),
	// policy (model.provider) and metrics. Required, unique, lowercase letters, digits,
	// '-' and '_'.
	Name string `yaml:"name"`
	// Type is the wire format the provider speaks: openai (OpenAI and every
	// OpenAI-compatible server: vLLM, Ollama, Azure OpenAI, LiteLLM…) or anthropic.
	// OpenAI routes (/v1/chat/completions, /v1/responses, /v1/embeddings) go to openai
	// providers, /v1/messages to anthropic ones. Required.
	Type string `yaml:"type"`
	// BaseURL is where the API lives; a route's path after "/v1" is appended to it,
	// e.g. https://api.openai.com/v1 + /chat/completions. Default
	// https://api.openai.com/v1 for openai and https://api.anthropic.com/v1 for
	// anthropic. http:// is allowed (local servers, the fake provider). A query
	// (Azure's ?api-version=…) is kept on every request.
	BaseURL string `yaml:"base_url"`
	// APIKeyEnv names the environment variable that holds the provider's API key. It
	// must be set and non-empty when Vigil starts. Empty means the provider takes no key
	// (a local server). The key is sent as "Authorization: Bearer" to openai providers
	// and as "x-api-key" to anthropic ones, unless APIKeyHeader says otherwise.
	APIKeyEnv string `yaml:"api_key_env"`
	// APIKeyHeader, if set, is the header that carries the key as it is, instead of
	// the type's default: "api-key" for Azure OpenAI, for example.
	APIKeyHeader string `yaml:"api_key_header"`
	// Models are the request model names this provider serves, as patterns where '*'
	// matches any run of characters and '?' one character ("gpt-*", "claude-*", "*").
	// Providers are tried in order and the first whose pattern matches takes the call,
	// so a catch-all "*" belongs last. Names without wildcards are also what
	// GET /v1/models lists; wildcard patterns are expanded from the provider's own
	// model list. Required (at least one pattern).
	Models []string `yaml:"models"`
	// Headers are extra headers sent with every request to this provider (for example
	// "OpenAI-Organization", "anthropic-beta", or "api-key" for Azure). They must not
	// carry secrets that belong in APIKeyEnv: they are in the file in the clear.
	Headers map[string]string `yaml:"headers"`
	// Timeouts bound every call to this provider; nothing waits forever.
	Timeouts ProviderTimeouts `yaml:"timeouts"`
	// Retries is how many more times a request is tried when the connection to the
	// provider could not be made at all (nothing was sent, so the provider cannot have
	// acted). Requests are never retried once a byte may have reached the provider.
	// Default 2; 0 turns retries off.
	Retries *int `yaml:"retries"`
	// MaxIdleConns is how many idle connections to this provider are kept open for
	// reuse. Default 64.
	MaxIdleConns int `yaml:"max_idle_conns"`
}

// ProviderTimeouts bound the phases of a provider call.
type ProviderTimeouts struct {
	// Connect bounds establishing the TCP (and TLS) connection. Default 5s.
	Connect time.Duration `yaml:"connect"`
	// FirstByte bounds the wait for the response headers once the request was sent
	// (a slow model that has not started answering). Default 2m.
	FirstByte time.Duration `yaml:"first_byte"`
	// Total bounds the whole call including a streamed answer. Default 10m.
	Total time.Duration `yaml:"total"`
}

// Price is what a model costs, for usage accounting, budgets and metrics.
type Price struct {
	// Model is a pattern over the request model name ('*' and '?' wildcards); the first
	// matching entry applies. Required.
	Model string `yaml:"model"`
	// Input is the price of one million input (prompt) tokens, in the deployment's
	// currency. Cost is kept in micro-units of the currency, so 2.5 here and 1,000
	// input tokens cost 2,500 micro-units.
	Input float64 `yaml:"input"`
	// Output is the price of one million output (completion) tokens.
	Output float64 `yaml:"output"`
}

func (c *Config) applyProviderDefaults() {
	for i := range c.Providers {
		p := &c.Providers[i]
		if p.BaseURL == "" {
			switch p.Type {
			case ProviderOpenAI:
				p.BaseURL = "https://api.openai.com/v1"
			case ProviderAnthropic:
				p.BaseURL = "https://api.anthropic.com/v1"
			}
		}
		if p.Timeouts.Connect == 0 {
			p.Timeouts.Connect = DefaultConnectTimeout
		}
		if p.Timeouts.FirstByte == 0 {
			p.Timeouts.FirstByte = DefaultFirstByteTimeout
		}
		if p.Timeouts.Total == 0 {
			p.Timeouts.Total = DefaultTotalTimeout
		}
		if p.Retries == nil {
			n := DefaultProviderRetries
			p.Retries = &n
		}
		if p.MaxIdleConns == 0 {
			p.MaxIdleConns = DefaultMaxIdleConns
		}
	}
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validateProviders checks the providers and prices sections. Environment variables
// are checked here too, so a missing key stops the start instead of failing calls.
func (c *Config) validateProviders(errs *FieldErrors) {
	seen := map[string]int{}
	for i, p := range c.Providers {
		at := fmt.Sprintf("providers[%d]", i)
		switch {
		case p.Name == "":
			errs.add(at+".name", "is required")
		case !validName(p.Name):
			errs.add(at+".name", "%q must be lowercase letters, digits, '-' or '_'", p.Name)
		default:
			if j, dup := seen[p.Name]; dup {
				errs.add(at+".name", "%q is already the name of providers[%d]", p.Name, j)
			}
			seen[p.Name] = i
		}
		switch p.Type {
		case ProviderOpenAI, ProviderAnthropic:
		case "":
			errs.add(at+".type", "is required: openai or anthropic")
		default:
			errs.add(at+".type", "%q is not one of openai, anthropic", p.Type)
		}
		if u, err := url.Parse(p.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
			errs.add(at+".base_url", "%q is not an http:// or https:// URL", p.BaseURL)
		}
		if p.APIKeyEnv != "" && os.Getenv(p.APIKeyEnv) == "" {
			errs.add(at+".api_key_env", "environment variable %s is empty or unset", p.APIKeyEnv)
		}
		if len(p.Models) == 0 {
			errs.add(at+".models", "needs at least one model pattern, e.g. [\"gpt-*\"] or [\"*\"]")
		}
		for j, m := range p.Models {
			if strings.TrimSpace(m) == "" || strings.ContainsAny(m, " \t\n") {
				errs.add(fmt.Sprintf("%s.models[%d]", at, j), "%q is not a model pattern", m)
			}
		}
		if h := p.APIKeyHeader; h != "" && (strings.ContainsAny(h, " :\r\n") || p.APIKeyEnv == "") {
			errs.add(at+".api_key_header", "must be a header name, and needs api_key_env")
		}
		for k, v := range p.Headers {
			switch http.CanonicalHeaderKey(k) {
			case "Authorization", "X-Api-Key", "Host", "Content-Length", "Transfer-Encoding", "Connection":
				errs.add(at+".headers."+k, "is set by Vigil and cannot be configured (put the key in api_key_env)")
			}
			if strings.ContainsAny(v, "\r\n") {
				errs.add(at+".headers."+k, "must be one line")
			}
		}
		t := p.Timeouts
		if t.Connect < 0 || t.FirstByte < 0 || t.Total < 0 {
			errs.add(at+".timeouts", "must not be negative")
		}
		if t.FirstByte > t.Total {
			errs.add(at+".timeouts.first_byte", "must not be longer than timeouts.total (%s)", t.Total)
		}
		if p.Retries != nil && (*p.Retries < 0 || *p.Retries > 5) {
			errs.add(at+".retries", "must be between 0 and 5")
		}
		if p.MaxIdleConns < 0 {
			errs.add(at+".max_idle_conns", "must not be negative")
		}
	}
	for i, p := range c.Prices {
		at := fmt.Sprintf("prices[%d]", i)
		if strings.TrimSpace(p.Model) == "" {
			errs.add(at+".model", "is required (a model pattern such as \"gpt-4o*\")")
		}
		if p.Input < 0 || math.IsNaN(p.Input) || math.IsInf(p.Input, 0) {
			errs.add(at+".input", "must be a price of at least 0")
		}
		if p.Output < 0 || math.IsNaN(p.Output) || math.IsInf(p.Output, 0) {
			errs.add(at+".output", "must be a price of at least 0")
		}
	}
}
