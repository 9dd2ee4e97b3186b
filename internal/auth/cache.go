package auth

import (
	"sync"
	"time"

	"github.com/vigil-gateway/vigil/internal/inventory"
)

// DefaultCacheTTL is the staleness bound cmd/vigil gives Service.CacheTTL: one
// second, the time DESIGN.md allows a suspension to take to reach another replica.
const DefaultCacheTTL = time.Second

// maxCachedKeys bounds the cache; past it the cache starts over (it refills from the
// store at one read per key).
const maxCachedKeys = 1 << 14

// agentCache holds what authenticating an agent key read from the store — the key,
// its agent and its system — and whether the global kill switch was off, so that
// authentication, which every agent call does (a model call twice), reads nothing.
//
// Only resolutions that let an agent act are kept: a revoked key, a suspended agent
// or system and a halt are read from the store on every call, so lifting one takes
// effect at once everywhere, and refusing costs what it did before.
//
// An entry is served for at most the TTL after the read that produced it began
// (the hard bound on a lost notification), and forget drops everything at once. A
// read that began before a forget is not cached (generation check), so a fill racing
// an invalidation can never bring back the state the invalidation removed.
//
// The zero value is ready to use. It is safe for concurrent use.
type agentCache struct {
	mu   sync.RWMutex
	gen  uint64              // bumped by forget; guarded by mu
	keys map[string]resolved // by key hash; guarded by mu
	// haltOff is when the store last said the global kill switch was off; zero means
	// unknown. Guarded by mu.
	haltOff time.Time
}

// resolved is an agent key with its agent and system as read at one moment.
type resolved struct {
	key   AgentKey
	agent inventory.Agent
	sys   inventory.System
	at    time.Time // when the read began
}

// usable reports whether r lets its agent act as far as the records go (expiry is
// checked on every use, against the clock).
func (r resolved) usable() bool {
	return r.key.RevokedAt == nil && r.agent.Status == inventory.Active && r.sys.Status == inventory.Active
}

func (c *agentCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// get returns the entry for hash if it was read less than ttl before now.
func (c *agentCache) get(hash string, now time.Time, ttl time.Duration) (resolved, bool) {
	c.mu.RLock()
	r, ok := c.keys[hash]
	c.mu.RUnlock()
	if !ok || now.Sub(r.at) >= ttl || now.Before(r.at) {
		return resolved{}, false
	}
	return r, true
}

// put keeps r unless the cache was forgotten since gen was taken (before the read).
func (c *agentCache) put(hash string, r resolved, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.keys == nil || len(c.keys) >= maxCachedKeys {
		c.keys = map[string]resolved{}
	}
	c.keys[hash] = r
}

// notHalted reports whether the global kill switch was read as off less than ttl
// before now.
func (c *agentCache) notHalted(now time.Time, ttl time.Duration) bool {
	c.mu.RLock()
	at := c.haltOff
	c.mu.RUnlock()
	return !at.IsZero() && now.Sub(at) < ttl && !now.Before(at)
}

// putNotHalted remembers that a read begun at at (with generation gen) found the
// kill switch off.
func (c *agentCache) putNotHalted(at time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		c.haltOff = at
	}
}

// forget drops everything and makes reads under way uncacheable.
func (c *agentCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.keys = nil
	c.haltOff = time.Time{}
}
