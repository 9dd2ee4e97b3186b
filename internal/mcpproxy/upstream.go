package mcpproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// Restart backoff of a crashed server.
const (
	restartInitial = 200 * time.Millisecond
	restartMax     = 30 * time.Second
	// restartStable is how long a server must have lived for its next crash to
	// restart it without delay.
	restartStable = time.Minute
)

// upstream is the relay's side of one upstream MCP session: the live connection,
// and the calls in flight on it under the ids Vigil gave them (client ids are
// rewritten, so that Vigil's own requests, and several clients on one shared
// connection, never collide).
//
// An owned upstream belongs to one agent session; its supervisor restarts a crashed
// server with backoff and replays the client's initialize on the new one. The
// shared upstream of a server serves requests of the stateless 2026-07-28 revision;
// it is (re)started on demand.
type upstream struct {
	srv   *server
	owner *session // receives what the server sends outside any call; nil when shared

	mu       sync.Mutex
	conn     conn
	ready    chan struct{} // closed when conn is usable or a start failed; replaced per start
	startErr error         // why the last start failed
	dialing  bool          // shared: a start is under way
	lastDial time.Time     // shared: when the last start began
	backoff  time.Duration // shared: the wait before the next start after a failure
	nextID   int64
	pending  map[int64]*pending
	// tokens maps the progress tokens Vigil gives calls on the shared upstream (where
	// several clients' tokens could collide) to the calls' upstream ids.
	tokens map[string]int64
	init   json.RawMessage // params of the client's initialize, replayed after a restart
	inited bool            // the client sent notifications/initialized
	// level and subs are the session state the client set after initialize, replayed
	// after a restart too: its last logging/setLevel, its resource subscriptions (in
	// the order made).
	level    json.RawMessage
	subs     []subscription
	closed   bool
	stop     chan struct{}
	restarts int
	stopped  chan struct{} // closed when the supervisor (owned) has stopped the server
}

// pending is a call in flight upstream.
type pending struct {
	sess *session
	call *clientCall // the client's call; nil for Vigil's own requests
	// reply, when set, receives the response instead of the client: the relay
	// has work to do on it (governed calls, tools/list, Vigil's own requests).
	reply chan *jsonrpc.Response
	// token is the progress token Vigil gave the call upstream (shared upstream).
	token string
	// sending is set (under upstream.mu) while the call is being written: if the
	// connection dies meanwhile, the writer reports the failure, not failAll, which
	// only marks the call orphaned.
	sending, orphaned bool
}

func (p *pending) deliver(r *jsonrpc.Response) {
	if p.reply != nil {
		select {
		case p.reply <- r:
		default: // already answered (a crash raced the response)
		}
		return
	}
	p.sess.answer(p.call, r)
}

func newUpstream(srv *server, owner *session) *upstream {
	u := &upstream{srv: srv, owner: owner, ready: make(chan struct{}), pending: map[int64]*pending{}, tokens: map[string]int64{},
		stop: make(chan struct{}), stopped: make(chan struct{}), backoff: restartInitial}
	if owner != nil {
		go u.supervise()
	} else {
		close(u.stopped)
	}
	return u
}

func (u *upstream) dial() (conn, error) {
	return u.srv.dial(u.receive)
}

// supervise keeps an owned upstream's server running until close.
func (u *upstream) supervise() {
	defer close(u.stopped)
	backoff := restartInitial
	restarted := false // the first server gets the client's own initialize
	for {
		started := time.Now()
		c, err := u.dial()
		if err == nil && restarted {
			err = u.replay(c)
			if err != nil {
				c.close()
			}
		}
		if err != nil {
			u.srv.log.Warn("couldn't start MCP server; retrying", "server", u.srv.name, "session", u.owner.short(), "retry_in", backoff, "err", err)
			u.setFailed(err)
		} else {
			u.setConn(c)
			restarted = true
			select {
			case <-c.done():
			case <-u.stop:
				c.close()
				u.failAll(errConnClosed)
				return
			}
			cause := c.cause()
			u.srv.log.Warn("MCP server stopped; restarting it", "server", u.srv.name, "session", u.owner.short(), "err", cause)
			if u.srv.ephemeral {
				// Before the calls in flight fail: a client that sees the failure and
				// asks for a task's result must hear that it is lost.
				u.srv.tasks.lose(u.srv.log, u.owner.id, u.srv.name)
			}
			u.lost(c, cause)
			c.close() // what the dead connection still runs (an HTTP stream, a process group)
			if time.Since(started) > restartStable {
				backoff = restartInitial
			}
		}
		select {
		case <-time.After(backoff):
		case <-u.stop:
			u.failAll(errConnClosed)
			return
		}
		backoff = min(backoff*2, restartMax)
	}
}

