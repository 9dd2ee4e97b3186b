package llmproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// MaxAnswerBytes caps a non-streamed answer Vigil reads from a provider (it must read
// it whole to restore tokens and judge tool calls).
const MaxAnswerBytes = 64 << 20

// DefaultKeepAlive is how often a stream waiting on a tool call's verdict gets an SSE
// comment.
const DefaultKeepAlive = 15 * time.Second

// SessionHeader lets an agent group its calls into a conversation in the ledger
// (event.session) and in policy; optional.
const SessionHeader = "X-Vigil-Session"

// dialect is one API's wire format as the ingress needs it: what to read from a
// request for governance, and how to make an upstream answer safe to return.
type dialect interface {
	// source is the pipeline source (enforce.SourceOpenAI, SourceAnthropic).
	source() string
	// providerType is the provider wire format the route forwards to.
	providerType() string
	// parse reads the request's governance-relevant parameters.
	parse(body []byte) (request, error)
	// answer turns a complete upstream answer (2xx, not streamed) into the agent's:
	// tokens restored, proposed tool calls judged, usage taken.
	answer(ctx context.Context, c *call, body []byte) ([]byte, error)
	// stream returns the filter for a streamed answer.
	stream(c *call) eventFilter
	// render writes an error in the API's shape.
	render(w http.ResponseWriter, r *http.Request, status int, err error)
}

// request is what the ingress learns from a request body.
type request struct {
	Model  string
	Stream bool
	// Args are the request parameters policy sees as args: never message content.
	Args map[string]any
	// patch, if set, rewrites the body before it is masked (e.g. asking for usage in
	// a stream).
	patch func([]byte) []byte
	// stripUsage drops usage-only events the client did not ask for.
	stripUsage bool
}

// eventFilter transforms a streamed answer event by event.
type eventFilter interface {
	// event appends to out what the agent gets for ev (nothing, ev itself, or
	// rewritten and extra events). It may block while a tool call is held for a human.
	event(ctx context.Context, out []byte, ev *Event) ([]byte, error)
	// end appends whatever is still held back once the stream is over, and returns the
	// assembled answer for the ledger.
	end(ctx context.Context, out []byte) ([]byte, []byte)
}

// call is one governed model call on its way through the proxy.
type call struct {
	p        *Proxy
	d        dialect
	provider *Provider
	flight   *enforce.Flight
	req      request
	start    time.Time

	mu      sync.Mutex
	usage   enforce.Usage
	removed int // tool calls removed
	allowed int // tool calls released
}

type callKey struct{}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// handle is the pipeline of one model route, in order: authenticate (wrapped around
// it), read and parse, route, govern (mask, decide, hold, record), forward, answer.
func (p *Proxy) handle(d dialect) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := readBody(r)
		if err != nil {
			return err
		}
		req, err := d.parse(body)
		if err != nil {
			return err
		}
		prov := p.Router.Route(req.Model)
		if prov == nil {
			return vigil.Errorf(vigil.ENOTFOUND, "model %q is not served by this gateway; GET /v1/models lists the models you may use", req.Model)
		}
		if prov.Type != d.providerType() {
			return vigil.Errorf(vigil.EINVALID, "model %q is served by the %s provider %q; call it through %s", req.Model, prov.Type, prov.Name, routeFor(prov.Type))
		}
		if req.patch != nil {
			body = req.patch(body)
		}
		actor := ActorFrom(r.Context())
		f, err := p.Pipeline.Begin(r.Context(), enforce.Call{
			Actor: actor, Kind: vigil.ModelCall, Source: d.source(), SessionID: sessionOf(r),
			Model: &vigil.Model{Provider: prov.Name, Name: req.Model}, Args: req.Args, Payload: body,
			Attrs: map[string]string{"route": r.URL.Path, "stream": strconv.FormatBool(req.Stream)},
		})
		if err != nil {
			var pending *enforce.Pending
			if errors.As(err, &pending) {
				// Begin only returns Pending with NoWait, which model calls never set.
				return fmt.Errorf("couldn't hold model call: unexpected pending approval %s", pending.ApprovalID)
			}
			return err
		}
		c := &call{p: p, d: d, provider: prov, flight: f, req: req, start: time.Now()}
		ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), callKey{}, c), prov.TotalTimeout)
		defer cancel()
		p.reverse.ServeHTTP(w, r.WithContext(ctx))
		return nil
	}
}

