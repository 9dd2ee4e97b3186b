package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vigil-gateway/vigil/internal/api"
	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/decisionapi"
	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/keyring"
	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/llmproxy"
	"github.com/vigil-gateway/vigil/internal/pii"
	"github.com/vigil-gateway/vigil/internal/policy"
	"github.com/vigil-gateway/vigil/internal/store/postgres"
	"github.com/vigil-gateway/vigil/internal/store/sqlite"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

const serveUsage = `Run the gateway. With no configuration at all it listens on 127.0.0.1:8080, keeps a
SQLite database and generated keys in ./vigil-data, and prints a one-time admin token.

Environment:
  VIGIL_ADMIN_TOKEN   the bootstrap admin token to create at first start (else one is generated)
  VIGIL_MASTER_KEY    base64 32-byte master key (replicas share it; default: data_dir/master.key)
  VIGIL_LEDGER_KEY    ledger signing key in note format (default: data_dir/ledger.key)`

func runServe(ctx context.Context, env *Env, args []string) error {
	m := NewMain(env)
	if err := m.ParseFlags(args); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		m.Close()
		return err
	}
	var fatal error
	select {
	case <-ctx.Done():
	case fatal = <-m.Fatal():
	}
	m.Log.Info("shutting down")
	return errors.Join(fatal, m.Close())
}

// store is what Main needs of a storage driver.
type store interface {
	Inventory() inventory.Store
	Auth() auth.Store
	Ledger() ledger.Store
	Usage() policy.UsageStore
	PIIVault() pii.Vault
	Ping(ctx context.Context) error
	Close() error
}

var (
	_ store = (*sqlite.DB)(nil)
	_ store = (*postgres.DB)(nil)
)

// Main is the running gateway: the whole object graph, wired by hand. Tests build one,
// set Config, call Run and talk to URL().
type Main struct {
	Config *config.Config
	Env    *Env
	Log    *slog.Logger
	// AdminToken is the bootstrap admin token generated at first start, if one was.
	AdminToken string

	store  store
	keys   *keyring.Keyring
	ledger *ledger.Log
	server *http.Server
	ln     net.Listener
	// oversight is human oversight as wire_oversight.go wires it.
	oversight *oversightWiring
	// policyState is the live policy's health, for the management system's checks.
	policyState *policyState

	cancel context.CancelFunc
	wg     sync.WaitGroup
	fatal  chan error
	closed sync.Once
}

// NewMain returns a Main with the default configuration.
func NewMain(env *Env) *Main {
	return &Main{Config: config.Default(), Env: env, fatal: make(chan error, 4)}
}

