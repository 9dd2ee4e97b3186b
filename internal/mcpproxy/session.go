package mcpproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// maxFinishedStreams bounds the finished streams a session keeps for resumption.
const maxFinishedStreams = 32

// session is one agent's MCP session through Vigil: the client side (its streams,
// the calls it has in flight) and the upstream side (an upstream of its own, or the
// server's shared one for a request of the stateless revision).
//
// Everything the client sends passes to the server as it is, except: request ids are
// Vigil's own upstream (and mapped back), tools/list is filtered, and tools/call,
// resources/read and prompts/get go through the governance pipeline. Everything the
// server sends passes to the client as it is, routed to the stream of the call it
// relates to.
type session struct {
	g         *Gateway
	srv       *server
	id        string // Mcp-Session-Id; a random id for a stateless exchange
	actor     vigil.Actor
	stateless bool
	up        *upstream
	ctx       context.Context // ends when the session closes
	cancel    context.CancelFunc
	untrack   func() // releases the kill switch's registration
	created   time.Time

	streamSeq atomic.Uint64 // numbers POST streams in creation order

	mu         sync.Mutex
	streams    map[string]*stream // POST streams by id
	finished   []string           // ids of finished streams kept for resumption, oldest first
	standalone *stream
	calls      map[string]*clientCall // by idKey of the client's id
	tokens     map[string]*clientCall // by rawKey of the progress token
	toClient   map[string]*serverCall // server requests in flight, by idKey
	lastUsed   time.Time
	closed     bool
	version    string // the negotiated protocol version
	catalog    *catalog
}

// clientCall is a request of the client that awaits its response.
type clientCall struct {
	id     jsonrpc.ID
	key    string
	method string
	stream *stream
	ctx    context.Context // ends when the call is answered, cancelled or the session closes
	cancel context.CancelFunc
	upID   atomic.Int64 // the id upstream, once forwarded
	token  json.RawMessage
	// heldProgress is the last progress value Vigil itself reported while the call
	// waited for approval; the server's own progress is shifted above it, so the
	// client sees progress that only increases.
	heldProgress atomic.Uint64 // math.Float64bits
	done         atomic.Bool
	// flight is the governed call's flight once it passed the pipeline: the server's
	// progress messages go through it on their way to the client.
	flight atomic.Pointer[enforce.Flight]
}

func (s *session) short() string {
	if len(s.id) > 8 {
		return s.id[:8]
	}
	return s.id
}

func (s *session) touch() {
	s.mu.Lock()
	s.lastUsed = time.Now()
	s.mu.Unlock()
}

// errSessionClosed: the session ended while a request for it arrived.
var errSessionClosed = errors.New("session closed")

// errDuplicateID: the client reused the id of a request still in flight.
var errDuplicateID = errors.New("a request with this id is already in flight in this session")

// register records a call of a POST on its stream.
func (s *session) register(st *stream, req *jsonrpc.Request) (*clientCall, error) {
	key := idKey(req.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errSessionClosed
	}
	if _, dup := s.calls[key]; dup {
		return nil, errDuplicateID
	}
	cc := &clientCall{id: req.ID, key: key, method: req.Method, stream: st}
	cc.ctx, cc.cancel = context.WithCancel(s.ctx)
	if p, err := decodeObject(req.Params); err == nil {
		if t := progressToken(p); t != nil {
			cc.token = t
			if k := rawKey(t); k != "" {
				s.tokens[k] = cc
			}
		}
	}
	s.calls[key] = cc
	return cc, nil
}

// finish marks cc answered (or abandoned) and forgets it. It reports false when it
// was already finished: a call is answered at most once.
func (s *session) finish(cc *clientCall) bool {
	if !cc.done.CompareAndSwap(false, true) {
		return false
	}
	s.mu.Lock()
	if s.calls[cc.key] == cc {
		delete(s.calls, cc.key)
	}
	if cc.token != nil {
		if k := rawKey(cc.token); s.tokens[k] == cc {
			delete(s.tokens, k)
		}
	}
	s.mu.Unlock()
	cc.cancel()
	return true
}