// subscription is a resources/subscribe the server accepted: its uri and params.
type subscription struct {
	uri    string
	params json.RawMessage
}

// replay brings a restarted server to where the client believes it is: initialized
// with the client's own initialize parameters, then given the session state the
// client set since (its log level, its resource subscriptions), so that the session
// goes on as the client expects. The server refusing that state is logged, not
// fatal: the session still works, as it would have with a server that refused it.
func (u *upstream) replay(c conn) error {
	u.mu.Lock()
	init, inited, level := u.init, u.inited, u.level
	subs := append([]subscription(nil), u.subs...)
	u.mu.Unlock()
	if init == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), u.srv.startup)
	defer cancel()
	r, err := u.replayCall(ctx, c, "initialize", init)
	if err != nil {
		return fmt.Errorf("couldn't initialize the restarted server: %w", err)
	}
	if r.Error != nil {
		return fmt.Errorf("the restarted server refused initialize: %w", r.Error)
	}
	if inited {
		if err := c.send(ctx, &jsonrpc.Request{Method: "notifications/initialized", Params: json.RawMessage(`{}`)}); err != nil {
			return fmt.Errorf("couldn't initialize the restarted server: %w", err)
		}
		type call struct {
			method string
			params json.RawMessage
		}
		var state []call
		if level != nil {
			state = append(state, call{"logging/setLevel", level})
		}
		for _, sub := range subs {
			state = append(state, call{"resources/subscribe", sub.params})
		}
		for _, st := range state {
			r, err := u.replayCall(ctx, c, st.method, st.params)
			if err != nil {
				return fmt.Errorf("couldn't restore the session state on the restarted server: %w", err)
			}
			if r.Error != nil {
				u.srv.log.Warn("the restarted MCP server refused session state the client had set", "server", u.srv.name,
					"session", u.owner.short(), "method", st.method, "code", wireCode(r.Error))
			}
		}
	}
	u.mu.Lock()
	u.restarts++
	u.mu.Unlock()
	return nil
}

// replayCall sends one of Vigil's own requests on a connection that is not yet the
// upstream's live one, and waits for its answer.
func (u *upstream) replayCall(ctx context.Context, c conn, method string, params json.RawMessage) (*jsonrpc.Response, error) {
	p := &pending{reply: make(chan *jsonrpc.Response, 1)}
	id := u.register(p)
	defer u.unregister(id)
	err := c.send(ctx, &jsonrpc.Request{ID: intID(id), Method: method, Params: params})
	u.mu.Lock()
	p.sending = false
	u.mu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case r := <-p.reply:
		return r, nil
	case <-c.done():
		return nil, c.cause()
	case <-ctx.Done():
		return nil, fmt.Errorf("the restarted server did not answer %s in time", method)
	}
}

// remember notes session state the server accepted from the client (logging/setLevel,
// resources/subscribe and unsubscribe), to replay it after a restart.
func (u *upstream) remember(method string, params json.RawMessage) {
	p, err := decodeObject(params)
	if err != nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	switch method {
	case "logging/setLevel":
		u.level = params
	case "resources/subscribe", "resources/unsubscribe":
		uri := p.str("uri")
		kept := u.subs[:0]
		for _, s := range u.subs {
			if s.uri != uri {
				kept = append(kept, s)
			}
		}
		u.subs = kept
		if method == "resources/subscribe" {
			u.subs = append(u.subs, subscription{uri: uri, params: params})
		}
	}
}

func (u *upstream) setConn(c conn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.conn, u.startErr = c, nil
	close(u.ready)
}

func (u *upstream) setFailed(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.startErr = err
	close(u.ready)
	u.ready = make(chan struct{})
}

// lost forgets a dead connection and fails the calls in flight on it.
func (u *upstream) lost(c conn, cause error) {
	u.mu.Lock()
	if u.conn == c {
		u.conn = nil
		select {
		case <-u.ready:
			u.ready = make(chan struct{})
		default:
		}
	}
	u.mu.Unlock()
	u.failAll(cause)
}

