package mcpproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/mcpproxy/pins"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// recordTimeout bounds ledger writes made after the client may have gone away.
const recordTimeout = 10 * time.Second

// metaKey is the _meta key under which Vigil explains its own tool results.
const metaKey = "dev.vigil/decision"

// toolInfo is what Vigil knows of one tool of a server, from its listing.
type toolInfo struct {
	name        string
	annotations vigil.ToolAnnotations
	hash        string
	// status is the pin status; "" when the server's tools are not pinned.
	status pins.Status
	// params are the arguments the tool mirrors into Mcp-Param-* headers; paramsErr
	// says why its x-mcp-header annotations are invalid (headers.go).
	params    []paramHeader
	paramsErr error
}

// catalog is what a session knows of its server's tools, from the listings it saw.
// A stateful session's catalog lives as long as the session and is dropped when the
// server says its tools changed; the stateless exchanges of a server share one that
// expires after ttl.
type catalog struct {
	mu     sync.Mutex
	tools  map[string]*toolInfo
	filled time.Time
	ttl    time.Duration // 0: no expiry
}

func (c *catalog) get(name string) *toolInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ttl > 0 && time.Since(c.filled) > c.ttl {
		c.tools = nil
	}
	return c.tools[name]
}

func (c *catalog) put(infos []*toolInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tools == nil || c.ttl > 0 && time.Since(c.filled) > c.ttl {
		c.tools = map[string]*toolInfo{}
		c.filled = time.Now()
	}
	for _, t := range infos {
		c.tools[t.name] = t
	}
}

func (c *catalog) invalidate() {
	c.mu.Lock()
	c.tools = nil
	c.mu.Unlock()
}

// annotationsOf reads a tool's annotations; a hint the tool does not declare has
// MCP's default (destructive and open-world unless said otherwise). The title is the
// tool's own (current MCP puts it beside the name), or the annotations' (older
// revisions put it there).
func annotationsOf(tool json.RawMessage) vigil.ToolAnnotations {
	a := vigil.DefaultToolAnnotations()
	var t struct {
		Title       *string `json:"title"`
		Annotations *struct {
			Title           *string `json:"title"`
			ReadOnlyHint    *bool   `json:"readOnlyHint"`
			DestructiveHint *bool   `json:"destructiveHint"`
			IdempotentHint  *bool   `json:"idempotentHint"`
			OpenWorldHint   *bool   `json:"openWorldHint"`
		} `json:"annotations"`
	}
	if json.Unmarshal(tool, &t) != nil {
		return a
	}
	if t.Title != nil {
		a.Title = *t.Title
	}
	if t.Annotations == nil {
		return a
	}
	x := t.Annotations
	if x.Title != nil && a.Title == "" {
		a.Title = *x.Title
	}
	if x.ReadOnlyHint != nil {
		a.ReadOnlyHint = *x.ReadOnlyHint
	}
	if x.DestructiveHint != nil {
		a.DestructiveHint = *x.DestructiveHint
	}
	if x.IdempotentHint != nil {
		a.IdempotentHint = *x.IdempotentHint
	}
	if x.OpenWorldHint != nil {
		a.OpenWorldHint = *x.OpenWorldHint
	}
	return a
}

// examine reads a page of tools the server listed, pins them (per the server's
// mode) and adds them to the catalog. It returns each tool's info in listing order;
// a malformed tool gets a nil info (and is hidden).
func (s *session) examine(ctx context.Context, tools []json.RawMessage) ([]*toolInfo, error) {
	infos := make([]*toolInfo, len(tools))
	var seen []pins.Seen
	for i, raw := range tools {
		name, v, err := pins.Define(raw)
		if err != nil {
			s.g.log.Warn("MCP server listed a malformed tool; hiding it", "server", s.srv.name, "err", err)
			continue
		}
		infos[i] = &toolInfo{name: name, annotations: annotationsOf(raw), hash: v.Hash}
		infos[i].params, infos[i].paramsErr = paramHeaders(raw)
		seen = append(seen, pins.Seen{Name: name, Version: v})
	}
	if s.srv.pinning != pins.ModeOff && s.g.pins != nil && len(seen) > 0 {
		statuses, err := s.g.pins.Check(ctx, s.srv.name, seen)
		if err != nil {
			return nil, err
		}
		for _, t := range infos {
			if t != nil {
				t.status = statuses[t.name]
				if t.status == pins.Changed {
					s.g.log.Warn("MCP tool changed since it was pinned", "server", s.srv.name, "tool", t.name,
						"mode", string(s.srv.pinning), "hash", t.hash)
				}
			}
		}
	}
	var ok []*toolInfo
	for _, t := range infos {
		if t != nil {
			ok = append(ok, t)
		}
	}
	s.catalog.put(ok)
	return infos, nil
}

