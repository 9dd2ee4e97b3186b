package config

import (
	"fmt"
	"net/url"
	"regexp"
	"time"
)

// OversightConfig tunes human oversight: approvals, the reviewer console and the
// webhooks that tell people a decision is waiting.
type OversightConfig struct {
	// DefaultTimeout is how long a held call waits for reviewers when its policy rule
	// sets no timeout. Nobody deciding in time counts as a denial. Default 10m; at
	// most 168h.
	DefaultTimeout time.Duration `yaml:"default_timeout"`

	// ExcludeOwner keeps an agent's owner (its owner field, matched against the
	// reviewer's user or token name) from approving that agent's calls: separation of
	// duties. The owner may still deny. Default true.
	ExcludeOwner *bool `yaml:"exclude_owner"`

	// SessionLifetime is how long a console sign-in lasts however active it is.
	// Default 12h.
	SessionLifetime time.Duration `yaml:"session_lifetime"`

	// SessionIdleTimeout signs a reviewer out after this long without using the
	// console. Default 30m.
	SessionIdleTimeout time.Duration `yaml:"session_idle_timeout"`

	// Webhooks are told about new, decided and expired approval requests.
	Webhooks []WebhookConfig `yaml:"webhooks"`
}

// WebhookConfig is one receiver of approval notifications. Each POST carries the
// headers Vigil-Event, Vigil-Delivery, Vigil-Timestamp (Unix seconds) and
// Vigil-Signature: "v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
// Failed deliveries are retried with exponential backoff; every attempt is recorded
// (GET /api/approvals/{id}/deliveries).
type WebhookConfig struct {
	// Name identifies the receiver in delivery records and logs. Default: the URL's
	// host (the URL itself is never shown: it may hold a token).
	Name string `yaml:"name"`
	// URL receives the POSTs (http or https). Set this or URLEnv.
	URL string `yaml:"url"`
	// URLEnv names an environment variable holding the URL, for URLs that are
	// secrets themselves (Slack incoming webhooks).
	URLEnv string `yaml:"url_env"`
	// SecretEnv names the environment variable holding the HMAC signing secret
	// (required; at least 16 bytes when set).
	SecretEnv string `yaml:"secret_env"`
	// Events selects what is sent: any of approval.requested, approval.decided,
	// approval.expired, approval.cancelled. Default: the first three.
	Events []string `yaml:"events"`
	// Format is json (Vigil's own payload) or slack (a Slack-compatible message with
	// blocks and a link to the console at public_url). Default json.
	Format string `yaml:"format"`
}

// WebhookEvents are the event names a webhook may subscribe to.
var WebhookEvents = []string{"approval.requested", "approval.decided", "approval.expired", "approval.cancelled"}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (c *OversightConfig) applyDefaults() {
	if c.DefaultTimeout == 0 {
		c.DefaultTimeout = 10 * time.Minute
	}
	if c.ExcludeOwner == nil {
		t := true
		c.ExcludeOwner = &t
	}
	if c.SessionLifetime == 0 {
		c.SessionLifetime = 12 * time.Hour
	}
	if c.SessionIdleTimeout == 0 {
		c.SessionIdleTimeout = 30 * time.Minute
	}
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		if len(w.Events) == 0 {
			w.Events = WebhookEvents[:3:3]
		}
		if w.Format == "" {
			w.Format = "json"
		}
	}
}

func (c *OversightConfig) validate(errs *FieldErrors) {
	if c.DefaultTimeout <= 0 || c.DefaultTimeout > 168*time.Hour {
		errs.add("oversight.default_timeout", "must be between 1s and 168h")
	}
	if c.SessionLifetime < time.Minute {
		errs.add("oversight.session_lifetime", "must be at least 1m")
	}
	if c.SessionIdleTimeout < time.Minute || c.SessionIdleTimeout > c.SessionLifetime {
		errs.add("oversight.session_idle_timeout", "must be at least 1m and at most session_lifetime")
	}
	for i, w := range c.Webhooks {
		p := fmt.Sprintf("oversight.webhooks[%d]", i)
		switch {
		case (w.URL == "") == (w.URLEnv == ""):
			errs.add(p+".url", "set exactly one of url and url_env")
		case w.URL != "":
			if err := checkWebhookURL(w.URL); err != "" {
				errs.add(p+".url", "%s", err)
			}
		case !envName.MatchString(w.URLEnv):
			errs.add(p+".url_env", "%q is not an environment variable name", w.URLEnv)
		}
		if !envName.MatchString(w.SecretEnv) {
			errs.add(p+".secret_env", "is required: the name of the environment variable holding the signing secret")
		}
		for j, e := range w.Events {
			known := false
			for _, k := range WebhookEvents {
				known = known || e == k
			}
			if !known {
				errs.add(fmt.Sprintf("%s.events[%d]", p, j), "%q is not one of approval.requested, approval.decided, approval.expired, approval.cancelled", e)
			}
		}
		if w.Format != "json" && w.Format != "slack" {
			errs.add(p+".format", "%q is not json or slack", w.Format)
		}
	}
}

// checkWebhookURL returns why u cannot be a webhook URL, or "". It never echoes u.
func checkWebhookURL(u string) string {
	x, err := url.Parse(u)
	if err != nil || (x.Scheme != "http" && x.Scheme != "https") || x.Host == "" {
		return "must be an http:// or https:// URL"
	}
	return ""
}

// CheckWebhookURL is checkWebhookURL for URLs read from the environment at start.
func CheckWebhookURL(u string) error {
	if msg := checkWebhookURL(u); msg != "" {
		return fmt.Errorf("webhook URL %s", msg)
	}
	return nil
}
