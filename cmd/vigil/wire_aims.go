package main

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
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
func (m *Main) wireAIMS(bg context.Context, mux *web.Mux, inv *inventory.Service, keys *auth.Service, reg *prometheus.Registry, pol aims.PolicyEngine, pii aims.PIISettings) (*aims.Service, error) {
	d, ok := m.store.(aimsDriver)
	if !ok {
		return nil, errors.New("the storage driver has no management-system store")
	}
	svc := &aims.Service{Store: d.AIMS(), Registry: inv, Ledger: m.ledger, Options: aimsOptions(m.Config.AIMS), Log: m.Log}
	src := aims.Sources{Ledger: m.store.Ledger(), Roles: tokenRoles{keys.Store}, Metrics: registryMetrics{reg}}
	health := &aims.Health{
		Service: svc, Ledger: m.store.Ledger(),
		Verifier:       &storeVerifier{store: m.store.Ledger(), origin: m.keys.Origin(), verifier: m.keys.LedgerVerifier()},
		Policy:         pol,
		PII:            pii,
		Interval:       m.Config.AIMS.HealthInterval,
		VerifyInterval: m.Config.AIMS.VerifyInterval,
	}
	(&api.Server{Log: m.Log, Auth: keys, Keys: keys, Inventory: inv, AIMS: svc, AIMSSources: src, AIMSHealth: health}).RegisterRecords(mux)
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

// storeVerifier verifies the ledger in-process with the core ledger API: every leaf
// hash against its entry, the stored root against the stored hashes, and the head
// checkpoint's signature and root. It satisfies aims.LedgerVerifier until the ledger
// package's full verifier (ledger.Verify, on its own branch) is wired in its place:
// that one also checks every checkpoint, sessions, bodies and heartbeat gaps.
type storeVerifier struct {
	store    ledger.Store
	origin   string
	verifier note.Verifier
}

const storeVerifierMethod = "vigil serve: leaves, root and head checkpoint"

func (sv *storeVerifier) VerifyLedger(ctx context.Context) (aims.Verification, error) {
	v := aims.Verification{At: time.Now().UTC(), Method: storeVerifierMethod}
	fail := func(format string, args ...any) (aims.Verification, error) {
		v.OK, v.Summary = false, fmt.Sprintf(format, args...)
		return v, nil
	}
	size, root, err := sv.store.TreeState(ctx)
	if err != nil {
		return v, fmt.Errorf("couldn't read the tree state: %w", err)
	}
	v.Size = size
	const chunk = 1000
	for lo := int64(0); lo < size; lo += chunk {
		hi := min(lo+chunk, size)
		es, err := sv.store.Entries(ctx, lo, hi)
		if err != nil {
			return v, fmt.Errorf("couldn't read entries %d..%d: %w", lo, hi, err)
		}
		if int64(len(es)) != hi-lo {
			return fail("entries %d..%d: the store returned %d of %d entries", lo, hi, len(es), hi-lo)
		}
		idx := make([]int64, len(es))
		for i, e := range es {
			idx[i] = tlog.StoredHashIndex(0, e.Index)
		}
		hs, err := sv.store.ReadHashes(ctx, idx)
		if err != nil {
			return v, fmt.Errorf("couldn't read leaf hashes %d..%d: %w", lo, hi, err)
		}
		for i, e := range es {
			if e.Index != lo+int64(i) {
				return fail("index %d: the store returned entry %d in its place", lo+int64(i), e.Index)
			}
			if _, err := ledger.ParseEnvelope(e.Data); err != nil {
				return fail("index %d: %v", e.Index, err)
			}
			if tlog.RecordHash(e.Data) != hs[i] {
				return fail("index %d: the entry does not match its leaf hash (edited after it was appended)", e.Index)
			}
		}
	}
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return sv.store.ReadHashes(ctx, idx) })
	if size > 0 {
		th, err := tlog.TreeHash(size, reader)
		if err != nil {
			return v, fmt.Errorf("couldn't recompute the root: %w", err)
		}
		if th != root {
			return fail("the stored root at size %d does not match the stored hashes", size)
		}
	}
	head, err := sv.store.Head(ctx)
	if errors.Is(err, vigil.ErrNotFound) {
		v.OK, v.Summary = true, fmt.Sprintf("%d entries match their leaf hashes and the root; no checkpoint published yet", size)
		return v, nil
	}
	if err != nil {
		return v, fmt.Errorf("couldn't read the head checkpoint: %w", err)
	}
	cp, err := ledger.ParseCheckpoint(head.Note, sv.origin, sv.verifier)
	if err != nil {
		return fail("the head checkpoint does not verify: %v", err)
	}
	v.Checkpoint = cp.Size
	if cp.Size > size {
		return fail("the head checkpoint covers %d entries but the store has %d (rolled back)", cp.Size, size)
	}
	th, err := tlog.TreeHash(cp.Size, reader)
	if err != nil {
		return v, fmt.Errorf("couldn't recompute the root at %d: %w", cp.Size, err)
	}
	if th != cp.Root {
		return fail("checkpoint %d: the signed root does not match the stored tree", cp.Size)
	}
	v.OK, v.Summary = true, fmt.Sprintf("%d entries match their leaf hashes; root verified; head checkpoint %d signature and root verified", size, cp.Size)
	return v, nil
}
