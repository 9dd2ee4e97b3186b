package mcpproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Ledger event types of the requests a server makes of the client that carry data
// across Vigil, and of the client's answers (linked by attrs.request).
const (
	// EventSampling: a server asked the client's model to generate (sampling/createMessage).
	EventSampling       = "mcp.sampling"
	EventSamplingResult = "mcp.sampling.result"
	// EventElicitation: a server asked the client's user for input (elicitation/create).
	EventElicitation       = "mcp.elicitation"
	EventElicitationResult = "mcp.elicitation.result"
	// EventInputResult: a 2026-07-28 client's answers to a server's input requests
	// (params.inputResponses of a retried call or of tasks/update).
	EventInputResult = "mcp.input.result"
)

// governedServerRequests are the server-to-client requests Vigil governs, by method:
// sampling sends the server's messages to the client's model and the model's answer
// back to the server; elicitation sends the server's question to the user and the
// user's answer back. They move data like a tool call does, in the other direction,
// so they get the same data treatment (docs/adr/0008-mcp-gateway.md): what flows
// towards the client goes through the inbound PII processing a tool result gets
// (tokens restored, PII counted and, where configured, masked); what flows to the
// server is masked like tool arguments (or blocked); both are recorded with their PII
// counts before they are relayed, and a failing control step fails closed as it does
// for a call. They are not decided by policy: the client holds them for its user
// (the spec's human in the loop), and policy has no action kind for them.
var governedServerRequests = map[string]string{
	"sampling/createMessage": EventSampling,
	"elicitation/create":     EventElicitation,
}

// serverCall is a request of the server in flight to the client.
type serverCall struct {
	stream *stream
	// event is the ledger id of a governed request, kind its event type and method
	// its method; all empty for requests that pass as they are (roots/list, ping).
	event, kind, method string
}

// serverRequest governs a sampling or elicitation request on its way to the client.
// It returns the request to relay, or false when Vigil answered the server itself
// (fail-closed).
func (s *session) serverRequest(m *jsonrpc.Request, p *pending, sc *serverCall) (*jsonrpc.Request, bool) {
	kind := governedServerRequests[m.Method]
	pl := s.g.pipeline
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), recordTimeout)
	defer cancel()
	e := s.serverEvent(kind, m.Method)
	if f := s.askingCall(p); f != nil {
		e.Attrs["call"] = f.EventID // the governed call during which the server asked
	}
	params := m.Params
	if pl.PII != nil && len(params) > 0 {
		t0 := time.Now()
		out, sum, err := pl.PII.InboundJSON(ctx, s.scope(), params)
		e.Timings["pii"] = time.Since(t0).Microseconds()
		switch {
		case err == nil:
			params = out
			for t, n := range sum.Counts {
				e.Counts["pii.in."+t] = int64(n)
			}
		case pl.FailOpen.PII:
			e.Attrs["pii"] = "failed-open"
		default:
			s.g.log.Error("couldn't check a server's request for personal data; refusing it (fail-closed)", "server", s.srv.name, "method", m.Method, "err", err)
			e.Decision, e.Attrs["note"] = vigil.Deny, "pii check failed"
			s.record(ctx, e)
			s.answerServer(m.ID, codeUnavailable, "Vigil could not check this request for personal data, so it did not relay it to the client (fail-closed)")
			return nil, false
		}
	}
	if pl.Bodies != enforce.BodyNone {
		e.Body = params
	}
	if err := s.record(ctx, e); err != nil && !pl.FailOpen.Ledger {
		s.answerServer(m.ID, codeUnavailable, "Vigil could not record this request in its audit ledger, so it did not relay it to the client (fail-closed)")
		return nil, false
	}
	sc.event, sc.kind, sc.method = e.ID, kind, m.Method
	return &jsonrpc.Request{ID: m.ID, Method: m.Method, Params: params}, true
}

// serverResult governs the client's answer to a governed server request on its way
// to the server: masked like tool arguments, recorded, linked to the request. It
// returns what to forward: the masked answer, or an error when the answer is
// blocked or could not be checked or recorded (fail-closed).
func (s *session) serverResult(sc *serverCall, r *jsonrpc.Response) *jsonrpc.Response {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), recordTimeout)
	defer cancel()
	e := s.serverEvent(sc.kind+".result", sc.method)
	e.Attrs["request"] = sc.event
	if r.Error != nil {
		e.Attrs["status"] = "error"
		e.Attrs["code"] = fmt.Sprint(wireCode(r.Error))
		s.record(ctx, e)
		return r // the client's refusal: a code and its own message, nothing of the user's
	}
	var head struct {
		Action string `json:"action"`
		Model  string `json:"model"`
	}
	_ = json.Unmarshal(r.Result, &head)
	if head.Action != "" {
		e.Attrs["action"] = head.Action
	}
	if head.Model != "" {
		e.Attrs["model"] = head.Model
	}
	result, verr := s.maskAnswer(ctx, &e, r.Result)
	if verr != nil {
		return refusal(r.ID, jsonrpcCode(verr.Code), verr.Message)
	}
	return &jsonrpc.Response{ID: r.ID, Result: result}
}

