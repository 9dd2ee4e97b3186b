package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/vigil-gateway/vigil/internal/aims"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// RegisterRecords adds the ISO/IEC 42001 records routes (/api/records/…, /api/aims/…)
// to mux. Register calls it when AIMS is set; the serve wiring calls it directly.
//
// Everyone with a role may read; only admin writes. Compliance officers hold an admin
// token for now (docs/adr/0009-aims.md says why there is no separate role yet).
func (s *Server) RegisterRecords(mux *web.Mux) {
	admin := []vigil.Role{vigil.RoleAdmin}

	mux.HandleFunc("GET /api/records/{kind}", s.role(s.handleRecordList, readers...))
	mux.HandleFunc("GET /api/records/{kind}/{id}", s.role(s.handleRecordGet, readers...))
	mux.HandleFunc("PUT /api/records/{kind}/{id}", s.role(s.handleRecordPut, admin...))
	mux.HandleFunc("DELETE /api/records/{kind}/{id}", s.role(s.handleRecordDelete, admin...))
	mux.HandleFunc("POST /api/records/import", s.role(s.handleRecordImport, admin...))
	mux.HandleFunc("GET /api/records/export", s.role(s.handleRecordExport, readers...))
	mux.HandleFunc("POST /api/records/policy/{id}/signoff", s.role(s.handleSignoff, admin...))
	mux.HandleFunc("POST /api/records/policy/{id}/enforced-by", s.role(s.handleEnforcedBy, admin...))

	mux.HandleFunc("GET /api/aims/catalogue", s.role(s.handleCatalogue, readers...))
	mux.HandleFunc("GET /api/aims/inventory", s.role(s.handleInventory, readers...))
	mux.HandleFunc("GET /api/aims/policies", s.role(s.handlePolicies, readers...))
	mux.HandleFunc("GET /api/aims/risks", s.role(s.handleRisks, readers...))
	mux.HandleFunc("GET /api/aims/soa", s.role(s.handleSoA, readers...))
	mux.HandleFunc("GET /api/aims/health", s.role(s.handleHealth, readers...))
	mux.HandleFunc("POST /api/aims/health/run", s.role(s.handleHealthRun, admin...))
	mux.HandleFunc("POST /api/aims/verify", s.role(s.handleVerify, admin...))
	mux.HandleFunc("POST /api/aims/usage", s.role(s.handleUsage, admin...))
	mux.HandleFunc("GET /api/aims/incidents", s.role(s.handleIncidents, readers...))
	mux.HandleFunc("GET /api/aims/review-inputs", s.role(s.handleReviewInputs, readers...))
	mux.HandleFunc("GET /api/aims/reviews/{id}/inputs", s.role(s.handleReviewInputsFor, readers...))
	mux.HandleFunc("GET /api/aims/competence/current", s.role(s.handleCompetenceCurrent, readers...))
}

func (s *Server) handleRecordList(w http.ResponseWriter, r *http.Request) error {
	list, err := s.AIMS.List(r.Context(), r.PathValue("kind"))
	if err != nil {
		return err
	}
	if list == nil {
		list = []aims.Record{}
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"records": list})
}

