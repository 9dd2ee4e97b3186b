package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// TestAuthCacheRefusesAtOnce pins the kill switch through the authentication cache:
// with every resolution cached (a TTL of an hour, far beyond what serve allows, so
// only invalidation can make a change visible), a revoked key, a rotated key, a
// suspended agent, a suspended system and the global halt are each refused on the
// very next call, and lifting a suspension or the halt lets the agent in at once.
// Each step warms the cache with a successful call first.
func TestAuthCacheRefusesAtOnce(t *testing.T) {
	cfg := config.Default()
	hour := time.Hour
	cfg.Auth.CacheTTL = &hour
	m, _ := startOversight(t, cfg)
	base := m.URL()
	agent, key := newAgent(t, m, "cache-bot", "cached", "")
	models := func(k string) (int, string) {
		t.Helper()
		st, body := call(t, "GET", base+"/v1/models", k, nil)
		return st, errMessage(body)
	}
	warm := func(k string) {
		t.Helper()
		if st, msg := models(k); st != 200 {
			t.Fatalf("warming the cache: %d %s", st, msg)
		}
	}

	// The cache is in use: a change made behind its back, straight in the database,
	// is not seen. (Everything below would pass without a cache; this shows it ran
	// with one.)
	warm(key)
	ctx := context.Background()
	a, err := m.store.Inventory().Agent(ctx, agent.ID)
	if err != nil {
		t.Fatal(err)
	}
	a.Status, a.SuspendedReason = inventory.Suspended, "behind the cache's back"
	if err := m.store.Inventory().UpdateAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	if st, _ := models(key); st != 200 {
		t.Fatalf("a change made straight in the database was seen at once (%d): the cache is not in use", st)
	}
	a.Status, a.SuspendedReason = inventory.Active, ""
	if err := m.store.Inventory().UpdateAgent(ctx, a); err != nil {
		t.Fatal(err)
	}

	// A revoked key.
	st, issued := call(t, "POST", base+"/api/agents/cache-bot/keys", adminToken, nil)
	if st != 201 {
		t.Fatalf("issue key = %d %v", st, issued)
	}
	second := issued["api_key"].(string)
	warm(second)
	if st, body := call(t, "DELETE", base+"/api/agents/cache-bot/keys/"+issued["id"].(string), adminToken, nil); st != 204 {
		t.Fatalf("revoke key = %d %v", st, body)
	}
	if st, msg := models(second); st != 401 || !strings.Contains(msg, "revoked") {
		t.Errorf("revoked key's next call = %d %q, want 401 saying it was revoked", st, msg)
	}

	// A rotated key (no grace).
	warm(key)
	st, rotated := call(t, "POST", base+"/api/agents/cache-bot/rotate", adminToken, nil)
	if st != 201 {
		t.Fatalf("rotate = %d %v", st, rotated)
	}
	if st, _ := models(key); st != 401 {
		t.Errorf("old key's next call after rotation = %d, want 401", st)
	}
	key = rotated["api_key"].(string)

	// A suspended agent and a suspended system, and their resumption.
	for _, what := range []string{"agents/cache-bot", "systems/cached"} {
		warm(key)
		reason := what + " drill"
		if st, body := call(t, "POST", base+"/api/"+what+"/suspend", adminToken, map[string]string{"reason": reason}); st != 200 {
			t.Fatalf("suspend %s = %d %v", what, st, body)
		}
		if st, msg := models(key); st != 403 || !strings.Contains(msg, reason) {
			t.Errorf("next call after suspending %s = %d %q, want 403 with the reason", what, st, msg)
		}
		call(t, "POST", base+"/api/"+what+"/resume", adminToken, nil)
		if st, msg := models(key); st != 200 {
			t.Errorf("next call after resuming %s = %d %q", what, st, msg)
		}
	}

	// The global halt, and lifting it.
	warm(key)
	reviewer := newToken(t, m, "rita", vigil.RoleReviewer)
	if st, body := call(t, "POST", base+"/api/halt", reviewer, map[string]string{"reason": "halt drill"}); st != 200 {
		t.Fatalf("halt = %d %v", st, body)
	}
	if st, msg := models(key); st != 403 || !strings.Contains(msg, "halt drill") {
		t.Errorf("next call while halted = %d %q, want 403 with the reason", st, msg)
	}
	call(t, "DELETE", base+"/api/halt", reviewer, map[string]string{"reason": "drill over"})
	if st, msg := models(key); st != 200 {
		t.Errorf("next call after the halt was lifted = %d %q", st, msg)
	}
}
