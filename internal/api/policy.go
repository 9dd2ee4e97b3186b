package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigil-gateway/vigil/internal/policy"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// PolicyEngine is the live policy as the API manages it.
type PolicyEngine interface {
	Policy() *policy.Policy
	Activate(ctx context.Context, p *policy.Policy, by string) error
	ShadowReport() (policy.ShadowReport, bool)
}

// maxPolicyBytes caps a policy posted to the API.
const maxPolicyBytes = 1 << 20

func (s *Server) registerPolicy(mux *web.Mux) {
	mux.HandleFunc("GET /api/policy", s.role(s.handlePolicyGet, readers...))
	mux.HandleFunc("POST /api/policy", s.role(s.handlePolicyPost, vigil.RoleAdmin))
	mux.HandleFunc("GET /api/policy/shadow", s.role(s.handlePolicyShadow, vigil.RoleAdmin, vigil.RoleAuditor, vigil.RoleViewer))
}

// policyView is the live policy as the API shows it.
type policyView struct {
	Version string `json:"version"`
	Name    string `json:"name"`
	Source  string `json:"source"`
	// Persisted says whether an activation through the API was written to the policy
	// file (so it survives a restart and reaches replicas watching the same file).
	Persisted *bool `json:"persisted,omitempty"`
}

func (s *Server) handlePolicyGet(w http.ResponseWriter, r *http.Request) error {
	p := s.Policy.Policy()
	return web.WriteJSON(w, http.StatusOK, policyView{Version: p.Version(), Name: p.Name(), Source: string(p.Bytes())})
}

// handlePolicyPost compiles the posted policy (YAML, the request body) and activates
// it. A policy that does not compile leaves the live one in place and the answer
// lists every problem.
func (s *Server) handlePolicyPost(w http.ResponseWriter, r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(ct, "application/yaml") && !strings.HasPrefix(ct, "text/") && !strings.HasPrefix(ct, "application/x-yaml") {
		return vigil.Errorf(vigil.EINVALID, "send the policy as YAML (Content-Type application/yaml), not %q", ct)
	}
	src, err := io.ReadAll(io.LimitReader(r.Body, maxPolicyBytes+1))
	if err != nil {
		return vigil.Errorf(vigil.EINVALID, "couldn't read the policy: %v", err)
	}
	if len(src) > maxPolicyBytes {
		return vigil.Errorf(vigil.ETOOLARGE, "policy is larger than %d bytes", maxPolicyBytes)
	}
	p, err := policy.Compile("api", src)
	var ce *policy.CompileError
	if errors.As(err, &ce) {
		var body web.ErrorBody
		body.Error.Code = vigil.EINVALID
		problems := fmt.Sprintf("%d problems", len(ce.Problems))
		if len(ce.Problems) == 1 {
			problems = "1 problem"
		}
		body.Error.Message = fmt.Sprintf("the policy does not compile (%s); the live policy %s stays active", problems, short(s.Policy.Policy().Version()))
		body.Error.RequestID = web.RequestID(r.Context())
		return web.WriteJSON(w, http.StatusBadRequest, struct {
			web.ErrorBody
			Problems []policy.Problem `json:"problems"`
		}{body, ce.Problems})
	}
	if err != nil {
		return err
	}
	by := ActorFrom(r.Context()).String()
	persisted := false
	if s.PolicyFile != "" {
		if err := writeAtomic(s.PolicyFile, src); err != nil {
			return fmt.Errorf("couldn't write the policy file: %w", err)
		}
		persisted = true
	}
	if err := s.Policy.Activate(r.Context(), p, by); err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, policyView{Version: p.Version(), Name: p.Name(), Source: string(p.Bytes()), Persisted: &persisted})
}

func short(v string) string {
	if len(v) > 12 {
		return v[:12]
	}
	return v
}

func (s *Server) handlePolicyShadow(w http.ResponseWriter, r *http.Request) error {
	rep, ok := s.Policy.ShadowReport()
	if !ok {
		return vigil.Errorf(vigil.ENOTFOUND, "shadow mode is off: set policy_options.shadow to a candidate policy file")
	}
	return web.WriteJSON(w, http.StatusOK, rep)
}

// writeAtomic replaces path with data durably (temp file, fsync, rename).
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".policy-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if fi, err := os.Stat(path); err == nil {
		_ = os.Chmod(tmp.Name(), fi.Mode().Perm())
	}
	return os.Rename(tmp.Name(), path)
}
