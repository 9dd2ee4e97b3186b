package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-gateway/vigil/internal/config"
)

func TestPolicySettings(t *testing.T) {
	c, err := config.Parse([]byte("policy: policy.yaml\npolicy_options:\n  shadow: next.yaml\n  watch_interval: 500ms\n  usage_flush_interval: 2s\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := config.PolicyConfig{Policy: "policy.yaml", PolicyOptions: config.PolicyOptions{
		Shadow: "next.yaml", WatchInterval: 500 * time.Millisecond, UsageFlushInterval: 2 * time.Second}}
	if diff := cmp.Diff(want, c.PolicyConfig); diff != "" {
		t.Errorf("policy settings (-want +got):\n%s", diff)
	}
	if w, on := c.PolicyOptions.Watch(); w != 500*time.Millisecond || !on {
		t.Errorf("Watch() = %v, %v", w, on)
	}
}

func TestPolicySettingsDefaults(t *testing.T) {
	c, err := config.Parse([]byte("policy: p.yaml\npolicy_options: {watch_interval: -1s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, on := c.PolicyOptions.Watch(); on {
		t.Error("a negative watch_interval left watching on")
	}
	if got := c.PolicyOptions.Flush(); got != config.DefaultPolicyUsageFlushInterval {
		t.Errorf("Flush() = %v, want the default", got)
	}
	if w, on := config.Default().PolicyOptions.Watch(); w != config.DefaultPolicyWatchInterval || !on {
		t.Errorf("default Watch() = %v, %v", w, on)
	}
}

func TestPolicySettingsProblems(t *testing.T) {
	tests := []struct {
		yaml string
		want []string
	}{
		{"policy: p.yaml\npolicy_options:\n  shadow: p.yaml\n", []string{"line 3: policy_options.shadow: is the live policy itself"}},
		{"policy_options:\n  shadow: c.yaml\n", []string{"line 2: policy_options.shadow: needs a live policy file"}},
		{"policy: p.yaml\npolicy_options:\n  watch_interval: 10ms\n  usage_flush_interval: 5m\n", []string{
			"line 3: policy_options.watch_interval: must be at least 100ms",
			"line 4: policy_options.usage_flush_interval: must be between 100ms and 1m",
		}},
		{"policy: p.yaml\npolicy_options:\n  watch: yes\n", []string{`line 3: policy_options.watch: unknown field`}},
		{"policy: [a, b]\n", []string{"line 1: policy: want a string"}},
	}
	for _, tt := range tests {
		_, err := config.Parse([]byte(tt.yaml))
		if err == nil {
			t.Errorf("Parse(%q) succeeded", tt.yaml)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Parse(%q) = %v, want it to contain %q", tt.yaml, err, w)
			}
		}
	}
}
