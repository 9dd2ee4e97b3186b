package mcpproxy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/mcpproxy/pins"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Defaults for ServerConfig.
const (
	DefaultStartupTimeout = 30 * time.Second
	DefaultRequestTimeout = 10 * time.Minute
	DefaultSessionIdle    = 30 * time.Minute
	DefaultMaxSessions    = 64
	// statelessCatalogTTL is how long the tool definitions seen by a stateless
	// exchange serve later exchanges of the same server.
	statelessCatalogTTL = 30 * time.Second
)

// baseEnv are the variables of Vigil's environment a server process inherits; the
// rest of Vigil's environment (its own secrets) never reaches a server.
var baseEnv = []string{"PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "TZ"}

// AgentAuthenticator resolves an agent API key to its actor. It MUST refuse keys of
// suspended agents and systems (ESUSPENDED) and unknown keys (EUNAUTHORIZED).
type AgentAuthenticator interface {
	AuthenticateAgent(ctx context.Context, secret string) (vigil.Actor, error)
}

// ServerConfig is one upstream MCP server. Exactly one of Command and URL is set.
type ServerConfig struct {
	// Name is the server's name: served at /mcp/{Name}, tool.server in policy.
	Name string
	// Command starts a stdio server; Dir is its working directory and Env its
	// environment on top of the base variables (PATH, HOME, USER, LANG, LC_ALL,
	// TMPDIR, TZ).
	Command []string
	Dir     string
	Env     map[string]string
	// URL is a streamable HTTP server; Headers go with every request to it.
	URL     string
	Headers map[string]string
	// Secrets are values removed from the server's logged stderr.
	Secrets []string
	// Pinning is the server's pin mode. Default pins.ModePin.
	Pinning pins.Mode
	// StartupTimeout bounds waiting for the server to be ready. Default 30s.
	StartupTimeout time.Duration
	// RequestTimeout bounds a governed call upstream (holds excluded). Default 10m.
	RequestTimeout time.Duration
	// SessionIdle closes a session after this long without a request. Default 30m.
	SessionIdle time.Duration
	// MaxSessions caps the open sessions on this server. Default 64.
	MaxSessions int
}

// Options configure a Gateway.
type Options struct {
	Servers []ServerConfig
	Auth    AgentAuthenticator
	// Pipeline governs tools/call, resources/read and prompts/get. Its Ledger also
	// records refusals Vigil makes before policy (pinning).
	Pipeline *enforce.Pipeline
	// Preview decides whether a tool may be listed. It MUST NOT hold, record or count
	// usage. Nil uses Pipeline.Policy.Decide (which may count usage).
	Preview func(ctx context.Context, a vigil.Action) (vigil.Decision, error)
	// Pins pins tool definitions; nil pins nothing (every server as in mode off).
	Pins *pins.Service
	// Getenv reads Vigil's environment for the base variables of server processes.
	// Default os.Getenv.
	Getenv func(string) string
	// Track, if set, registers each session with the kill switch (oversight's
	// Sessions.Track): the session closes when the context it returns is cancelled,
	// and calls done when it ends. CloseAgent and CloseSystem do the same directly.
	Track func(ctx context.Context, agent vigil.Actor) (context.Context, func())
	// HTTPClient reaches URL servers. Default: a client without timeouts (response
	// streams are long; requests are bounded by the servers' timeouts).
	HTTPClient *http.Client
	Log        *slog.Logger
}

// server is a configured upstream, ready to dial.
type server struct {
	name        string
	pinning     pins.Mode
	startup     time.Duration
	request     time.Duration
	idle        time.Duration
	maxSessions int
	log         *slog.Logger
	dial        func(recv receiver) (conn, error)
	// shared serves the stateless revision; sharedCatalog is what its exchanges know.
	shared        *upstream
	sharedCatalog *catalog
	// tasks are the tasks started through Vigil on this server (tasks.go).
	tasks *taskBook
	// ephemeral: the server is a process Vigil runs, whose state (tasks included)
	// dies with it.
	ephemeral bool
}

// Gateway is the MCP ingress: /mcp/{server} for every configured server. It is safe
// for concurrent use.
type Gateway struct {
	log      *slog.Logger
	auth     AgentAuthenticator
	pipeline *enforce.Pipeline
	pins     *pins.Service
	preview  func(ctx context.Context, a vigil.Action) (vigil.Decision, error)
	track    func(ctx context.Context, agent vigil.Actor) (context.Context, func())
	servers  map[string]*server

	mu        sync.Mutex
	sessions  map[string]*session   // stateful sessions by id
	exchanges map[*session]struct{} // stateless exchanges in flight
	closed    bool

	wg        tasks // call goroutines, upstream shutdowns
	stop      chan struct{}
	closeOnce sync.Once
	done      chan struct{}
}

// New checks opts and returns a gateway. Servers are started on demand, when an
// agent opens a session.
func New(opts Options) (*Gateway, error) {
	if opts.Auth == nil || opts.Pipeline == nil {
		return nil, errors.New("mcpproxy: Auth and Pipeline are required")
	}
	if opts.Pipeline.Policy == nil || opts.Pipeline.Ledger == nil {
		return nil, errors.New("mcpproxy: the pipeline needs a Policy and a Ledger")
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	g := &Gateway{
		log: log, auth: opts.Auth, pipeline: opts.Pipeline, pins: opts.Pins, preview: opts.Preview, track: opts.Track,
		servers: map[string]*server{}, sessions: map[string]*session{}, exchanges: map[*session]struct{}{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	if g.preview == nil {
		g.preview = opts.Pipeline.Policy.Decide
	}
	minIdle := time.Duration(0)
	for _, c := range opts.Servers {
		if _, dup := g.servers[c.Name]; dup || c.Name == "" {
			return nil, fmt.Errorf("mcpproxy: server name %q is empty or used twice", c.Name)
		}
		if (len(c.Command) == 0) == (c.URL == "") {
			return nil, fmt.Errorf("mcpproxy: server %s: set exactly one of Command and URL", c.Name)
		}
		srv := &server{
			name: c.Name, pinning: c.Pinning, startup: c.StartupTimeout, request: c.RequestTimeout,
			idle: c.SessionIdle, maxSessions: c.MaxSessions, log: log,
			sharedCatalog: &catalog{ttl: statelessCatalogTTL}, tasks: newTaskBook(), ephemeral: len(c.Command) > 0,
		}
		if srv.pinning == "" {
			srv.pinning = pins.ModePin
		}
		if srv.startup <= 0 {
			srv.startup = DefaultStartupTimeout
		}
		if srv.request <= 0 {
			srv.request = DefaultRequestTimeout
		}
		if srv.idle <= 0 {
			srv.idle = DefaultSessionIdle
		}
		if srv.maxSessions <= 0 {
			srv.maxSessions = DefaultMaxSessions
		}
		if minIdle == 0 || srv.idle < minIdle {
			minIdle = srv.idle
		}
		if len(c.Command) > 0 {
			spec := processSpec{server: c.Name, command: c.Command, dir: c.Dir, env: processEnv(getenv, c.Env), secrets: c.Secrets, log: log}
			srv.dial = func(recv receiver) (conn, error) { return startProcess(spec, recv) }
		} else {
			spec := httpSpec{server: c.Name, endpoint: c.URL, headers: c.Headers, client: client, log: log}
			srv.dial = func(recv receiver) (conn, error) { return newHTTPConn(spec, recv), nil }
		}
		srv.shared = newUpstream(srv, nil)
		g.servers[c.Name] = srv
	}
	if minIdle > 0 {
		go g.reap(max(minIdle/4, time.Second))
	}
	return g, nil
}

// processEnv is the environment of a server process: the base variables from
// Vigil's environment, then the server's own.
func processEnv(getenv func(string) string, extra map[string]string) []string {
	var env []string
	for _, k := range baseEnv {
		if _, own := extra[k]; own {
			continue
		}
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	return env
}

func newSessionID() string { return rand.Text() }

// openSession starts a stateful session for actor on srv.
func (g *Gateway) openSession(srv *server, actor vigil.Actor) (*session, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, vigil.Errorf(vigil.EUNAVAILABLE, "Vigil is shutting down")
	}
	n := 0
	for _, s := range g.sessions {
		if s.srv == srv {
			n++
		}
	}
	if n >= srv.maxSessions {
		return nil, vigil.Errorf(vigil.EUNAVAILABLE, "MCP server %s has reached its limit of %d open sessions; close one (DELETE) or try later", srv.name, srv.maxSessions)
	}
	s := g.newSession(srv, actor, context.Background(), false)
	s.up = newUpstream(srv, s)
	g.sessions[s.id] = s
	return s, nil
}

// openExchange starts a stateless exchange (one POST of the 2026-07-28 revision) for
// actor on srv's shared upstream. It ends with the request.
func (g *Gateway) openExchange(ctx context.Context, srv *server, actor vigil.Actor) (*session, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, vigil.Errorf(vigil.EUNAVAILABLE, "Vigil is shutting down")
	}
	s := g.newSession(srv, actor, ctx, true)
	s.up = srv.shared
	g.exchanges[s] = struct{}{}
	return s, nil
}

func (g *Gateway) newSession(srv *server, actor vigil.Actor, parent context.Context, stateless bool) *session {
	untrack := func() {}
	if g.track != nil {
		parent, untrack = g.track(parent, actor)
	}
	ctx, cancel := context.WithCancel(parent)
	s := &session{untrack: untrack,
		g: g, srv: srv, id: newSessionID(), actor: actor, stateless: stateless, ctx: ctx, cancel: cancel,
		created: time.Now(), lastUsed: time.Now(),
		streams: map[string]*stream{}, calls: map[string]*clientCall{}, tokens: map[string]*clientCall{},
		toClient: map[string]*serverCall{},
	}
	if stateless {
		s.catalog = srv.sharedCatalog
	} else {
		s.catalog = &catalog{}
		s.standalone = newStream("", true, false, false, nil)
	}
	if g.track != nil {
		// The kill switch cancels the tracked context: close the session then.
		go func() {
			<-parent.Done()
			g.closeSession(s)
		}()
	}
	return s
}

// lookup finds the session sid of srv opened by actor. Another agent's session is
// reported as not found: a session id is no credential.
func (g *Gateway) lookup(srv *server, sid string, actor vigil.Actor) *session {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.sessions[sid]
	if s == nil || s.srv != srv || s.actor.ID != actor.ID {
		return nil
	}
	return s
}

// closeSession ends s and forgets it.
func (g *Gateway) closeSession(s *session) {
	g.mu.Lock()
	if s.stateless {
		delete(g.exchanges, s)
	} else if g.sessions[s.id] == s {
		delete(g.sessions, s.id)
	}
	g.mu.Unlock()
	s.close()
}

// CloseAgent closes every MCP session of an agent — the kill switch calls it when
// the agent is suspended — and returns how many it closed. Calls in flight end
// (held approvals are cancelled), and the agent's next request is authenticated
// again, so a suspended agent gets a clear refusal.
func (g *Gateway) CloseAgent(agentID string) int {
	return g.closeWhere(func(a vigil.Actor) bool { return a.ID == agentID })
}

// CloseSystem closes every MCP session of the agents of an AI system.
func (g *Gateway) CloseSystem(systemID string) int {
	return g.closeWhere(func(a vigil.Actor) bool { return a.SystemID == systemID })
}

func (g *Gateway) closeWhere(match func(vigil.Actor) bool) int {
	g.mu.Lock()
	var victims []*session
	for _, s := range g.sessions {
		if match(s.actor) {
			victims = append(victims, s)
		}
	}
	for s := range g.exchanges {
		if match(s.actor) {
			victims = append(victims, s)
		}
	}
	g.mu.Unlock()
	for _, s := range victims {
		g.log.Info("closing MCP session", "server", s.srv.name, "session", s.short(), "agent", s.actor.Name)
		g.closeSession(s)
	}
	return len(victims)
}

// SessionInfo describes an open session for operators.
type SessionInfo struct {
	// ID is the session id's first characters (enough to tell sessions apart, not
	// enough to use one).
	ID        string    `json:"id"`
	Server    string    `json:"server"`
	AgentID   string    `json:"agent_id"`
	Agent     string    `json:"agent"`
	SystemID  string    `json:"system_id"`
	Created   time.Time `json:"created"`
	LastUsed  time.Time `json:"last_used"`
	Protocol  string    `json:"protocol,omitempty"`
	Calls     int       `json:"calls_in_flight"`
	PID       int       `json:"pid,omitempty"`
	Restarts  int       `json:"restarts"`
	Stateless bool      `json:"stateless,omitempty"`
}

// Sessions lists the open sessions and stateless exchanges, oldest first.
func (g *Gateway) Sessions() []SessionInfo {
	g.mu.Lock()
	all := make([]*session, 0, len(g.sessions)+len(g.exchanges))
	for _, s := range g.sessions {
		all = append(all, s)
	}
	for s := range g.exchanges {
		all = append(all, s)
	}
	g.mu.Unlock()
	out := make([]SessionInfo, 0, len(all))
	for _, s := range all {
		s.mu.Lock()
		in := SessionInfo{ID: s.short(), Server: s.srv.name, AgentID: s.actor.ID, Agent: s.actor.Name, SystemID: s.actor.SystemID,
			Created: s.created, LastUsed: s.lastUsed, Protocol: s.version, Calls: len(s.calls), Stateless: s.stateless}
		s.mu.Unlock()
		if !s.stateless {
			in.PID, in.Restarts = s.up.info()
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

// Servers lists the configured server names.
func (g *Gateway) Servers() []string {
	names := make([]string, 0, len(g.servers))
	for n := range g.servers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// reap closes sessions idle for longer than their server allows. A session with a
// stream a client listens on, or a call in flight, is not idle.
func (g *Gateway) reap(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		g.expireTasks(time.Now())
		g.mu.Lock()
		var idle []*session
		for _, s := range g.sessions {
			if s.idleFor() > s.srv.idle {
				idle = append(idle, s)
			}
		}
		g.mu.Unlock()
		for _, s := range idle {
			g.log.Info("closing idle MCP session", "server", s.srv.name, "session", s.short(), "agent", s.actor.Name)
			g.closeSession(s)
		}
	}
}

// idleFor is how long the session has had no request, no call in flight and no
// listening client.
func (s *session) idleFor() time.Duration {
	s.mu.Lock()
	busy := len(s.calls) > 0
	last := s.lastUsed
	sa := s.standalone
	s.mu.Unlock()
	if busy || sa != nil && sa.live() {
		return 0
	}
	return time.Since(last)
}

// Close ends every session, stops every server process and waits for calls in
// flight to be recorded. It is safe to call more than once.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		g.mu.Lock()
		g.closed = true
		var all []*session
		for _, s := range g.sessions {
			all = append(all, s)
		}
		for s := range g.exchanges {
			all = append(all, s)
		}
		g.mu.Unlock()
		close(g.stop)
		for _, s := range all {
			g.closeSession(s)
		}
		for _, srv := range g.servers {
			g.wg.Add(1)
			go func() {
				defer g.wg.Done()
				srv.shared.close()
			}()
		}
		g.wg.Wait()
		close(g.done)
	})
	return nil
}

// Wait blocks until Close has finished.
func (g *Gateway) Wait() { <-g.done }

// serverNames is for messages: the configured names.
func (g *Gateway) serverNames() string {
	return strings.Join(g.Servers(), ", ")
}

// tasks counts goroutines that must finish before Close returns. Unlike a
// sync.WaitGroup it may gain tasks while Close waits (a call that arrived as the
// gateway closed): Wait returns when the count reaches zero.
type tasks struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n drops to zero while someone waits
}

func (t *tasks) Add(n int) {
	t.mu.Lock()
	t.n += n
	t.mu.Unlock()
}

func (t *tasks) Done() {
	t.mu.Lock()
	t.n--
	if t.n == 0 && t.zero != nil {
		close(t.zero)
		t.zero = nil
	}
	t.mu.Unlock()
}

func (t *tasks) Wait() {
	t.mu.Lock()
	if t.n == 0 {
		t.mu.Unlock()
		return
	}
	if t.zero == nil {
		t.zero = make(chan struct{})
	}
	ch := t.zero
	t.mu.Unlock()
	<-ch
}
