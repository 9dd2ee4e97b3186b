package auth

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/google/uuid"
	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Recorder appends an event to the ledger and returns once it is durable.
type Recorder interface {
	Record(ctx context.Context, e vigil.Event) (vigil.Receipt, error)
}

// Halter reports whether the global kill switch is on, and why (package oversight
// implements it). When it cannot tell, it returns an error and agents are refused.
type Halter interface {
	Halted(ctx context.Context) (bool, string, error)
}

// Service issues, checks and revokes agent keys and role tokens.
type Service struct {
	Store  Store
	Agents inventory.Store
	Ledger Recorder
	// Halt, if set, is consulted on every agent authentication: while it is on, every
	// agent is refused. Nil means there is no global kill switch.
	Halt Halter
	// CacheTTL, if positive, lets AuthenticateAgent serve an agent key's resolution
	// (the key, its agent and system, and the global kill switch being off) from
	// memory for at most this long after the store was read. Whoever changes what it
	// caches MUST call Forget right after the change is committed and before open work
	// is closed: this Service does it for the keys it rotates and revokes; the wiring
	// does it for suspensions, resumptions and the halt (inventory.Service.OnChange,
	// oversight notices from every replica). CacheTTL is then only the bound on a lost
	// notification. Zero reads the store on every call.
	CacheTTL time.Duration
	// Now is the clock; tests replace it.
	Now func() time.Time

	cache agentCache
}

// clock is the time the cache's staleness is measured in: monotonic unless a test
// replaced Now.
func (s *Service) clock() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Forget drops every cached key resolution and the cached halt state, so the next
// authentication reads the store. Call it after any change to an agent key, an
// agent's or a system's status or the global kill switch has been committed.
func (s *Service) Forget() { s.cache.forget() }

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

var errBadCredentials = vigil.Errorf(vigil.EUNAUTHORIZED, "invalid or missing credentials")

// AuthenticateAgent resolves an agent API key to its actor. A suspended agent or
// system is refused with ESUSPENDED and the reason the switch was pulled.
func (s *Service) AuthenticateAgent(ctx context.Context, secret string) (vigil.Actor, error) {
	if len(secret) < len(AgentKeyPrefix)+16 || secret[:len(AgentKeyPrefix)] != AgentKeyPrefix {
		if len(secret) >= len(TokenPrefix) && secret[:len(TokenPrefix)] == TokenPrefix {
			return vigil.Actor{}, vigil.Errorf(vigil.EUNAUTHORIZED, "this is an admin token; agent routes take an agent API key (vk_…)")
		}
		return vigil.Actor{}, errBadCredentials
	}
	r, err := s.resolve(ctx, Hash(secret))
	if err != nil {
		return vigil.Actor{}, err
	}
	if !r.key.Active(s.now()) {
		return vigil.Actor{}, vigil.Errorf(vigil.EUNAUTHORIZED, "API key %s has been revoked or has expired", r.key.Prefix)
	}
	if r.agent.Status == inventory.Suspended {
		return vigil.Actor{}, vigil.Errorf(vigil.ESUSPENDED, "agent %q is suspended: %s", r.agent.Name, r.agent.SuspendedReason)
	}
	if r.sys.Status == inventory.Suspended {
		return vigil.Actor{}, vigil.Errorf(vigil.ESUSPENDED, "AI system %q is suspended: %s", r.sys.Name, r.sys.SuspendedReason)
	}
	if err := s.checkHalt(ctx); err != nil {
		return vigil.Actor{}, err
	}
	a := ActorOf(r.agent, r.sys)
	// The cached agent's labels are shared; the actor gets its own copy.
	a.Labels = maps.Clone(a.Labels)
	return a, nil
}

// resolve reads the key with hash, its agent and its system, from the cache when a
// fresh entry is there.
func (s *Service) resolve(ctx context.Context, hash string) (resolved, error) {
	if s.CacheTTL > 0 {
		if r, ok := s.cache.get(hash, s.clock(), s.CacheTTL); ok {
			return r, nil
		}
	}
	// Taken before the reads: an entry's age counts from before what it says was read,
	// and a Forget during the reads keeps them out of the cache.
	gen, at := s.cache.generation(), s.clock()
	k, err := s.Store.AgentKeyByHash(ctx, hash)
	if errors.Is(err, vigil.ErrNotFound) {
		return resolved{}, errBadCredentials
	}
	if err != nil {
		return resolved{}, fmt.Errorf("couldn't look up agent key: %w", err)
	}
	if !k.Active(s.now()) {
		return resolved{key: k}, nil
	}
	a, err := s.Agents.Agent(ctx, k.AgentID)
	if err != nil {
		return resolved{}, fmt.Errorf("couldn't load agent of key %s: %w", k.Prefix, err)
	}
	sys, err := s.Agents.System(ctx, a.SystemID)
	if err != nil {
		return resolved{}, fmt.Errorf("couldn't load system of agent %s: %w", a.Name, err)
	}
	r := resolved{key: k, agent: a, sys: sys, at: at}
	if s.CacheTTL > 0 && r.usable() {
		s.cache.put(hash, r, gen)
	}
	return r, nil
}

