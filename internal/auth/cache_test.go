package auth

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// memStore is an in-memory auth.Store and inventory.Store that counts reads and can
// run a hook inside the system lookup, the last read of an authentication (to land
// a change after the agent was read).
type memStore struct {
	keyStore // unused methods panic
	regStore

	mu      sync.Mutex
	keys    map[string]AgentKey
	agents  map[string]inventory.Agent
	systems map[string]inventory.System
	reads   int
	during  func() // called inside AgentKeyByHash, once
}

func (m *memStore) AgentKeyByHash(_ context.Context, hash string) (AgentKey, error) {
	m.mu.Lock()
	m.reads++
	k, ok := m.keys[hash]
	m.mu.Unlock()
	if !ok {
		return AgentKey{}, vigil.NotFound("no key")
	}
	return k, nil
}

func (m *memStore) Agent(_ context.Context, id string) (inventory.Agent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	return m.agents[id], nil
}

func (m *memStore) System(_ context.Context, id string) (inventory.System, error) {
	m.mu.Lock()
	m.reads++
	s := m.systems[id]
	hook := m.during
	m.during = nil
	m.mu.Unlock()
	if hook != nil {
		hook()
	}
	return s, nil
}

func (m *memStore) setAgent(st inventory.Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.agents["a1"]
	a.Status, a.SuspendedReason = st, "drill"
	m.agents["a1"] = a
}

func (m *memStore) readCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads
}

type (
	keyStore = Store
	regStore = inventory.Store
)

// fakeHalt is a Halter whose state tests set.
type fakeHalt struct {
	mu    sync.Mutex
	on    bool
	reads int
}

func (h *fakeHalt) Halted(context.Context) (bool, string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reads++
	return h.on, "drill", nil
}

func (h *fakeHalt) set(on bool) {
	h.mu.Lock()
	h.on = on
	h.mu.Unlock()
}

type cacheRig struct {
	svc    *Service
	store  *memStore
	halt   *fakeHalt
	secret string
	now    time.Time
}

func newCacheRig(t *testing.T, ttl time.Duration) *cacheRig {
	t.Helper()
	r := &cacheRig{secret: NewSecret(AgentKeyPrefix), now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), halt: &fakeHalt{}}
	r.store = &memStore{
		keys:    map[string]AgentKey{Hash(r.secret): {ID: "k1", AgentID: "a1", Prefix: DisplayPrefix(r.secret)}},
		agents:  map[string]inventory.Agent{"a1": {ID: "a1", Name: "bot", SystemID: "s1", Status: inventory.Active, Labels: map[string]string{"tier": "1"}}},
		systems: map[string]inventory.System{"s1": {ID: "s1", Name: "sys", Status: inventory.Active}},
	}
	r.svc = &Service{Store: r.store, Agents: r.store, Halt: r.halt, CacheTTL: ttl, Now: func() time.Time { return r.now }}
	return r
}

func (r *cacheRig) auth(t *testing.T) error {
	t.Helper()
	_, err := r.svc.AuthenticateAgent(context.Background(), r.secret)
	return err
}

func TestCacheServesFromMemoryWithinTTL(t *testing.T) {
	r := newCacheRig(t, time.Second)
	if err := r.auth(t); err != nil {
		t.Fatal(err)
	}
	reads, halts := r.store.readCount(), r.halt.reads
	for range 5 {
		r.now = r.now.Add(100 * time.Millisecond)
		if err := r.auth(t); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.store.readCount(); got != reads {
		t.Errorf("store reads within the TTL: %d, want %d (the cache was not used)", got, reads)
	}
	if r.halt.reads != halts {
		t.Errorf("halt reads within the TTL: %d, want %d", r.halt.reads, halts)
	}
	r.now = r.now.Add(600 * time.Millisecond) // 1.1s after the first read
	if err := r.auth(t); err != nil {
		t.Fatal(err)
	}
	if got := r.store.readCount(); got == reads {
		t.Error("an entry older than the TTL was served without reading the store")
	}
}

// A change applies on the next call once Forget announces it, and once the TTL has
// passed when its announcement is lost (the hard bound).
func TestCacheChanges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(r *cacheRig)
		code   vigil.Code
	}{
		{"agent suspended", func(r *cacheRig) { r.store.setAgent(inventory.Suspended) }, vigil.ESUSPENDED},
		{"halted", func(r *cacheRig) { r.halt.set(true) }, vigil.ESUSPENDED},
		{"key revoked", func(r *cacheRig) {
			r.store.mu.Lock()
			k := r.store.keys[Hash(r.secret)]
			k.RevokedAt = &r.now
			r.store.keys[Hash(r.secret)] = k
			r.store.mu.Unlock()
		}, vigil.EUNAUTHORIZED},
	} {
		for _, announced := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/announced=%v", tc.name, announced), func(t *testing.T) {
				r := newCacheRig(t, time.Second)
				if err := r.auth(t); err != nil {
					t.Fatal(err)
				}
				tc.change(r)
				if announced {
					r.svc.Forget()
				} else {
					r.now = r.now.Add(time.Second)
				}
				if err := r.auth(t); vigil.ErrorCode(err) != tc.code {
					t.Errorf("next call: %v, want %s", err, tc.code)
				}
			})
		}
	}
}