func routeFor(typ string) string {
	if typ == TypeAnthropic {
		return "POST /v1/messages (the Anthropic API)"
	}
	return "the OpenAI API (/v1/chat/completions, /v1/responses, /v1/embeddings)"
}

func sessionOf(r *http.Request) string {
	s := r.Header.Get(SessionHeader)
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}

// newReverseProxy builds the one httputil.ReverseProxy every model route forwards
// through; each call's provider, payload and answer handling travel in the request
// context.
func (p *Proxy) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:   rewrite,
		Transport: dispatch{},
		// Streamed answers are flushed after every write without asking:
		// ReverseProxy flushes at once whenever the answer is text/event-stream or
		// has no Content-Length, which is every stream modifyResponse passes on.
		// Every other answer is complete in memory with its Content-Length set, so
		// it goes out in one write when the handler returns. A negative interval
		// here also flushed those (an extra write, and a timer whose goroutine
		// raced Write for the writer's mutex: two more thread wakeups per call).
		FlushInterval:  0,
		ModifyResponse: modifyResponse,
		ErrorHandler:   p.errorHandler,
		// Copy errors (an agent hanging up mid-stream) carry no content; log them
		// with the rest instead of on the standard logger.
		ErrorLog:   slog.NewLogLogger(p.log().Handler(), slog.LevelDebug),
		BufferPool: bufferPool{},
	}
}

// dispatch sends a request through its provider's own pooled transport.
type dispatch struct{}

func (dispatch) RoundTrip(req *http.Request) (*http.Response, error) {
	c := callFrom(req.Context())
	return c.provider.transport.RoundTrip(req)
}

// inboundOnly are request headers that stay in Vigil: the agent's credentials and
// identity, cookies, and Vigil's own headers. Provider credentials replace them.
var inboundOnly = []string{
	"Authorization", "X-Api-Key", "Api-Key", "Proxy-Authorization", "Cookie",
	"Openai-Organization", "Openai-Project", SessionHeader, "Accept-Encoding",
	"Forwarded", "X-Request-Id",
}

// upstreamOnly are response headers that stay in Vigil: the provider's account
// identity and cookies.
var upstreamOnly = []string{"Set-Cookie", "Openai-Organization", "Openai-Project", "Anthropic-Organization-Id", "Content-Length"}

// rewrite points the outgoing request at the provider with the masked payload and the
// provider's credentials. The agent's key never leaves Vigil.
func rewrite(pr *httputil.ProxyRequest) {
	c := callFrom(pr.In.Context())
	out := pr.Out
	out.URL = c.provider.URL(pr.In.URL.Path)
	out.Host = ""
	payload := c.flight.Payload
	out.Body = io.NopCloser(bytes.NewReader(payload))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(payload)), nil }
	out.ContentLength = int64(len(payload))
	h := out.Header
	for _, k := range inboundOnly {
		h.Del(k)
	}
	for k := range h {
		if strings.HasPrefix(k, "X-Vigil-") {
			delete(h, k)
		}
	}
	h.Set("Content-Type", "application/json")
	c.provider.authorize(h)
}

