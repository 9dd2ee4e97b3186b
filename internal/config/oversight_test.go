package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-gateway/vigil/internal/config"
)

func TestOversightDefaults(t *testing.T) {
	c, err := config.Parse([]byte("oversight:\n  webhooks:\n    - url: https://hooks.example.test/x\n      secret_env: HOOK_SECRET\n"))
	if err != nil {
		t.Fatal(err)
	}
	o := c.Oversight
	if o.DefaultTimeout != 10*time.Minute || o.ExcludeOwner == nil || !*o.ExcludeOwner || o.SessionIdleTimeout != 30*time.Minute {
		t.Errorf("defaults = %+v", o)
	}
	if diff := cmp.Diff([]string{"approval.requested", "approval.decided", "approval.expired"}, o.Webhooks[0].Events); diff != "" {
		t.Errorf("default events (-want +got):\n%s", diff)
	}
	if o.Webhooks[0].Format != "json" {
		t.Errorf("default format = %q", o.Webhooks[0].Format)
	}
	c, err = config.Parse([]byte("oversight:\n  exclude_owner: false\n  default_timeout: 2m\n"))
	if err != nil {
		t.Fatal(err)
	}
	if *c.Oversight.ExcludeOwner || c.Oversight.DefaultTimeout != 2*time.Minute {
		t.Errorf("explicit values not kept: %+v", c.Oversight)
	}
}

func TestOversightErrors(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"timeout", "oversight:\n  default_timeout: 200h\n", "line 2: oversight.default_timeout: must be between"},
		{"idle longer than lifetime", "oversight:\n  session_lifetime: 1h\n  session_idle_timeout: 2h\n", "oversight.session_idle_timeout"},
		{"no url", "oversight:\n  webhooks:\n    - secret_env: S\n", "oversight.webhooks[0].url: set exactly one of url and url_env"},
		{"both urls", "oversight:\n  webhooks:\n    - {url: 'https://a.test', url_env: U, secret_env: S}\n", "exactly one"},
		{"bad url", "oversight:\n  webhooks:\n    - {url: 'ftp://a.test/secret-token', secret_env: S}\n", "must be an http:// or https:// URL"},
		{"no secret", "oversight:\n  webhooks:\n    - {url: 'https://a.test'}\n", "oversight.webhooks[0].secret_env: is required"},
		{"bad event", "oversight:\n  webhooks:\n    - {url: 'https://a.test', secret_env: S, events: [approval.maybe]}\n", `oversight.webhooks[0].events[0]: "approval.maybe" is not one of`},
		{"bad format", "oversight:\n  webhooks:\n    - {url: 'https://a.test', secret_env: S, format: teams}\n", `"teams" is not json or slack`},
		{"typo", "oversight:\n  exclude_owners: true\n", `oversight.exclude_owners: unknown field (did you mean "exclude_owner"?)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Parse([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse = %v, want an error containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), "secret-token") {
				t.Errorf("the error echoes the URL, which may be a secret: %v", err)
			}
		})
	}
}
