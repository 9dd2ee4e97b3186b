package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/llmproxy"
	"github.com/vigil-gateway/vigil/internal/pii"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// wireLLM builds the LLM gateway (the OpenAI- and Anthropic-compatible routes) on the
// shared pipeline pl and registers its routes on mux. Providers and prices come from
// the configuration; provider keys from the environment variables it names.
//
// allowModel, if set, filters GET /v1/models by policy without counting the listing
// as calls (the policy engine's pure evaluation).
//
// A nil pl gets the minimal pipeline of pipelineWithoutEngines, for a main that does
// not construct the shared pipeline yet.
func (m *Main) wireLLM(mux *web.Mux, pl *enforce.Pipeline, agents llmproxy.AgentAuthenticator, allowModel llmproxy.ModelPolicy, reg prometheus.Registerer) (*llmproxy.Proxy, error) {
	getenv := m.Env.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	router, err := providersFrom(m.Config.Providers, getenv)
	if err != nil {
		return nil, err
	}
	if pl == nil {
		if pl, err = m.pipelineWithoutEngines(reg); err != nil {
			return nil, err
		}
	}
	p := &llmproxy.Proxy{
		Log: m.Log, Auth: agents, Pipeline: pl, Router: router, Prices: pricesFrom(m.Config.Prices),
		Metrics: llmproxy.NewMetrics(reg), AllowModel: allowModel,
	}
	p.Register(mux)
	return p, nil
}

// providersFrom builds the providers of the configuration, in routing order.
func providersFrom(cfgs []config.ProviderConfig, getenv func(string) string) (llmproxy.Router, error) {
	var router llmproxy.Router
	for i, c := range cfgs {
		key := ""
		if c.APIKeyEnv != "" {
			if key = getenv(c.APIKeyEnv); key == "" {
				return nil, fmt.Errorf("providers[%d] (%s): environment variable %s is empty or unset", i, c.Name, c.APIKeyEnv)
			}
		}
		retries := config.DefaultProviderRetries
		if c.Retries != nil {
			retries = *c.Retries
		}
		p, err := llmproxy.NewProvider(llmproxy.ProviderOptions{
			Name: c.Name, Type: c.Type, BaseURL: c.BaseURL, APIKey: key, APIKeyHeader: c.APIKeyHeader, Models: c.Models, Headers: c.Headers,
			ConnectTimeout: c.Timeouts.Connect, FirstByteTimeout: c.Timeouts.FirstByte, TotalTimeout: c.Timeouts.Total,
			Retries: retries, MaxIdleConns: c.MaxIdleConns,
		})
		if err != nil {
			return nil, fmt.Errorf("couldn't set up providers[%d]: %w", i, err)
		}
		router = append(router, p)
	}
	return router, nil
}

func pricesFrom(cfgs []config.Price) llmproxy.Prices {
	out := make(llmproxy.Prices, 0, len(cfgs))
	for _, c := range cfgs {
		out = append(out, llmproxy.Price{Model: c.Model, Input: c.Input, Output: c.Output})
	}
	return out
}

// pipelineWithoutEngines is the pipeline the gateway runs while serve.go constructs
// no shared one: the real ledger (every call recorded before it is forwarded), the PII
// engine as the pii: section configures it (tokenize by default), a policy that allows
// every call (rule "no-policy-engine", so the ledger says why), and an oversight step
// that refuses to hold (nothing can require approval without a policy engine anyway).
// The lead replaces it by passing the shared pipeline with the policy engine and
// oversight.
func (m *Main) pipelineWithoutEngines(reg prometheus.Registerer) (*enforce.Pipeline, error) {
	pl := &enforce.Pipeline{
		Policy:    allowAll{},
		Oversight: noOversight{},
		Ledger:    m.ledger,
		Log:       m.Log,
		Metrics:   enforce.NewMetrics(reg),
	}
	if v, ok := m.store.(interface{ PIIVault() pii.Vault }); ok {
		masker, _, err := gatewayPII(m.Config.PII, m.keys, v.PIIVault())
		if err != nil {
			return nil, fmt.Errorf("couldn't set up PII masking: %w", err)
		}
		pl.PII = masker
	}
	return pl, nil
}

type allowAll struct{}

func (allowAll) Decide(context.Context, vigil.Action) (vigil.Decision, error) {
	return vigil.Decision{Effect: vigil.Allow, Rules: []string{"no-policy-engine"}}, nil
}

type noOversight struct{}

func (noOversight) Hold(context.Context, enforce.HoldRequest) (enforce.HoldResult, error) {
	return enforce.HoldResult{}, errors.New("no oversight is configured")
}
