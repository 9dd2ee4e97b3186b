// Package llmproxy is the OpenAI- and Anthropic-compatible ingress: agents change one
// base URL and authenticate with their Vigil key; Vigil keeps the provider credentials.
// Errors on these routes use each API's own error shape so the official SDKs raise
// their usual exceptions with Vigil's explanation in the message.
//
// Every model call runs the same visible pipeline (Proxy.handle): authenticate the
// agent, parse the request (model, stream, parameters; unknown fields pass through),
// route it to a provider by model pattern, run enforce.Pipeline.Begin (mask, decide,
// hold, record), forward the masked payload through one httputil.ReverseProxy with
// the provider's credentials, and on the way back restore tokens, judge the tool calls
// the model proposes (removing denied ones and explaining why), take usage and cost,
// and record the response. Streamed answers (SSE) are filtered event by event and
// flushed as they come; only text that may be a split token and tool-call events
// (until the call is complete and judged) are held back.
package llmproxy

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"slices"
	"sync"
	"time"

	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// AgentAuthenticator resolves an agent API key to its actor, refusing suspended agents.
type AgentAuthenticator interface {
	AuthenticateAgent(ctx context.Context, secret string) (vigil.Actor, error)
}

// ModelPolicy says whether policy lets an agent call a model. It MUST NOT count the
// question as a call (listing models is not using them). Used to filter
// GET /v1/models.
type ModelPolicy func(ctx context.Context, a vigil.Actor, m vigil.Model) (bool, error)

// Proxy serves the model routes. Its fields are set once, before Register.
type Proxy struct {
	Log  *slog.Logger
	Auth AgentAuthenticator
	// Pipeline governs every call. Required for the model routes.
	Pipeline *enforce.Pipeline
	// Router picks the provider by model name.
	Router Router
	// Prices give the cost of a call.
	Prices Prices
	// Metrics, if set, count tokens, cost and provider answers.
	Metrics *Metrics
	// AllowModel, if set, filters GET /v1/models by policy.
	AllowModel ModelPolicy
	// Models, if set, replaces the model list built from the providers.
	Models func(ctx context.Context, a vigil.Actor) ([]string, error)
	// ModelListTTL is how long a provider's own model list (used to expand wildcard
	// patterns) is cached. Default 10m.
	ModelListTTL time.Duration
	// Track, if set, registers each call's work so the kill switch can end it: a
	// suspension cancels the returned context, which stops the upstream call and
	// closes the agent's stream (oversight.Sessions.Track).
	Track func(ctx context.Context, agent vigil.Actor) (context.Context, func())
	// KeepAlive is how often a stream that waits on a tool call's verdict gets an SSE
	// comment so clients and proxies keep it open. Default DefaultKeepAlive.
	KeepAlive time.Duration

	reverse *httputil.ReverseProxy
	catalog catalog
}

func (p *Proxy) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// Register adds the OpenAI- and Anthropic-compatible routes to mux.
func (p *Proxy) Register(mux *web.Mux) {
	p.reverse = p.newReverseProxy()
	openai := web.Errors{Log: p.Log, Render: RenderOpenAIError}
	anthropic := web.Errors{Log: p.Log, Render: RenderAnthropicError}
	mux.Handle("GET /v1/models", openai.Handle(p.agent(p.handleModels)))
	mux.Handle("POST /v1/chat/completions", openai.Handle(p.agent(p.handle(chatDialect{}))))
	mux.Handle("POST /v1/responses", openai.Handle(p.agent(p.handle(responsesDialect{}))))
	mux.Handle("POST /v1/embeddings", openai.Handle(p.agent(p.handle(embeddingsDialect{}))))
	mux.Handle("POST /v1/messages", anthropic.Handle(p.agent(p.handle(messagesDialect{}))))
}

type ctxKey int

const actorKey ctxKey = 0

// ActorFrom returns the authenticated agent of a request.
func ActorFrom(ctx context.Context) vigil.Actor {
	a, _ := ctx.Value(actorKey).(vigil.Actor)
	return a
}