// ParseFlags reads --config and applies --listen and --data over it.
func (m *Main) ParseFlags(args []string) error {
	fs := newFlags(m.Env, "serve", "[--config FILE] [--listen ADDR] [--data DIR]", serveUsage)
	path := fs.String("config", "", "`FILE` to read (YAML); default: built-in defaults")
	listen := fs.String("listen", "", "`ADDR` to listen on (overrides the file; default 127.0.0.1:8080)")
	data := fs.String("data", "", "data `DIR` for the SQLite database and keys (overrides the file; default ./vigil-data)")
	if err := parse(fs, m.Env, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(m.Env.Stderr, "vigil serve: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if *path != "" {
		c, err := config.Load(*path)
		if err != nil {
			return err
		}
		m.Config = c
	}
	if *listen != "" {
		m.Config.Listen = *listen
	}
	if *data != "" {
		m.Config.DataDir = *data
	}
	return m.Config.Validate()
}

// Fatal delivers errors after which the gateway must stop (ledger tampering found
// while running, the listener failing).
func (m *Main) Fatal() <-chan error { return m.fatal }

// URL is the base URL the gateway listens on.
func (m *Main) URL() string { return "http://" + m.ln.Addr().String() }

// Run opens the stores and keys, checks the ledger, and starts serving. It returns once
// the listener is up; Close stops everything.
func (m *Main) Run(ctx context.Context) (err error) {
	cfg := m.Config
	if m.Log == nil {
		m.Log = newLogger(m.Env.Stderr, cfg.Log)
	}
	getenv := m.Env.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}

	if m.keys, err = keyring.Load(keyring.Options{Dir: cfg.DataDir, Origin: cfg.Ledger.Origin, Create: true, Getenv: getenv}); err != nil {
		return fmt.Errorf("couldn't load keys: %w", err)
	}
	dsn, err := cfg.DatabaseDSN()
	if err != nil {
		return err
	}
	if m.store, err = openStore(ctx, dsn, cfg.DataDir); err != nil {
		return fmt.Errorf("couldn't open the database: %w", err)
	}

	m.ledger, err = ledger.Open(ctx, m.store.Ledger(), ledger.Options{
		Origin: m.keys.Origin(), Signer: m.keys.LedgerSigner(), Verifier: m.keys.LedgerVerifier(),
		BodyKey: m.keys.BodyKey(), CheckpointInterval: cfg.Ledger.CheckpointInterval,
		HeartbeatInterval: cfg.Ledger.HeartbeatInterval, MaxBatch: cfg.Ledger.MaxBatch,
		Mirror: ledger.FileMirror{Path: filepath.Join(cfg.DataDir, ledger.MirrorFile)}, Log: m.Log,
	})
	if err != nil {
		return fmt.Errorf("couldn't open the ledger: %w", err)
	}

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	httpMetrics := newHTTPMetrics(registry)

	keys := &auth.Service{Store: m.store.Auth(), Agents: m.store.Inventory(), Ledger: m.ledger, CacheTTL: cfg.Auth.CacheFor()}
	// A suspension or resumption drops the authentication cache first, before
	// oversight (chained on in wireOversight) closes the agent's open work.
	inv := &inventory.Service{Store: m.store.Inventory(), Ledger: m.ledger, OnChange: func(string, string) { keys.Forget() }}

	// Background work (checkpoints, usage flushes, health checks) runs until Close.
	bg, cancel := context.WithCancel(context.Background())
	m.cancel = cancel

	// Listen first: the console and notifications need the address. Nothing is
	// served until the routes are in place.
	m.server = &http.Server{
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(m.Log.Handler(), slog.LevelWarn),
	}
	if m.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return fmt.Errorf("couldn't listen on %s: %w", cfg.Listen, err)
	}
	defer func() {
		if err != nil {
			m.ln.Close()
		}
	}()

	mux := web.NewMux(web.Errors{Log: m.Log, Render: renderByAPI})
	pol, err := m.wirePolicy(ctx, bg)
	if err != nil {
		return err
	}
	masker, _, err := gatewayPII(cfg.PII, m.keys, m.store.PIIVault())
	if err != nil {
		return fmt.Errorf("couldn't set up PII masking: %w", err)
	}
	if masker != nil {
		m.goBackground(func() { purgeVault(bg, m.Log, m.store.PIIVault(), 10*time.Minute) })
	}
	// One admin API; each subsystem's wiring adds its services, then it is registered.
	admin := &api.Server{
		Log: m.Log, Auth: keys, Keys: keys, Inventory: inv, Policy: pol, PolicyFile: cfg.Policy,
		Ledger:  api.LedgerAPI{Log: m.ledger, PublicTiles: cfg.Ledger.PublicTiles},
		Metrics: api.MetricsAPI{Handler: promhttp.HandlerFor(registry, promhttp.HandlerOpts{Registry: registry}), Public: cfg.HTTP.PublicMetrics},
	}
	aimsSvc, err := m.wireAIMS(bg, admin, inv, keys, registry, m.policyState, piiRoutes{cfg})
	if err != nil {
		return fmt.Errorf("couldn't start the AI management system: %w", err)
	}
	if err = m.wireOversight(bg, mux, admin, keys, inv, registry, aimsSvc); err != nil {
		return err
	}
	holder := oversightHolder{m.oversight.approvals}
	pipeline := m.newPipeline(pol, masker, holder, newAIMSObserver(m, bg, aimsSvc), registry)

	if _, err = m.wireLLM(mux, pipeline, keys, modelPolicy(pol), registry); err != nil {
		return err
	}
	(&decisionapi.Server{Log: m.Log, Auth: keys, Pipeline: pipeline, Approvals: holder, Ledger: m.store.Ledger()}).Register(mux)
	if _, err = m.wireMCP(mux, admin, keys, mcpDeps{Pipeline: pipeline, Preview: policyPreview(pol), Track: m.oversight.sessions.Track}); err != nil {
		return err
	}
	admin.Register(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) error {
		return web.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", m.handleReady)
	m.server.Handler = web.Middleware{Log: m.Log, MaxBodyBytes: cfg.HTTP.MaxBodyBytes, Metrics: httpMetrics.observe}.Wrap(mux)

	// The bootstrap admin token is made last, when nothing can fail any more: it is
	// shown once, by the banner below, so a start that failed after making it (a
	// port in use, a broken policy) would have locked the operator out for good.
	given := getenv("VIGIL_ADMIN_TOKEN")
	created := false
	if m.AdminToken, created, err = keys.Bootstrap(ctx, given); err != nil {
		return fmt.Errorf("couldn't create the bootstrap admin token: %w", err)
	}
	if given != "" && !created {
		m.Log.Warn("VIGIL_ADMIN_TOKEN is set but ignored: admin tokens already exist (it is used only on the first start); create more with vigil tokens create")
	}

	m.goBackground(func() {
		if err := m.ledger.Run(bg); err != nil {
			m.Log.Error("ledger integrity failure; stopping", "err", err)
			m.fatal <- fmt.Errorf("ledger: %w", err)
		}
	})
	m.goBackground(func() {
		if err := m.server.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.fatal <- fmt.Errorf("http server: %w", err)
		}
	})
	m.printBanner(dsn != "")
	m.Log.Info("vigil started", "listen", m.ln.Addr().String(), "data_dir", cfg.DataDir,
		"store", map[bool]string{true: "postgres", false: "sqlite"}[dsn != ""], "ledger_origin", m.keys.Origin())
	return nil
}

