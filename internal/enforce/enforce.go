// Package enforce is the per-call governance pipeline that every ingress (the OpenAI
// and Anthropic routes, MCP, the decision API) runs a call through:
//
//	1 authenticate   the ingress resolves the agent key to an Actor (auth refuses suspended agents)
//	2 normalise      the ingress describes the call as a Call; Begin turns it into a vigil.Action
//	3 mask           PII and secrets in the outbound payload are masked (or the call blocked)
//	4 decide         policy: allow | deny | require_approval, with reasons
//	5 hold           require_approval waits for a human (or returns pending to the decision API)
//	6 record         the request and its decision are durable in the ledger before anything leaves
//	7 forward        the ingress sends Flight.Payload upstream; on the way back Flight.Inbound
//	                 restores or masks the answer and Flight.ToolCall judges tool calls a model proposes
//	8 record         Flight.End appends the response and feeds usage to limits and budgets
//
// Steps 3-6 are Begin, in that order, in one place. Each step reports what it did in
// the ledger entry (timings, PII counts by type, policy version, matched rules, the
// approval). A control step that fails (the masker, the policy engine, the ledger)
// fails the call closed unless FailOpen says otherwise for that step, and the failure
// is recorded.
//
// The pipeline knows nothing of HTTP or JSON-RPC: ingresses translate its errors
// (vigil.Error codes) into their own shapes.
package enforce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Scope identifies whose tokenized values a payload may see: PII tokens minted for one
// agent's session are only restored for that agent and session.
type Scope struct {
	AgentID   string
	SessionID string
}

// Masker is the PII and secret engine as the pipeline uses it.
type Masker interface {
	// MaskJSON masks a JSON document going out (to a provider or a tool). It MUST return
	// valid JSON when given valid JSON, and an error matching ErrBlocked when the
	// configured operator for a finding is "block".
	MaskJSON(ctx context.Context, scope Scope, doc []byte) ([]byte, vigil.PIISummary, error)
	// InboundJSON processes a JSON answer coming back: it restores tokens minted in
	// scope (where configured) and reports (and, if configured, masks) PII the answer
	// itself carries.
	InboundJSON(ctx context.Context, scope Scope, doc []byte) ([]byte, vigil.PIISummary, error)
	// InboundText is InboundJSON for plain text (tool results that are text, SSE text
	// deltas assembled by the caller).
	InboundText(ctx context.Context, scope Scope, text []byte) ([]byte, vigil.PIISummary, error)
	// InboundStream returns a filter for a stream of text deltas that restores tokens
	// split across chunks.
	InboundStream(ctx context.Context, scope Scope) StreamFilter
}

// StreamFilter processes a stream of text chunks, holding back only what might be the
// start of a token or entity split across chunks.
type StreamFilter interface {
	// Write returns the text that can be released now.
	Write(chunk []byte) []byte
	// Flush returns whatever was held back; the stream is over.
	Flush() []byte
	// Summary is what was found so far.
	Summary() vigil.PIISummary
}

// ErrBlocked is what a Masker returns when a finding's operator is "block"; check with
// errors.Is.
var ErrBlocked = errors.New("payload blocked by PII policy")

// Decider is the policy engine.
type Decider interface {
	Decide(ctx context.Context, a vigil.Action) (vigil.Decision, error)
}

// Holder is human oversight: it raises an approval request and, when asked to, waits
// for its outcome.
type Holder interface {
	Hold(ctx context.Context, req HoldRequest) (HoldResult, error)
}

// HoldRequest asks a human to approve an action.
type HoldRequest struct {
	Action   vigil.Action
	Decision vigil.Decision
	// Source says where the action came from (see the Source constants).
	Source string
	// Wait makes Hold block until the request is decided, expires or ctx ends. Without
	// it Hold returns at once with Status "pending" (the decision API).
	Wait bool
	// Progress, if set, is called about every few seconds while waiting (MCP sends
	// progress notifications so clients don't time out).
	Progress func(approvalID string, waited time.Duration, expires time.Time)
}