// approvedSince reports whether an admin approved the tool's current definition since
// the session listed it, updating what the session knows.
func (s *session) approvedSince(ctx context.Context, t *toolInfo) bool {
	p, err := s.g.pins.Get(ctx, s.srv.name, t.name)
	if err != nil || p.Approved.Hash != t.hash {
		return false
	}
	s.catalog.put([]*toolInfo{{name: t.name, annotations: t.annotations, hash: t.hash, status: pins.Approved, params: t.params, paramsErr: t.paramsErr}})
	return true
}

// hiddenByPin reports whether a tool must stay hidden because its definition
// changed and the server is in pin mode.
func (s *session) hiddenByPin(t *toolInfo) bool {
	return s.srv.pinning == pins.ModePin && t.status == pins.Changed
}

// filterToolList answers tools/list with the tools this agent may use: tools whose
// changed definition awaits approval (pin mode) and tools that policy denies whatever
// their arguments are left out; tools that need approval stay listed.
func (s *session) filterToolList(cc *clientCall, r *jsonrpc.Response) {
	if r.Error != nil {
		s.answer(cc, r)
		return
	}
	res, tools, err := listResult(r.Result, "tools")
	if err != nil {
		s.answerError(cc, &jsonrpc.Error{Code: codeInternal, Message: fmt.Sprintf("MCP server %s answered tools/list with a malformed result", s.srv.name)})
		return
	}
	infos, err := s.examine(cc.ctx, tools)
	if err != nil {
		s.g.log.Error("couldn't check tools against their pins; listing none (fail-closed)", "server", s.srv.name, "err", err)
		s.answerError(cc, vigilError(&vigil.Error{Code: vigil.EUNAVAILABLE, Message: "Vigil could not check this server's tools against their pinned definitions, so it lists none (fail-closed); try again later", Err: err}))
		return
	}
	visible := make([]json.RawMessage, 0, len(tools))
	for i, t := range infos {
		if t == nil || s.hiddenByPin(t) || !s.mayList(cc.ctx, t) {
			continue
		}
		if s.stateless && t.paramsErr != nil {
			// The revision that defines x-mcp-header has clients drop such a tool.
			s.g.log.Warn("MCP server listed a tool with invalid x-mcp-header annotations; hiding it", "server", s.srv.name, "tool", t.name, "err", t.paramsErr)
			continue
		}
		visible = append(visible, tools[i])
	}
	res["tools"] = mustJSON(visible)
	s.answerResult(cc, res.encode())
}

// mayList asks policy whether the agent may see a tool. A listing has no
// arguments, so only a deny that did not depend on evaluating a rule hides the tool:
// when any rule failed (args.amount > 100 on a listing) the tool stays listed, and
// the call itself is decided with its arguments. Tools that need approval stay
// listed too.
func (s *session) mayList(ctx context.Context, t *toolInfo) bool {
	a := vigil.Action{
		ID: "list", Kind: vigil.ToolCall, Actor: s.actor, SessionID: s.id,
		Tool: &vigil.Tool{Server: s.srv.name, Name: t.name, Annotations: t.annotations},
		Args: map[string]any{}, Time: time.Now(),
	}
	d, err := s.g.preview(ctx, a)
	if err != nil {
		return s.g.pipeline.FailOpen.Policy // fail closed unless configured otherwise
	}
	if d.Effect != vigil.Deny || d.Limit != "" {
		return true
	}
	return len(d.Errors) > 0
}