// failAll answers every call in flight with an error: the server is gone.
func (u *upstream) failAll(cause error) {
	u.mu.Lock()
	ps := u.pending
	u.pending = map[int64]*pending{}
	u.tokens = map[string]int64{}
	u.mu.Unlock()
	msg := fmt.Sprintf("MCP server %s stopped before answering", u.srv.name)
	if !errors.Is(cause, errConnClosed) {
		msg += "; Vigil is restarting it, retry the request"
	}
	for id, p := range ps {
		u.mu.Lock()
		sending := p.sending
		p.orphaned = sending
		u.mu.Unlock()
		if !sending {
			p.deliver(failure(id, msg))
		}
	}
}

func failure(id int64, msg string) *jsonrpc.Response {
	return &jsonrpc.Response{ID: intID(id), Error: &jsonrpc.Error{Code: codeUnavailable, Message: msg}, Extra: synthetic{}}
}

// wait returns the live connection, starting the shared one if needed, waiting at
// most the server's startup timeout.
func (u *upstream) wait(ctx context.Context) (conn, error) {
	timer := time.NewTimer(u.srv.startup)
	defer timer.Stop()
	for {
		u.mu.Lock()
		if u.closed {
			u.mu.Unlock()
			return nil, errConnClosed
		}
		if u.conn != nil {
			select {
			case <-u.conn.done():
				if u.owner == nil {
					u.conn = nil // shared: start anew below
				}
			default:
				c := u.conn
				u.mu.Unlock()
				return c, nil
			}
		}
		if u.owner == nil && u.conn == nil && !u.dialing {
			u.startSharedLocked()
		}
		ready, lastErr := u.ready, u.startErr
		u.mu.Unlock()
		select {
		case <-ready:
			u.mu.Lock()
			c, err := u.conn, u.startErr
			u.mu.Unlock()
			if c == nil && err != nil {
				return nil, err
			}
			if c != nil {
				select {
				case <-c.done():
					// Dead, and the supervisor has yet to notice: don't spin.
					time.Sleep(10 * time.Millisecond)
				default:
				}
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, fmt.Errorf("MCP server %s did not become ready within %s", u.srv.name, u.srv.startup)
		}
	}
}

// startSharedLocked starts the shared connection in the background, no sooner than
// the backoff after the previous start.
func (u *upstream) startSharedLocked() {
	u.dialing = true
	delay := time.Until(u.lastDial.Add(u.backoff))
	go func() {
		if delay > 0 {
			time.Sleep(delay)
		}
		u.mu.Lock()
		u.lastDial = time.Now()
		u.mu.Unlock()
		c, err := u.dial()
		u.mu.Lock()
		defer u.mu.Unlock()
		u.dialing = false
		if err != nil || u.closed {
			if err == nil {
				go c.close()
				err = errConnClosed
			}
			u.backoff = min(u.backoff*2, restartMax)
			u.startErr = err
			close(u.ready)
			u.ready = make(chan struct{})
			return
		}
		u.backoff = restartInitial
		u.conn, u.startErr = c, nil
		close(u.ready)
		u.ready = make(chan struct{})
		go func() {
			<-c.done()
			if u.srv.ephemeral {
				u.srv.tasks.lose(u.srv.log, "", u.srv.name)
			}
			u.lost(c, c.cause())
			c.close()
		}()
	}()
}

func (u *upstream) register(p *pending) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.nextID++
	p.sending, p.orphaned = true, false
	u.pending[u.nextID] = p
	if p.call != nil {
		p.call.upID.Store(u.nextID)
	}
	return u.nextID
}

func (u *upstream) unregister(id int64) {
	u.mu.Lock()
	u.forgetLocked(id)
	u.mu.Unlock()
}

// forgetLocked drops the call id and its progress token.
func (u *upstream) forgetLocked(id int64) *pending {
	p := u.pending[id]
	delete(u.pending, id)
	if p != nil && p.token != "" {
		delete(u.tokens, p.token)
	}
	return p
}

// call sends a request upstream under a new id; its response goes to p. When an
// HTTP server has forgotten the session (it restarted), the request never ran: it
// is sent again on the new session.
func (u *upstream) call(ctx context.Context, method string, params json.RawMessage, p *pending) error {
	err := u.callOnce(ctx, method, params, p)
	if errors.Is(err, errSessionLost) {
		err = u.callOnce(ctx, method, params, p)
	}
	return err
}