func (s *Server) handleRecordGet(w http.ResponseWriter, r *http.Request) error {
	rec, err := s.AIMS.Get(r.Context(), r.PathValue("kind"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, rec)
}

func (s *Server) handleRecordPut(w http.ResponseWriter, r *http.Request) error {
	kind, id := r.PathValue("kind"), r.PathValue("id")
	rec := aims.NewRecord(kind)
	if rec == nil {
		return vigil.Errorf(vigil.EINVALID, "%q is not a record kind; kinds are %s", kind, strings.Join(aims.RecordKinds, ", "))
	}
	if err := web.DecodeJSON(r, rec); err != nil {
		return err
	}
	if rec.Key() != id {
		return vigil.Errorf(vigil.EINVALID, "field \"id\": %q does not match the id %q in the path", rec.Key(), id)
	}
	res, err := s.AIMS.Put(r.Context(), ActorFrom(r.Context()), rec)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	return web.WriteJSON(w, status, res)
}

func (s *Server) handleRecordDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.AIMS.Delete(r.Context(), ActorFrom(r.Context()), r.PathValue("kind"), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// importInput carries YAML files: the CLI sends what it read from disk, with names so
// errors point at file and line.
type importInput struct {
	Files []struct {
		Name    string `json:"name"`
		Content string `json:"content"`
	} `json:"files"`
}

func (s *Server) handleRecordImport(w http.ResponseWriter, r *http.Request) error {
	var in importInput
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	if len(in.Files) == 0 {
		return vigil.Errorf(vigil.EINVALID, "field \"files\": no files to import")
	}
	var all []aims.Parsed
	var errs aims.FieldErrors
	for _, f := range in.Files {
		ps, err := aims.ParseRecords(f.Name, []byte(f.Content))
		if fe, ok := err.(aims.FieldErrors); ok {
			errs = append(errs, fe...)
			continue
		}
		if err != nil {
			return err
		}
		all = append(all, ps...)
	}
	if len(errs) > 0 {
		return &vigil.Error{Code: vigil.EINVALID, Message: errs.Error(), Err: errs}
	}
	res, err := s.AIMS.Import(r.Context(), ActorFrom(r.Context()), all)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, res)
}

func (s *Server) handleRecordExport(w http.ResponseWriter, r *http.Request) error {
	recs, err := s.AIMS.Export(r.Context())
	if err != nil {
		return err
	}
	files, err := aims.MarshalFiles(recs)
	if err != nil {
		return err
	}
	out := map[string]string{}
	for name, b := range files {
		out[name] = string(b)
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"files": out})
}

func (s *Server) handleSignoff(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Leader  string `json:"leader"`
		Title   string `json:"title"`
		Version string `json:"version"`
	}
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	so, err := s.AIMS.SignOff(r.Context(), ActorFrom(r.Context()), r.PathValue("id"), in.Version, in.Leader, in.Title)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusCreated, so)
}

func (s *Server) handleEnforcedBy(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Hash string `json:"hash"`
	}
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	if err := s.AIMS.LinkEnforcedPolicy(r.Context(), ActorFrom(r.Context()), in.Hash, r.PathValue("id")); err != nil {
		return err
	}
	rec, err := s.AIMS.Get(r.Context(), aims.KindPolicy, r.PathValue("id"))
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, rec)
}

func (s *Server) handleCatalogue(w http.ResponseWriter, r *http.Request) error {
	return web.WriteJSON(w, http.StatusOK, map[string]any{"controls": aims.Controls()})
}

func (s *Server) handleInventory(w http.ResponseWriter, r *http.Request) error {
	systems, orphans, err := s.AIMS.Inventory(r.Context())
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"systems": systems, "unattributed_flags": orphans})
}

func (s *Server) handlePolicies(w http.ResponseWriter, r *http.Request) error {
	list, err := s.AIMS.Policies(r.Context())
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"policies": list})
}

func (s *Server) handleRisks(w http.ResponseWriter, r *http.Request) error {
	list, err := s.AIMS.Risks(r.Context())
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"risks": list})
}

// period reads ?from=&to= (RFC 3339 or YYYY-MM-DD; to is exclusive, a bare date
// meaning the end of that day); the default is the last 30 days.
func period(r *http.Request) (time.Time, time.Time, error) {
	now := time.Now().UTC()
	from, to := now.Add(-30*24*time.Hour), now.Add(time.Second)
	parse := func(name, v string, endOfDay bool) (time.Time, error) {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return t, nil
		}
		d, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return time.Time{}, vigil.Errorf(vigil.EINVALID, "%s %q is not a date (2026-11-01) or time (2026-11-01T09:00:00Z)", name, v)
		}
		if endOfDay {
			d = d.Add(24 * time.Hour)
		}
		return d, nil
	}
	var err error
	if v := r.URL.Query().Get("from"); v != "" {
		if from, err = parse("from", v, false); err != nil {
			return from, to, err
		}
	}
	if v := r.URL.Query().Get("to"); v != "" {
		if to, err = parse("to", v, true); err != nil {
			return from, to, err
		}
	}
	if !from.Before(to) {
		return from, to, vigil.Errorf(vigil.EINVALID, "from must be before to")
	}
	return from, to, nil
}