// renderByAPI renders an error in the shape of the API the request's path belongs
// to — OpenAI's under /v1/, Anthropic's under /v1/messages, Vigil's elsewhere —
// so an agent's SDK can read even a 404 or 405 that no handler produced.
func renderByAPI(w http.ResponseWriter, r *http.Request, status int, err error) {
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/v1/decisions"):
		web.RenderJSON(w, r, status, err) // Vigil's own decision API
	case p == "/v1/messages" || strings.HasPrefix(p, "/v1/messages/"):
		llmproxy.RenderAnthropicError(w, r, status, err)
	case strings.HasPrefix(p, "/v1/"):
		llmproxy.RenderOpenAIError(w, r, status, err)
	default:
		web.RenderJSON(w, r, status, err)
	}
}

// openStore opens PostgreSQL when dsn is set, else SQLite in dir. It returns a nil
// interface (never a typed nil) on error.
func openStore(ctx context.Context, dsn, dir string) (store, error) {
	if dsn != "" {
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "vigil.db"), sqlite.Options{})
	if err != nil {
		return nil, err
	}
	return db, nil
}

func (m *Main) goBackground(f func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
}

// Close stops accepting connections, lets in-flight requests finish (up to the
// shutdown timeout), then flushes the ledger and closes the store.
func (m *Main) Close() error {
	var err error
	m.closed.Do(func() {
		if m.server != nil {
			ctx, cancel := context.WithTimeout(context.Background(), m.Config.HTTP.ShutdownTimeout)
			if e := m.server.Shutdown(ctx); e != nil {
				err = errors.Join(err, fmt.Errorf("couldn't shut down HTTP cleanly: %w", e))
				m.server.Close()
			}
			cancel()
		}
		if m.cancel != nil {
			m.cancel()
		}
		m.wg.Wait()
		if m.ledger != nil {
			// Publish a last checkpoint so a clean shutdown leaves everything signed.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if e := m.ledger.PublishCheckpoint(ctx); e != nil {
				m.Log.Warn("couldn't publish the final checkpoint", "err", e)
			}
			cancel()
			err = errors.Join(err, m.ledger.Close())
		}
		if m.store != nil {
			err = errors.Join(err, m.store.Close())
		}
	})
	return err
}

func (m *Main) handleReady(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := m.store.Ping(ctx); err != nil {
		m.Log.Warn("not ready", "err", err)
		return &vigil.Error{Code: vigil.EUNAVAILABLE, Message: "database is unreachable", Err: err}
	}
	return web.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (m *Main) printBanner(postgres bool) {
	base := m.URL()
	out := m.Env.Stdout
	fmt.Fprintf(out, "Vigil is running.\n")
	fmt.Fprintf(out, "  Console:               %s/\n", base)
	fmt.Fprintf(out, "  Admin API:             %s/api/\n", base)
	fmt.Fprintf(out, "  OpenAI-compatible:     %s/v1\n", base)
	fmt.Fprintf(out, "  Anthropic-compatible:  %s (POST /v1/messages)\n", base)
	fmt.Fprintf(out, "  Health and metrics:    %s/healthz  %s/metrics\n", base, base)
	if postgres {
		fmt.Fprintf(out, "  Storage:               PostgreSQL; keys in %s\n", m.Config.DataDir)
	} else {
		fmt.Fprintf(out, "  Storage:               SQLite in %s\n", m.Config.DataDir)
	}
	fmt.Fprintf(out, "  Ledger origin:         %s\n", m.keys.Origin())
	if m.AdminToken != "" {
		fmt.Fprintf(out, "\nAdmin token (shown once; it is stored only as a hash):\n  %s\n", m.AdminToken)
		fmt.Fprintf(out, "Use it as: export VIGIL_TOKEN=%s\n", m.AdminToken)
	}
}

func newLogger(w io.Writer, c config.LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// httpMetrics counts requests by route pattern and status.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_http_requests_total", Help: "HTTP requests by route and status."}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vigil_http_request_duration_seconds", Help: "HTTP request duration by route.", Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14)}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *httpMetrics) observe(r *http.Request, status int, elapsed time.Duration) {
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	route = strings.TrimSpace(route)
	m.requests.WithLabelValues(route, fmt.Sprint(status)).Inc()
	m.duration.WithLabelValues(route).Observe(elapsed.Seconds())
}
