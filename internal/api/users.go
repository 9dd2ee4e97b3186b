package api

import (
	"net/http"

	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// registerUsers adds user management for admins. Users are never deleted (the
// ledger names them); they are disabled, which ends their sessions at once.
func (s *Server) registerUsers(mux *web.Mux) {
	admin := []vigil.Role{vigil.RoleAdmin}
	mux.HandleFunc("POST /api/users", s.role(s.handleUserCreate, admin...))
	mux.HandleFunc("GET /api/users", s.role(s.handleUserList, admin...))
	mux.HandleFunc("GET /api/users/{id}", s.role(s.handleUserGet, admin...))
	mux.HandleFunc("PATCH /api/users/{id}", s.role(s.handleUserUpdate, admin...))
	mux.HandleFunc("POST /api/users/{id}/disable", s.role(s.handleUserDisabled(true), admin...))
	mux.HandleFunc("POST /api/users/{id}/enable", s.role(s.handleUserDisabled(false), admin...))
}

func (s *Server) handleUserCreate(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Name     string       `json:"name"`
		Roles    []vigil.Role `json:"roles"`
		Password string       `json:"password"`
	}
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	u, err := s.Users.CreateUser(r.Context(), ActorFrom(r.Context()), in.Name, in.Roles, in.Password)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusCreated, u)
}

func (s *Server) handleUserList(w http.ResponseWriter, r *http.Request) error {
	list, err := s.Users.Store.ListUsers(r.Context())
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"users": list})
}

func (s *Server) handleUserGet(w http.ResponseWriter, r *http.Request) error {
	u, err := s.Users.LookupUser(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, u)
}

func (s *Server) handleUserUpdate(w http.ResponseWriter, r *http.Request) error {
	var in auth.UserChange
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	u, err := s.Users.UpdateUser(r.Context(), ActorFrom(r.Context()), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, u)
}

func (s *Server) handleUserDisabled(disabled bool) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		u, err := s.Users.UpdateUser(r.Context(), ActorFrom(r.Context()), r.PathValue("id"), auth.UserChange{Disabled: &disabled})
		if err != nil {
			return err
		}
		return web.WriteJSON(w, http.StatusOK, u)
	}
}
