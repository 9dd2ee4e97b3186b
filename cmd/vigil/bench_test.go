package main

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// BenchmarkChatCompletionThroughVigil measures one non-streamed chat completion
// through the whole gateway (auth, mask, policy, ledger before and after, restore) to
// the in-process fake provider, from parallel clients. Profile it with
// go test -run x -bench ChatCompletionThroughVigil -cpuprofile cpu.prof ./cmd/vigil.
func BenchmarkChatCompletionThroughVigil(b *testing.B) {
	r := newLLMRigB(b)
	body := []byte(`{"model":"fake-gpt","messages":[{"role":"user","content":"Please email jane.doe@acme.example about order 1234."}]}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", r.url+"/v1/chat/completions", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+r.agentKey)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
