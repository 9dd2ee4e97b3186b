package enforce_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// countingMasker restores <EMAIL_1> and reports each restored value as a finding.
type countingMasker struct{ fakeMasker }

func (m *countingMasker) InboundJSON(_ context.Context, _ enforce.Scope, doc []byte) ([]byte, vigil.PIISummary, error) {
	n := bytes.Count(doc, []byte("<EMAIL_1>"))
	return bytes.ReplaceAll(doc, []byte("<EMAIL_1>"), []byte("alice@example.com")), vigil.PIISummary{Counts: map[string]int{"EMAIL_ADDRESS": n}}, nil
}

// TestRestoreDoesNotCountTwice: a stream's summary events repeat its deltas; Restore
// restores them like Inbound but the response entry counts each finding once.
func TestRestoreDoesNotCountTwice(t *testing.T) {
	pl, _, _, _, led := newPipeline()
	pl.PII = &countingMasker{}
	f, err := pl.Begin(context.Background(), modelCall("gpt", `{}`))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := f.Inbound(context.Background(), []byte(`{"delta":"to <EMAIL_1>"}`)); err != nil || !bytes.Contains(out, []byte("alice@")) {
		t.Fatalf("Inbound = %s, %v", out, err)
	}
	out, err := f.Restore(context.Background(), []byte(`{"text":"to <EMAIL_1>"}`))
	if err != nil || string(out) != `{"text":"to alice@example.com"}` {
		t.Fatalf("Restore = %s, %v", out, err)
	}
	if err := f.End(context.Background(), enforce.Outcome{Status: 200}); err != nil {
		t.Fatal(err)
	}
	if got := led.events[len(led.events)-1].Counts["pii.in.EMAIL_ADDRESS"]; got != 1 {
		t.Errorf("response entry counts %d inbound emails, want 1 (Restore must not count)", got)
	}
}