// tool returns what Vigil knows of a tool, listing the server's tools when the
// catalog does not have it. It returns nil when the server does not list the tool.
func (s *session) tool(ctx context.Context, name string, meta json.RawMessage) (*toolInfo, error) {
	if t := s.catalog.get(name); t != nil {
		return t, nil
	}
	cursor := json.RawMessage(nil)
	for page := 0; page < 100; page++ {
		params := object{}
		if cursor != nil {
			params["cursor"] = cursor
		}
		if meta != nil {
			params["_meta"] = meta
		}
		r, err := s.request(ctx, nil, "tools/list", params.encode())
		if err != nil {
			return nil, err
		}
		if r.Error != nil {
			return nil, &vigil.Error{Code: vigil.EUPSTREAM, Message: fmt.Sprintf("MCP server %s refused to list its tools: %s", s.srv.name, wireMessage(r.Error)), Err: r.Error}
		}
		res, tools, err := listResult(r.Result, "tools")
		if err != nil {
			return nil, &vigil.Error{Code: vigil.EUPSTREAM, Message: fmt.Sprintf("MCP server %s answered tools/list with a malformed result", s.srv.name)}
		}
		if _, err := s.examine(ctx, tools); err != nil {
			return nil, &vigil.Error{Code: vigil.EUNAVAILABLE, Message: "Vigil could not check the tool against its pinned definition, so the call was refused (fail-closed); try again later", Err: err}
		}
		if t := s.catalog.get(name); t != nil {
			return t, nil
		}
		cursor = res["nextCursor"]
		if len(cursor) == 0 || bytes.Equal(cursor, []byte("null")) {
			return nil, nil
		}
	}
	return nil, nil
}

// listingMeta is the _meta for Vigil's own tools/list on behalf of a call: the
// call's, which the stateless revision needs (protocol version, client capabilities),
// without its progress token (that belongs to the call).
func listingMeta(params object) json.RawMessage {
	raw := params["_meta"]
	if len(raw) == 0 {
		return nil
	}
	meta, err := decodeObject(raw)
	if err != nil {
		return nil
	}
	delete(meta, "progressToken")
	return meta.encode()
}

// callTool runs a tools/call through the pipeline: pin check, mask, decide, hold,
// record, forward, restore/mask the result, record it. A refusal is a tool result
// with isError and Vigil's explanation, which the model can read and act on.
func (s *session) callTool(cc *clientCall, params object) {
	name := params.str("name")
	if name == "" {
		s.answerError(cc, &jsonrpc.Error{Code: codeInvalidParams, Message: "tools/call needs params.name"})
		return
	}
	t, err := s.tool(cc.ctx, name, listingMeta(params))
	if err != nil {
		if cc.ctx.Err() == nil {
			s.answerResult(cc, toolError(err))
		}
		return
	}
	switch {
	case t == nil && s.srv.pinning == pins.ModePin && s.g.pins != nil:
		s.refuse(cc, name, "mcp.pinning.unlisted", fmt.Sprintf("MCP server %s does not list a tool named %q, so Vigil cannot check it against its pinned definition", s.srv.name, name))
		return
	case t == nil:
		t = &toolInfo{name: name, annotations: vigil.DefaultToolAnnotations()}
	case s.hiddenByPin(t) && !s.approvedSince(cc.ctx, t):
		s.refuse(cc, name, "mcp.pinning.changed", fmt.Sprintf("the definition of tool %q changed since it was approved, so Vigil hides it until an admin approves the new version (vigil mcp approve %s %s)", name, s.srv.name, name))
		return
	}

	var payload []byte
	if a := params["arguments"]; len(a) > 0 && !bytes.Equal(bytes.TrimSpace(a), []byte("null")) {
		payload = a
	}
	f, err := s.g.pipeline.Begin(cc.ctx, enforce.Call{
		Actor: s.actor, Kind: vigil.ToolCall, Source: enforce.SourceMCP, SessionID: s.id,
		Tool:    &vigil.Tool{Server: s.srv.name, Name: name, Annotations: t.annotations},
		Payload: payload, ArgsFromPayload: true, Args: map[string]any{},
		Attrs:    s.attrs("tools/call"),
		Progress: s.holdProgress(cc),
	})
	if err != nil {
		if cc.ctx.Err() == nil {
			s.answerResult(cc, toolError(err))
		}
		return
	}
	cc.flight.Store(f)
	fwd, err := s.inputResponses("tools/call", params)
	if err != nil {
		s.end(f, enforce.Outcome{Status: web.Status(err), Err: err})
		if cc.ctx.Err() == nil {
			s.answerResult(cc, toolError(err))
		}
		return
	}
	switch {
	case f.Approval != nil && f.Approval.Args != nil:
		fwd = clone(fwd)
		fwd["arguments"] = mustJSON(f.Approval.Args)
	case payload != nil && !bytes.Equal(f.Payload, payload):
		fwd = clone(fwd)
		fwd["arguments"] = f.Payload
	}
	// Mcp-Param-* headers mirror the arguments as forwarded, not as the client sent them.
	ctx := withParamHeaders(cc.ctx, paramHeaderValues(t.params, fwd["arguments"]))
	r, err := s.request(ctx, cc, "tools/call", fwd.encode())
	if err != nil {
		s.end(f, enforce.Outcome{Status: statusOf(err), Err: err})
		if cc.ctx.Err() == nil {
			s.answerResult(cc, toolError(upstreamFailure(s.srv.name, err)))
		}
		return
	}
	if r.Error != nil {
		o, werr := s.errorOutcome(cc, f, r)
		s.end(f, o)
		if isOurs(r) {
			// Vigil's own answer for a server that stopped: a tool error, so the
			// model knows the call did not complete and may retry.
			s.answerResult(cc, toolError(&vigil.Error{Code: vigil.EUPSTREAM, Message: wireMessage(r.Error)}))
			return
		}
		s.answerError(cc, werr)
		return
	}
	if res, err := decodeObject(r.Result); err == nil {
		if id, ok := createdTask(res); ok {
			// The server runs the call as a task: its result comes later, through
			// the same flight (tasks.go).
			s.startTask(cc, f, id, res)
			return
		}
	}
	result, err := f.Inbound(cc.ctx, r.Result)
	if err != nil {
		s.end(f, enforce.Outcome{Status: 200, Err: err})
		s.answerResult(cc, toolError(err))
		return
	}
	s.end(f, enforce.Outcome{Status: toolStatus(result), Body: result})
	s.answerResult(cc, result)
}

