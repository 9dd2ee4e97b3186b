package mcpproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// MCP streamable HTTP headers.
const (
	hdrSession  = "Mcp-Session-Id"
	hdrVersion  = "Mcp-Protocol-Version"
	hdrMethod   = "Mcp-Method"
	hdrName     = "Mcp-Name"
	hdrLastID   = "Last-Event-Id"
	statelessV1 = "2026-07-28" // the first protocol revision without sessions
)

// httpSpec is how to reach one streamable HTTP server.
type httpSpec struct {
	server   string
	endpoint string
	// headers are sent with every request (credentials stay in Vigil).
	headers map[string]string
	client  *http.Client
	log     *slog.Logger
}

// httpConn is one MCP session with a server over streamable HTTP, as a client: each
// message is a POST whose answer (JSON or an SSE stream) carries the call's response
// and anything the server sends in relation to it; a standalone GET stream carries
// the rest. Streams that break before the response are resumed with Last-Event-ID.
type httpConn struct {
	spec   httpSpec
	recv   receiver
	ctx    context.Context // the connection's life: cancelled by close
	cancel context.CancelFunc

	mu         sync.Mutex
	sessionID  string
	version    string     // negotiated protocol version, for Mcp-Protocol-Version
	initID     jsonrpc.ID // the initialize call in flight
	getStarted bool

	doneOnce sync.Once
	doneCh   chan struct{}
	err      error
}

var errSessionLost = errors.New("the MCP server no longer knows the session")

func newHTTPConn(spec httpSpec, recv receiver) *httpConn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &httpConn{spec: spec, ctx: ctx, cancel: cancel, doneCh: make(chan struct{})}
	c.recv = func(msg jsonrpc.Message, related jsonrpc.ID) {
		c.sniff(msg)
		recv(msg, related)
	}
	return c
}

// sniff learns the negotiated protocol version from the initialize response.
func (c *httpConn) sniff(msg jsonrpc.Message) {
	resp, ok := msg.(*jsonrpc.Response)
	if !ok || resp.Error != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.initID.IsValid() || idKey(c.initID) != idKey(resp.ID) {
		return
	}
	c.initID = jsonrpc.ID{}
	var r struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if json.Unmarshal(resp.Result, &r) == nil && r.ProtocolVersion != "" {
		c.version = r.ProtocolVersion
	}
}

func (c *httpConn) fail(err error) {
	c.doneOnce.Do(func() {
		c.err = err
		close(c.doneCh)
	})
}

func (c *httpConn) done() <-chan struct{} { return c.doneCh }

func (c *httpConn) cause() error {
	select {
	case <-c.doneCh:
		return c.err
	default:
		return nil
	}
}

func (c *httpConn) pid() int { return 0 }

// newRequest builds a request to the endpoint with the configured headers and the
// session's MCP headers.
func (c *httpConn) newRequest(ctx context.Context, method string, body []byte, msg jsonrpc.Message) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.spec.endpoint, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range c.spec.headers {
		req.Header.Set(k, v)
	}
	c.mu.Lock()
	sid, version := c.sessionID, c.version
	c.mu.Unlock()
	if sid != "" {
		req.Header.Set(hdrSession, sid)
	}
	if r, ok := msg.(*jsonrpc.Request); ok {
		if v := metaProtocolVersion(r.Params); v != "" {
			// The stateless revision: each request names its version, method and
			// target in headers that mirror its body.
			version = v
			if v >= statelessV1 && r.IsCall() {
				req.Header.Set(hdrMethod, r.Method)
				if p, err := decodeObject(r.Params); err == nil {
					if n := p.str("name"); n != "" {
						req.Header.Set(hdrName, encodeHeaderValue(n))
					} else if u := p.str("uri"); u != "" {
						req.Header.Set(hdrName, encodeHeaderValue(u))
					}
				}
				for k, v := range paramHeadersFrom(ctx) {
					req.Header[k] = v
				}
			}
		}
	}
	if version != "" {
		req.Header.Set(hdrVersion, version)
	}
	return req, nil
}

