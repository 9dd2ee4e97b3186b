package enforce_test

import (
	"context"
	"testing"

	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// waitingHolder holds until the caller goes away.
type waitingHolder struct{ started chan struct{} }

func (h waitingHolder) Hold(ctx context.Context, _ enforce.HoldRequest) (enforce.HoldResult, error) {
	close(h.started)
	<-ctx.Done()
	return enforce.HoldResult{}, ctx.Err()
}

// strictLedger refuses to record under a cancelled context, as a ledger that honours
// its context may.
type strictLedger struct{ fakeLedger }

func (l *strictLedger) Record(ctx context.Context, e vigil.Event) (vigil.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return vigil.Receipt{}, err
	}
	return l.fakeLedger.Record(ctx, e)
}

// TestCallAbandonedWhileHeldIsStillRecorded: when the caller goes away while its call
// waits for approval (an MCP client cancels the request), the request and its
// outcome are still recorded.
func TestCallAbandonedWhileHeldIsStillRecorded(t *testing.T) {
	l := &strictLedger{}
	h := waitingHolder{started: make(chan struct{})}
	p := &enforce.Pipeline{Policy: &fakePolicy{}, Oversight: h, Ledger: l}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-h.started
		cancel()
	}()
	_, err := p.Begin(ctx, enforce.Call{Actor: agent, Kind: vigil.ToolCall, Source: enforce.SourceMCP,
		Tool: &vigil.Tool{Server: "pay", Name: "hold-refund"}, Payload: []byte(`{"amount":5}`), ArgsFromPayload: true})
	if vigil.ErrorCode(err) != vigil.ETIMEOUT {
		t.Fatalf("Begin = %v, want a timeout (the caller went away)", err)
	}
	if len(l.events) != 1 || l.events[0].Type != vigil.EventToolCall || l.events[0].Decision != vigil.Deny {
		t.Fatalf("ledger = %+v, want the abandoned call recorded as denied", l.events)
	}
}