// readResource runs resources/read through the pipeline. The URI is forwarded as it
// is (masking it would read something else); the contents coming back are restored
// or masked. A refusal is a JSON-RPC error: a read result has no error flag.
func (s *session) readResource(cc *clientCall, params object) {
	uri := params.str("uri")
	if uri == "" {
		s.answerError(cc, &jsonrpc.Error{Code: codeInvalidParams, Message: "resources/read needs params.uri"})
		return
	}
	f, err := s.g.pipeline.Begin(cc.ctx, enforce.Call{
		Actor: s.actor, Kind: vigil.ResourceRead, Source: enforce.SourceMCP, SessionID: s.id,
		Resource: uri, Args: map[string]any{}, Attrs: s.attrs("resources/read"), Progress: s.holdProgress(cc),
	})
	if err != nil {
		if cc.ctx.Err() == nil {
			s.answerError(cc, vigilError(err))
		}
		return
	}
	cc.flight.Store(f)
	s.forwardGoverned(cc, f, "resources/read", params)
}

// getPrompt runs prompts/get through the pipeline: its arguments are masked on the
// way out like a tool's, the messages coming back restored or masked.
func (s *session) getPrompt(cc *clientCall, params object) {
	name := params.str("name")
	if name == "" {
		s.answerError(cc, &jsonrpc.Error{Code: codeInvalidParams, Message: "prompts/get needs params.name"})
		return
	}
	var payload []byte
	if a := params["arguments"]; len(a) > 0 && !bytes.Equal(bytes.TrimSpace(a), []byte("null")) {
		payload = a
	}
	f, err := s.g.pipeline.Begin(cc.ctx, enforce.Call{
		Actor: s.actor, Kind: vigil.PromptGet, Source: enforce.SourceMCP, SessionID: s.id,
		Resource: name, Payload: payload, ArgsFromPayload: true, Args: map[string]any{},
		Attrs: s.attrs("prompts/get"), Progress: s.holdProgress(cc),
	})
	if err != nil {
		if cc.ctx.Err() == nil {
			s.answerError(cc, vigilError(err))
		}
		return
	}
	cc.flight.Store(f)
	fwd := params
	if payload != nil && !bytes.Equal(f.Payload, payload) {
		fwd = clone(params)
		fwd["arguments"] = f.Payload
	}
	s.forwardGoverned(cc, f, "prompts/get", fwd)
}

