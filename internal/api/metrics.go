package api

import (
	"net/http"

	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// MetricsAPI serves the Prometheus metrics. They carry agent, system and model
// names, so by default a scraper needs a token with a reading role (Prometheus sends
// it with `authorization: {credentials_file: …}`); Public serves them to anyone.
type MetricsAPI struct {
	Handler http.Handler
	Public  bool
}

func (s *Server) registerMetrics(mux *web.Mux) {
	h := func(w http.ResponseWriter, r *http.Request) error {
		s.Metrics.Handler.ServeHTTP(w, r)
		return nil
	}
	if !s.Metrics.Public {
		h = s.role(h, vigil.RoleAdmin, vigil.RoleAuditor, vigil.RoleViewer)
	}
	mux.HandleFunc("GET /metrics", h)
}
