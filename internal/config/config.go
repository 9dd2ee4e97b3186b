// Package config defines vigil.yaml: the Config type, whose field comments are the
// manual, and Load, which refuses unknown keys, wrong types and invalid values with an
// error that names the field and its line.
//
// Library packages never see this type; cmd/vigil copies what each needs into that
// package's own options.
package config

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// Defaults used when the file (or the whole file) is absent.
const (
	DefaultListen          = "127.0.0.1:8080"
	DefaultDataDir         = "./vigil-data"
	DefaultMaxBodyBytes    = 8 << 20
	DefaultShutdownTimeout = 30 * time.Second
)

// Config is the whole of vigil.yaml. Every field is optional; the zero file is a
// working single-node gateway on SQLite.
type Config struct {
	// Listen is the address of the one HTTP listener (API, gateway routes, console).
	// Default 127.0.0.1:8080. Overridden by --listen.
	Listen string `yaml:"listen"`

	// DataDir holds the SQLite database, the ledger signing key and other generated
	// keys. Created on first start. Default ./vigil-data. Overridden by --data.
	DataDir string `yaml:"data_dir"`

	// Database is a PostgreSQL DSN (postgres://user@host:5432/db?sslmode=...). Empty
	// means SQLite in DataDir. Use DatabaseEnv instead when the DSN holds a password.
	Database string `yaml:"database"`

	// DatabaseEnv names an environment variable holding the PostgreSQL DSN. When set,
	// it wins over Database; the variable must be non-empty at start.
	DatabaseEnv string `yaml:"database_env"`

	// PublicURL is how people reach this deployment (used in links sent by
	// notifications). Default http://<listen>.
	PublicURL string `yaml:"public_url"`

	// Log configures the structured log on stderr.
	Log LogConfig `yaml:"log"`

	// HTTP tunes the listener.
	HTTP HTTPConfig `yaml:"http"`

	// Auth tunes agent authentication.
	Auth AuthConfig `yaml:"auth"`

	// Ledger tunes the tamper-evident ledger.
	Ledger LedgerConfig `yaml:"ledger"`

	// PII configures detection and masking of personal data and secrets.
	PII PIIConfig `yaml:"pii"`

	// AIMS tunes the ISO/IEC 42001 management system (health checks, risk scale,
	// Art. 73 clocks, automatic incidents).
	AIMS AIMSConfig `yaml:"aims"`
	// PolicyConfig holds the top-level keys policy (the policy file) and
	// policy_options.
	PolicyConfig `yaml:",inline"`

	// Oversight tunes approvals, the reviewer console and approval webhooks.
	Oversight OversightConfig `yaml:"oversight"`

	// Providers are the model providers the LLM gateway (/v1/chat/completions,
	// /v1/responses, /v1/embeddings, /v1/messages) forwards to, routed by model name.
	// None means the model routes answer that no provider serves the model.
	Providers []ProviderConfig `yaml:"providers"`

	// Prices give what models cost per million tokens, by model pattern (first match
	// wins), for usage accounting, budgets and the cost metrics. A model with no price
	// costs 0.
	Prices []Price `yaml:"prices"`
	// MCPServers are the upstream MCP servers agents reach through Vigil, each at
	// /mcp/{name}. See MCPServerConfig.
	MCPServers []MCPServerConfig `yaml:"mcp_servers"`
}

// LogConfig configures logging. Logs never contain prompts, arguments, PII or secrets.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is json or text. Default json.
	Format string `yaml:"format"`
}

// HTTPConfig tunes the HTTP listener.
type HTTPConfig struct {
	// MaxBodyBytes caps every request body; larger requests get 413. Default 8 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ShutdownTimeout is how long in-flight requests may take to finish after SIGINT or
	// SIGTERM before they are cut off. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ReadHeaderTimeout bounds how long a client may take to send request headers.
	// Default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// PublicMetrics serves GET /metrics without a token. Default false: the metrics
	// name agents, systems and models, so a scraper needs an admin, auditor or viewer
	// token. /healthz and /readyz are always public (load balancers probe them; they
	// reveal nothing).
	PublicMetrics bool `yaml:"public_metrics"`
}

// Default returns the configuration used when no file is given.
func Default() *Config {
	c := &Config{}
	c.ApplyDefaults()
	return c
}

// ApplyDefaults fills every unset field with its default.
func (c *Config) ApplyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.HTTP.MaxBodyBytes == 0 {
		c.HTTP.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.HTTP.ShutdownTimeout == 0 {
		c.HTTP.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.HTTP.ReadHeaderTimeout == 0 {
		c.HTTP.ReadHeaderTimeout = 10 * time.Second
	}
	c.Auth.applyDefaults()
	c.Ledger.applyDefaults()
	c.AIMS.applyDefaults()
	c.Oversight.applyDefaults()
	c.applyProviderDefaults()
}

// DatabaseDSN returns the PostgreSQL DSN to use, or "" for SQLite.
func (c *Config) DatabaseDSN() (string, error) {
	if c.DatabaseEnv != "" {
		v := os.Getenv(c.DatabaseEnv)
		if v == "" {
			return "", &FieldError{Path: "database_env", Msg: fmt.Sprintf("environment variable %s is empty or unset", c.DatabaseEnv)}
		}
		return v, nil
	}
	return c.Database, nil
}

// Validate checks values that the YAML types cannot. It returns a *FieldErrors
// naming every bad field.
func (c *Config) Validate() error {
	var errs FieldErrors
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs.add("listen", "%q is not host:port", c.Listen)
	}
	if c.Database != "" && !strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://") {
		errs.add("database", "must be a postgres:// DSN (empty means SQLite in data_dir)")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs.add("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		errs.add("log.format", "%q is not one of json, text", c.Log.Format)
	}
	if c.HTTP.MaxBodyBytes < 1024 {
		errs.add("http.max_body_bytes", "must be at least 1024")
	}
	if c.HTTP.ShutdownTimeout < 0 {
		errs.add("http.shutdown_timeout", "must not be negative")
	}
	if c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://") {
		errs.add("public_url", "must start with http:// or https://")
	}
	// Each section validates itself; add a line here with each new section.
	c.Auth.validate(&errs)
	c.Ledger.validate(&errs)
	c.PII.validate(&errs)
	c.AIMS.validate(&errs)
	c.PolicyConfig.validate(&errs)
	c.Oversight.validate(&errs)
	c.validateProviders(&errs)
	validateMCPServers(c.MCPServers, &errs)
	return errs.orNil()
}
