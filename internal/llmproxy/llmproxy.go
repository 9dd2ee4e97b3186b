// Package llmproxy is the OpenAI- and Anthropic-compatible ingress: agents change one
// base URL and authenticate with their Vigil key; Vigil keeps the provider credentials.
// Errors on these routes use each API's own error shape so the official SDKs raise
// their usual exceptions with Vigil's explanation in the message.
package llmproxy

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// AgentAuthenticator resolves an agent API key to its actor, refusing suspended agents.
type AgentAuthenticator interface {
	AuthenticateAgent(ctx context.Context, secret string) (vigil.Actor, error)
}

// Proxy serves the model routes.
type Proxy struct {
	Log  *slog.Logger
	Auth AgentAuthenticator
	// Models lists the models an agent may use (from the providers' model patterns and
	// policy). Nil means none are configured.
	Models func(ctx context.Context, a vigil.Actor) ([]string, error)
}

// Register adds the OpenAI- and Anthropic-compatible routes to mux.
func (p *Proxy) Register(mux *web.Mux) {
	openai := web.Errors{Log: p.Log, Render: RenderOpenAIError}
	mux.Handle("GET /v1/models", openai.Handle(p.agent(p.handleModels)))
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
		return h(w, r.WithContext(context.WithValue(r.Context(), actorKey, a)))
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
	if p.Models != nil {
		names, err := p.Models(r.Context(), ActorFrom(r.Context()))
		if err != nil {
			return err
		}
		for _, n := range names {
			out.Data = append(out.Data, modelItem{ID: n, Object: "model", OwnedBy: "vigil"})
		}
	}
	return web.WriteJSON(w, http.StatusOK, out)
}
