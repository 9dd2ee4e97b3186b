package api

import (
	"net/http"
	"strconv"

	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

func (s *Server) registerApprovals(mux *web.Mux) {
	// Any role may reach the decision routes: the request's own ApprovalSpec says
	// which roles may decide it, and the service enforces that (403 otherwise).
	mux.HandleFunc("GET /api/approvals", s.role(s.handleApprovalList, readers...))
	mux.HandleFunc("GET /api/approvals/{id}", s.role(s.handleApprovalGet, readers...))
	mux.HandleFunc("POST /api/approvals/{id}/approve", s.role(s.handleDecide(oversight.Approve), readers...))
	mux.HandleFunc("POST /api/approvals/{id}/deny", s.role(s.handleDecide(oversight.Deny), readers...))
	audit := []vigil.Role{vigil.RoleAdmin, vigil.RoleReviewer, vigil.RoleAuditor}
	mux.HandleFunc("GET /api/approvals/{id}/deliveries", s.role(s.handleDeliveries, audit...))
	mux.HandleFunc("GET /api/webhooks/deliveries", s.role(s.handleDeliveries, audit...))
	s.registerHalt(mux)
}

func (s *Server) handleApprovalList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := oversight.Filter{Status: oversight.Status(q.Get("status"))}
	if a := q.Get("agent"); a != "" {
		agent, err := s.Inventory.LookupAgent(r.Context(), a)
		if err != nil {
			return err
		}
		f.AgentID = agent.ID
	}
	if x := q.Get("system"); x != "" {
		sys, err := s.Inventory.LookupSystem(r.Context(), x)
		if err != nil {
			return err
		}
		f.SystemID = sys.ID
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return vigil.Errorf(vigil.EINVALID, "limit %q is not a positive whole number", l)
		}
		f.Limit = n
	}
	list, err := s.Approvals.List(r.Context(), f)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"approvals": list})
}

func (s *Server) handleApprovalGet(w http.ResponseWriter, r *http.Request) error {
	req, err := s.Approvals.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, req)
}

func (s *Server) handleDecide(v oversight.Verdict) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Reason string `json:"reason"`
			// Args, on approve, replace the call's arguments (approve with edits).
			Args map[string]any `json:"args"`
		}
		if err := decodeOptional(r, &in); err != nil {
			return err
		}
		req, err := s.Approvals.Decide(r.Context(), ActorFrom(r.Context()), r.PathValue("id"), oversight.Decision{Verdict: v, Reason: in.Reason, Args: in.Args})
		if err != nil {
			return err
		}
		return web.WriteJSON(w, http.StatusOK, req)
	}
}

func (s *Server) handleDeliveries(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if id != "" {
		if _, err := s.Approvals.Get(r.Context(), id); err != nil {
			return err
		}
	}
	list := []oversight.Delivery{}
	if s.Deliveries != nil {
		var err error
		if list, err = s.Deliveries.ListDeliveries(r.Context(), id, 200); err != nil {
			return err
		}
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"deliveries": list})
}
