package pii

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
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

// body10KB is a 10 KB message of support prose with a little PII, as one chat
// request.
var body10KB = func() []byte {
	var sb strings.Builder
	for sb.Len() < 10<<10 {
		sb.WriteString("The customer says the parcel was left at the wrong door and the courier did not ring. ")
		if sb.Len()%2048 < 90 {
			sb.WriteString("Reach them at jane.roe@example.com. ")
		}
	}
	return chatRequest(sb.String())
}()

func BenchmarkMaskJSON10KB(b *testing.B) { benchMask(b, body10KB) }

// BenchmarkMaskJSON10KBLatency times every call separately and reports the 50th,
// 99th and 99.9th percentiles (ns per call), which the latency aim is about.
// A percentile includes whatever preempted the process during that call, so read it
// with the machine's load.
func BenchmarkMaskJSON10KBLatency(b *testing.B) {
	e := newTestEngine(b, Options{})
	b.SetBytes(int64(len(body10KB)))
	b.ReportAllocs()
	times := make([]time.Duration, 0, 1<<16)
	for b.Loop() {
		t0 := time.Now()
		if _, err := e.MaskJSON(ctx, Scope{}, body10KB); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(t0))
	}
	slices.Sort(times)
	pct := func(p float64) float64 { return float64(times[int(p*float64(len(times)-1))].Nanoseconds()) }
	b.ReportMetric(pct(0.50), "p50-ns")
	b.ReportMetric(pct(0.99), "p99-ns")
	b.ReportMetric(pct(0.999), "p99.9-ns")
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
