package api

import (
	"net/http"

	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// registerHalt adds the global kill switch: POST /api/halt stops every agent at
// once (calls refused, approvals cancelled, streams closed, on every replica);
// DELETE /api/halt lifts it.
func (s *Server) registerHalt(mux *web.Mux) {
	switches := []vigil.Role{vigil.RoleAdmin, vigil.RoleReviewer}
	mux.HandleFunc("GET /api/halt", s.role(s.handleHaltGet, readers...))
	mux.HandleFunc("POST /api/halt", s.role(s.handleHaltSet(true), switches...))
	mux.HandleFunc("DELETE /api/halt", s.role(s.handleHaltSet(false), switches...))
}

func (s *Server) handleHaltGet(w http.ResponseWriter, r *http.Request) error {
	h, err := s.Approvals.HaltState(r.Context())
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, h)
}

func (s *Server) handleHaltSet(on bool) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in reasonInput
		if err := decodeOptional(r, &in); err != nil {
			return err
		}
		h, err := s.Approvals.SetHalt(r.Context(), ActorFrom(r.Context()), on, in.Reason)
		if err != nil && h.By == "" {
			return err
		}
		if err != nil {
			// The switch is set; only the ledger record failed. Say so, loudly.
			s.Log.Error("kill switch set but not fully recorded", "on", on, "err", err)
		}
		return web.WriteJSON(w, http.StatusOK, h)
	}
}
