package api

import (
	"net/http"
	"time"

	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

func (s *Server) registerRegistry(mux *web.Mux) {
	admin := []vigil.Role{vigil.RoleAdmin}
	switches := []vigil.Role{vigil.RoleAdmin, vigil.RoleReviewer}

	mux.HandleFunc("GET /api/whoami", s.role(s.handleWhoami, readers...))

	mux.HandleFunc("POST /api/systems", s.role(s.handleSystemCreate, admin...))
	mux.HandleFunc("GET /api/systems", s.role(s.handleSystemList, readers...))
	mux.HandleFunc("GET /api/systems/{id}", s.role(s.handleSystemGet, readers...))
	mux.HandleFunc("PATCH /api/systems/{id}", s.role(s.handleSystemUpdate, admin...))
	mux.HandleFunc("POST /api/systems/{id}/suspend", s.role(s.handleSystemStatus(inventory.Suspended), switches...))
	mux.HandleFunc("POST /api/systems/{id}/resume", s.role(s.handleSystemStatus(inventory.Active), switches...))

	mux.HandleFunc("POST /api/agents", s.role(s.handleAgentCreate, admin...))
	mux.HandleFunc("GET /api/agents", s.role(s.handleAgentList, readers...))
	mux.HandleFunc("GET /api/agents/{id}", s.role(s.handleAgentGet, readers...))
	mux.HandleFunc("POST /api/agents/{id}/suspend", s.role(s.handleAgentStatus(inventory.Suspended), switches...))
	mux.HandleFunc("POST /api/agents/{id}/resume", s.role(s.handleAgentStatus(inventory.Active), switches...))
	mux.HandleFunc("GET /api/agents/{id}/keys", s.role(s.handleKeyList, admin...))
	mux.HandleFunc("POST /api/agents/{id}/keys", s.role(s.handleKeyCreate, admin...))
	mux.HandleFunc("POST /api/agents/{id}/rotate", s.role(s.handleKeyRotate, admin...))
	mux.HandleFunc("DELETE /api/agents/{id}/keys/{key}", s.role(s.handleKeyRevoke, admin...))

	mux.HandleFunc("POST /api/tokens", s.role(s.handleTokenCreate, admin...))
	mux.HandleFunc("GET /api/tokens", s.role(s.handleTokenList, admin...))
	mux.HandleFunc("DELETE /api/tokens/{id}", s.role(s.handleTokenRevoke, admin...))
}

func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request) error {
	return web.WriteJSON(w, http.StatusOK, ActorFrom(r.Context()))
}

// systemView is a system as the API shows it.
type systemView struct {
	inventory.System
	Complete bool `json:"complete"`
}

func viewSystem(s inventory.System) systemView { return systemView{s, s.Complete()} }

func (s *Server) handleSystemCreate(w http.ResponseWriter, r *http.Request) error {
	var in inventory.SystemInput
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	sys, err := s.Inventory.CreateSystem(r.Context(), ActorFrom(r.Context()), in)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusCreated, viewSystem(sys))
}

func (s *Server) handleSystemList(w http.ResponseWriter, r *http.Request) error {
	list, err := s.Inventory.Store.ListSystems(r.Context())
	if err != nil {
		return err
	}
	out := make([]systemView, len(list))
	for i, x := range list {
		out[i] = viewSystem(x)
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"systems": out})
}

func (s *Server) handleSystemGet(w http.ResponseWriter, r *http.Request) error {
	sys, err := s.Inventory.LookupSystem(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	agents, err := s.Inventory.Store.ListAgents(r.Context(), sys.ID)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, struct {
		systemView
		Agents []inventory.Agent `json:"agents"`
	}{viewSystem(sys), agents})
}

func (s *Server) handleSystemUpdate(w http.ResponseWriter, r *http.Request) error {
	var in inventory.SystemInput
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	sys, err := s.Inventory.LookupSystem(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	sys, err = s.Inventory.UpdateSystem(r.Context(), ActorFrom(r.Context()), sys.ID, in)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, viewSystem(sys))
}

type reasonInput struct {
	Reason string `json:"reason"`
}

// decodeOptional decodes a JSON body if there is one; an empty body is fine.
func decodeOptional(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return web.DecodeJSON(r, v)
}

func (s *Server) handleSystemStatus(st inventory.Status) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in reasonInput
		if err := decodeOptional(r, &in); err != nil {
			return err
		}
		sys, err := s.Inventory.SetSystemStatus(r.Context(), ActorFrom(r.Context()), r.PathValue("id"), st, in.Reason)
		if err != nil {
			return err
		}
		return web.WriteJSON(w, http.StatusOK, viewSystem(sys))
	}
}

// agentView is an agent as the API shows it, with its system's name.
type agentView struct {
	inventory.Agent
	System string `json:"system"`
	// APIKey is set only in the response that created it.
	APIKey string `json:"api_key,omitempty"`
	KeyID  string `json:"key_id,omitempty"`
}

