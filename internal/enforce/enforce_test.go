package enforce_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// fakeMasker replaces "alice@example.com" with "<EMAIL_1>" and restores it inbound.
type fakeMasker struct {
	err   error
	block bool
}

func (m *fakeMasker) MaskJSON(_ context.Context, _ enforce.Scope, doc []byte) ([]byte, vigil.PIISummary, error) {
	if m.err != nil {
		return nil, vigil.PIISummary{}, m.err
	}
	n := bytes.Count(doc, []byte("alice@example.com"))
	sum := vigil.PIISummary{Counts: map[string]int{}}
	if n > 0 {
		sum.Counts["EMAIL_ADDRESS"] = n
	}
	if m.block && n > 0 {
		return nil, sum, enforce.ErrBlocked
	}
	return bytes.ReplaceAll(doc, []byte("alice@example.com"), []byte("<EMAIL_1>")), sum, nil
}

func (m *fakeMasker) InboundJSON(_ context.Context, _ enforce.Scope, doc []byte) ([]byte, vigil.PIISummary, error) {
	return bytes.ReplaceAll(doc, []byte("<EMAIL_1>"), []byte("alice@example.com")), vigil.PIISummary{}, nil
}

func (m *fakeMasker) InboundText(ctx context.Context, s enforce.Scope, t []byte) ([]byte, vigil.PIISummary, error) {
	return m.InboundJSON(ctx, s, t)
}

func (m *fakeMasker) InboundStream(context.Context, enforce.Scope) enforce.StreamFilter { return nil }

// fakePolicy decides by tool name or model name.
type fakePolicy struct {
	err  error
	seen []vigil.Action
	mu   sync.Mutex
}

func (p *fakePolicy) Decide(_ context.Context, a vigil.Action) (vigil.Decision, error) {
	p.mu.Lock()
	p.seen = append(p.seen, a)
	p.mu.Unlock()
	if p.err != nil {
		return vigil.Decision{}, p.err
	}
	name := ""
	if a.Tool != nil {
		name = a.Tool.Name
	} else if a.Model != nil {
		name = a.Model.Name
	}
	switch {
	case strings.HasPrefix(name, "deny"):
		return vigil.Decision{Effect: vigil.Deny, Rules: []string{"no-" + name}, Message: "not " + name, Policy: "h1"}, nil
	case strings.HasPrefix(name, "limit"):
		return vigil.Decision{Effect: vigil.Deny, Rules: []string{"limit"}, Limit: "calls_per_minute", Message: "limit reached: 10 calls per minute", Policy: "h1"}, nil
	case strings.HasPrefix(name, "hold"):
		return vigil.Decision{Effect: vigil.RequireApproval, Rules: []string{"human"}, Policy: "h1", Approval: &vigil.ApprovalSpec{Approvers: 1}}, nil
	}
	return vigil.Decision{Effect: vigil.Allow, Rules: []string{"ok"}, Policy: "h1"}, nil
}

type fakeHolder struct {
	res enforce.HoldResult
	err error
	got []enforce.HoldRequest
}

func (h *fakeHolder) Hold(_ context.Context, r enforce.HoldRequest) (enforce.HoldResult, error) {
	h.got = append(h.got, r)
	if h.err != nil {
		return enforce.HoldResult{}, h.err
	}
	res := h.res
	res.ApprovalID = "ap-1"
	if !r.Wait {
		res.Status = "pending"
	}
	return res, nil
}

type fakeLedger struct {
	mu     sync.Mutex
	err    error
	events []vigil.Event
}

func (l *fakeLedger) Record(_ context.Context, e vigil.Event) (vigil.Receipt, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return vigil.Receipt{}, l.err
	}
	l.events = append(l.events, e)
	return vigil.Receipt{ID: e.ID, Index: int64(len(l.events) - 1)}, nil
}

type fakeUsage struct{ got []enforce.Usage }

