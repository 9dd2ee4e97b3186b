//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation counts
// are only meaningful without it.

package pii

import "testing"

// Allocations per call are bounded and don't grow with the input: none without
// findings; with findings, the output document and the summary map, whatever the
// document's size.
func TestMaskJSONAllocations(t *testing.T) {
	e := newTestEngine(t, Options{})
	for _, tc := range []struct {
		name string
		body []byte
		max  float64
	}{
		{"chat request without PII", cleanBody, 0},
		{"chat request with PII", piiBody, 3},
		{"10 KB message with PII", body10KB, 3},
	} {
		got := testing.AllocsPerRun(200, func() {
			if _, err := e.MaskJSON(ctx, Scope{}, tc.body); err != nil {
				t.Fatal(err)
			}
		})
		if got > tc.max {
			t.Errorf("%s: %v allocations per MaskJSON, want at most %v", tc.name, got, tc.max)
		}
	}
	if got := testing.AllocsPerRun(200, func() { e.ScanText(cleanBody) }); got > 0 {
		t.Errorf("ScanText without findings: %v allocations, want none", got)
	}
}

// A stream Write allocates at most the chunk it returns, however long the stream.
func TestStreamMaskerAllocations(t *testing.T) {
	e := newTestEngine(t, Options{})
	sm := e.NewStreamMasker(Scope{})
	text := []byte("Your refund to card 4111 1111 1111 1111 is on its way; write to help@example.com with questions. ")
	for range 20 { // warm the window and the scanner pool
		streamMask(t, sm, string(text), 4)
	}
	i := 0
	got := testing.AllocsPerRun(2000, func() {
		if _, err := sm.Write(ctx, text[i:i+4]); err != nil {
			t.Fatal(err)
		}
		i = (i + 4) % (len(text) - 4)
	})
	if got > 1 {
		t.Errorf("%v allocations per Write, want at most 1 (the returned chunk)", got)
	}
}
