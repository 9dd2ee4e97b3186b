package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-gateway/vigil/internal/aims"
	"github.com/vigil-gateway/vigil/internal/api"
	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/store/postgres"
	"github.com/vigil-gateway/vigil/internal/store/sqlite"
	"golang.org/x/mod/sumdb/note"
)

// aimsDriver is what the management system needs of a storage driver.
type aimsDriver interface {
	AIMS() aims.Store
}

var (
	_ aimsDriver = (*sqlite.DB)(nil)
	_ aimsDriver = (*postgres.DB)(nil)
)

// aimsOptions copies the configuration into the package's own options.
func aimsOptions(c config.AIMSConfig) aims.Options {
	return aims.Options{
		RiskScale:          c.RiskScale,
		Art73:              aims.Art73Clocks{General: c.Art73.General, Widespread: c.Art73.Widespread, Death: c.Art73.Death},
		VerificationMaxAge: c.VerificationMaxAge,
		ApprovalSLA:        c.ApprovalSLA,
		NeverSeenGrace:     c.NeverSeenGrace,
		Auto: aims.AutoIncidents{
			HealthCheck:          config.On(c.AutoIncidents.HealthCheck),
			LedgerVerification:   config.On(c.AutoIncidents.LedgerVerification),
			DeniedBurst:          config.On(c.AutoIncidents.DeniedBurst),
			PIIInAnswer:          config.On(c.AutoIncidents.PIIInAnswer),
			KillSwitch:           config.On(c.AutoIncidents.KillSwitch),
			DeniedBurstThreshold: c.AutoIncidents.DeniedBurstThreshold,
			DeniedBurstWindow:    c.AutoIncidents.DeniedBurstWindow,
			SetupGrace:           c.AutoIncidents.SetupGrace,
		},
	}
}

// wireAIMS builds the ISO/IEC 42001 management system over the running gateway:
// the service, its evidence sources, the admin routes, and the health-check runner
// (stopped when bg ends). It returns the service, which is what the gateway pipeline
// reports observed use to (aims.UsageReporter) and other subsystems raise incidents
// through (aims.IncidentOpener); oversight asks it aims.Service.Current.
//
// The policy engine and PII settings are not wired here yet: until they are, the
// checks that need them fail closed.
func (m *Main) wireAIMS(bg context.Context, admin *api.Server, inv *inventory.Service, keys *auth.Service, reg *prometheus.Registry, pol aims.PolicyEngine, pii aims.PIISettings) (*aims.Service, error) {
	d, ok := m.store.(aimsDriver)
	if !ok {
		return nil, errors.New("the storage driver has no management-system store")
	}
	svc := &aims.Service{Store: d.AIMS(), Registry: inv, Ledger: m.ledger, Options: aimsOptions(m.Config.AIMS), Log: m.Log}
	src := aims.Sources{Ledger: m.store.Ledger(), Roles: tokenRoles{keys.Store}, Metrics: registryMetrics{reg}}
	health := &aims.Health{
		Service: svc, Ledger: m.store.Ledger(),
		Verifier: &ledgerVerifier{
			store: m.store.Ledger(), origin: m.keys.Origin(), verifier: m.keys.LedgerVerifier(), bodyKey: m.keys.BodyKey(),
			mirror: ledger.FileMirror{Path: filepath.Join(m.Config.DataDir, ledger.MirrorFile)}, interval: m.Config.Ledger.HeartbeatInterval,
		},
		Policy:         pol,
		PII:            pii,
		Interval:       m.Config.AIMS.HealthInterval,
		VerifyInterval: m.Config.AIMS.VerifyInterval,
	}
	admin.AIMS, admin.AIMSSources, admin.AIMSHealth = svc, src, health
	m.goBackground(func() {
		if err := health.Run(bg); err != nil {
			m.Log.Error("the control health runner stopped", "err", err)
		}
	})
	return svc, nil
}

// tokenRoles lists role tokens as role assignments (console users will join them).
type tokenRoles struct{ store auth.Store }

func (t tokenRoles) RoleAssignments(ctx context.Context) ([]aims.RoleAssignment, error) {
	list, err := t.store.ListTokens(ctx)
	if err != nil {
		return nil, fmt.Errorf("couldn't list tokens: %w", err)
	}
	now := time.Now()
	var out []aims.RoleAssignment
	for _, tok := range list {
		if tok.Active(now) {
			out = append(out, aims.RoleAssignment{Principal: "token:" + tok.Name, Role: string(tok.Role), Since: tok.CreatedAt})
		}
	}
	return out, nil
}

// registryMetrics reads the Prometheus registry: each family's value summed over its
// labels (histograms and summaries by sample count).
type registryMetrics struct{ reg *prometheus.Registry }

func (r registryMetrics) Metrics(ctx context.Context) (map[string]float64, error) {
	fams, err := r.reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("couldn't gather metrics: %w", err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		var sum float64
		for _, mt := range f.GetMetric() {
			switch {
			case mt.Counter != nil:
				sum += mt.Counter.GetValue()
			case mt.Gauge != nil:
				sum += mt.Gauge.GetValue()
			case mt.Histogram != nil:
				sum += float64(mt.Histogram.GetSampleCount())
			case mt.Summary != nil:
				sum += float64(mt.Summary.GetSampleCount())
			case mt.Untyped != nil:
				sum += mt.Untyped.GetValue()
			}
		}
		out[f.GetName()] = sum
	}
	return out, nil
}

// ledgerVerifier runs the full ledger verification in-process for the health check
// "ledger verified within 24 h": every leaf and stored hash, every checkpoint and
// consecutive pair, sessions, bodies (with the body key), and the data directory's
// checkpoint mirror as a trusted copy.
type ledgerVerifier struct {
	store    ledger.Store
	origin   string
	verifier note.Verifier
	bodyKey  []byte
	mirror   ledger.Mirror
	interval time.Duration
}

func (lv *ledgerVerifier) VerifyLedger(ctx context.Context) (aims.Verification, error) {
	opts := ledger.VerifyOptions{Origin: lv.origin, Verifier: lv.verifier, BodyKey: lv.bodyKey, HeartbeatInterval: lv.interval}
	if lv.mirror != nil {
		if cp, err := lv.mirror.Latest(); err == nil && cp != nil {
			opts.Trusted = [][]byte{cp}
		}
	}
	rep, err := ledger.Verify(ctx, lv.store, opts)
	if err != nil {
		return aims.Verification{}, fmt.Errorf("couldn't read the ledger to verify it: %w", err)
	}
	return aims.Verification{At: time.Now().UTC(), OK: rep.OK(), Size: rep.Size, Checkpoint: rep.Latest, Summary: rep.Summary(), Method: "ledger.Verify"}, nil
}
