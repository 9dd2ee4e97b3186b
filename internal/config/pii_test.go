package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPIISectionParses(t *testing.T) {
	c, err := Parse([]byte(`
pii:
  mode: tokenize
  threshold: 0.6
  entities:
    IP_ADDRESS: {enabled: false}
    CREDIT_CARD: {operator: block, threshold: 0.9}
    EMPLOYEE_ID: {operator: hash}
  allow:
    values: [support@example.com]
    patterns: ['.*@example\.com']
  custom:
    - name: EMPLOYEE_ID
      pattern: 'EMP-\d{6}'
      context: [employee]
      score: 0.7
  phone_regions: [US, GB]
  vault_ttl: 2h
  restore: false
  json_depth: 3
`))
	if err != nil {
		t.Fatal(err)
	}
	off := false
	want := PIIConfig{
		Mode:      "tokenize",
		Threshold: 0.6,
		Entities: map[string]PIIEntityConfig{
			"IP_ADDRESS":  {Enabled: &off},
			"CREDIT_CARD": {Operator: "block", Threshold: 0.9},
			"EMPLOYEE_ID": {Operator: "hash"},
		},
		Allow:        PIIAllowConfig{Values: []string{"support@example.com"}, Patterns: []string{`.*@example\.com`}},
		Custom:       []PIICustomConfig{{Name: "EMPLOYEE_ID", Pattern: `EMP-\d{6}`, Context: []string{"employee"}, Score: 0.7}},
		PhoneRegions: []string{"US", "GB"},
		VaultTTL:     2 * time.Hour,
		Restore:      &off,
		JSONDepth:    3,
	}
	if diff := cmp.Diff(want, c.PII); diff != "" {
		t.Errorf("pii section mismatch (-want +got):\n%s", diff)
	}
	if c.PII.RestoreEnabled() {
		t.Error("RestoreEnabled() = true with restore: false")
	}
	if d, _ := Parse(nil); !d.PII.RestoreEnabled() || d.PII.Mode != "" {
		t.Errorf("empty config: RestoreEnabled() = %v, mode %q; want true and empty (redact)", d.PII.RestoreEnabled(), d.PII.Mode)
	}
}

func TestPIISectionRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, path string
	}{
		{"mode", "pii: {mode: scramble}", "pii.mode"},
		{"threshold", "pii: {threshold: 1.5}", "pii.threshold"},
		{"unknown entity", "pii: {entities: {EMAIL: {operator: mask}}}", "pii.entities.EMAIL"},
		{"entity operator", "pii: {entities: {EMAIL_ADDRESS: {operator: shred}}}", "pii.entities.EMAIL_ADDRESS.operator"},
		{"entity threshold", "pii: {entities: {EMAIL_ADDRESS: {threshold: -1}}}", "pii.entities.EMAIL_ADDRESS.threshold"},
		{"allow pattern", "pii: {allow: {patterns: ['(unclosed']}}", "pii.allow.patterns[0]"},
		{"custom pattern", "pii: {custom: [{name: EMP_ID, pattern: '(x'}]}", "pii.custom[0]"},
		{"custom name", "pii: {custom: [{name: emp id, pattern: 'x'}]}", "pii.custom[0]"},
		{"custom builtin", "pii: {custom: [{name: US_SSN, pattern: 'x'}]}", "pii.custom[0].name"},
		{"custom validator", "pii: {custom: [{name: EMP_ID, pattern: 'x', validator: crc}]}", "pii.custom[0]"},
		{"custom operator", "pii: {custom: [{name: EMP_ID, pattern: 'x', operator: nope}]}", "pii.custom[0].operator"},
		{"phone region", "pii: {phone_regions: [XX]}", "pii.phone_regions[0]"},
		{"vault ttl", "pii: {vault_ttl: -1h}", "pii.vault_ttl"},
		{"json depth", "pii: {json_depth: 99}", "pii.json_depth"},
		{"unknown field", "pii: {modes: redact}", "pii.modes"},
		{"wrong type", "pii: {threshold: high}", "pii.threshold"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse(%q) accepted a bad value", tc.yaml)
			}
			var fes FieldErrors
			if !errors.As(err, &fes) {
				t.Fatalf("error %v is not FieldErrors", err)
			}
			var paths []string
			for _, fe := range fes {
				paths = append(paths, fe.Path)
			}
			if !strings.Contains(strings.Join(paths, " "), tc.path) {
				t.Errorf("error paths = %v, want %s", paths, tc.path)
			}
			if fes[0].Line == 0 {
				t.Errorf("error %v has no line number", fes[0])
			}
		})
	}
}
