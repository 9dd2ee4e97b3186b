package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/config"
)

func TestParseDefaults(t *testing.T) {
	for _, in := range []string{"", "\n# only a comment\n", "{}"} {
		c, err := config.Parse([]byte(in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if c.Listen != config.DefaultListen || c.DataDir != config.DefaultDataDir || c.HTTP.MaxBodyBytes != config.DefaultMaxBodyBytes || c.Ledger.CheckpointInterval != time.Second {
			t.Errorf("Parse(%q) defaults = %+v", in, c)
		}
	}
}

func TestParseValues(t *testing.T) {
	c, err := config.Parse([]byte("listen: 0.0.0.0:9000\nhttp:\n  shutdown_timeout: 5s\nledger:\n  origin: x.test/l\n  max_batch: 64\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:9000" || c.HTTP.ShutdownTimeout != 5*time.Second || c.Ledger.Origin != "x.test/l" || c.Ledger.MaxBatch != 64 {
		t.Errorf("got %+v", c)
	}
}

func TestParseErrorsNameFieldAndLine(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string
	}{
		{"unknown top-level key", "listen: a:1\nlistne: b\n", []string{`line 2: listne: unknown field (did you mean "listen"?)`}},
		{"unknown nested key", "ledger:\n  origin: x\n  intervall: 1s\n", []string{"line 3: ledger.intervall: unknown field"}},
		{"wrong scalar type", "ledger:\n  max_batch: lots\n", []string{`line 2: ledger.max_batch: "lots" is not a whole number`}},
		{"bad duration", "http:\n  shutdown_timeout: 5 minutes\n", []string{`line 2: http.shutdown_timeout: "5 minutes" is not a duration`}},
		{"mapping where scalar expected", "listen:\n  host: a\n", []string{"line 2: listen: want a string, got a mapping"}},
		{"list where mapping expected", "log:\n  - info\n", []string{"line 2: log: want a mapping of fields, got a list"}},
		{"duplicate key", "listen: a:1\nlisten: b:2\n", []string{"line 2: listen: appears twice"}},
		{"invalid value", "log:\n  level: loud\n", []string{`line 2: log.level: "loud" is not one of debug, info, warn, error`}},
		{"invalid listen", "listen: nowhere\n", []string{`line 1: listen: "nowhere" is not host:port`}},
		{"several at once", "log:\n  level: loud\n  format: xml\n", []string{"log.level", "log.format"}},
		{"database not postgres", "database: mysql://x\n", []string{"line 1: database: must be a postgres:// DSN"}},
		{"range", "ledger:\n  max_batch: 0\n  checkpoint_interval: 1ms\n", []string{"ledger.checkpoint_interval: must be at least 100ms"}},
		{"not YAML", "listen: [unclosed\n", []string{"not valid YAML"}},
		{"two documents", "listen: a:1\n---\nlisten: b:2\n", []string{"more than one YAML document"}},
		{"top-level scalar", "just a string\n", []string{"(top level): want a mapping"}},
		{"self-referencing alias", "log: &a\n  level: *a\n", []string{"log.level: want a string, got a mapping"}},
		{"alias cycle in a list", "&a [*a]\n", []string{"(top level): want a mapping of fields, got a list"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Parse([]byte(c.in))
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", c.in)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestFieldErrorsAreTyped(t *testing.T) {
	_, err := config.Parse([]byte("log:\n  level: loud\n"))
	var fes config.FieldErrors
	if !errors.As(err, &fes) || len(fes) != 1 || fes[0].Path != "log.level" || fes[0].Line != 2 {
		t.Fatalf("err = %#v", err)
	}
}

func TestDatabaseEnv(t *testing.T) {
	c, err := config.Parse([]byte("database_env: VIGIL_TEST_DSN_UNSET_XYZ\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DatabaseDSN(); err == nil || !strings.Contains(err.Error(), "VIGIL_TEST_DSN_UNSET_XYZ") {
		t.Errorf("DatabaseDSN with unset variable = %v", err)
	}
	t.Setenv("VIGIL_TEST_DSN_SET", "postgres://u@h/db")
	c.DatabaseEnv = "VIGIL_TEST_DSN_SET"
	if dsn, err := c.DatabaseDSN(); err != nil || dsn != "postgres://u@h/db" {
		t.Errorf("DatabaseDSN = %q, %v", dsn, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("listen: a:1\nledger:\n  max_batch: 3\n"))
	f.Add([]byte("log: {level: info}\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("&a x: *a\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := config.Parse(in)
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config that Validate refuses: %v", verr)
			}
		}
	})
}
