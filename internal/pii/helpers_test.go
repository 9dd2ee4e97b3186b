package pii

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

func newTestEngine(t testing.TB, o Options) *Engine {
	t.Helper()
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// memVault is a Vault in memory that records what it was given.
type memVault struct {
	mu   sync.Mutex
	m    map[string]VaultEntry
	puts int
}

func (v *memVault) Put(_ context.Context, es ...VaultEntry) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = map[string]VaultEntry{}
	}
	v.puts++
	for _, e := range es {
		v.m[e.AgentID+"|"+e.SessionID+"|"+e.ID] = e
	}
	return nil
}

func (v *memVault) Get(_ context.Context, a, s, id string, now time.Time) (VaultEntry, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.m[a+"|"+s+"|"+id]
	if !ok || !e.ExpiresAt.After(now) {
		return VaultEntry{}, vigil.NotFound("no entry")
	}
	return e, nil
}

func (v *memVault) Purge(context.Context, time.Time) (int64, error) { return 0, nil }

var testKey = bytes.Repeat([]byte{7}, 32)