// send POSTs msg. For a call, what comes back is read in the background until the
// response arrives or ctx ends; a failure to get one is delivered as an error
// response, so every call gets exactly one.
func (c *httpConn) send(ctx context.Context, msg jsonrpc.Message) error {
	select {
	case <-c.doneCh:
		return errConnClosed
	default:
	}
	call, _ := msg.(*jsonrpc.Request)
	if call != nil && !call.IsCall() {
		call = nil
	}
	if call != nil && call.Method == "initialize" {
		c.mu.Lock()
		c.initID = call.ID
		c.mu.Unlock()
	}
	req, err := c.newRequest(ctx, http.MethodPost, encode(msg), msg)
	if err != nil {
		return fmt.Errorf("couldn't build the request to MCP server %s: %w", c.spec.server, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := c.spec.client.Do(req)
	if err != nil {
		return fmt.Errorf("couldn't reach MCP server %s: %w", c.spec.server, err)
	}
	c.mu.Lock()
	hadSession := c.sessionID != ""
	if sid := resp.Header.Get(hdrSession); sid != "" && c.sessionID == "" {
		c.sessionID = sid
	}
	c.mu.Unlock()

	if resp.StatusCode == http.StatusNotFound && hadSession {
		drain(resp)
		c.fail(errSessionLost)
		return errSessionLost
	}
	if call == nil {
		drain(resp)
		if resp.StatusCode >= 300 {
			return fmt.Errorf("MCP server %s refused a message: HTTP %d", c.spec.server, resp.StatusCode)
		}
		if r, ok := msg.(*jsonrpc.Request); ok && r.Method == "notifications/initialized" {
			c.startGET()
		}
		return nil
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case resp.StatusCode == http.StatusOK && ct == "text/event-stream":
		go c.readStream(ctx, resp, call.ID)
	case ct == "application/json":
		go c.readJSON(resp, call.ID)
	default:
		drain(resp)
		c.answer(call.ID, fmt.Sprintf("MCP server %s answered HTTP %d without a JSON-RPC response", c.spec.server, resp.StatusCode))
	}
	return nil
}

// answer delivers an error response for a call the server didn't answer.
func (c *httpConn) answer(id jsonrpc.ID, message string) {
	c.recv(&jsonrpc.Response{ID: id, Error: &jsonrpc.Error{Code: codeUnavailable, Message: message}, Extra: synthetic{}}, id)
}

func (c *httpConn) readJSON(resp *http.Response, id jsonrpc.ID) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxLineBytes+1))
	if err != nil || len(body) > maxLineBytes {
		c.answer(id, fmt.Sprintf("couldn't read the answer of MCP server %s", c.spec.server))
		return
	}
	msgs, _, jerr := readBody(body)
	if jerr != nil {
		c.answer(id, fmt.Sprintf("MCP server %s answered HTTP %d with something that is not JSON-RPC", c.spec.server, resp.StatusCode))
		return
	}
	answered := false
	for _, m := range msgs {
		if r, ok := m.(*jsonrpc.Response); ok && idKey(r.ID) == idKey(id) {
			answered = true
		}
		c.recv(m, id)
	}
	if !answered {
		c.answer(id, fmt.Sprintf("MCP server %s answered HTTP %d without a response to the call", c.spec.server, resp.StatusCode))
	}
}

