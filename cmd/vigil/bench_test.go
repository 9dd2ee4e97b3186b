package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/web"
)

// BenchmarkChatCompletionThroughVigil measures one non-streamed chat completion
// through the whole gateway as serve wires it (auth, PII masking, policy, ledger
// before and after, restore) to the in-process fake provider, from parallel clients.
// Profile it with
//
//	go test -run '^$' -bench ChatCompletionThroughVigil -cpuprofile cpu.prof ./cmd/vigil
//
// "auth-uncached" is the same gateway with the authentication cache off
// (auth.cache_ttl: 0s), to show what reading the key, agent, system and halt from
// the database on every authentication costs per call.
func BenchmarkChatCompletionThroughVigil(b *testing.B) {
	r := newLLMRigB(b)
	body := []byte(`{"model":"fake-gpt","messages":[{"role":"user","content":"Please email jane.doe@example.com about order 1234."}]}`)
	run := func(b *testing.B, url string) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		b.ReportAllocs()
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest("POST", url+"/v1/chat/completions", bytes.NewReader(body))
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
	b.Run("as-served", func(b *testing.B) { run(b, r.m.URL()) })
	b.Run("auth-uncached", func(b *testing.B) {
		m := r.m
		keys := &auth.Service{Store: m.store.Auth(), Agents: m.store.Inventory(), Ledger: m.ledger, Halt: m.oversight.approvals}
		masker, _, err := gatewayPII(m.Config.PII, m.keys, m.store.PIIVault())
		if err != nil {
			b.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		pl := m.newPipeline(m.policyState.engine, masker, oversightHolder{m.oversight.approvals}, nil, reg)
		mux := web.NewMux(web.Errors{Log: m.Log})
		if _, err := m.wireLLM(mux, pl, keys, nil, reg); err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(web.Middleware{Log: m.Log, MaxBodyBytes: m.Config.HTTP.MaxBodyBytes}.Wrap(mux))
		defer srv.Close()
		run(b, srv.URL)
	})
}

// BenchmarkChatCompletionSequential is BenchmarkChatCompletionThroughVigil from one
// client at a time: the latency one call adds at concurrency 1.
func BenchmarkChatCompletionSequential(b *testing.B) {
	r := newLLMRigB(b)
	body := []byte(`{"model":"fake-gpt","messages":[{"role":"user","content":"Please email jane.doe@example.com about order 1234."}]}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest("POST", r.m.URL()+"/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+r.agentKey)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
