package config

import "time"

// DefaultAuthCacheTTL is auth.cache_ttl's default.
const DefaultAuthCacheTTL = time.Second

// AuthConfig tunes how agents are authenticated.
type AuthConfig struct {
	// CacheTTL bounds how long a replica serves an agent key's resolution — the key,
	// whether its agent and system are active, whether the global kill switch is off —
	// from memory instead of reading the database on every call. A suspension, halt,
	// key rotation or revocation drops the cache at once on the replica that made it,
	// and a suspension or halt on every other replica as soon as its notice arrives;
	// this is the longest any of them can take to apply if a notice is lost (and for a
	// key revoked on another replica). Between 0 (read the database on every call) and
	// 1s, the bound DESIGN.md promises; default 1s.
	CacheTTL *time.Duration `yaml:"cache_ttl"`
}

// CacheFor is CacheTTL with its default applied.
func (c AuthConfig) CacheFor() time.Duration {
	if c.CacheTTL == nil {
		return DefaultAuthCacheTTL
	}
	return *c.CacheTTL
}

func (c *AuthConfig) applyDefaults() {
	if c.CacheTTL == nil {
		d := DefaultAuthCacheTTL
		c.CacheTTL = &d
	}
}

func (c *AuthConfig) validate(errs *FieldErrors) {
	if c.CacheTTL != nil && (*c.CacheTTL < 0 || *c.CacheTTL > time.Second) {
		errs.add("auth.cache_ttl", "must be between 0s and 1s")
	}
}