// readStream reads a call's SSE stream until its response, resuming it with
// Last-Event-ID when it breaks early and the server gave event ids.
func (c *httpConn) readStream(ctx context.Context, resp *http.Response, id jsonrpc.ID) {
	lastID := ""
	retry := time.Second
	for attempt := 0; ; attempt++ {
		answered, last, r, err := c.consume(resp, id)
		if answered || ctx.Err() != nil {
			return
		}
		if last != "" {
			lastID = last
		}
		if r > 0 {
			retry = r
		}
		if lastID == "" || attempt >= 5 {
			msg := fmt.Sprintf("MCP server %s closed the response stream before answering", c.spec.server)
			if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				msg = fmt.Sprintf("MCP server %s: the response stream broke before the answer", c.spec.server)
			}
			c.answer(id, msg)
			return
		}
		select {
		case <-time.After(retry):
		case <-ctx.Done():
			return
		}
		resp, err = c.get(ctx, lastID)
		if err != nil || resp.StatusCode != http.StatusOK {
			if resp != nil {
				drain(resp)
			}
			c.answer(id, fmt.Sprintf("MCP server %s: couldn't resume the response stream", c.spec.server))
			return
		}
	}
}

// consume reads one SSE response body, delivering its messages as related to id. It
// reports whether the response to id was among them, and the resumption point.
func (c *httpConn) consume(resp *http.Response, id jsonrpc.ID) (answered bool, lastID string, retry time.Duration, err error) {
	defer resp.Body.Close()
	r := newSSEReader(resp.Body, maxLineBytes)
	for {
		e, err := r.Next()
		if err != nil {
			return answered, r.LastID, retry, err
		}
		if e.Retry > 0 {
			retry = e.Retry
		}
		if len(e.Data) == 0 || (e.Name != "" && e.Name != "message") {
			continue
		}
		msg, derr := decodeMessage(e.Data)
		if derr != nil {
			c.spec.log.Warn("MCP server sent an event that is not a JSON-RPC message; ignored", "server", c.spec.server, "bytes", len(e.Data))
			continue
		}
		related := id
		if resp, ok := msg.(*jsonrpc.Response); ok && id.IsValid() && idKey(resp.ID) == idKey(id) {
			answered = true
		}
		c.recv(msg, related)
	}
}

// get opens an SSE stream with GET: the standalone stream (lastID "") or a resumed one.
func (c *httpConn) get(ctx context.Context, lastID string) (*http.Response, error) {
	req, err := c.newRequest(ctx, http.MethodGet, nil, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set(hdrLastID, lastID)
	}
	return c.spec.client.Do(req)
}

// startGET opens the standalone stream once the session is initialized; it carries
// what the server sends outside any call (list changes, logging, its own requests).
func (c *httpConn) startGET() {
	c.mu.Lock()
	if c.getStarted {
		c.mu.Unlock()
		return
	}
	c.getStarted = true
	c.mu.Unlock()
	go func() {
		lastID := ""
		delay := time.Second
		for failures := 0; c.ctx.Err() == nil; {
			resp, err := c.get(c.ctx, lastID)
			switch {
			case err != nil:
				failures++
			case resp.StatusCode == http.StatusMethodNotAllowed:
				drain(resp)
				return // the server offers no standalone stream
			case resp.StatusCode == http.StatusNotFound:
				drain(resp)
				c.fail(errSessionLost)
				return
			case resp.StatusCode != http.StatusOK:
				drain(resp)
				failures++
			default:
				failures = 0
				_, last, retry, _ := c.consume(resp, jsonrpc.ID{})
				if last != "" {
					lastID = last
				}
				if retry > 0 {
					delay = retry
				}
			}
			if failures > 5 {
				c.spec.log.Warn("MCP server's standalone stream keeps failing; giving up on it", "server", c.spec.server)
				return
			}
			select {
			case <-time.After(delay * time.Duration(1+failures)):
			case <-c.ctx.Done():
				return
			}
		}
	}()
}

// close ends the session with DELETE (best effort) and stops the streams.
func (c *httpConn) close() {
	c.mu.Lock()
	sid := c.sessionID
	c.mu.Unlock()
	c.cancel()
	c.fail(errConnClosed)
	if sid == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := c.newRequest(ctx, http.MethodDelete, nil, nil)
	if err != nil {
		return
	}
	if resp, err := c.spec.client.Do(req); err == nil {
		drain(resp)
	}
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
