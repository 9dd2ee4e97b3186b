package pii

import (
	"encoding/json"
	"strings"
	"testing"
)

// Chat-request bodies as agents send them. No timing assertions: numbers go to
// BENCHMARKS.md (make bench-pii).
func chatRequest(user string) []byte {
	b, _ := json.Marshal(map[string]any{
		"model": "gpt-4o", "temperature": 0.2, "stream": true,
		"messages": []map[string]string{
			{"role": "system", "content": "You are a helpful support assistant for Acme. Answer briefly and politely; escalate billing questions."},
			{"role": "user", "content": "Hi, I ordered the blue kettle last week and it still hasn't arrived. Can you check?"},
			{"role": "assistant", "content": "I'm sorry to hear that. Let me look into your order status right away."},
			{"role": "user", "content": user},
		},
		"tools": []map[string]any{{"type": "function", "function": map[string]any{"name": "lookup_order",
			"description": "Look up an order by its number", "parameters": map[string]any{"type": "object",
				"properties": map[string]any{"order": map[string]string{"type": "string"}}}}}},
	})
	return b
}

var (
	cleanBody = chatRequest("Thanks. It was order 84213 for the 1.7 litre model, delivered to the office reception on the second floor.")
	piiBody   = chatRequest("Sure: I'm jane.roe@example.com, phone +44 20 7946 0958, card 4111 1111 1111 1111. Please refund to IBAN GB82 WEST 1234 5698 7654 32.")
)

func benchMask(b *testing.B, body []byte) {
	e := newTestEngine(b, Options{})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.MaskJSON(ctx, Scope{}, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMaskJSONNoPII(b *testing.B)   { benchMask(b, cleanBody) }
func BenchmarkMaskJSONWithPII(b *testing.B) { benchMask(b, piiBody) }

// A 10 KB message of support prose with a little PII, as one chat request.
func BenchmarkMaskJSON10KB(b *testing.B) {
	var sb strings.Builder
	for sb.Len() < 10<<10 {
		sb.WriteString("The customer says the parcel was left at the wrong door and the courier did not ring. ")
		if sb.Len()%2048 < 90 {
			sb.WriteString("Reach them at jane.roe@example.com. ")
		}
	}
	benchMask(b, chatRequest(sb.String()))
}

func BenchmarkScanTextNoPII(b *testing.B) {
	e := newTestEngine(b, Options{})
	text := []byte(strings.Repeat("The quick brown fox jumps over the lazy dog while the support team reviews order 84213. ", 100))
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		e.ScanText(text)
	}
}

// Streaming: a model answer in 4-byte deltas, as SSE text arrives.
func BenchmarkStreamMasker(b *testing.B) {
	e := newTestEngine(b, Options{})
	text := []byte(strings.Repeat("Your refund to card 4111 1111 1111 1111 is on its way; write to help@example.com with questions. ", 20))
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		sm := e.NewStreamMasker(Scope{})
		for i := 0; i < len(text); i += 4 {
			if _, err := sm.Write(ctx, text[i:min(len(text), i+4)]); err != nil {
				b.Fatal(err)
			}
		}
		sm.Flush(ctx)
	}
}