func (u *upstream) callOnce(ctx context.Context, method string, params json.RawMessage, p *pending) error {
	c, err := u.wait(ctx)
	if err != nil {
		return err
	}
	id := u.register(p)
	if u.owner == nil && p.call != nil && p.call.token != nil {
		if obj, err := decodeObject(params); err == nil {
			tok := "vigil-" + strconv.FormatInt(id, 10)
			params = withMeta(obj, "progressToken", mustJSON(tok)).encode()
			u.mu.Lock()
			p.token = rawKey(mustJSON(tok))
			u.tokens[p.token] = id
			u.mu.Unlock()
		}
	}
	err = c.send(ctx, &jsonrpc.Request{ID: intID(id), Method: method, Params: params})
	u.mu.Lock()
	p.sending = false
	orphaned := p.orphaned
	u.mu.Unlock()
	if err != nil {
		u.unregister(id)
		return err
	}
	if orphaned {
		// Sent, but the connection died meanwhile and failAll left this call to us.
		p.deliver(failure(id, fmt.Sprintf("MCP server %s stopped before answering; Vigil is restarting it, retry the request", u.srv.name)))
	}
	return nil
}

// restoreToken gives a progress notification on the shared upstream back the
// client's own token, and finds its call.
func (u *upstream) restoreToken(m *jsonrpc.Request) (*jsonrpc.Request, *pending) {
	params, err := decodeObject(m.Params)
	if err != nil {
		return m, nil
	}
	u.mu.Lock()
	p := u.pending[u.tokens[rawKey(params["progressToken"])]]
	u.mu.Unlock()
	if p == nil || p.call == nil {
		return m, nil
	}
	params["progressToken"] = p.call.token
	return &jsonrpc.Request{Method: m.Method, Params: params.encode()}, p
}

// forward sends a notification or a response upstream as it is.
func (u *upstream) forward(ctx context.Context, msg jsonrpc.Message) error {
	c, err := u.wait(ctx)
	if err != nil {
		return err
	}
	return c.send(ctx, msg)
}

// cancel tells the server to stop working on call id, and forgets it.
func (u *upstream) cancel(id int64, reason string) {
	u.unregister(id)
	u.mu.Lock()
	c := u.conn
	u.mu.Unlock()
	if c == nil || id == 0 {
		return
	}
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	params := map[string]any{"requestId": id}
	if reason != "" {
		params["reason"] = reason
	}
	_ = c.send(ctx, &jsonrpc.Request{Method: "notifications/cancelled", Params: mustJSON(params)})
}

// receive routes what the server sent: responses to the call that awaits them,
// everything else to the session of the related call or to the owner.
func (u *upstream) receive(msg jsonrpc.Message, related jsonrpc.ID) {
	switch m := msg.(type) {
	case *jsonrpc.Response:
		id, ok := m.ID.Raw().(int64)
		u.mu.Lock()
		p := u.forgetLocked(id)
		u.mu.Unlock()
		if !ok || p == nil {
			return // a response to a call that was cancelled or failed already
		}
		p.deliver(m)
	case *jsonrpc.Request:
		var p *pending
		if id, ok := related.Raw().(int64); ok {
			u.mu.Lock()
			p = u.pending[id]
			u.mu.Unlock()
		}
		if u.owner == nil && m.Method == "notifications/progress" {
			var q *pending
			if m, q = u.restoreToken(m); q != nil {
				p = q
			}
		}
		target := u.owner
		if p != nil && p.sess != nil {
			target = p.sess
		}
		if target == nil {
			if m.IsCall() {
				// The stateless revision has no server-to-client requests outside a
				// call; say so rather than leave the server waiting.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = u.forward(ctx, &jsonrpc.Response{ID: m.ID, Error: &jsonrpc.Error{Code: codeInvalidRequest, Message: "Vigil cannot route a server request outside a client request"}})
			}
			return
		}
		target.fromUpstream(m, p)
	}
}

// setInit remembers the client's initialize, to replay it after a restart.
func (u *upstream) setInit(params json.RawMessage) {
	u.mu.Lock()
	u.init = params
	u.mu.Unlock()
}

func (u *upstream) setInitialized() {
	u.mu.Lock()
	u.inited = true
	u.mu.Unlock()
}

// info describes the upstream for the admin listing.
func (u *upstream) info() (pid, restarts int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conn != nil {
		pid = u.conn.pid()
	}
	return pid, u.restarts
}

// close stops the server and fails what is in flight. It returns once the server
// has stopped.
func (u *upstream) close() {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		<-u.stopped
		return
	}
	u.closed = true
	close(u.stop)
	c := u.conn
	shared := u.owner == nil
	u.mu.Unlock()
	if shared && c != nil {
		c.close()
		u.failAll(errConnClosed)
	}
	<-u.stopped
}