// answer sends the response to cc, with the client's own id.
func (s *session) answer(cc *clientCall, r *jsonrpc.Response) {
	if cc == nil || !s.finish(cc) {
		return
	}
	out := &jsonrpc.Response{ID: cc.id, Result: r.Result, Error: r.Error}
	cc.stream.send(encode(out), cc.key)
	s.retire(cc.stream)
}

// answerError answers cc with a JSON-RPC error.
func (s *session) answerError(cc *clientCall, jerr *jsonrpc.Error) {
	s.answer(cc, &jsonrpc.Response{Error: jerr})
}

// answerResult answers cc with a result.
func (s *session) answerResult(cc *clientCall, result json.RawMessage) {
	s.answer(cc, &jsonrpc.Response{Result: result})
}

// retire moves a finished stream out of the live set, keeping it for resumption
// only when the client may still want some of it.
func (s *session) retire(st *stream) {
	if st.open() || st.id == "" {
		return
	}
	delivered := st.live()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams[st.id] != st {
		return
	}
	if delivered {
		delete(s.streams, st.id)
		return
	}
	s.finished = append(s.finished, st.id)
	for len(s.finished) > maxFinishedStreams {
		delete(s.streams, s.finished[0])
		s.finished = s.finished[1:]
	}
}

// target picks the stream for a message the server sent: the stream of the call it
// relates to, else the standalone stream when a client listens on it, else the most
// recent stream still open (the spec lets a server send such messages on any
// response stream), else the standalone stream, where it waits for a GET.
func (s *session) target(p *pending) *stream {
	if p != nil && p.call != nil && !p.call.done.Load() {
		return p.call.stream
	}
	s.mu.Lock()
	sa := s.standalone
	var latest *stream
	for _, cc := range s.calls {
		if latest == nil || cc.stream.seq > latest.seq {
			latest = cc.stream
		}
	}
	s.mu.Unlock()
	if sa != nil && sa.live() {
		return sa
	}
	if latest != nil {
		return latest
	}
	return sa
}

// fromUpstream relays a notification or request the server sent.
func (s *session) fromUpstream(m *jsonrpc.Request, p *pending) {
	if m.IsCall() {
		st := s.target(p)
		if st == nil {
			return
		}
		sc := &serverCall{stream: st}
		if _, governed := governedServerRequests[m.Method]; governed {
			var ok bool
			if m, ok = s.serverRequest(m, p, sc); !ok {
				return
			}
		}
		s.mu.Lock()
		s.toClient[idKey(m.ID)] = sc
		s.mu.Unlock()
		st.send(encode(m), "")
		return
	}
	switch m.Method {
	case "notifications/progress":
		s.relayProgress(m, p)
		return
	case "notifications/tasks/status", "notifications/tasks":
		// Only this session's tasks, through their flights (tasks.go).
		var ok bool
		if m, ok = s.taskNotification(m); !ok {
			return
		}
	case "notifications/tools/list_changed":
		s.catalog.invalidate()
	case "notifications/cancelled":
		// The server gave up one of its own requests: tell the stream that carried it.
		if params, err := decodeObject(m.Params); err == nil {
			key := rawKey(params["requestId"])
			s.mu.Lock()
			sc := s.toClient[key] // rawKey and idKey agree on string and integer ids
			delete(s.toClient, key)
			s.mu.Unlock()
			if sc != nil {
				sc.stream.send(encode(m), "")
				return
			}
		}
	}
	if st := s.target(p); st != nil {
		st.send(encode(m), "")
	}
}

// relayProgress routes a progress notification to the call that owns its token.
func (s *session) relayProgress(m *jsonrpc.Request, p *pending) {
	params, err := decodeObject(m.Params)
	if err != nil {
		return
	}
	key := rawKey(params["progressToken"])
	s.mu.Lock()
	cc := s.tokens[key]
	s.mu.Unlock()
	if cc == nil {
		// A task's progress goes on after its call was answered with the handle.
		if t := s.srv.tasks.byToken(s.taskOwner(), s.actor.ID, key); t != nil {
			if params, ok := maskProgress(s.ctx, t.flight, params); ok {
				m = &jsonrpc.Request{Method: m.Method, Params: params.encode()}
			} else {
				return // fail-closed: not relayed
			}
		}
		if st := s.target(p); st != nil {
			st.send(encode(m), "")
		}
		return
	}
	if f := cc.flight.Load(); f != nil && len(params["message"]) > 0 {
		var ok bool
		if params, ok = maskProgress(cc.ctx, f, params); !ok {
			return // fail-closed: not relayed
		}
		m = &jsonrpc.Request{Method: m.Method, Params: params.encode()}
	}
	if base := cc.held(); base > 0 {
		params = shiftProgress(params, base)
		m = &jsonrpc.Request{Method: m.Method, Params: params.encode()}
	}
	cc.stream.send(encode(m), "")
}

