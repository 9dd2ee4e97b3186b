package llmproxy

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Price is what a model costs per million tokens, in the deployment's currency.
type Price struct {
	// Model is a pattern over request model names ('*', '?').
	Model         string
	Input, Output float64
}

// Prices is the price table; the first entry whose pattern matches applies.
type Prices []Price

// Cost is the cost of a call in micro-units of the currency: tokens times the price
// per million tokens is exactly micro-units. A model without a price costs 0.
func (ps Prices) Cost(model string, in, out int64) int64 {
	for _, p := range ps {
		if Match(p.Model, model) {
			return int64(math.Round(float64(in)*p.Input + float64(out)*p.Output))
		}
	}
	return 0
}

// MaxModelLabels bounds the distinct model names the metrics carry. Model names come
// from requests; with a catch-all provider an agent could otherwise mint a new series
// per request. Names past the bound are counted as "other".
const MaxModelLabels = 200

// Metrics are the LLM gateway's Prometheus series. Labels: agent and system are
// registered names (bounded by the inventory), model is capped at MaxModelLabels,
// provider by the configuration. A nil *Metrics records nothing.
type Metrics struct {
	tokens  *prometheus.CounterVec
	cost    *prometheus.CounterVec
	answers *prometheus.CounterVec
	latency *prometheus.HistogramVec

	mu     sync.Mutex
	models map[string]bool
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_llm_tokens_total",
			Help: "Tokens used by model calls, by agent, AI system, model and direction (input, output)."}, []string{"agent", "system", "model", "direction"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_llm_cost_micros_total",
			Help: "Cost of model calls in micro-units of the configured currency (from the price table), by agent, AI system and model."}, []string{"agent", "system", "model"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_llm_upstream_responses_total",
			Help: "Provider answers by provider and HTTP status."}, []string{"provider", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vigil_llm_upstream_first_byte_seconds",
			Help: "Time from forwarding a call to the provider's response headers.", Buckets: prometheus.ExponentialBuckets(0.0005, 3, 12)}, []string{"provider"}),
		models: map[string]bool{},
	}
	reg.MustRegister(m.tokens, m.cost, m.answers, m.latency)
	return m
}

func (m *Metrics) model(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.models[name] {
		return name
	}
	if len(m.models) >= MaxModelLabels {
		return "other"
	}
	m.models[name] = true
	return name
}

func (m *Metrics) usage(a vigil.Actor, model string, u enforce.Usage) {
	if m == nil || (u.InputTokens == 0 && u.OutputTokens == 0 && u.CostMicros == 0) {
		return
	}
	model = m.model(model)
	agent, system := a.Name, a.SystemName
	if u.InputTokens > 0 {
		m.tokens.WithLabelValues(agent, system, model, "input").Add(float64(u.InputTokens))
	}
	if u.OutputTokens > 0 {
		m.tokens.WithLabelValues(agent, system, model, "output").Add(float64(u.OutputTokens))
	}
	if u.CostMicros > 0 {
		m.cost.WithLabelValues(agent, system, model).Add(float64(u.CostMicros))
	}
}

func (m *Metrics) upstream(provider string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.answers.WithLabelValues(provider, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(provider).Observe(d.Seconds())
}