// Refusals are not cached: lifting a suspension or the halt applies at once even if
// nobody calls Forget (a resume on another replica whose notice is late).
func TestCacheKeepsNoRefusal(t *testing.T) {
	r := newCacheRig(t, time.Hour)
	r.store.setAgent(inventory.Suspended)
	if err := r.auth(t); vigil.ErrorCode(err) != vigil.ESUSPENDED {
		t.Fatalf("suspended: %v", err)
	}
	r.store.setAgent(inventory.Active)
	if err := r.auth(t); err != nil {
		t.Errorf("resumed, without Forget: %v", err)
	}
	r.halt.set(true)
	r.svc.Forget()
	if err := r.auth(t); vigil.ErrorCode(err) != vigil.ESUSPENDED {
		t.Fatalf("halted: %v", err)
	}
	r.halt.set(false)
	if err := r.auth(t); err != nil {
		t.Errorf("halt lifted, without Forget: %v", err)
	}
}

// A suspension that lands (and is announced) while an authentication is reading the
// store must not be undone by that read filling the cache with what it saw before.
func TestCacheFillRacingForget(t *testing.T) {
	r := newCacheRig(t, time.Hour)
	r.store.during = func() {
		r.store.setAgent(inventory.Suspended)
		r.svc.Forget()
	}
	_ = r.auth(t) // may see either state: it raced the suspension
	if err := r.auth(t); vigil.ErrorCode(err) != vigil.ESUSPENDED {
		t.Errorf("after a suspension that raced a fill: %v, want ESUSPENDED", err)
	}
}

// Rotating and revoking through the Service drop the cache themselves.
func TestCacheRevokeAndRotate(t *testing.T) {
	for name, change := range map[string]func(*Service) error{
		"revoke": func(s *Service) error { return s.RevokeAgentKey(context.Background(), vigil.Actor{}, "a1", "k1") },
		"rotate": func(s *Service) error {
			_, _, err := s.RotateAgentKey(context.Background(), vigil.Actor{}, "a1", 0)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := newCacheRig(t, time.Hour)
			r.svc.Store = &revokingStore{memStore: r.store}
			r.svc.Ledger = nopRecorder{}
			if err := r.auth(t); err != nil {
				t.Fatal(err)
			}
			if err := change(r.svc); err != nil {
				t.Fatal(err)
			}
			if err := r.auth(t); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
				t.Errorf("the old key's next call: %v, want EUNAUTHORIZED", err)
			}
		})
	}
}

// The actor's labels are its own: changing them does not reach the cache.
func TestCacheActorLabelsAreCopies(t *testing.T) {
	r := newCacheRig(t, time.Hour)
	a, err := r.svc.AuthenticateAgent(context.Background(), r.secret)
	if err != nil {
		t.Fatal(err)
	}
	a.Labels["tier"] = "changed"
	b, err := r.svc.AuthenticateAgent(context.Background(), r.secret)
	if err != nil {
		t.Fatal(err)
	}
	if b.Labels["tier"] != "1" {
		t.Errorf("labels of the next actor = %v, want tier 1", b.Labels)
	}
}

// revokingStore adds the key-changing methods the Service's own revoke and rotate use.
type revokingStore struct{ *memStore }

func (s *revokingStore) CreateAgentKey(_ context.Context, k AgentKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[k.Hash] = k
	return nil
}

func (s *revokingStore) RevokeAgentKey(_ context.Context, agentID, keyID string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, k := range s.keys {
		if k.ID == keyID {
			k.RevokedAt = &at
			s.keys[h] = k
		}
	}
	return nil
}

func (s *revokingStore) ExpireAgentKeys(_ context.Context, agentID, keepID string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, k := range s.keys {
		if k.ID != keepID {
			k.ExpiresAt = &at
			s.keys[h] = k
		}
	}
	return nil
}

type nopRecorder struct{}

func (nopRecorder) Record(context.Context, vigil.Event) (vigil.Receipt, error) {
	return vigil.Receipt{}, nil
}