// maskAnswer masks and records what a client sends a server in answer to its
// questions (sampling, elicitation, inputResponses), with e's PII counts and
// timings: like tool arguments, blocked or refused when it can't be checked or
// recorded (fail-closed). It returns what to send, or why nothing may be (already
// recorded).
func (s *session) maskAnswer(ctx context.Context, e *vigil.Event, doc []byte) ([]byte, *vigil.Error) {
	pl := s.g.pipeline
	out := doc
	if pl.PII != nil && len(doc) > 0 {
		t0 := time.Now()
		masked, sum, err := pl.PII.MaskJSON(ctx, s.scope(), doc)
		e.Timings["pii"] = time.Since(t0).Microseconds()
		for t, n := range sum.Counts {
			e.Counts["pii."+t] = int64(n)
		}
		switch {
		case errors.Is(err, enforce.ErrBlocked):
			e.Decision, e.Rules = vigil.Deny, []string{"pii.block"}
			s.record(ctx, *e)
			return nil, &vigil.Error{Code: vigil.EDENIED, Message: "Vigil blocked the client's answer: it carries personal data or a secret that this deployment blocks"}
		case err == nil:
			out = masked
		case pl.FailOpen.PII:
			e.Attrs["pii"] = "failed-open"
		default:
			s.g.log.Error("couldn't check a client's answer for personal data; refusing it (fail-closed)", "server", s.srv.name, "err", err)
			e.Decision, e.Attrs["note"] = vigil.Deny, "pii check failed"
			s.record(ctx, *e)
			return nil, &vigil.Error{Code: vigil.EUNAVAILABLE, Message: "Vigil could not check the client's answer for personal data, so it did not send it (fail-closed)"}
		}
	}
	e.Attrs["status"] = "ok"
	if pl.Bodies != enforce.BodyNone {
		e.Body = out
	}
	if err := s.record(ctx, *e); err != nil && !pl.FailOpen.Ledger {
		return nil, &vigil.Error{Code: vigil.EUNAVAILABLE, Message: "Vigil could not record the client's answer in its audit ledger, so it did not send it (fail-closed)"}
	}
	return out, nil
}

// inputResponses governs the answers a 2026-07-28 client sends back to a server's
// input requests (params.inputResponses of a retried tools/call, or of
// tasks/update): what the user or the client's model answered goes to the server,
// so it is masked like tool arguments, recorded, and blocked or refused as they are.
// It returns params with the masked answers, or a *vigil.Error for the client.
func (s *session) inputResponses(method string, params object) (object, error) {
	raw := params["inputResponses"]
	if len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return params, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), recordTimeout)
	defer cancel()
	e := s.serverEvent(EventInputResult, method)
	out, verr := s.maskAnswer(ctx, &e, raw)
	if verr != nil {
		return nil, verr
	}
	if bytes.Equal(out, raw) {
		return params, nil
	}
	fwd := clone(params)
	fwd["inputResponses"] = out
	return fwd, nil
}

// askingCall is the flight of the governed call a server request was made during:
// the call whose stream carried it (HTTP) or, when the transport cannot tell (stdio),
// the session's only governed call in flight; nil when that is ambiguous.
func (s *session) askingCall(p *pending) *enforce.Flight {
	if p != nil && p.call != nil {
		return p.call.flight.Load()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var only *enforce.Flight
	for _, cc := range s.calls {
		if f := cc.flight.Load(); f != nil {
			if only != nil {
				return nil
			}
			only = f
		}
	}
	return only
}

// serverEvent starts a ledger entry about a server request of this session.
func (s *session) serverEvent(typ, method string) vigil.Event {
	attrs := s.attrs(method)
	return vigil.Event{
		ID: uuid.Must(uuid.NewV7()).String(), Type: typ, Time: time.Now(),
		Actor: s.actor.String(), AgentID: s.actor.ID, SystemID: s.actor.SystemID, SessionID: s.id,
		Timings: map[string]int64{}, Counts: map[string]int64{}, Attrs: attrs,
	}
}

// record appends e to the ledger, logging a failure.
func (s *session) record(ctx context.Context, e vigil.Event) error {
	_, err := s.g.pipeline.Ledger.Record(ctx, e)
	if err != nil {
		s.g.log.Error("couldn't record an MCP server request", "server", s.srv.name, "type", e.Type, "err", err)
	}
	return err
}

// scope is whose tokens this session's data may see.
func (s *session) scope() enforce.Scope {
	return enforce.Scope{AgentID: s.actor.ID, SessionID: s.id}
}

// answerServer answers a request of the server with an error, in the client's place.
func (s *session) answerServer(id jsonrpc.ID, code int64, msg string) {
	s.forward(refusal(id, code, msg))
}

func refusal(id jsonrpc.ID, code int64, msg string) *jsonrpc.Response {
	return &jsonrpc.Response{ID: id, Error: &jsonrpc.Error{Code: code, Message: msg}}
}