// checkHalt refuses every agent while the global kill switch is on, and when it
// cannot tell. Only "off" is cached.
func (s *Service) checkHalt(ctx context.Context) error {
	if s.Halt == nil {
		return nil
	}
	if s.CacheTTL > 0 && s.cache.notHalted(s.clock(), s.CacheTTL) {
		return nil
	}
	gen, at := s.cache.generation(), s.clock()
	on, reason, err := s.Halt.Halted(ctx)
	if err != nil {
		return &vigil.Error{Code: vigil.EUNAVAILABLE, Message: "couldn't check the global kill switch; refusing to be safe", Err: err}
	}
	if on {
		return vigil.Errorf(vigil.ESUSPENDED, "Vigil is halted: every agent is stopped: %s", reason)
	}
	if s.CacheTTL > 0 {
		s.cache.putNotHalted(at, gen)
	}
	return nil
}

// ActorOf is the actor an agent of sys acts as.
func ActorOf(a inventory.Agent, sys inventory.System) vigil.Actor {
	return vigil.Actor{
		Kind: vigil.ActorAgent, ID: a.ID, Name: a.Name, SystemID: sys.ID, SystemName: sys.Name,
		Owner: a.Owner, Labels: a.Labels,
	}
}

// AuthenticateToken resolves a role token to its actor.
func (s *Service) AuthenticateToken(ctx context.Context, secret string) (vigil.Actor, error) {
	if secret == "" {
		return vigil.Actor{}, errBadCredentials
	}
	if len(secret) >= len(AgentKeyPrefix) && secret[:len(AgentKeyPrefix)] == AgentKeyPrefix {
		return vigil.Actor{}, vigil.Errorf(vigil.EUNAUTHORIZED, "agent API keys cannot be used on admin routes; use an admin or role token")
	}
	t, err := s.Store.TokenByHash(ctx, Hash(secret))
	if errors.Is(err, vigil.ErrNotFound) {
		return vigil.Actor{}, errBadCredentials
	}
	if err != nil {
		return vigil.Actor{}, fmt.Errorf("couldn't look up token: %w", err)
	}
	if !t.Active(s.now()) {
		return vigil.Actor{}, vigil.Errorf(vigil.EUNAUTHORIZED, "token %s has been revoked or has expired", t.Prefix)
	}
	return vigil.Actor{Kind: vigil.ActorToken, ID: t.ID, Name: t.Name, Roles: []vigil.Role{t.Role}}, nil
}

// IssueAgentKey creates a new key for an agent and returns the secret, which is not
// stored and cannot be shown again.
func (s *Service) IssueAgentKey(ctx context.Context, by vigil.Actor, agentID string) (string, AgentKey, error) {
	secret := NewSecret(AgentKeyPrefix)
	k := AgentKey{ID: uuid.Must(uuid.NewV7()).String(), AgentID: agentID, Prefix: DisplayPrefix(secret), Hash: Hash(secret), CreatedAt: s.now()}
	if err := s.Store.CreateAgentKey(ctx, k); err != nil {
		return "", AgentKey{}, fmt.Errorf("couldn't store agent key: %w", err)
	}
	if err := s.record(ctx, by, vigil.EventTokenCreated, agentID, map[string]string{"kind": "agent_key", "prefix": k.Prefix, "key_id": k.ID}); err != nil {
		return "", AgentKey{}, err
	}
	return secret, k, nil
}

// RotateAgentKey issues a new key and retires the others after grace (0: at once).
func (s *Service) RotateAgentKey(ctx context.Context, by vigil.Actor, agentID string, grace time.Duration) (string, AgentKey, error) {
	if grace < 0 || grace > 30*24*time.Hour {
		return "", AgentKey{}, vigil.Errorf(vigil.EINVALID, "grace must be between 0 and 720h")
	}
	secret, k, err := s.IssueAgentKey(ctx, by, agentID)
	if err != nil {
		return "", AgentKey{}, err
	}
	err = s.Store.ExpireAgentKeys(ctx, agentID, k.ID, s.now().Add(grace))
	s.Forget() // even after an error: the change may have been committed
	if err != nil {
		return "", AgentKey{}, fmt.Errorf("couldn't retire old keys: %w", err)
	}
	if err := s.record(ctx, by, vigil.EventTokenRevoked, agentID, map[string]string{"kind": "agent_key", "except": k.ID, "grace": grace.String()}); err != nil {
		return "", AgentKey{}, err
	}
	return secret, k, nil
}