// modifyResponse turns the provider's answer into the agent's. Errors go to
// errorHandler, which answers in the API's shape.
func modifyResponse(resp *http.Response) error {
	c := callFrom(resp.Request.Context())
	for _, k := range upstreamOnly {
		resp.Header.Del(k)
	}
	c.p.Metrics.upstream(c.provider.Name, resp.StatusCode, time.Since(c.start))
	if resp.StatusCode >= 400 {
		return upstreamErrorOf(c, resp)
	}
	ctx := resp.Request.Context()
	if isEventStream(resp.Header) {
		resp.ContentLength = -1
		resp.Body = newStreamBody(c, ctx, resp.Body, resp.StatusCode)
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes+1))
	resp.Body.Close()
	if err != nil {
		return &upstreamError{status: http.StatusBadGateway, err: fmt.Errorf("couldn't read the answer of provider %s: %w", c.provider.Name, err)}
	}
	if len(body) > MaxAnswerBytes {
		return &upstreamError{status: http.StatusBadGateway, msg: fmt.Sprintf("the answer of provider %s is larger than %d bytes", c.provider.Name, MaxAnswerBytes)}
	}
	out, err := c.d.answer(ctx, c, body)
	if err != nil {
		return err
	}
	// The response entry is durable before the agent sees the answer (DESIGN step 8).
	c.end(ctx, enforce.Outcome{Status: resp.StatusCode, Body: out})
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	resp.Header.Del("Content-Encoding")
	return nil
}

func isEventStream(h http.Header) bool {
	ct := h.Get("Content-Type")
	return strings.HasPrefix(ct, "text/event-stream")
}

// end records the response and its usage once.
func (c *call) end(ctx context.Context, o enforce.Outcome) {
	c.mu.Lock()
	u := c.usage
	attrs := map[string]string{"provider_ms": strconv.FormatInt(time.Since(c.start).Milliseconds(), 10)}
	if c.removed > 0 || c.allowed > 0 {
		attrs["tool_calls_removed"] = strconv.Itoa(c.removed)
		attrs["tool_calls_allowed"] = strconv.Itoa(c.allowed)
	}
	c.mu.Unlock()
	u.CostMicros = c.p.Prices.Cost(c.req.Model, u.InputTokens, u.OutputTokens)
	o.Usage = u
	if o.Attrs == nil {
		o.Attrs = attrs
	} else {
		for k, v := range attrs {
			o.Attrs[k] = v
		}
	}
	c.p.Metrics.usage(c.flight.Action.Actor, c.req.Model, u)
	// The agent may have gone; the record must still be written.
	if err := c.flight.End(context.WithoutCancel(ctx), o); err != nil {
		c.p.log().ErrorContext(ctx, "couldn't record the model response", "request", c.flight.EventID, "err", err)
	}
}

// setUsage records token usage read from an answer.
func (c *call) setUsage(in, out int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if in > 0 {
		c.usage.InputTokens = in
	}
	if out > 0 {
		c.usage.OutputTokens = out
	}
}

// judge asks the pipeline about a tool call the model proposed. It may block while a
// human decides.
func (c *call) judge(ctx context.Context, name string, args []byte) enforce.Verdict {
	v := c.flight.ToolCall(ctx, vigil.Tool{Name: name, Annotations: vigil.DefaultToolAnnotations()}, args)
	c.mu.Lock()
	if v.Allowed {
		c.allowed++
	} else {
		c.removed++
	}
	c.mu.Unlock()
	return v
}

// upstreamError is a provider's refusal or failure as the agent should see it.
type upstreamError struct {
	status     int
	retryAfter string
	msg        string
	code       vigil.Code
	err        error
}

func (e *upstreamError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return e.msg
}

func (e *upstreamError) Unwrap() error { return e.err }