// forwardGoverned forwards a decided read or prompt request and relays its answer
// through the flight's inbound processing.
func (s *session) forwardGoverned(cc *clientCall, f *enforce.Flight, method string, params object) {
	r, err := s.request(cc.ctx, cc, method, params.encode())
	if err != nil {
		s.end(f, enforce.Outcome{Status: statusOf(err), Err: err})
		if cc.ctx.Err() == nil {
			s.answerError(cc, vigilError(upstreamFailure(s.srv.name, err)))
		}
		return
	}
	if r.Error != nil {
		o, werr := s.errorOutcome(cc, f, r)
		s.end(f, o)
		s.answerError(cc, werr)
		return
	}
	result, err := f.Inbound(cc.ctx, r.Result)
	if err != nil {
		s.end(f, enforce.Outcome{Status: 200, Err: err})
		s.answerError(cc, vigilError(err))
		return
	}
	s.end(f, enforce.Outcome{Status: 200, Body: result})
	s.answerResult(cc, result)
}

// errorOutcome handles a JSON-RPC error answer: it returns the outcome to record
// and the error to send the client. A server's error message may carry anything
// (the arguments it rejected, a row it failed on), so it is treated like a result:
// the ledger's clear attributes get only its code; the message and data, masked as
// results are, go into the erasable body and to the client. When they can't be
// checked the client gets the code and a message saying so (fail-closed). Vigil's
// own messages (a server that stopped) are safe and pass as they are.
func (s *session) errorOutcome(cc *clientCall, f *enforce.Flight, r *jsonrpc.Response) (enforce.Outcome, *jsonrpc.Error) {
	var w *jsonrpc.Error
	if !errors.As(r.Error, &w) {
		w = &jsonrpc.Error{Code: codeInternal, Message: r.Error.Error()}
	}
	if isOurs(r) {
		return enforce.Outcome{Status: 502, Err: &vigil.Error{Code: vigil.EUPSTREAM, Message: w.Message}}, w
	}
	o := enforce.Outcome{Status: 500, Err: &vigil.Error{Code: vigil.EUPSTREAM, Message: fmt.Sprintf("the MCP server answered with JSON-RPC error %d", w.Code)}}
	body, err := f.Inbound(cc.ctx, mustJSON(w))
	var masked jsonrpc.Error
	if err == nil {
		err = json.Unmarshal(body, &masked)
	}
	if err != nil {
		s.g.log.Warn("couldn't mask an MCP server's error message; the client gets its code only", "server", s.srv.name, "code", w.Code, "err", err)
		return o, &jsonrpc.Error{Code: w.Code, Message: fmt.Sprintf("MCP server %s answered with error %d; Vigil could not check its message for personal data, so it was withheld (fail-closed)", s.srv.name, w.Code)}
	}
	o.Body = body
	return o, &masked
}

// end records the response. The client may be gone; the record is still made.
func (s *session) end(f *enforce.Flight, o enforce.Outcome) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), recordTimeout)
	defer cancel()
	if err := f.End(ctx, o); err != nil {
		s.g.log.Error("couldn't record an MCP response", "server", s.srv.name, "request", f.EventID, "err", err)
	}
}

// refuse answers a tools/call that Vigil refuses before policy (a tool whose pin is
// not approved, or not listed at all) and records the refusal.
func (s *session) refuse(cc *clientCall, tool, rule, message string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), recordTimeout)
	defer cancel()
	attrs := s.attrs("tools/call")
	attrs["tool"], attrs["server"], attrs["message"] = tool, s.srv.name, message
	e := vigil.Event{
		Type: vigil.EventToolCall, Time: time.Now(), Actor: s.actor.String(), AgentID: s.actor.ID, SystemID: s.actor.SystemID,
		SessionID: s.id, Decision: vigil.Deny, Rules: []string{rule}, Attrs: attrs,
	}
	err := &vigil.Error{Code: vigil.EDENIED, Message: message}
	if _, rerr := s.g.pipeline.Ledger.Record(ctx, e); rerr != nil {
		s.g.log.Error("couldn't record a refused MCP tool call", "server", s.srv.name, "tool", tool, "err", rerr)
	}
	s.answerResult(cc, toolError(err))
}