// HoldResult is the outcome of a hold.
type HoldResult struct {
	ApprovalID string
	// Status is approved, denied, expired, cancelled or pending.
	Status    string
	Reviewers []string
	Reason    string
	// Args, if set, are arguments a reviewer edited before approving.
	Args map[string]any
}

// Recorder is the ledger.
type Recorder interface {
	Record(ctx context.Context, e vigil.Event) (vigil.Receipt, error)
}

// UsageSink receives token and cost usage after a response, for limits and budgets.
type UsageSink interface {
	AddUsage(ctx context.Context, a vigil.Action, u Usage) error
}

// Observer is told what each call actually used (the ISO 42001 inventory discovers
// systems' models, providers and tools from it). It MUST NOT block.
type Observer interface {
	Observe(ctx context.Context, a vigil.Action)
}

// Usage is what an upstream answer consumed.
type Usage struct {
	InputTokens  int64
	OutputTokens int64
	// Cost in the configured currency's minor unit per million (micro-units), so sums stay exact.
	CostMicros int64
}

// Sources of calls, for the ledger and approval requests.
const (
	SourceOpenAI    = "openai"
	SourceAnthropic = "anthropic"
	SourceMCP       = "mcp"
	SourceDecision  = "decision_api"
	SourceModelTool = "model_tool_call"
)

// FailOpen says, per control step, whether a failure of that step lets the call
// through (recorded as such) instead of refusing it. The zero value fails closed.
type FailOpen struct {
	PII    bool
	Policy bool
	Ledger bool
}

// BodyMode says what a ledger entry's erasable body holds.
type BodyMode string

// Body modes.
const (
	BodyMasked BodyMode = "masked" // the payload as it left (default): no raw PII in the ledger
	BodyNone   BodyMode = "none"   // no body; the leaf still commits to counts and decisions
)

// Pipeline runs calls through the governance steps. Its fields are set once, before
// use; it is safe for concurrent use.
type Pipeline struct {
	PII       Masker // nil: no masking (the pii.mode "off")
	Policy    Decider
	Oversight Holder
	Ledger    Recorder
	Usage     UsageSink // optional
	Observer  Observer  // optional
	FailOpen  FailOpen
	Bodies    BodyMode
	Log       *slog.Logger
	Metrics   *Metrics // optional
	Now       func() time.Time

	seqMu sync.Mutex
	seq   map[string]int64
}

func (p *Pipeline) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Pipeline) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// Call is one governed call as an ingress describes it.
type Call struct {
	Actor     vigil.Actor
	Kind      vigil.ActionKind
	Source    string
	SessionID string
	Model     *vigil.Model
	Tool      *vigil.Tool
	Resource  string
	// Args are what policy sees as args: request parameters for model calls (never
	// message content), a tool's arguments for tool calls. When ArgsFromPayload is set
	// they are decoded from the masked payload instead.
	Args            map[string]any
	ArgsFromPayload bool
	// Payload is the JSON that will leave (request body, tool arguments), nil if none.
	Payload []byte
	// Attrs are extra non-personal facts for the ledger entry (route, provider…).
	Attrs map[string]string
	// NoWait makes a require_approval decision return ErrPending with the approval id
	// instead of holding (the decision API).
	NoWait bool
	// Progress is passed to the Holder while a call is held.
	Progress func(approvalID string, waited time.Duration, expires time.Time)
}

// ErrPending is returned (wrapped in a *Pending) when a call needs approval and
// NoWait was set. Check with errors.As(err, new(*enforce.Pending)).
type Pending struct {
	ApprovalID string
	Flight     *Flight
}

func (p *Pending) Error() string { return "pending approval " + p.ApprovalID }

// Refusal is the error Begin returns when it refused a call after deciding: it carries
// the decision and the ledger id of the recorded refusal, and unwraps to the
// caller-safe *vigil.Error (so vigil.ErrorCode and ErrorMessage work on it).
type Refusal struct {
	Decision vigil.Decision
	EventID  string
	Err      error
}

func (r *Refusal) Error() string { return r.Err.Error() }

func (r *Refusal) Unwrap() error { return r.Err }

func refuse(f *Flight, err error) error {
	return &Refusal{Decision: f.Decision, EventID: f.EventID, Err: err}
}