// fromClient handles one message of a POST. Calls were registered on st already.
func (s *session) fromClient(m jsonrpc.Message, cc *clientCall) {
	switch m := m.(type) {
	case *jsonrpc.Response:
		s.mu.Lock()
		sc := s.toClient[idKey(m.ID)]
		delete(s.toClient, idKey(m.ID))
		s.mu.Unlock()
		if sc != nil && sc.event != "" {
			m = s.serverResult(sc, m)
		}
		s.forward(m)
	case *jsonrpc.Request:
		if !m.IsCall() {
			s.notification(m)
			return
		}
		switch m.Method {
		case "initialize":
			s.up.setInit(m.Params)
			s.intercept(cc, m, s.afterInitialize)
		case "tools/list":
			s.intercept(cc, m, s.filterToolList)
		case "tools/call":
			s.governed(cc, m, s.callTool)
		case "resources/read":
			s.governed(cc, m, s.readResource)
		case "prompts/get":
			s.governed(cc, m, s.getPrompt)
		case "tasks/get", "tasks/result", "tasks/cancel", "tasks/update":
			method := m.Method
			s.governed(cc, m, func(cc *clientCall, params object) { s.taskCall(cc, method, params) })
		case "tasks/list":
			s.intercept(cc, m, s.filterTaskList)
		case "logging/setLevel", "resources/subscribe", "resources/unsubscribe":
			if s.stateless {
				s.passThrough(cc, m)
				return
			}
			// Session state: what the server accepts is replayed after a restart.
			method, params := m.Method, m.Params
			s.intercept(cc, m, func(cc *clientCall, r *jsonrpc.Response) {
				if r.Error == nil {
					s.up.remember(method, params)
				}
				s.answer(cc, r)
			})
		default:
			s.passThrough(cc, m)
		}
	}
}

// notification handles a client notification.
func (s *session) notification(m *jsonrpc.Request) {
	switch m.Method {
	case "notifications/cancelled":
		params, err := decodeObject(m.Params)
		if err != nil {
			return
		}
		s.mu.Lock()
		cc := s.calls[rawKey(params["requestId"])]
		s.mu.Unlock()
		if cc == nil || !s.finish(cc) {
			return // answered already, or never seen: nothing to cancel
		}
		cc.stream.drop(cc.key)
		s.retire(cc.stream)
		if id := cc.upID.Load(); id != 0 {
			go s.up.cancel(id, params.str("reason"))
		}
		return
	case "notifications/initialized":
		s.up.setInitialized()
	}
	s.forward(m)
}

// forward sends a message upstream as it is, in the background: a client's POST of
// a notification is answered 202 at once, and order per client is kept by the
// connection's write queue once it is up.
func (s *session) forward(m jsonrpc.Message) {
	ctx, cancel := context.WithTimeout(s.ctx, s.srv.startup)
	defer cancel()
	if err := s.up.forward(ctx, m); err != nil {
		s.g.log.Debug("couldn't forward a message to the MCP server", "server", s.srv.name, "session", s.short(), "err", err)
	}
}

// passThrough forwards a call as it is; its response goes straight to the client.
func (s *session) passThrough(cc *clientCall, m *jsonrpc.Request) {
	if err := s.up.call(cc.ctx, m.Method, m.Params, &pending{sess: s, call: cc}); err != nil {
		s.answerError(cc, upstreamError(s.srv.name, err))
	}
}

// intercept forwards a call and hands its response to after before the client
// sees it.
func (s *session) intercept(cc *clientCall, m *jsonrpc.Request, after func(cc *clientCall, r *jsonrpc.Response)) {
	s.g.wg.Add(1)
	go func() {
		defer s.g.wg.Done()
		defer s.recoverCall(cc)
		r, err := s.request(cc.ctx, cc, m.Method, m.Params)
		if err != nil {
			s.answerError(cc, upstreamError(s.srv.name, err))
			return
		}
		after(cc, r)
	}()
}

