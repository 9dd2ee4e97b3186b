// Package api is the admin JSON API (/api/…) and the ledger's public read API
// (/ledger/…): thin handlers that authenticate, check roles, decode, call a domain
// service and encode. Every handler returns its error; web.Errors renders it.
package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/vigil-gateway/vigil/internal/aims"
	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/mcpproxy"
	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// Authenticator resolves admin credentials (role tokens; console sessions are the
// console's business) to an actor.
type Authenticator interface {
	AuthenticateToken(ctx context.Context, secret string) (vigil.Actor, error)
}

// Server holds the services the API exposes. Fields are set once before Register and
// not changed after.
type Server struct {
	Log       *slog.Logger
	Auth      Authenticator
	Keys      *auth.Service
	Inventory *inventory.Service
	// Policy, when set, serves /api/policy; PolicyFile is where an activation through
	// the API is written ("" keeps it in memory only).
	Policy     PolicyEngine
	PolicyFile string

	// AIMS, when set, serves the ISO/IEC 42001 records (records.go); AIMSSources are
	// where the SoA draws automatic evidence; AIMSHealth runs health checks on demand.
	AIMS        *aims.Service
	AIMSSources aims.Sources
	AIMSHealth  *aims.Health

	// Approvals is the approval queue and the global kill switch.
	Approvals *oversight.Service
	// Deliveries are the recorded webhook delivery attempts.
	Deliveries oversight.DeliveryStore
	// Users are the named people who sign in to the console.
	Users *auth.Users
	// Ledger, when its Log is set, serves the ledger's read API and event appends.
	Ledger LedgerAPI

	// MCPTools are the MCP gateway's pinned tool definitions; MCPSessions lists its
	// open sessions.
	MCPTools    MCPTools
	MCPSessions func() []mcpproxy.SessionInfo

	// Metrics, when its Handler is set, serves GET /metrics.
	Metrics MetricsAPI
}

// Register adds the routes of the services that are set to mux, once: the gateway
// builds one Server and each subsystem's wiring sets its services on it. The
// registry's routes need Keys and Inventory.
func (s *Server) Register(mux *web.Mux) {
	if s.Policy != nil {
		s.registerPolicy(mux)
	}
	if s.AIMS != nil {
		s.RegisterRecords(mux)
	}
	if s.Keys != nil {
		s.registerRegistry(mux)
	}
	if s.Approvals != nil {
		s.registerApprovals(mux)
	}
	if s.Users != nil {
		s.registerUsers(mux)
	}
	if s.Ledger.Log != nil {
		s.registerLedger(mux)
	}
	if s.MCPTools != nil {
		s.registerMCP(mux)
	}
	if s.Metrics.Handler != nil {
		s.registerMetrics(mux)
	}
}

type ctxKey int

const actorKey ctxKey = 0

// ActorFrom returns the authenticated actor of an API request.
func ActorFrom(ctx context.Context) vigil.Actor {
	a, _ := ctx.Value(actorKey).(vigil.Actor)
	return a
}

// WithActor returns ctx carrying a, for handlers reached through another
// authentication path (the console's session cookie).
func WithActor(ctx context.Context, a vigil.Actor) context.Context {
	return context.WithValue(ctx, actorKey, a)
}

// role wraps h so that it runs only for a token holding one of roles (admin holds
// every role). The actor is put in the request context.
func (s *Server) role(h web.HandlerFunc, roles ...vigil.Role) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		actor, ok := r.Context().Value(actorKey).(vigil.Actor)
		if !ok {
			secret := auth.FromHeader(r.Header.Get("Authorization"), "")
			if secret == "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="vigil-admin"`)
				return vigil.Errorf(vigil.EUNAUTHORIZED, "missing credentials: send Authorization: Bearer <admin or role token>")
			}
			var err error
			actor, err = s.Auth.AuthenticateToken(r.Context(), secret)
			if err != nil {
				if vigil.ErrorCode(err) == vigil.EUNAUTHORIZED {
					w.Header().Set("WWW-Authenticate", `Bearer realm="vigil-admin", error="invalid_token"`)
				}
				return err
			}
			r = r.WithContext(WithActor(r.Context(), actor))
		}
		for _, role := range roles {
			if actor.Has(role) {
				return h(w, r)
			}
		}
		return vigil.Errorf(vigil.EFORBIDDEN, "%s may not do this: it needs one of the roles %v", actor, roles)
	}
}

// readers are the roles that may read the registry, ledger and records.
var readers = []vigil.Role{vigil.RoleAdmin, vigil.RoleReviewer, vigil.RoleAuditor, vigil.RoleViewer}