// upstreamErrorOf reads a provider's error answer. The agent gets the provider's
// status and Retry-After, and an explanation in its API's shape. The provider's own
// message is passed on for request errors (it says what to fix) but not for
// authentication errors, which concern Vigil's credentials, not the agent's.
func upstreamErrorOf(c *call, resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	e := &upstreamError{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	msg := providerMessage(raw)
	name := c.provider.Name
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		e.code = vigil.EUPSTREAM
		e.status = http.StatusBadGateway
		e.msg = fmt.Sprintf("provider %s refused Vigil's credentials (HTTP %d); this is a gateway configuration problem, not yours: tell the Vigil operator", name, resp.StatusCode)
	case resp.StatusCode == http.StatusTooManyRequests:
		e.code = vigil.ELIMIT
		e.msg = fmt.Sprintf("provider %s is rate limiting requests (HTTP 429)", name)
		if e.retryAfter != "" {
			e.msg += "; retry after " + e.retryAfter + " seconds"
		} else {
			e.msg += "; retry later"
		}
		if msg != "" {
			e.msg += ". Provider said: " + msg
		}
	case resp.StatusCode >= 500:
		e.code = vigil.EUPSTREAM
		e.msg = fmt.Sprintf("provider %s failed (HTTP %d); retry later", name, resp.StatusCode)
		if msg != "" {
			e.msg += ". Provider said: " + msg
		}
	default:
		e.code = vigil.EINVALID
		if resp.StatusCode == http.StatusNotFound {
			e.code = vigil.ENOTFOUND
		}
		e.msg = fmt.Sprintf("provider %s refused the request (HTTP %d)", name, resp.StatusCode)
		if msg != "" {
			e.msg += ": " + msg
		}
	}
	return e
}

// providerMessage digs the message out of either API's error shape.
func providerMessage(raw []byte) string {
	o, err := parseObject(raw)
	if err != nil {
		return ""
	}
	msg := o.child("error").str("message")
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	return msg
}

// errorHandler answers a failed forward in the API's shape and records the outcome.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	c := callFrom(r.Context())
	status, verr := classify(c, r, err)
	c.end(r.Context(), enforce.Outcome{Status: status, Err: verr})
	if status == 499 {
		return // the agent went away; nobody to answer
	}
	var ue *upstreamError
	if errors.As(err, &ue) && ue.retryAfter != "" {
		w.Header().Set("Retry-After", ue.retryAfter)
	}
	if status >= 500 && !errors.As(err, &ue) {
		p.log().WarnContext(r.Context(), "model call failed", "request_id", web.RequestID(r.Context()), "provider", c.provider.Name, "status", status, "err", err)
	}
	c.d.render(w, r, status, verr)
}

