package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-gateway/vigil/internal/api"
	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/console"
	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/keyring"
	"github.com/vigil-gateway/vigil/internal/notify"
	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/store/postgres"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// oversightChannel is the LISTEN/NOTIFY channel replicas share oversight notices on.
const oversightChannel = "vigil_oversight"

// oversightStores is what a storage driver provides for human oversight.
type oversightStores interface {
	Oversight() oversight.Store
	Deliveries() oversight.DeliveryStore
	Users() auth.UserStore
}

// oversightWiring is human oversight as serve wires it: the approval queue and kill
// switch, the registry of open agent work, users, the console and webhooks.
type oversightWiring struct {
	// Tests may set these before Run: argon2id's cost, and how often waiters poll.
	password     auth.PasswordParams
	pollInterval time.Duration

	approvals *oversight.Service
	// sessions is where the LLM and MCP proxies register open streams and sessions
	// (Sessions.Track) so the kill switch can close them.
	sessions *oversight.Sessions
	users    *auth.Users
	console  *console.Console
}

// wireOversight builds human oversight, mounts its API routes and the console on
// mux, makes agent authentication consult the global halt and suspensions reach
// pending approvals and open work, and starts its background work on bg.
func (m *Main) wireOversight(bg context.Context, mux *web.Mux, admin *api.Server, keys *auth.Service, inv *inventory.Service, reg prometheus.Registerer, competence oversight.Competence) error {
	cfg := m.Config.Oversight
	st, ok := m.store.(oversightStores)
	if !ok {
		return fmt.Errorf("the storage driver %T keeps no approvals", m.store)
	}
	publicURL := strings.TrimRight(m.Config.PublicURL, "/")
	if publicURL == "" {
		publicURL = m.URL()
	}
	hooks, err := webhooks(cfg.Webhooks, m.Env.Getenv)
	if err != nil {
		return err
	}
	sender := notify.New(notify.Options{Hooks: hooks, Store: st.Deliveries(), Log: m.Log, ConsoleURL: publicURL})

	w := m.oversight
	if w == nil {
		w = &oversightWiring{}
	}
	w.sessions = &oversight.Sessions{}
	opts := oversight.Options{
		Store: st.Oversight(), Ledger: m.ledger, Sessions: w.sessions, Metrics: newOversightMetrics(reg), Log: m.Log, PollInterval: w.pollInterval,
		DefaultTimeout: cfg.DefaultTimeout, ExcludeOwner: cfg.ExcludeOwner == nil || *cfg.ExcludeOwner,
		OnEvent: sender.Notify, Competence: competence,
	}
	opts.Gate = func(ctx context.Context, a vigil.Actor) error { return mayAct(ctx, inv, w.approvals, a) }
	// Every suspension, halt (and their lifting) from any replica, and a resync after
	// missed notices, drops the authentication cache before open work is closed.
	opts.OnNotice = func(n oversight.Notice) {
		switch n.Kind {
		case oversight.NoticeSuspended, oversight.NoticeResumed, oversight.NoticeHalted, oversight.NoticeUnhalted, oversight.NoticeResync:
			keys.Forget()
		}
	}
	pg, isPG := m.store.(*postgres.DB)
	if isPG {
		opts.Notifier = pgNotifier{pg}
	}
	if w.approvals, err = oversight.New(opts); err != nil {
		return err
	}
	keys.Halt = w.approvals
	prev := inv.OnChange
	inv.OnChange = func(agentID, systemID string) {
		if prev != nil {
			prev(agentID, systemID)
		}
		m.statusChanged(inv, w.approvals, agentID, systemID)
	}

	w.users = &auth.Users{
		Store: st.Users(), Ledger: m.ledger, CSRFKey: m.keys.Derive(keyring.PurposeSession), Password: w.password,
		SessionLifetime: cfg.SessionLifetime, IdleTimeout: cfg.SessionIdleTimeout,
	}
	admin.Approvals, admin.Deliveries, admin.Users = w.approvals, st.Deliveries(), w.users
	if w.console, err = console.New(console.Options{
		Log: m.Log, Users: w.users, Approvals: w.approvals, Inventory: inv, Secure: strings.HasPrefix(publicURL, "https://"),
	}); err != nil {
		return err
	}
	w.console.Register(mux)
	m.server.RegisterOnShutdown(w.console.Close)
	m.oversight = w

	m.goBackground(func() { _ = w.approvals.Run(bg) })
	m.goBackground(func() { sender.Run(bg) })
	if isPG {
		m.goBackground(func() {
			pg.Listen(bg, oversightChannel, func(payload string) {
				n, err := oversight.DecodeNotice(payload)
				if err != nil {
					m.Log.Warn("ignoring a malformed oversight notice", "err", err)
					return
				}
				w.approvals.Receive(n)
			}, func(err error) { m.Log.Warn("oversight notices interrupted; waiters poll meanwhile", "err", err) })
		})
	}
	return nil
}