// Flight is a call that passed steps 3-6 and may be forwarded.
type Flight struct {
	p        *Pipeline
	Action   vigil.Action
	Decision vigil.Decision
	// Payload is the masked payload to forward.
	Payload []byte
	// EventID is the ledger id of the request entry.
	EventID string
	// Approval is the hold's outcome, when the call was held.
	Approval *HoldResult
	Scope    Scope
	source   string
	start    time.Time
	attrs    map[string]string
	mu       sync.Mutex
	inPII    vigil.PIISummary
	ended    bool
}

// eventTypes are the ledger types of request and response entries per kind.
var eventTypes = map[vigil.ActionKind][2]string{
	vigil.ModelCall:    {vigil.EventModelRequest, vigil.EventModelResponse},
	vigil.ToolCall:     {vigil.EventToolCall, vigil.EventToolResult},
	vigil.ResourceRead: {vigil.EventResourceRead, vigil.EventResourceRead + ".result"},
	vigil.PromptGet:    {vigil.EventPromptGet, vigil.EventPromptGet + ".result"},
}

// Begin runs steps 3 to 6 and returns the flight to forward, or an error: a
// *vigil.Error with EDENIED (policy, PII block, a human said no), ETIMEOUT (approval
// expired), EUNAVAILABLE (a control step failed closed), or a *Pending.
func (p *Pipeline) Begin(ctx context.Context, c Call) (*Flight, error) {
	start := p.now()
	types, ok := eventTypes[c.Kind]
	if !ok {
		return nil, vigil.Errorf(vigil.EINVALID, "unknown action kind %q", c.Kind)
	}
	f := &Flight{
		p: p, source: c.Source, start: start, Payload: c.Payload,
		Scope: Scope{AgentID: c.Actor.ID, SessionID: c.SessionID},
		attrs: map[string]string{"source": c.Source},
	}
	maps.Copy(f.attrs, c.Attrs)
	f.Action = vigil.Action{
		ID: uuid.Must(uuid.NewV7()).String(), Kind: c.Kind, Actor: c.Actor, SessionID: c.SessionID,
		Model: c.Model, Tool: c.Tool, Resource: c.Resource, Args: c.Args, Time: start,
	}
	f.EventID = f.Action.ID
	timings := map[string]int64{}
	counts := map[string]int64{}

	// 3 mask
	if p.PII != nil && len(c.Payload) > 0 {
		t0 := p.now()
		masked, sum, err := p.PII.MaskJSON(ctx, f.Scope, c.Payload)
		timings["pii"] = p.now().Sub(t0).Microseconds()
		switch {
		case errors.Is(err, ErrBlocked):
			f.Action.PII = sum
			msg := "the request carries personal data or a secret that this deployment blocks (" + strings.Join(sum.Types(), ", ") + ")"
			if vigil.ErrorCode(err) == vigil.EDENIED {
				msg = vigil.ErrorMessage(err) // the masker names exactly the blocked types
			}
			f.Decision = vigil.Decision{Effect: vigil.Deny, Rules: []string{"pii.block"}, Message: msg + "; remove it and retry"}
			p.recordRequest(ctx, f, types[0], timings, counts, nil, "")
			p.Metrics.decision(f.Decision.Effect)
			return nil, refuse(f, &vigil.Error{Code: vigil.EDENIED, Message: f.Decision.Message, Err: err})
		case err != nil:
			p.Metrics.failure("pii")
			if !p.FailOpen.PII {
				p.log().ErrorContext(ctx, "PII masking failed; refusing the call", "event", f.EventID, "err", err)
				f.Decision = vigil.Decision{Effect: vigil.Deny, Rules: []string{"pii.failure"}, Message: "PII masking failed, so the call was refused (fail-closed)"}
				p.recordRequest(ctx, f, types[0], timings, counts, nil, "pii masking failed")
				return nil, refuse(f, &vigil.Error{Code: vigil.EUNAVAILABLE, Message: "Vigil could not check this request for personal data, so it was not sent (fail-closed); try again later", Err: err})
			}
			p.log().WarnContext(ctx, "PII masking failed; passing the call unmasked (fail_open.pii)", "event", f.EventID, "err", err)
			f.attrs["pii"] = "failed-open"
		default:
			f.Payload = masked
			f.Action.PII = sum
			for t, n := range sum.Counts {
				counts["pii."+t] = int64(n)
			}
			p.Metrics.findings(sum)
		}
	}
	if c.ArgsFromPayload && len(f.Payload) > 0 {
		args, err := decodeArgs(f.Payload)
		if err != nil {
			return nil, vigil.Errorf(vigil.EINVALID, "arguments must be a JSON object: %v", err)
		}
		f.Action.Args = args
	}

	// 4 decide
	t0 := p.now()
	d, err := p.Policy.Decide(ctx, f.Action)
	timings["policy"] = p.now().Sub(t0).Microseconds()
	if err != nil {
		p.Metrics.failure("policy")
		if !p.FailOpen.Policy {
			p.log().ErrorContext(ctx, "policy evaluation failed; refusing the call", "event", f.EventID, "err", err)
			f.Decision = vigil.Decision{Effect: vigil.Deny, Rules: []string{"policy.failure"}, Message: "policy could not be evaluated, so the call was refused (fail-closed)"}
			p.recordRequest(ctx, f, types[0], timings, counts, nil, "policy evaluation failed")
			return nil, refuse(f, &vigil.Error{Code: vigil.EUNAVAILABLE, Message: "Vigil could not evaluate policy for this call, so it was refused (fail-closed); try again later", Err: err})
		}
		d = vigil.Decision{Effect: vigil.Allow, Rules: []string{"policy.failed-open"}, Message: "policy failed; allowed by fail_open.policy"}
	}
	f.Decision = d
	p.Metrics.decision(d.Effect)

	// 5 hold
	if d.Effect == vigil.RequireApproval {
		t0 := p.now()
		res, err := p.hold(ctx, HoldRequest{Action: f.Action, Decision: d, Source: c.Source, Wait: !c.NoWait, Progress: c.Progress})
		timings["hold"] = p.now().Sub(t0).Microseconds()
		if err != nil {
			f.Decision.Effect = vigil.Deny
			p.recordRequest(ctx, f, types[0], timings, counts, nil, "approval could not be requested")
			switch vigil.ErrorCode(err) {
			case vigil.ESUSPENDED, vigil.EFORBIDDEN, vigil.ETIMEOUT:
				// Oversight's own caller-safe refusal (the kill switch was pulled while
				// the call waited): pass it on as it is.
				return nil, refuse(f, err)
			}
			if ctx.Err() != nil {
				return nil, refuse(f, &vigil.Error{Code: vigil.ETIMEOUT, Message: "the caller went away while the call waited for approval", Err: err})
			}
			return nil, refuse(f, &vigil.Error{Code: vigil.EUNAVAILABLE, Message: "the call needs human approval, but the approval request could not be raised; it was refused (fail-closed)", Err: err})
		}
		f.Approval = &res
		f.attrs["approval"] = res.ApprovalID
		f.attrs["approval_status"] = res.Status
		if res.Status == "pending" {
			if err := p.recordRequest(ctx, f, types[0], timings, counts, nil, ""); err != nil {
				return nil, err
			}
			return nil, &Pending{ApprovalID: res.ApprovalID, Flight: f}
		}
		if err := f.applyApproval(res); err != nil {
			p.recordRequest(ctx, f, types[0], timings, counts, nil, "")
			return nil, refuse(f, err)
		}
	}
	if f.Decision.Effect == vigil.Deny {
		p.recordRequest(ctx, f, types[0], timings, counts, nil, "")
		msg := d.Message
		if msg == "" {
			msg = "policy denied this call"
		}
		if d.Limit != "" {
			return nil, refuse(f, &vigil.Error{Code: vigil.ELIMIT, Message: msg})
		}
		return nil, refuse(f, &vigil.Error{Code: vigil.EDENIED, Message: msg + denyHint(d)})
	}

	// 6 record, durably, before anything leaves.
	if err := p.recordRequest(ctx, f, types[0], timings, counts, nil, ""); err != nil {
		return nil, err
	}
	if p.Observer != nil {
		p.Observer.Observe(ctx, f.Action)
	}
	return f, nil
}

