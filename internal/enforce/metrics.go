package enforce

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Metrics are the pipeline's Prometheus series. A nil *Metrics records nothing.
type Metrics struct {
	decisions *prometheus.CounterVec
	pii       *prometheus.CounterVec
	failures  *prometheus.CounterVec
	steps     *prometheus.HistogramVec
}

// NewMetrics registers the pipeline's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_decisions_total", Help: "Policy decisions by effect."}, []string{"effect"}),
		pii:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_pii_findings_total", Help: "PII and secret findings masked in outbound payloads, by type."}, []string{"type"}),
		failures:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_control_failures_total", Help: "Failures of a control step (pii, policy, ledger)."}, []string{"step"}),
		steps:     prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vigil_step_duration_seconds", Help: "Time spent in a pipeline step.", Buckets: prometheus.ExponentialBuckets(0.00001, 3, 12)}, []string{"step"}),
	}
	reg.MustRegister(m.decisions, m.pii, m.failures, m.steps)
	return m
}

func (m *Metrics) decision(e vigil.Effect) {
	if m != nil {
		m.decisions.WithLabelValues(string(e)).Inc()
	}
}

func (m *Metrics) findings(s vigil.PIISummary) {
	if m != nil {
		for t, n := range s.Counts {
			m.pii.WithLabelValues(t).Add(float64(n))
		}
	}
}

func (m *Metrics) failure(step string) {
	if m != nil {
		m.failures.WithLabelValues(step).Inc()
	}
}

func (m *Metrics) step(step string, d time.Duration) {
	if m != nil {
		m.steps.WithLabelValues(step).Observe(d.Seconds())
	}
}

// decodeArgs decodes a JSON object of arguments. Numbers stay json.Number-free
// float64s, which is what CEL's dynamic values expect.
func decodeArgs(b []byte) (map[string]any, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("null is not an object")
	}
	return m, nil
}