func (s *session) attrs(method string) map[string]string {
	a := map[string]string{"method": method}
	if s.srv.name != "" {
		a["server"] = s.srv.name
	}
	if s.stateless {
		a["protocol"] = statelessV1
	} else {
		s.mu.Lock()
		if s.version != "" {
			a["protocol"] = s.version
		}
		s.mu.Unlock()
	}
	return a
}

// holdProgress reports, while a call waits for a human, progress notifications on
// the call's token (when the client gave one), so that clients that reset their
// timeout on progress keep waiting. Each says what the call waits for.
func (s *session) holdProgress(cc *clientCall) func(string, time.Duration, time.Time) {
	return func(approvalID string, waited time.Duration, expires time.Time) {
		if cc.token == nil || cc.done.Load() {
			return
		}
		v := math.Round(waited.Seconds()*1000) / 1000
		if prev := cc.held(); v <= prev {
			v = prev + 0.001
		}
		cc.heldProgress.Store(math.Float64bits(v))
		msg := fmt.Sprintf("Waiting for a human to approve this call (approval %s", approvalID)
		if !expires.IsZero() {
			msg += ", expires " + expires.UTC().Format(time.RFC3339)
		}
		msg += ")"
		n := &jsonrpc.Request{Method: "notifications/progress", Params: mustJSON(map[string]any{
			"progressToken": cc.token, "progress": v, "message": msg,
		})}
		cc.stream.send(encode(n), "")
	}
}

// held is the last progress Vigil reported for the call while it was held.
func (cc *clientCall) held() float64 { return math.Float64frombits(cc.heldProgress.Load()) }

// shiftProgress moves a server's progress above what Vigil reported while holding.
func shiftProgress(p object, base float64) object {
	out := clone(p)
	for _, k := range []string{"progress", "total"} {
		var v float64
		if json.Unmarshal(p[k], &v) == nil {
			out[k] = mustJSON(v + base)
		}
	}
	return out
}

// toolError is a tools/call result that tells the model why Vigil did not (or could
// not) run the call.
func toolError(err error) json.RawMessage {
	code := vigil.ErrorCode(err)
	return mustJSON(map[string]any{
		"content": []map[string]string{{"type": "text", "text": "Vigil: " + vigil.ErrorMessage(err)}},
		"isError": true,
		"_meta":   map[string]any{metaKey: map[string]string{"code": string(code)}},
	})
}

// errTimeout is an upstream request that took longer than the server's timeout.
type errTimeout struct{ d time.Duration }

func (e errTimeout) Error() string { return fmt.Sprintf("no answer within %s", e.d) }

// upstreamFailure turns a failure to get an answer into a caller-safe error.
func upstreamFailure(server string, err error) error {
	var ve *vigil.Error
	if errors.As(err, &ve) {
		return err
	}
	var te errTimeout
	if errors.As(err, &te) {
		return &vigil.Error{Code: vigil.ETIMEOUT, Message: fmt.Sprintf("MCP server %s did not answer within %s", server, te.d), Err: err}
	}
	return &vigil.Error{Code: vigil.EUNAVAILABLE, Message: fmt.Sprintf("MCP server %s is unavailable; try again later", server), Err: err}
}

// upstreamError is the JSON-RPC error for a call Vigil could not get answered.
func upstreamError(server string, err error) *jsonrpc.Error {
	return vigilError(upstreamFailure(server, err))
}

func statusOf(err error) int {
	var te errTimeout
	if errors.As(err, &te) {
		return 504
	}
	if errors.Is(err, context.Canceled) {
		return 499
	}
	return 502
}

// synthetic marks (in Response.Extra) a response Vigil made up for a call the server
// could not answer (it stopped, its stream broke).
type synthetic struct{}

// isOurs reports whether a response was made by Vigil for a server that failed.
func isOurs(r *jsonrpc.Response) bool {
	_, ok := r.Extra.(synthetic)
	return ok
}

// wireCode is the JSON-RPC code of an error answer (a code is safe to log; its
// message may carry anything).
func wireCode(err error) int64 {
	var w *jsonrpc.Error
	if errors.As(err, &w) {
		return w.Code
	}
	return codeInternal
}

func wireMessage(err error) string {
	var w *jsonrpc.Error
	if errors.As(err, &w) {
		return w.Message
	}
	return err.Error()
}

func clone(o object) object {
	out := make(object, len(o))
	for k, v := range o {
		out[k] = v
	}
	return out
}