func (s *Server) handleAgentCreate(w http.ResponseWriter, r *http.Request) error {
	var in inventory.AgentInput
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	by := ActorFrom(r.Context())
	a, sys, _, err := s.Inventory.CreateAgent(r.Context(), by, in)
	if err != nil {
		return err
	}
	secret, k, err := s.Keys.IssueAgentKey(r.Context(), by, a.ID)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusCreated, agentView{Agent: a, System: sys.Name, APIKey: secret, KeyID: k.ID})
}

func (s *Server) handleAgentList(w http.ResponseWriter, r *http.Request) error {
	systemID := ""
	if q := r.URL.Query().Get("system"); q != "" {
		sys, err := s.Inventory.LookupSystem(r.Context(), q)
		if err != nil {
			return err
		}
		systemID = sys.ID
	}
	list, err := s.Inventory.Store.ListAgents(r.Context(), systemID)
	if err != nil {
		return err
	}
	systems, err := s.Inventory.Store.ListSystems(r.Context())
	if err != nil {
		return err
	}
	names := map[string]string{}
	for _, x := range systems {
		names[x.ID] = x.Name
	}
	out := make([]agentView, len(list))
	for i, a := range list {
		out[i] = agentView{Agent: a, System: names[a.SystemID]}
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"agents": out})
}

func (s *Server) agentView(r *http.Request, a inventory.Agent) (agentView, error) {
	sys, err := s.Inventory.Store.System(r.Context(), a.SystemID)
	if err != nil {
		return agentView{}, err
	}
	return agentView{Agent: a, System: sys.Name}, nil
}

func (s *Server) handleAgentGet(w http.ResponseWriter, r *http.Request) error {
	a, err := s.Inventory.LookupAgent(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	v, err := s.agentView(r, a)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, v)
}

func (s *Server) handleAgentStatus(st inventory.Status) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in reasonInput
		if err := decodeOptional(r, &in); err != nil {
			return err
		}
		a, err := s.Inventory.SetAgentStatus(r.Context(), ActorFrom(r.Context()), r.PathValue("id"), st, in.Reason)
		if err != nil {
			return err
		}
		v, err := s.agentView(r, a)
		if err != nil {
			return err
		}
		return web.WriteJSON(w, http.StatusOK, v)
	}
}

func (s *Server) handleKeyList(w http.ResponseWriter, r *http.Request) error {
	a, err := s.Inventory.LookupAgent(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	keys, err := s.Keys.Store.ListAgentKeys(r.Context(), a.ID)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

// keyView is a newly issued key: the secret is shown this once.
type keyView struct {
	auth.AgentKey
	APIKey string `json:"api_key"`
}

func (s *Server) handleKeyCreate(w http.ResponseWriter, r *http.Request) error {
	a, err := s.Inventory.LookupAgent(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	secret, k, err := s.Keys.IssueAgentKey(r.Context(), ActorFrom(r.Context()), a.ID)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusCreated, keyView{k, secret})
}

func (s *Server) handleKeyRotate(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		// Grace is how long the old keys keep working, e.g. "1h". Default: none.
		Grace string `json:"grace"`
	}
	if err := decodeOptional(r, &in); err != nil {
		return err
	}
	var grace time.Duration
	if in.Grace != "" {
		var err error
		if grace, err = time.ParseDuration(in.Grace); err != nil {
			return vigil.Errorf(vigil.EINVALID, "grace %q is not a duration such as 1h", in.Grace)
		}
	}
	a, err := s.Inventory.LookupAgent(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	secret, k, err := s.Keys.RotateAgentKey(r.Context(), ActorFrom(r.Context()), a.ID, grace)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusCreated, keyView{k, secret})
}

func (s *Server) handleKeyRevoke(w http.ResponseWriter, r *http.Request) error {
	a, err := s.Inventory.LookupAgent(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.Keys.RevokeAgentKey(r.Context(), ActorFrom(r.Context()), a.ID, r.PathValue("key")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleTokenCreate(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Name string     `json:"name"`
		Role vigil.Role `json:"role"`
		// TTL is how long the token lives, e.g. "720h"; empty means until revoked.
		TTL string `json:"ttl"`
	}
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	var ttl time.Duration
	if in.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(in.TTL); err != nil {
			return vigil.Errorf(vigil.EINVALID, "ttl %q is not a duration such as 720h", in.TTL)
		}
	}
	secret, t, err := s.Keys.CreateToken(r.Context(), ActorFrom(r.Context()), in.Name, in.Role, ttl)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusCreated, struct {
		auth.Token
		Secret string `json:"token"`
	}{t, secret})
}

func (s *Server) handleTokenList(w http.ResponseWriter, r *http.Request) error {
	list, err := s.Keys.Store.ListTokens(r.Context())
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"tokens": list})
}

func (s *Server) handleTokenRevoke(w http.ResponseWriter, r *http.Request) error {
	if err := s.Keys.RevokeToken(r.Context(), ActorFrom(r.Context()), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