// RevokeAgentKey revokes one key of an agent at once.
func (s *Service) RevokeAgentKey(ctx context.Context, by vigil.Actor, agentID, keyID string) error {
	err := s.Store.RevokeAgentKey(ctx, agentID, keyID, s.now())
	s.Forget() // even after an error: the change may have been committed
	if err != nil {
		return err
	}
	return s.record(ctx, by, vigil.EventTokenRevoked, agentID, map[string]string{"kind": "agent_key", "key_id": keyID})
}

// CreateToken creates a role token and returns its secret, shown once.
func (s *Service) CreateToken(ctx context.Context, by vigil.Actor, name string, role vigil.Role, ttl time.Duration) (string, Token, error) {
	if !role.Valid() {
		return "", Token{}, vigil.Errorf(vigil.EINVALID, "role %q is not one of admin, reviewer, auditor, viewer", role)
	}
	if name == "" || len(name) > 100 {
		return "", Token{}, vigil.Errorf(vigil.EINVALID, "token name must be 1-100 characters")
	}
	if ttl < 0 {
		return "", Token{}, vigil.Errorf(vigil.EINVALID, "ttl must not be negative")
	}
	secret := NewSecret(TokenPrefix)
	t, err := s.storeToken(ctx, by, name, role, secret, ttl)
	return secret, t, err
}

func (s *Service) storeToken(ctx context.Context, by vigil.Actor, name string, role vigil.Role, secret string, ttl time.Duration) (Token, error) {
	now := s.now()
	t := Token{ID: uuid.Must(uuid.NewV7()).String(), Name: name, Role: role, Prefix: DisplayPrefix(secret), Hash: Hash(secret), CreatedBy: by.String(), CreatedAt: now}
	if ttl > 0 {
		exp := now.Add(ttl)
		t.ExpiresAt = &exp
	}
	if err := s.Store.CreateToken(ctx, t); err != nil {
		return Token{}, fmt.Errorf("couldn't store token: %w", err)
	}
	if err := s.record(ctx, by, vigil.EventTokenCreated, "", map[string]string{"kind": "token", "role": string(role), "name": name, "prefix": t.Prefix, "token_id": t.ID}); err != nil {
		return Token{}, err
	}
	return t, nil
}

// RevokeToken revokes a role token at once.
func (s *Service) RevokeToken(ctx context.Context, by vigil.Actor, id string) error {
	if err := s.Store.RevokeToken(ctx, id, s.now()); err != nil {
		return err
	}
	return s.record(ctx, by, vigil.EventTokenRevoked, "", map[string]string{"kind": "token", "token_id": id})
}

// MinBootstrapTokenLen is the shortest VIGIL_ADMIN_TOKEN accepted.
const MinBootstrapTokenLen = 24

// Bootstrap creates the first admin token when no token exists yet. given is the
// operator's chosen secret (VIGIL_ADMIN_TOKEN) or "" to generate one. It returns the
// secret when one was generated (to print once), "" otherwise, and whether a token
// was created (false when tokens existed: given is then ignored).
func (s *Service) Bootstrap(ctx context.Context, given string) (generated string, created bool, err error) {
	n, err := s.Store.CountTokens(ctx)
	if err != nil {
		return "", false, fmt.Errorf("couldn't count tokens: %w", err)
	}
	if n > 0 {
		return "", false, nil
	}
	secret := given
	if secret == "" {
		secret = NewSecret(TokenPrefix)
	} else if len(secret) < MinBootstrapTokenLen {
		return "", false, fmt.Errorf("VIGIL_ADMIN_TOKEN is too short: use at least %d random characters", MinBootstrapTokenLen)
	}
	sys := vigil.Actor{Kind: vigil.ActorSystem, Name: "bootstrap"}
	if _, err := s.storeToken(ctx, sys, "bootstrap", vigil.RoleAdmin, secret, 0); err != nil {
		return "", false, err
	}
	if given != "" {
		return "", true, nil
	}
	return secret, true, nil
}

func (s *Service) record(ctx context.Context, by vigil.Actor, typ, agentID string, attrs map[string]string) error {
	if _, err := s.Ledger.Record(ctx, vigil.Event{Type: typ, Time: s.now(), Actor: by.String(), AgentID: agentID, Attrs: attrs}); err != nil {
		return fmt.Errorf("couldn't record %s in the ledger: %w", typ, err)
	}
	return nil
}