// errNoOversight fails require_approval closed when no Holder is configured.
var errNoOversight = errors.New("no human oversight is configured to approve it")

func (p *Pipeline) hold(ctx context.Context, req HoldRequest) (HoldResult, error) {
	if p.Oversight == nil {
		return HoldResult{}, errNoOversight
	}
	return p.Oversight.Hold(ctx, req)
}

// applyApproval turns a finished hold into the flight's effect.
func (f *Flight) applyApproval(res HoldResult) error {
	switch res.Status {
	case "approved":
		f.Decision.Effect = vigil.Allow
		if res.Args != nil {
			f.Action.Args = res.Args
			f.attrs["args_edited"] = "true"
		}
		return nil
	case "denied":
		f.Decision.Effect = vigil.Deny
		msg := "a reviewer denied this call"
		if res.Reason != "" {
			msg += ": " + res.Reason
		}
		return vigil.Errorf(vigil.EDENIED, "%s", msg)
	case "expired":
		f.Decision.Effect = vigil.Deny
		return vigil.Errorf(vigil.ETIMEOUT, "no reviewer decided on this call before its approval expired, so it was denied; ask a reviewer and retry")
	case "cancelled":
		f.Decision.Effect = vigil.Deny
		return vigil.Errorf(vigil.ESUSPENDED, "the approval request was cancelled (the agent was suspended)")
	}
	f.Decision.Effect = vigil.Deny
	return vigil.Errorf(vigil.EINTERNAL, "approval ended in unknown status %q", res.Status)
}