func (u *fakeUsage) AddUsage(_ context.Context, _ vigil.Action, us enforce.Usage) error {
	u.got = append(u.got, us)
	return nil
}

var agent = vigil.Actor{Kind: vigil.ActorAgent, ID: "ag-1", Name: "bot", SystemID: "sys-1", SystemName: "support"}

func newPipeline() (*enforce.Pipeline, *fakeMasker, *fakePolicy, *fakeHolder, *fakeLedger) {
	m, p, h, l := &fakeMasker{}, &fakePolicy{}, &fakeHolder{}, &fakeLedger{}
	return &enforce.Pipeline{PII: m, Policy: p, Oversight: h, Ledger: l}, m, p, h, l
}

func modelCall(model, body string) enforce.Call {
	return enforce.Call{Actor: agent, Kind: vigil.ModelCall, Source: enforce.SourceOpenAI, SessionID: "s1",
		Model: &vigil.Model{Provider: "openai", Name: model}, Args: map[string]any{"model": model}, Payload: []byte(body)}
}

func TestAllowedCallIsMaskedRecordedThenEnded(t *testing.T) {
	pl, _, pol, _, led := newPipeline()
	usage := &fakeUsage{}
	pl.Usage = usage
	f, err := pl.Begin(context.Background(), modelCall("gpt-4o", `{"messages":[{"content":"mail alice@example.com"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(f.Payload), `{"messages":[{"content":"mail <EMAIL_1>"}]}`; got != want {
		t.Errorf("payload = %s, want %s", got, want)
	}
	if len(pol.seen) != 1 || pol.seen[0].PII.Counts["EMAIL_ADDRESS"] != 1 {
		t.Errorf("policy saw %+v; want the PII summary with one email", pol.seen)
	}
	if len(led.events) != 1 {
		t.Fatalf("ledger has %d events before forwarding, want the request entry", len(led.events))
	}
	req := led.events[0]
	if req.Type != vigil.EventModelRequest || req.ID != f.EventID || req.Decision != vigil.Allow || req.Policy != "h1" ||
		req.Counts["pii.EMAIL_ADDRESS"] != 1 || req.Attrs["model"] != "gpt-4o" || req.SessionSeq == 0 {
		t.Errorf("request entry = %+v", req)
	}
	if bytes.Contains(req.Body, []byte("alice@")) {
		t.Error("ledger body holds the unmasked value")
	}
	out, err := f.Inbound(context.Background(), []byte(`{"content":"wrote to <EMAIL_1>"}`))
	if err != nil || string(out) != `{"content":"wrote to alice@example.com"}` {
		t.Errorf("Inbound = %s, %v", out, err)
	}
	if err := f.End(context.Background(), enforce.Outcome{Status: 200, Body: out, Usage: enforce.Usage{InputTokens: 10, OutputTokens: 5}}); err != nil {
		t.Fatal(err)
	}
	if len(led.events) != 2 {
		t.Fatalf("ledger has %d events, want request and response", len(led.events))
	}
	resp := led.events[1]
	if resp.Type != vigil.EventModelResponse || resp.Attrs["request"] != f.EventID || resp.Counts["tokens.in"] != 10 || resp.Attrs["status"] != "200" || resp.SessionSeq <= req.SessionSeq {
		t.Errorf("response entry = %+v", resp)
	}
	if diff := cmp.Diff([]enforce.Usage{{InputTokens: 10, OutputTokens: 5}}, usage.got); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
	if err := f.End(context.Background(), enforce.Outcome{Status: 200}); err != nil || len(led.events) != 2 {
		t.Errorf("second End recorded again: %v, %d events", err, len(led.events))
	}
}

func TestRefusals(t *testing.T) {
	cases := []struct {
		name     string
		setup    func(*enforce.Pipeline, *fakeMasker, *fakePolicy, *fakeHolder, *fakeLedger)
		call     enforce.Call
		code     vigil.Code
		msg      string
		recorded vigil.Effect
	}{
		{"policy deny", nil, modelCall("deny-me", `{}`), vigil.EDENIED, "not deny-me (rule no-deny-me)", vigil.Deny},
		{"limit", nil, modelCall("limit-x", `{}`), vigil.ELIMIT, "limit reached", vigil.Deny},
		{"pii block", func(_ *enforce.Pipeline, m *fakeMasker, _ *fakePolicy, _ *fakeHolder, _ *fakeLedger) { m.block = true },
			modelCall("gpt", `"alice@example.com"`), vigil.EDENIED, "EMAIL_ADDRESS", vigil.Deny},
		{"pii failure fails closed", func(_ *enforce.Pipeline, m *fakeMasker, _ *fakePolicy, _ *fakeHolder, _ *fakeLedger) {
			m.err = errors.New("boom")
		},
			modelCall("gpt", `{}`), vigil.EUNAVAILABLE, "personal data", vigil.Deny},
		{"policy failure fails closed", func(_ *enforce.Pipeline, _ *fakeMasker, p *fakePolicy, _ *fakeHolder, _ *fakeLedger) {
			p.err = errors.New("boom")
		},
			modelCall("gpt", `{}`), vigil.EUNAVAILABLE, "policy", vigil.Deny},
		{"ledger failure fails closed", func(_ *enforce.Pipeline, _ *fakeMasker, _ *fakePolicy, _ *fakeHolder, l *fakeLedger) {
			l.err = errors.New("disk full")
		},
			modelCall("gpt", `{}`), vigil.EUNAVAILABLE, "audit ledger", ""},
		{"approval denied", func(_ *enforce.Pipeline, _ *fakeMasker, _ *fakePolicy, h *fakeHolder, _ *fakeLedger) {
			h.res = enforce.HoldResult{Status: "denied", Reason: "too risky"}
		}, modelCall("hold-it", `{}`), vigil.EDENIED, "reviewer denied this call: too risky", vigil.Deny},
		{"approval expired", func(_ *enforce.Pipeline, _ *fakeMasker, _ *fakePolicy, h *fakeHolder, _ *fakeLedger) {
			h.res = enforce.HoldResult{Status: "expired"}
		}, modelCall("hold-it", `{}`), vigil.ETIMEOUT, "expired", vigil.Deny},
		{"approval cancelled", func(_ *enforce.Pipeline, _ *fakeMasker, _ *fakePolicy, h *fakeHolder, _ *fakeLedger) {
			h.res = enforce.HoldResult{Status: "cancelled"}
		}, modelCall("hold-it", `{}`), vigil.ESUSPENDED, "cancelled", vigil.Deny},
		{"hold failure fails closed", func(_ *enforce.Pipeline, _ *fakeMasker, _ *fakePolicy, h *fakeHolder, _ *fakeLedger) {
			h.err = errors.New("db down")
		}, modelCall("hold-it", `{}`), vigil.EUNAVAILABLE, "approval request could not be raised", vigil.Deny},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pl, m, p, h, l := newPipeline()
			if c.setup != nil {
				c.setup(pl, m, p, h, l)
			}
			f, err := pl.Begin(context.Background(), c.call)
			if f != nil || err == nil {
				t.Fatalf("Begin = %v, %v; want a refusal", f, err)
			}
			if vigil.ErrorCode(err) != c.code || !strings.Contains(vigil.ErrorMessage(err), c.msg) {
				t.Errorf("error = %s %q; want %s containing %q", vigil.ErrorCode(err), vigil.ErrorMessage(err), c.code, c.msg)
			}
			if c.recorded != "" {
				if len(l.events) != 1 || l.events[0].Decision != c.recorded {
					t.Fatalf("ledger = %+v; want one %s entry recording the refusal", l.events, c.recorded)
				}
				var r *enforce.Refusal
				if !errors.As(err, &r) || r.EventID != l.events[0].ID || r.Decision.Effect != c.recorded {
					t.Errorf("error %#v does not carry the recorded decision %s", err, l.events[0].ID)
				}
			}
		})
	}
}

func TestFailOpenLetsCallsThrough(t *testing.T) {
	pl, m, p, _, l := newPipeline()
	pl.FailOpen = enforce.FailOpen{PII: true, Policy: true, Ledger: true}
	m.err, p.err, l.err = errors.New("a"), errors.New("b"), errors.New("c")
	f, err := pl.Begin(context.Background(), modelCall("gpt", `{"x":"alice@example.com"}`))
	if err != nil {
		t.Fatalf("fail-open Begin = %v", err)
	}
	if !bytes.Contains(f.Payload, []byte("alice@")) {
		t.Error("with PII failed open the payload should pass unmasked")
	}
}

func TestApprovalPaths(t *testing.T) {
	pl, _, _, h, _ := newPipeline()
	h.res = enforce.HoldResult{Status: "approved", Reviewers: []string{"user:rita"}, Args: map[string]any{"amount": 50.0}}
	c := enforce.Call{Actor: agent, Kind: vigil.ToolCall, Source: enforce.SourceMCP, Tool: &vigil.Tool{Server: "pay", Name: "hold-refund"},
		Payload: []byte(`{"amount":500,"email":"alice@example.com"}`), ArgsFromPayload: true}
	f, err := pl.Begin(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if f.Approval == nil || f.Approval.ApprovalID != "ap-1" || f.Action.Args["amount"] != 50.0 {
		t.Errorf("approved flight = %+v, args %v; want approval ap-1 and edited args", f.Approval, f.Action.Args)
	}
	if len(h.got) != 1 || h.got[0].Action.Args["email"] != "<EMAIL_1>" || !h.got[0].Wait {
		t.Errorf("hold request = %+v; want masked args and Wait", h.got)
	}

	c.NoWait = true
	_, err = pl.Begin(context.Background(), c)
	var pend *enforce.Pending
	if !errors.As(err, &pend) || pend.ApprovalID != "ap-1" || pend.Flight == nil {
		t.Fatalf("NoWait Begin = %v; want *Pending with the approval id", err)
	}
}

func TestToolCallsProposedByTheModel(t *testing.T) {
	pl, _, _, h, l := newPipeline()
	f, err := pl.Begin(context.Background(), modelCall("gpt", `{}`))
	if err != nil {
		t.Fatal(err)
	}
	if v := f.ToolCall(context.Background(), vigil.Tool{Name: "lookup"}, []byte(`{"q":1}`)); !v.Allowed {
		t.Errorf("allowed tool: %+v", v)
	}
	v := f.ToolCall(context.Background(), vigil.Tool{Name: "deny-wire"}, []byte(`{}`))
	if v.Allowed || !strings.Contains(v.Message, "Vigil removed the call to deny-wire: not deny-wire") {
		t.Errorf("denied tool: %+v", v)
	}
	if v := f.ToolCall(context.Background(), vigil.Tool{Name: "lookup"}, []byte(`[1]`)); v.Allowed {
		t.Error("non-object arguments were allowed")
	}
	h.res = enforce.HoldResult{Status: "denied", Reason: "no"}
	if v := f.ToolCall(context.Background(), vigil.Tool{Name: "hold-delete"}, []byte(`{}`)); v.Allowed || !strings.Contains(v.Message, "reviewer denied") {
		t.Errorf("held tool denied by reviewer: %+v", v)
	}
	h.res = enforce.HoldResult{Status: "approved"}
	if v := f.ToolCall(context.Background(), vigil.Tool{Name: "hold-delete"}, []byte(`{}`)); !v.Allowed || v.Approval == nil {
		t.Errorf("held tool approved: %+v", v)
	}
	decisions := 0
	for _, e := range l.events {
		if e.Type == vigil.EventDecision && e.Attrs["response_of"] == f.EventID {
			decisions++
		}
	}
	if decisions != 4 {
		t.Errorf("ledger has %d proposed-tool decisions linked to the response, want 4 (the malformed one is refused before policy)", decisions)
	}
}
