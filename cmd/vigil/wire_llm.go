package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/llmproxy"
	"github.com/vigil-gateway/vigil/internal/policy"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// wireLLM builds the LLM gateway (the OpenAI- and Anthropic-compatible routes) on the
// shared pipeline pl and registers its routes on mux. Providers and prices come from
// the configuration; provider keys from the environment variables it names.
//
// allowModel, if set, filters GET /v1/models by policy without counting the listing
// as calls (see modelPolicy).
func (m *Main) wireLLM(mux *web.Mux, pl *enforce.Pipeline, agents llmproxy.AgentAuthenticator, allowModel llmproxy.ModelPolicy, reg prometheus.Registerer) (*llmproxy.Proxy, error) {
	if pl == nil {
		return nil, errors.New("the LLM gateway needs the governance pipeline")
	}
	getenv := m.Env.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	router, err := providersFrom(m.Config.Providers, getenv)
	if err != nil {
		return nil, err
	}
	p := &llmproxy.Proxy{
		Log: m.Log, Auth: agents, Pipeline: pl, Router: router, Prices: pricesFrom(m.Config.Prices),
		Metrics: llmproxy.NewMetrics(reg), AllowModel: allowModel,
	}
	if m.oversight != nil {
		p.Track = m.oversight.sessions.Track
	}
	p.Register(mux)
	return p, nil
}

// modelPolicy lets GET /v1/models list only the models policy would let the agent
// call: the live policy's pure evaluation of a model_call with no usage, so listing
// models counts toward no limit. A model that would need approval is listed (the
// agent may call it and wait).
func modelPolicy(pol *policy.Engine) llmproxy.ModelPolicy {
	if pol == nil {
		return nil
	}
	return func(_ context.Context, a vigil.Actor, m vigil.Model) (bool, error) {
		p := pol.Policy()
		if p == nil {
			return false, errors.New("no policy is active")
		}
		act := vigil.Action{Kind: vigil.ModelCall, Actor: a, Model: &m, Args: map[string]any{"model": m.Name}, PII: vigil.PIISummary{}}
		return p.Evaluate(&act, nil).Effect != vigil.Deny, nil
	}
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