func denyHint(d vigil.Decision) string {
	if len(d.Rules) == 0 {
		return ""
	}
	return " (rule " + strings.Join(d.Rules, ", ") + ")"
}

// recordRequest appends the request entry. Its error is a caller-safe EUNAVAILABLE
// unless the ledger step fails open.
func (p *Pipeline) recordRequest(ctx context.Context, f *Flight, typ string, timings, counts map[string]int64, extra map[string]string, note string) error {
	e := p.event(f, typ, timings, counts, true)
	if note != "" {
		e.Attrs["note"] = note
	}
	maps.Copy(e.Attrs, extra)
	if p.Bodies != BodyNone && len(f.Payload) > 0 {
		e.Body = f.Payload
	}
	t0 := p.now()
	// The record is evidence, also of calls whose caller went away (an MCP client
	// cancelling a held call): it must not be lost because ctx ended.
	_, err := p.Ledger.Record(context.WithoutCancel(ctx), e)
	p.Metrics.step("ledger", p.now().Sub(t0))
	if err != nil {
		p.Metrics.failure("ledger")
		if p.FailOpen.Ledger {
			p.log().ErrorContext(ctx, "ledger append failed; continuing (fail_open.ledger)", "event", f.EventID, "err", err)
			return nil
		}
		p.log().ErrorContext(ctx, "ledger append failed; refusing the call", "event", f.EventID, "err", err)
		return &vigil.Error{Code: vigil.EUNAVAILABLE, Message: "Vigil could not record this call in its audit ledger, so it was not sent (fail-closed); try again later", Err: err}
	}
	return nil
}

// event builds a ledger entry for f: the request entry itself (request true, with the
// flight's id) or one that follows it (a response, linked by attrs.request).
func (p *Pipeline) event(f *Flight, typ string, timings, counts map[string]int64, request bool) vigil.Event {
	a := f.Action
	attrs := maps.Clone(f.attrs)
	if a.Model != nil {
		attrs["model"] = a.Model.Name
		if a.Model.Provider != "" {
			attrs["provider"] = a.Model.Provider
		}
	}
	if a.Tool != nil {
		attrs["tool"] = a.Tool.Name
		if a.Tool.Server != "" {
			attrs["server"] = a.Tool.Server
		}
	}
	if a.Resource != "" {
		attrs["resource"] = a.Resource
	}
	if f.Decision.Message != "" && f.Decision.Effect != vigil.Allow {
		attrs["message"] = f.Decision.Message
	}
	if f.Decision.Limit != "" {
		attrs["limit"] = f.Decision.Limit
	}
	ev := vigil.Event{
		ID: f.EventID, Type: typ, Time: a.Time, Actor: a.Actor.String(), AgentID: a.Actor.ID, SystemID: a.Actor.SystemID,
		SessionID: a.SessionID, Policy: f.Decision.Policy, Decision: f.Decision.Effect, Rules: f.Decision.Rules,
		Timings: timings, Counts: counts, Attrs: attrs,
	}
	if a.SessionID != "" {
		ev.SessionSeq = p.nextSeq(a.Actor.ID + "/" + a.SessionID)
	}
	if !request {
		ev.ID = ""
		ev.Time = p.now()
		ev.Attrs["request"] = f.EventID
	}
	return ev
}

