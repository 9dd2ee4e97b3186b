package api

import (
	"context"
	"net/http"

	"github.com/vigil-gateway/vigil/internal/mcpproxy"
	"github.com/vigil-gateway/vigil/internal/mcpproxy/pins"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// MCPTools is the MCP gateway's tool pins as the API serves them (*pins.Service).
type MCPTools interface {
	List(ctx context.Context, server string, changedOnly bool) ([]pins.Pin, error)
	Get(ctx context.Context, server, tool string) (pins.Pin, error)
	Approve(ctx context.Context, by vigil.Actor, server, tool, hash string) (pins.Pin, error)
}

func (s *Server) registerMCP(mux *web.Mux) {
	mux.HandleFunc("GET /api/mcp/tools", s.role(s.handleMCPTools, readers...))
	mux.HandleFunc("GET /api/mcp/tools/{server}/{tool}", s.role(s.handleMCPTool, readers...))
	mux.HandleFunc("POST /api/mcp/tools/{server}/{tool}/approve", s.role(s.handleMCPApprove, vigil.RoleAdmin))
	if s.MCPSessions != nil {
		mux.HandleFunc("GET /api/mcp/sessions", s.role(s.handleMCPSessions, readers...))
	}
}

// pinView is a pin as the API shows it: its status, and the definitions to compare.
type pinView struct {
	pins.Pin
	// Status is "approved", or "changed" while a new version awaits approval.
	Status string `json:"status"`
}

func viewPin(p pins.Pin) pinView {
	v := pinView{Pin: p, Status: "approved"}
	if p.Pending != nil {
		v.Status = "changed"
	}
	return v
}

// handleMCPTools lists pinned tools: ?server= narrows to one server, ?status=changed
// to the tools whose new version awaits approval.
func (s *Server) handleMCPTools(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	changed := false
	switch st := q.Get("status"); st {
	case "", "all":
	case "changed":
		changed = true
	default:
		return vigil.Errorf(vigil.EINVALID, "status must be changed or all, not %q", st)
	}
	ps, err := s.MCPTools.List(r.Context(), q.Get("server"), changed)
	if err != nil {
		return err
	}
	out := make([]pinView, len(ps))
	for i, p := range ps {
		out[i] = viewPin(p)
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"tools": out})
}

func (s *Server) handleMCPTool(w http.ResponseWriter, r *http.Request) error {
	p, err := s.MCPTools.Get(r.Context(), r.PathValue("server"), r.PathValue("tool"))
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, viewPin(p))
}

// approveInput names the pending version the admin reviewed.
type approveInput struct {
	Hash string `json:"hash"`
}

func (s *Server) handleMCPApprove(w http.ResponseWriter, r *http.Request) error {
	var in approveInput
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	p, err := s.MCPTools.Approve(r.Context(), ActorFrom(r.Context()), r.PathValue("server"), r.PathValue("tool"), in.Hash)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, viewPin(p))
}

func (s *Server) handleMCPSessions(w http.ResponseWriter, r *http.Request) error {
	out := s.MCPSessions()
	if out == nil {
		out = []mcpproxy.SessionInfo{}
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"sessions": out})
}