func (s *Server) handleSoA(w http.ResponseWriter, r *http.Request) error {
	from, to, err := period(r)
	if err != nil {
		return err
	}
	soa, err := s.AIMS.SoA(r.Context(), s.AIMSSources, from, to)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("format") == "csv" {
		b, err := soa.CSV()
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="soa.csv"`)
		_, err = w.Write(b)
		return err
	}
	return web.WriteJSON(w, http.StatusOK, soa)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Query().Has("from") || r.URL.Query().Has("to") {
		from, to, err := period(r)
		if err != nil {
			return err
		}
		hist, err := s.AIMS.Store.HealthHistory(r.Context(), from, to)
		if err != nil {
			return err
		}
		return web.WriteJSON(w, http.StatusOK, map[string]any{"history": hist})
	}
	latest, err := s.AIMS.HealthNow(r.Context(), 7*24*time.Hour)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"checks": latest})
}

func (s *Server) handleHealthRun(w http.ResponseWriter, r *http.Request) error {
	if s.AIMSHealth == nil {
		return vigil.Errorf(vigil.EUNAVAILABLE, "the health check runner is not running")
	}
	res, err := s.AIMSHealth.RunOnce(r.Context())
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"checks": res})
}

func (s *Server) handleIncidents(w http.ResponseWriter, r *http.Request) error {
	list, err := s.AIMS.Incidents(r.Context())
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"incidents": list})
}

func (s *Server) handleReviewInputs(w http.ResponseWriter, r *http.Request) error {
	from, to, err := period(r)
	if err != nil {
		return err
	}
	p, err := s.AIMS.ReviewInputs(r.Context(), s.AIMSSources, from, to)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, p)
}

func (s *Server) handleReviewInputsFor(w http.ResponseWriter, r *http.Request) error {
	p, err := s.AIMS.ReviewInputsFor(r.Context(), s.AIMSSources, r.PathValue("id"))
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, p)
}

func (s *Server) handleCompetenceCurrent(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	person, comp := q.Get("person"), q.Get("competence")
	if person == "" || comp == "" {
		return vigil.Errorf(vigil.EINVALID, "person and competence are required query parameters")
	}
	at := time.Now()
	if v := q.Get("at"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return vigil.Errorf(vigil.EINVALID, "at %q is not an RFC 3339 time", v)
		}
		at = t
	}
	ok, err := s.AIMS.Current(r.Context(), person, comp, at)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{"person": person, "competence": comp, "at": at.UTC(), "current": ok})
}

func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request) error {
	if s.AIMSHealth == nil || s.AIMSHealth.Verifier == nil {
		return vigil.Errorf(vigil.EUNAVAILABLE, "no ledger verifier is wired")
	}
	if err := s.AIMSHealth.Verify(r.Context()); err != nil {
		return err
	}
	v, err := s.AIMS.LastVerification(r.Context(), time.Hour)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, v)
}

// usageInput is observed use reported from outside the process (a collector that
// reads another gateway's or a provider's usage log). The pipeline reports in-process.
type usageInput struct {
	Observations []struct {
		At       time.Time `json:"at"`
		Agent    string    `json:"agent"`
		Source   string    `json:"source"`
		Provider string    `json:"provider"`
		Model    string    `json:"model"`
		Server   string    `json:"server"`
		Tool     string    `json:"tool"`
	} `json:"observations"`
}

func (s *Server) handleUsage(w http.ResponseWriter, r *http.Request) error {
	var in usageInput
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	for i, o := range in.Observations {
		obs := aims.Observation{At: o.At, Source: o.Source, Provider: o.Provider, Model: o.Model, Server: o.Server, Tool: o.Tool}
		if o.Agent != "" {
			a, err := s.Inventory.LookupAgent(r.Context(), o.Agent)
			if err != nil {
				return vigil.Errorf(vigil.EINVALID, "observations[%d].agent: %s", i, vigil.ErrorMessage(err))
			}
			obs.AgentID, obs.SystemID = a.ID, a.SystemID
		} else if o.Source == "" {
			return vigil.Errorf(vigil.EINVALID, "observations[%d]: either agent or source is required", i)
		}
		if err := s.AIMS.ReportUsage(r.Context(), obs); err != nil {
			return err
		}
	}
	return web.WriteJSON(w, http.StatusOK, map[string]int{"recorded": len(in.Observations)})
}