// nextSeq orders a session's events: strictly increasing per session in this process,
// seeded from the clock so replicas don't reuse each other's numbers in practice.
func (p *Pipeline) nextSeq(session string) int64 {
	p.seqMu.Lock()
	defer p.seqMu.Unlock()
	if p.seq == nil {
		p.seq = map[string]int64{}
	}
	n := max(p.seq[session]+1, p.now().UnixNano())
	p.seq[session] = n
	if len(p.seq) > 100000 {
		clear(p.seq) // bounded memory; the clock seed keeps new numbers increasing
	}
	return n
}

// Inbound processes an answer (JSON) coming back: tokens restored where configured,
// PII in the answer counted (and masked if configured).
func (f *Flight) Inbound(ctx context.Context, doc []byte) ([]byte, error) {
	if f.p.PII == nil || len(doc) == 0 {
		return doc, nil
	}
	out, sum, err := f.p.PII.InboundJSON(ctx, f.Scope, doc)
	return f.inbound(ctx, doc, out, sum, err)
}

// Restore is Inbound for a document that repeats content the flight already
// processed, such as the summary events of a stream (a Responses API
// "response.completed" repeats every text delta): tokens are restored (and answer PII
// masked, if configured) in the same way, but findings are not counted again, so the
// response entry's PII counts stay true.
func (f *Flight) Restore(ctx context.Context, doc []byte) ([]byte, error) {
	if f.p.PII == nil || len(doc) == 0 {
		return doc, nil
	}
	out, _, err := f.p.PII.InboundJSON(ctx, f.Scope, doc)
	return f.inbound(ctx, doc, out, vigil.PIISummary{}, err)
}

// InboundText is Inbound for plain text.
func (f *Flight) InboundText(ctx context.Context, text []byte) ([]byte, error) {
	if f.p.PII == nil || len(text) == 0 {
		return text, nil
	}
	out, sum, err := f.p.PII.InboundText(ctx, f.Scope, text)
	return f.inbound(ctx, text, out, sum, err)
}

func (f *Flight) inbound(ctx context.Context, in, out []byte, sum vigil.PIISummary, err error) ([]byte, error) {
	if err != nil {
		f.p.Metrics.failure("pii")
		if !f.p.FailOpen.PII {
			return nil, &vigil.Error{Code: vigil.EUNAVAILABLE, Message: "Vigil could not check the answer for personal data, so it was withheld (fail-closed)", Err: err}
		}
		return in, nil
	}
	f.addInbound(sum)
	return out, nil
}

// InboundStream returns a filter for the answer's text deltas. Without a masker it
// passes text through.
func (f *Flight) InboundStream(ctx context.Context) StreamFilter {
	if f.p.PII == nil {
		return passThrough{}
	}
	return &countingFilter{StreamFilter: f.p.PII.InboundStream(ctx, f.Scope), f: f}
}

type passThrough struct{}

func (passThrough) Write(b []byte) []byte     { return b }
func (passThrough) Flush() []byte             { return nil }
func (passThrough) Summary() vigil.PIISummary { return vigil.PIISummary{} }

// countingFilter adds the stream's findings to the flight when flushed.
type countingFilter struct {
	StreamFilter
	f *Flight
}

func (c *countingFilter) Flush() []byte {
	out := c.StreamFilter.Flush()
	c.f.addInbound(c.StreamFilter.Summary())
	return out
}

func (f *Flight) addInbound(sum vigil.PIISummary) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inPII.Counts == nil {
		f.inPII.Counts = map[string]int{}
	}
	for t, n := range sum.Counts {
		f.inPII.Counts[t] += n
	}
}

