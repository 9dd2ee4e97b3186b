package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/config"
)

func TestAIMSDefaultsAndLimits(t *testing.T) {
	c, err := config.Parse([]byte(""))
	if err != nil {
		t.Fatal(err)
	}
	a := c.AIMS
	if a.HealthInterval != 5*time.Minute || a.VerificationMaxAge != 24*time.Hour || a.RiskScale != 5 || a.Art73.General != 360*time.Hour ||
		a.Art73.Widespread != 48*time.Hour || a.Art73.Death != 240*time.Hour || !config.On(a.AutoIncidents.KillSwitch) {
		t.Errorf("defaults = %+v", a)
	}
	c, err = config.Parse([]byte("aims:\n  auto_incidents:\n    kill_switch: false\n  art73:\n    general: 72h\n"))
	if err != nil {
		t.Fatal(err)
	}
	if config.On(c.AIMS.AutoIncidents.KillSwitch) || c.AIMS.Art73.General != 72*time.Hour {
		t.Errorf("values = %+v", c.AIMS)
	}
	for in, want := range map[string]string{
		"aims:\n  art73:\n    death: 300h\n":            "line 3: aims.art73.death: must be positive and at most",
		"aims:\n  risk_scale: 2\n":                      "aims.risk_scale: must be between 3 and 10",
		"aims:\n  verification_max_age: 1m\n":           "aims.verification_max_age",
		"aims:\n  auto_incidents:\n    kill_swich: x\n": `aims.auto_incidents.kill_swich: unknown field`,
	} {
		if _, err := config.Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v; want %q", in, err, want)
		}
	}
}