// governed runs a call through the pipeline in the background (it may be held for a
// human for a long time).
func (s *session) governed(cc *clientCall, m *jsonrpc.Request, run func(cc *clientCall, params object)) {
	params, err := decodeObject(m.Params)
	if err != nil {
		s.answerError(cc, &jsonrpc.Error{Code: codeInvalidParams, Message: "params must be an object"})
		return
	}
	s.g.wg.Add(1)
	go func() {
		defer s.g.wg.Done()
		defer s.recoverCall(cc)
		run(cc, params)
	}()
}

// recoverCall turns a panic while handling a call (a bug, here or in a pipeline
// step) into an internal error for that call, so one call cannot take the gateway and
// every other session down. It is deferred by the goroutines that handle calls.
func (s *session) recoverCall(cc *clientCall) {
	p := recover()
	if p == nil {
		return
	}
	s.g.log.Error("panic handling an MCP call", "server", s.srv.name, "method", cc.method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	err := &vigil.Error{Code: vigil.EINTERNAL, Message: "internal error in Vigil; the call was not completed"}
	if cc.method == "tools/call" {
		s.answerResult(cc, toolError(err))
		return
	}
	s.answerError(cc, vigilError(err))
}

// request sends a call upstream and waits for its response, within the server's
// request timeout. A cancelled or timed-out call is cancelled upstream too.
func (s *session) request(ctx context.Context, cc *clientCall, method string, params json.RawMessage) (*jsonrpc.Response, error) {
	return s.requestWithin(ctx, cc, method, params, s.srv.request)
}

// requestWithin is request with its own timeout; 0 waits as long as ctx lets it.
func (s *session) requestWithin(ctx context.Context, cc *clientCall, method string, params json.RawMessage, timeout time.Duration) (*jsonrpc.Response, error) {
	p := &pending{sess: s, call: cc, reply: make(chan *jsonrpc.Response, 1)}
	cancel := context.CancelFunc(func() {})
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, timeout)
	}
	defer cancel()
	if err := s.up.call(ctx, method, params, p); err != nil {
		return nil, err
	}
	select {
	case r := <-p.reply:
		return r, nil
	case <-ctx.Done():
		var id int64
		if cc != nil {
			id = cc.upID.Load()
		}
		go s.up.cancel(id, "the client cancelled the request, or it timed out in Vigil")
		if ctx.Err() == context.DeadlineExceeded {
			return nil, errTimeout{timeout}
		}
		return nil, ctx.Err()
	}
}

// afterInitialize notes the negotiated protocol version.
func (s *session) afterInitialize(cc *clientCall, r *jsonrpc.Response) {
	if r.Error == nil {
		var res struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		if json.Unmarshal(r.Result, &res) == nil {
			s.mu.Lock()
			s.version = res.ProtocolVersion
			s.mu.Unlock()
		}
	}
	s.answer(cc, r)
}

// close ends the session: calls in flight are cancelled (held approvals included),
// streams released, the upstream session ended (its process stopped).
func (s *session) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	streams := make([]*stream, 0, len(s.streams)+1)
	for _, st := range s.streams {
		streams = append(streams, st)
	}
	if s.standalone != nil {
		streams = append(streams, s.standalone)
	}
	var abandoned []int64
	if s.stateless {
		// The shared upstream outlives the exchange: tell the server, and forget the
		// calls it has not answered.
		for _, cc := range s.calls {
			if id := cc.upID.Load(); id != 0 {
				abandoned = append(abandoned, id)
			}
		}
	}
	s.mu.Unlock()
	s.cancel()
	s.untrack()
	for _, id := range abandoned {
		go s.up.cancel(id, "the client went away")
	}
	for _, st := range streams {
		st.end()
	}
	if !s.stateless {
		s.g.wg.Add(1)
		go func() {
			defer s.g.wg.Done()
			s.up.close()
			for _, t := range s.srv.tasks.drop(s.id) {
				t.abandon(s.g.log, 499, vigil.EUPSTREAM, "the MCP session ended before the task's result was fetched")
			}
		}()
	}
}