// Verdict is the pipeline's answer on a tool call a model proposed.
type Verdict struct {
	Allowed  bool
	Decision vigil.Decision
	// Message explains a refusal in words the agent can act on.
	Message  string
	Approval *HoldResult
	// Args are reviewer-edited arguments, when a reviewer changed them.
	Args map[string]any
}

// ToolCall judges a tool call the model proposed in its answer (policy with
// action.kind tool_call and source model_tool_call), holding it for a human when
// policy says so. A control failure denies the call (fail-closed).
func (f *Flight) ToolCall(ctx context.Context, tool vigil.Tool, args []byte) Verdict {
	p := f.p
	a := vigil.Action{
		ID: uuid.Must(uuid.NewV7()).String(), Kind: vigil.ToolCall, Actor: f.Action.Actor, SessionID: f.Action.SessionID,
		Model: f.Action.Model, Tool: &tool, Time: p.now(), PII: vigil.PIISummary{},
	}
	if len(args) > 0 {
		m, err := decodeArgs(args)
		if err != nil {
			return Verdict{Message: fmt.Sprintf("Vigil removed the call to %s: its arguments are not a JSON object", tool.Name)}
		}
		a.Args = m
	}
	child := &Flight{p: p, Action: a, EventID: a.ID, Scope: f.Scope, source: SourceModelTool, start: a.Time,
		attrs: map[string]string{"source": SourceModelTool, "response_of": f.EventID}}
	timings := map[string]int64{}
	d, err := p.Policy.Decide(ctx, a)
	if err != nil {
		p.Metrics.failure("policy")
		d = vigil.Decision{Effect: vigil.Deny, Rules: []string{"policy.failure"}, Message: "policy could not be evaluated (fail-closed)"}
		if p.FailOpen.Policy {
			d = vigil.Decision{Effect: vigil.Allow, Rules: []string{"policy.failed-open"}}
		}
	}
	child.Decision = d
	p.Metrics.decision(d.Effect)
	v := Verdict{Decision: d}
	if d.Effect == vigil.RequireApproval {
		t0 := p.now()
		res, err := p.hold(ctx, HoldRequest{Action: a, Decision: d, Source: SourceModelTool, Wait: true})
		timings["hold"] = p.now().Sub(t0).Microseconds()
		if err != nil {
			child.Decision.Effect = vigil.Deny
			v.Message = fmt.Sprintf("Vigil removed the call to %s: it needs human approval, which could not be obtained", tool.Name)
			if vigil.ErrorCode(err) != vigil.EINTERNAL {
				v.Message = fmt.Sprintf("Vigil removed the call to %s: %s", tool.Name, vigil.ErrorMessage(err))
			}
		} else {
			v.Approval = &res
			child.attrs["approval"], child.attrs["approval_status"] = res.ApprovalID, res.Status
			if err := child.applyApproval(res); err != nil {
				v.Message = fmt.Sprintf("Vigil removed the call to %s: %s", tool.Name, vigil.ErrorMessage(err))
			} else {
				v.Args = res.Args
			}
		}
	} else if d.Effect == vigil.Deny {
		msg := d.Message
		if msg == "" {
			msg = "policy does not allow it"
		}
		v.Message = fmt.Sprintf("Vigil removed the call to %s: %s%s", tool.Name, msg, denyHint(d))
	}
	v.Decision = child.Decision
	v.Allowed = child.Decision.Effect == vigil.Allow
	if err := p.recordRequest(ctx, child, vigil.EventDecision, timings, nil, map[string]string{"proposed": "true"}, ""); err != nil && v.Allowed {
		return Verdict{Decision: child.Decision, Message: fmt.Sprintf("Vigil removed the call to %s: it could not be recorded in the audit ledger (fail-closed)", tool.Name)}
	}
	return v
}

// Outcome is what came back from upstream.
type Outcome struct {
	// Status is the upstream status (HTTP status, or 200/500 for MCP success/error).
	Status int
	// Body is the answer as returned to the agent (after Inbound), for the ledger body.
	Body  []byte
	Usage Usage
	// Err is set when the upstream call failed; its message is recorded.
	Err error
	// Attrs are extra non-personal facts (finish reason, tool calls removed…).
	Attrs map[string]string
}