// classify maps a forward failure to the status and caller-safe error the agent gets.
func classify(c *call, r *http.Request, err error) (int, error) {
	name := c.provider.Name
	var ue *upstreamError
	var ve *vigil.Error
	switch {
	case errors.As(err, &ue):
		code := ue.code
		if code == "" {
			code = vigil.EUPSTREAM
		}
		msg := ue.msg
		if msg == "" {
			msg = fmt.Sprintf("provider %s failed", name)
		}
		return ue.status, &vigil.Error{Code: code, Message: msg, Err: ue.err}
	case errors.As(err, &ve):
		return web.Status(err), err
	case r.Context().Err() == context.DeadlineExceeded:
		return http.StatusGatewayTimeout, &vigil.Error{Code: vigil.ETIMEOUT, Message: fmt.Sprintf("provider %s did not answer within %s; retry later or with a smaller request", name, c.provider.TotalTimeout), Err: err}
	case errors.Is(err, context.Canceled):
		return 499, &vigil.Error{Code: vigil.ETIMEOUT, Message: "the agent closed the connection", Err: err}
	case isDialError(err):
		return http.StatusBadGateway, &vigil.Error{Code: vigil.EUPSTREAM, Message: fmt.Sprintf("couldn't connect to provider %s; retry later", name), Err: err}
	case isTimeout(err):
		return http.StatusGatewayTimeout, &vigil.Error{Code: vigil.ETIMEOUT, Message: fmt.Sprintf("provider %s did not start answering within %s; retry later", name, c.provider.FirstByteTimeout), Err: err}
	}
	return http.StatusBadGateway, &vigil.Error{Code: vigil.EUPSTREAM, Message: fmt.Sprintf("the call to provider %s failed; retry later", name), Err: err}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// bufferPool reuses the reverse proxy's copy buffers.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(copyBuffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }

// streamBody is a streamed answer as the agent reads it: each upstream event goes
// through the dialect's filter, and the reverse proxy flushes every read.
//
// The filter runs on a worker goroutine, one event at a time, so that Read can hand
// the agent an SSE comment every KeepAlive while a step takes long (a tool call held
// for a human: clients and proxies drop silent streams). Buffers pass between the two
// goroutines only through the steps and results channels.
type streamBody struct {
	c      *call
	ctx    context.Context
	up     io.ReadCloser
	sse    *SSEReader
	filter eventFilter
	status int

	steps   chan []byte // a free buffer: process the next event into it
	results chan stepResult
	keep    *time.Ticker
	pending bool // a step is under way on the worker

	out  []byte
	off  int
	done bool
	err  error
	once sync.Once
	stop sync.Once
}

type stepResult struct {
	out  []byte
	done bool
	err  error
}

// keepAliveComment is what the agent gets while a step waits.
var keepAliveComment = []byte(": vigil: a tool call is waiting for a decision\n\n")

func newStreamBody(c *call, ctx context.Context, up io.ReadCloser, status int) *streamBody {
	every := c.p.KeepAlive
	if every <= 0 {
		every = DefaultKeepAlive
	}
	s := &streamBody{c: c, ctx: ctx, up: up, sse: NewSSEReader(up), filter: c.d.stream(c), status: status,
		steps: make(chan []byte), results: make(chan stepResult, 1), keep: time.NewTicker(every)}
	go s.work()
	return s
}

// work processes one upstream event per step until the stream ends or Close.
func (s *streamBody) work() {
	for buf := range s.steps {
		s.results <- s.step(buf[:0])
	}
}

// step reads the next upstream event and appends what the agent gets for it.
func (s *streamBody) step(out []byte) stepResult {
	ev, err := s.sse.Next()
	if err == io.EOF {
		out, assembled := s.filter.end(s.ctx, out)
		s.finish(assembled, nil)
		return stepResult{out: out, done: true}
	}
	if err != nil {
		out, _ = s.filter.end(s.ctx, out)
		s.finish(nil, err)
		return stepResult{out: out, done: true, err: err}
	}
	if out, err = s.filter.event(s.ctx, out, &ev); err != nil {
		s.finish(nil, err)
		return stepResult{out: out, done: true, err: err}
	}
	return stepResult{out: out}
}

func (s *streamBody) Read(p []byte) (int, error) {
	for s.off >= len(s.out) {
		if s.done {
			if s.err != nil {
				return 0, s.err
			}
			return 0, io.EOF
		}
		if !s.pending {
			s.steps <- s.out
			s.out, s.off, s.pending = nil, 0, true
		}
		select {
		case r := <-s.results:
			s.pending = false
			s.out, s.off, s.done, s.err = r.out, 0, r.done, r.err
		case <-s.keep.C:
			return copy(p, keepAliveComment), nil
		}
	}
	n := copy(p, s.out[s.off:])
	s.off += n
	return n, nil
}

// finish records the response once: the assembled answer, or the failure.
func (s *streamBody) finish(assembled []byte, err error) {
	s.once.Do(func() {
		o := enforce.Outcome{Status: s.status, Body: assembled}
		if err != nil {
			o.Err = &vigil.Error{Code: vigil.EUPSTREAM, Message: "the stream broke off", Err: err}
			if s.ctx.Err() != nil {
				o.Err = &vigil.Error{Code: vigil.ETIMEOUT, Message: "the agent went away or the call timed out mid-stream", Err: err}
			}
		}
		s.c.end(s.ctx, o)
	})
}

// Close ends the upstream call (an agent that disconnects cancels it), stops the
// worker and records an unfinished stream as such.
func (s *streamBody) Close() error {
	err := s.up.Close()
	s.stop.Do(func() {
		// The worker finishes a step under way on its own (the upstream body is
		// closed; a held tool call's wait ends with the request context), leaves its
		// result in the buffered channel and exits.
		s.keep.Stop()
		close(s.steps)
	})
	s.finish(nil, errors.New("stream closed before its end"))
	return err
}