// agent authenticates the agent key (Bearer, or x-api-key for Anthropic clients).
func (p *Proxy) agent(h web.HandlerFunc) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		secret := auth.FromHeader(r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"))
		if secret == "" {
			return vigil.Errorf(vigil.EUNAUTHORIZED, "missing API key: send your Vigil agent key as Authorization: Bearer vk_… (or x-api-key)")
		}
		a, err := p.Auth.AuthenticateAgent(r.Context(), secret)
		if err != nil {
			return err
		}
		ctx := r.Context()
		if p.Track != nil {
			var done func()
			ctx, done = p.Track(ctx, a)
			defer done()
			// A suspension that landed between the first check and Track would have
			// found nothing to cancel: check once more now that the work is registered.
			// This holds with auth's cache too, which every suspension drops before it
			// closes open work (ADR 0010), and costs a map lookup.
			if a, err = p.Auth.AuthenticateAgent(ctx, secret); err != nil {
				return err
			}
		}
		return h(w, r.WithContext(context.WithValue(ctx, actorKey, a)))
	}
}

// modelList is OpenAI's GET /v1/models response.
type modelList struct {
	Object string      `json:"object"`
	Data   []modelItem `json:"data"`
}

type modelItem struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (p *Proxy) handleModels(w http.ResponseWriter, r *http.Request) error {
	out := modelList{Object: "list", Data: []modelItem{}}
	actor := ActorFrom(r.Context())
	if p.Models != nil {
		names, err := p.Models(r.Context(), actor)
		if err != nil {
			return err
		}
		for _, n := range names {
			out.Data = append(out.Data, modelItem{ID: n, Object: "model", OwnedBy: "vigil"})
		}
		return web.WriteJSON(w, http.StatusOK, out)
	}
	for _, m := range p.models(r.Context()) {
		if p.AllowModel != nil {
			ok, err := p.AllowModel(r.Context(), actor, m)
			if err != nil {
				p.log().WarnContext(r.Context(), "couldn't evaluate policy for a model; leaving it out of the list", "model", m.Name, "err", err)
				continue
			}
			if !ok {
				continue
			}
		}
		out.Data = append(out.Data, modelItem{ID: m.Name, Object: "model", OwnedBy: m.Provider})
	}
	return web.WriteJSON(w, http.StatusOK, out)
}

// models lists the models the providers serve: their patterns without wildcards,
// and the models in each provider's own list that match a wildcard pattern. A model
// is listed under the provider that would route it.
func (p *Proxy) models(ctx context.Context) []vigil.Model {
	var out []vigil.Model
	seen := map[string]bool{}
	add := func(name string) {
		if seen[name] {
			return
		}
		if prov := p.Router.Route(name); prov != nil {
			seen[name] = true
			out = append(out, vigil.Model{Provider: prov.Name, Name: name})
		}
	}
	for _, prov := range p.Router {
		wild := false
		for _, pat := range prov.Models {
			if isPattern(pat) {
				wild = true
			} else {
				add(pat)
			}
		}
		if wild {
			for _, name := range p.catalog.list(ctx, prov, p.ttl(), p.log()) {
				if prov.Serves(name) {
					add(name)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b vigil.Model) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

func (p *Proxy) ttl() time.Duration {
	if p.ModelListTTL > 0 {
		return p.ModelListTTL
	}
	return 10 * time.Minute
}

// catalog caches providers' own model lists.
type catalog struct {
	mu      sync.Mutex
	entries map[string]catalogEntry
}

type catalogEntry struct {
	names   []string
	fetched time.Time
}

func (c *catalog) list(ctx context.Context, prov *Provider, ttl time.Duration, log *slog.Logger) []string {
	c.mu.Lock()
	e, ok := c.entries[prov.Name]
	c.mu.Unlock()
	if ok && time.Since(e.fetched) < ttl {
		return e.names
	}
	names, err := fetchModels(ctx, prov)
	if err != nil {
		log.WarnContext(ctx, "couldn't list a provider's models", "provider", prov.Name, "err", err)
		if ok {
			return e.names
		}
		// Remember the failure briefly so a down provider doesn't slow every listing.
		names = nil
	}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]catalogEntry{}
	}
	fetched := time.Now()
	if err != nil {
		fetched = fetched.Add(-ttl + 30*time.Second)
	}
	c.entries[prov.Name] = catalogEntry{names: names, fetched: fetched}
	c.mu.Unlock()
	return names
}

// fetchModels asks a provider for its models (GET {base}/models, both APIs).
func fetchModels(ctx context.Context, prov *Provider) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, prov.URL("/v1/models").String(), nil)
	if err != nil {
		return nil, err
	}
	prov.authorize(req.Header)
	resp, err := prov.transport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &upstreamError{status: resp.StatusCode, msg: "model list answered " + resp.Status}
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&list); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(list.Data))
	for _, d := range list.Data {
		if d.ID != "" {
			names = append(names, d.ID)
		}
	}
	return names, nil
}