// End records the response (step 8) and feeds usage to limits and budgets. It is safe
// to call once; later calls do nothing.
func (f *Flight) End(ctx context.Context, o Outcome) error {
	f.mu.Lock()
	if f.ended {
		f.mu.Unlock()
		return nil
	}
	f.ended = true
	in := f.inPII
	f.mu.Unlock()
	p := f.p
	counts := map[string]int64{}
	for t, n := range in.Counts {
		counts["pii.in."+t] = int64(n)
	}
	if o.Usage.InputTokens > 0 || o.Usage.OutputTokens > 0 {
		counts["tokens.in"], counts["tokens.out"] = o.Usage.InputTokens, o.Usage.OutputTokens
	}
	if o.Usage.CostMicros > 0 {
		counts["cost.micros"] = o.Usage.CostMicros
	}
	timings := map[string]int64{"total": p.now().Sub(f.start).Microseconds()}
	e := p.event(f, eventTypes[f.Action.Kind][1], timings, counts, false)
	e.Attrs["status"] = fmt.Sprint(o.Status)
	maps.Copy(e.Attrs, o.Attrs)
	if o.Err != nil {
		e.Attrs["error"] = truncate(vigil.ErrorMessage(o.Err), 200)
	}
	if p.Bodies != BodyNone && len(o.Body) > 0 {
		e.Body = o.Body
	}
	var err error
	if _, rerr := p.Ledger.Record(ctx, e); rerr != nil {
		p.Metrics.failure("ledger")
		p.log().ErrorContext(ctx, "couldn't record response", "request", f.EventID, "err", rerr)
		err = fmt.Errorf("couldn't record the response of %s: %w", f.EventID, rerr)
	}
	if p.Usage != nil && (o.Usage.InputTokens > 0 || o.Usage.OutputTokens > 0 || o.Usage.CostMicros > 0) {
		if uerr := p.Usage.AddUsage(ctx, f.Action, o.Usage); uerr != nil {
			p.log().WarnContext(ctx, "couldn't add usage", "request", f.EventID, "err", uerr)
		}
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// RecordOutcome records what an in-process tool returned for a call decided through the
// decision API (the agent ran the tool itself). requestID is the decision's id; the
// payload is masked like any outbound payload before it is recorded.
func (p *Pipeline) RecordOutcome(ctx context.Context, actor vigil.Actor, requestID string, kind vigil.ActionKind, payload []byte, attrs map[string]string) (vigil.Receipt, error) {
	types, ok := eventTypes[kind]
	if !ok {
		return vigil.Receipt{}, vigil.Errorf(vigil.EINVALID, "unknown action kind %q", kind)
	}
	counts := map[string]int64{}
	body := payload
	if p.PII != nil && len(payload) > 0 {
		masked, sum, err := p.PII.MaskJSON(ctx, Scope{AgentID: actor.ID}, payload)
		switch {
		case err == nil:
			body = masked
			for t, n := range sum.Counts {
				counts["pii.in."+t] = int64(n)
			}
		case errors.Is(err, ErrBlocked):
			body = nil
			counts["pii.blocked"] = 1
		case !p.FailOpen.PII:
			return vigil.Receipt{}, &vigil.Error{Code: vigil.EUNAVAILABLE, Message: "Vigil could not check the outcome for personal data, so it was not recorded; try again later", Err: err}
		}
	}
	a := map[string]string{"request": requestID, "source": SourceDecision}
	maps.Copy(a, attrs)
	e := vigil.Event{Type: types[1], Time: p.now(), Actor: actor.String(), AgentID: actor.ID, SystemID: actor.SystemID, Counts: counts, Attrs: a}
	if p.Bodies != BodyNone && len(body) > 0 {
		e.Body = body
	}
	r, err := p.Ledger.Record(ctx, e)
	if err != nil {
		return vigil.Receipt{}, &vigil.Error{Code: vigil.EUNAVAILABLE, Message: "Vigil could not record the outcome in its audit ledger; try again later", Err: err}
	}
	return r, nil
}