// statusChanged carries an agent's or a system's suspension beyond authentication:
// pending approvals cancelled, open work closed on every replica.
func (m *Main) statusChanged(inv *inventory.Service, svc *oversight.Service, agentID, systemID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var status inventory.Status
	var by, reason string
	if agentID != "" {
		a, err := inv.Store.Agent(ctx, agentID)
		if err != nil {
			m.Log.Error("couldn't read a suspended agent", "agent", agentID, "err", err)
			return
		}
		status, by, reason = a.Status, a.SuspendedBy, a.SuspendedReason
	} else {
		s, err := inv.Store.System(ctx, systemID)
		if err != nil {
			m.Log.Error("couldn't read a suspended system", "system", systemID, "err", err)
			return
		}
		status, by, reason = s.Status, s.SuspendedBy, s.SuspendedReason
	}
	if err := svc.StatusChanged(ctx, agentID, systemID, status == inventory.Suspended, by, reason); err != nil {
		m.Log.Error("couldn't carry out a suspension in full", "agent", agentID, "system", systemID, "err", err)
	}
}

// mayAct re-checks that an agent may act (its status, its system's, the global
// halt) before a held call is raised and before an approved one is released.
func mayAct(ctx context.Context, inv *inventory.Service, svc *oversight.Service, a vigil.Actor) error {
	ag, err := inv.Store.Agent(ctx, a.ID)
	if err != nil {
		return err
	}
	if ag.Status == inventory.Suspended {
		return vigil.Errorf(vigil.ESUSPENDED, "agent %q is suspended: %s", ag.Name, ag.SuspendedReason)
	}
	sys, err := inv.Store.System(ctx, ag.SystemID)
	if err != nil {
		return err
	}
	if sys.Status == inventory.Suspended {
		return vigil.Errorf(vigil.ESUSPENDED, "AI system %q is suspended: %s", sys.Name, sys.SuspendedReason)
	}
	on, reason, err := svc.Halted(ctx)
	if err != nil {
		return err
	}
	if on {
		return vigil.Errorf(vigil.ESUSPENDED, "Vigil is halted: every agent is stopped: %s", reason)
	}
	return nil
}

// webhooks resolves the configured webhooks' URLs and secrets from the environment.
func webhooks(cfgs []config.WebhookConfig, getenv func(string) string) ([]notify.Hook, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var out []notify.Hook
	for i, c := range cfgs {
		u := c.URL
		if c.URLEnv != "" {
			if u = getenv(c.URLEnv); u == "" {
				return nil, fmt.Errorf("oversight.webhooks[%d]: environment variable %s (url_env) is empty or unset", i, c.URLEnv)
			}
			if err := config.CheckWebhookURL(u); err != nil {
				return nil, fmt.Errorf("oversight.webhooks[%d]: %s: %w", i, c.URLEnv, err)
			}
		}
		secret := getenv(c.SecretEnv)
		if len(secret) < 16 {
			return nil, fmt.Errorf("oversight.webhooks[%d]: environment variable %s (secret_env) must hold a signing secret of at least 16 bytes", i, c.SecretEnv)
		}
		name := c.Name
		if name == "" {
			if p, err := url.Parse(u); err == nil {
				name = p.Host
			}
		}
		out = append(out, notify.Hook{Name: name, URL: u, Secret: []byte(secret), Events: c.Events, Format: c.Format})
	}
	return out, nil
}

// pgNotifier carries oversight notices to the other replicas with NOTIFY.
type pgNotifier struct{ db *postgres.DB }

func (n pgNotifier) Notify(ctx context.Context, notice oversight.Notice) error {
	return n.db.Notify(ctx, oversightChannel, notice.Encode())
}

// oversightMetrics exports the approval queue to Prometheus.
type oversightMetrics struct {
	pending  prometheus.Gauge
	decision prometheus.Histogram
	expiries prometheus.Counter
	outcomes *prometheus.CounterVec
}

func newOversightMetrics(reg prometheus.Registerer) *oversightMetrics {
	m := &oversightMetrics{
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_approvals_pending", Help: "Approval requests waiting for a decision, across all replicas."}),
		decision: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vigil_approval_decision_seconds", Help: "Time from an approval request to a reviewer's approval or denial.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600}}),
		expiries: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_approval_expiries_total", Help: "Approval requests nobody decided in time (denied by default)."}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_approval_outcomes_total", Help: "Approval requests ended, by outcome."}, []string{"outcome"}),
	}
	reg.MustRegister(m.pending, m.decision, m.expiries, m.outcomes)
	return m
}

func (m *oversightMetrics) Pending(n int) { m.pending.Set(float64(n)) }

func (m *oversightMetrics) Ended(s oversight.Status, waited time.Duration) {
	m.outcomes.WithLabelValues(string(s)).Inc()
	switch s {
	case oversight.Approved, oversight.Denied:
		m.decision.Observe(waited.Seconds())
	case oversight.Expired:
		m.expiries.Inc()
	}
}
