package config

import "time"

// AIMSConfig tunes the ISO/IEC 42001 management system: control health checks, the
// risk scale, EU AI Act Art. 73 clocks and which signals open incidents by themselves.
type AIMSConfig struct {
	// HealthInterval is how often the control health checks run (clause 9.1) and the
	// ledger is watched for incident signals. Default 5m.
	HealthInterval time.Duration `yaml:"health_interval"`
	// VerifyInterval is how often the whole ledger is verified in-process. Default 1h.
	VerifyInterval time.Duration `yaml:"verify_interval"`
	// VerificationMaxAge is how recent a passing ledger verification must be for the
	// "ledger verified" check to pass. Default 24h.
	VerificationMaxAge time.Duration `yaml:"verification_max_age"`
	// ApprovalSLA is how long a held action may wait for a person's decision before
	// the "approvals within SLA" check fails. Default 1h.
	ApprovalSLA time.Duration `yaml:"approval_sla"`
	// NeverSeenGrace is how long a registered agent may go without any traffic
	// through Vigil before the "agents only through Vigil" check flags it. Default 24h.
	NeverSeenGrace time.Duration `yaml:"never_seen_grace"`
	// RiskScale is the top of the likelihood and impact scales: risks are scored
	// 1..risk_scale each, likelihood × impact overall. 3 to 10; default 5.
	RiskScale int `yaml:"risk_scale"`
	// Art73 sets the reporting deadlines shown for serious incidents. The defaults are
	// the EU AI Act's; shorter internal targets are allowed, longer ones are not.
	Art73 Art73Config `yaml:"art73"`
	// AutoIncidents chooses which signals open incidents by themselves.
	AutoIncidents AutoIncidentConfig `yaml:"auto_incidents"`
}

// Art73Config holds the EU AI Act Art. 73 reporting clocks, counted from awareness.
type Art73Config struct {
	// General is Art. 73(2). Default and maximum 360h (15 days).
	General time.Duration `yaml:"general"`
	// Widespread is Art. 73(3), for a widespread infringement or a critical
	// infrastructure disruption. Default and maximum 48h (2 days).
	Widespread time.Duration `yaml:"widespread"`
	// Death is Art. 73(4). Default and maximum 240h (10 days).
	Death time.Duration `yaml:"death"`
}

// AutoIncidentConfig switches automatic incidents on per signal. Every switch is on
// unless set to false.
type AutoIncidentConfig struct {
	// HealthCheck opens an incident for a failing control health check (one open
	// incident per check). Default true.
	HealthCheck *bool `yaml:"health_check"`
	// LedgerVerification opens a critical incident when ledger verification fails.
	// Default true.
	LedgerVerification *bool `yaml:"ledger_verification"`
	// DeniedBurst opens one when an agent of a high-risk system has denied_burst
	// actions denied within denied_burst_window. Default true.
	DeniedBurst *bool `yaml:"denied_burst"`
	// DeniedBurstThreshold is the number of denials that make a burst. Default 5.
	DeniedBurstThreshold int `yaml:"denied_burst_threshold"`
	// DeniedBurstWindow is the window for counting denials. Default 10m.
	DeniedBurstWindow time.Duration `yaml:"denied_burst_window"`
	// PIIInAnswer opens one when a model's answer contained personal data. Default true.
	PIIInAnswer *bool `yaml:"pii_in_answer"`
	// KillSwitch opens one when an agent or system is suspended. Default true.
	KillSwitch *bool `yaml:"kill_switch"`
	// SetupGrace is how long after the first health evaluation a check that has
	// never passed fails without opening an incident, so a fresh install (no AI policy
	// recorded yet) does not start with open incidents. A check that passed before
	// opens one as soon as it fails. Default 168h (7 days).
	SetupGrace time.Duration `yaml:"setup_grace"`
}

// On reports whether a switch is on (nil means the default, on).
func On(b *bool) bool { return b == nil || *b }

func (c *AIMSConfig) applyDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HealthInterval, 5*time.Minute)
	def(&c.VerifyInterval, time.Hour)
	def(&c.VerificationMaxAge, 24*time.Hour)
	def(&c.ApprovalSLA, time.Hour)
	def(&c.NeverSeenGrace, 24*time.Hour)
	def(&c.Art73.General, 15*24*time.Hour)
	def(&c.Art73.Widespread, 2*24*time.Hour)
	def(&c.Art73.Death, 10*24*time.Hour)
	def(&c.AutoIncidents.DeniedBurstWindow, 10*time.Minute)
	def(&c.AutoIncidents.SetupGrace, 7*24*time.Hour)
	if c.RiskScale == 0 {
		c.RiskScale = 5
	}
	if c.AutoIncidents.DeniedBurstThreshold == 0 {
		c.AutoIncidents.DeniedBurstThreshold = 5
	}
}

func (c *AIMSConfig) validate(errs *FieldErrors) {
	if c.HealthInterval < time.Second {
		errs.add("aims.health_interval", "must be at least 1s")
	}
	if c.VerifyInterval < time.Minute {
		errs.add("aims.verify_interval", "must be at least 1m")
	}
	if c.VerificationMaxAge < c.VerifyInterval {
		errs.add("aims.verification_max_age", "must be at least the verify interval, or the check can never pass")
	}
	if c.ApprovalSLA <= 0 {
		errs.add("aims.approval_sla", "must be positive")
	}
	if c.NeverSeenGrace < 0 {
		errs.add("aims.never_seen_grace", "must not be negative")
	}
	if c.RiskScale < 3 || c.RiskScale > 10 {
		errs.add("aims.risk_scale", "must be between 3 and 10")
	}
	for _, x := range []struct {
		path     string
		got, max time.Duration
	}{
		{"aims.art73.general", c.Art73.General, 15 * 24 * time.Hour},
		{"aims.art73.widespread", c.Art73.Widespread, 2 * 24 * time.Hour},
		{"aims.art73.death", c.Art73.Death, 10 * 24 * time.Hour},
	} {
		if x.got <= 0 || x.got > x.max {
			errs.add(x.path, "must be positive and at most the EU AI Act's %s", x.max)
		}
	}
	if c.AutoIncidents.DeniedBurstThreshold < 1 {
		errs.add("aims.auto_incidents.denied_burst_threshold", "must be at least 1")
	}
	if c.AutoIncidents.DeniedBurstWindow < time.Second {
		errs.add("aims.auto_incidents.denied_burst_window", "must be at least 1s")
	}
	if c.AutoIncidents.SetupGrace < 0 {
		errs.add("aims.auto_incidents.setup_grace", "must not be negative")
	}
}
