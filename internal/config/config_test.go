package config_test

import (
	"errors"
	"os"
	"path/filepath"
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

func TestExampleConfigLoads(t *testing.T) {
	c, err := config.Load("../../examples/vigil.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Providers) != 2 || c.Providers[0].Type != config.ProviderOpenAI || c.Providers[1].Timeouts.Total != config.DefaultTotalTimeout || len(c.Prices) == 0 {
		t.Errorf("providers %+v prices %+v", c.Providers, c.Prices)
	}
}

func TestProviderValidation(t *testing.T) {
	t.Setenv("SET_KEY", "sk-1")
	cases := []struct {
		name, in string
		want     []string
	}{
		{"ok", "providers:\n  - {name: a, type: openai, api_key_env: SET_KEY, models: ['*']}\n", nil},
		{"duplicate name", "providers:\n  - {name: a, type: openai, models: ['*']}\n  - {name: a, type: anthropic, models: ['*']}\n", []string{`line 3: providers[1].name: "a" is already the name of providers[0]`}},
		{"unknown type", "providers:\n  - {name: a, type: gemini, models: ['*']}\n", []string{`providers[0].type: "gemini" is not one of openai, anthropic`}},
		{"bad url", "providers:\n  - {name: a, type: openai, base_url: 'ftp://x', models: ['*']}\n", []string{"providers[0].base_url"}},
		{"azure", "providers:\n  - {name: a, type: openai, base_url: 'https://x.example/openai/deployments/d?api-version=1', api_key_env: SET_KEY, api_key_header: api-key, models: ['*']}\n", nil},
		{"key header without key", "providers:\n  - {name: a, type: openai, api_key_header: api-key, models: ['*']}\n", []string{"providers[0].api_key_header: must be a header name, and needs api_key_env"}},
		{"missing env", "providers:\n  - {name: a, type: openai, api_key_env: VIGIL_TEST_UNSET_KEY, models: ['*']}\n", []string{"providers[0].api_key_env: environment variable VIGIL_TEST_UNSET_KEY is empty or unset"}},
		{"no models", "providers:\n  - {name: a, type: openai}\n", []string{"providers[0].models: needs at least one model pattern"}},
		{"secret header", "providers:\n  - {name: a, type: openai, models: ['*'], headers: {Authorization: x}}\n", []string{"providers[0].headers.Authorization: is set by Vigil"}},
		{"timeouts", "providers:\n  - name: a\n    type: openai\n    models: ['*']\n    timeouts: {first_byte: 20m, total: 1m}\n", []string{"providers[0].timeouts.first_byte: must not be longer than timeouts.total"}},
		{"retries", "providers:\n  - {name: a, type: openai, models: ['*'], retries: 9}\n", []string{"providers[0].retries: must be between 0 and 5"}},
		{"bad name", "providers:\n  - {name: 'My Provider', type: openai, models: ['*']}\n", []string{"providers[0].name"}},
		{"price", "prices:\n  - {model: '', input: -1}\n", []string{"prices[0].model: is required", "prices[0].input: must be a price of at least 0"}},
		{"unknown field", "providers:\n  - {name: a, type: openai, models: ['*'], modles: []}\n", []string{`providers[0].modles: unknown field (did you mean "models"?)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Parse([]byte(c.in))
			if len(c.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadResolvesFilesRelativeToTheConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.yaml")
	os.WriteFile(path, []byte("data_dir: data\npolicy: p.yaml\npolicy_options: {shadow: /abs/c.yaml}\nmcp_servers:\n  - {name: fs, command: [x], dir: tools}\n"), 0o644)
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy != filepath.Join(dir, "p.yaml") || c.PolicyOptions.Shadow != "/abs/c.yaml" || c.MCPServers[0].Dir != filepath.Join(dir, "tools") || c.DataDir != "data" {
		t.Errorf("paths = policy %q shadow %q dir %q data %q", c.Policy, c.PolicyOptions.Shadow, c.MCPServers[0].Dir, c.DataDir)
	}
}
