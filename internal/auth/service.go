package auth

import (
	"context"
	"errors"
	"fmt"
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
	// Now is the clock; tests replace it.
	Now func() time.Time
}

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
	k, err := s.Store.AgentKeyByHash(ctx, Hash(secret))
	if errors.Is(err, vigil.ErrNotFound) {
		return vigil.Actor{}, errBadCredentials
	}
	if err != nil {
		return vigil.Actor{}, fmt.Errorf("couldn't look up agent key: %w", err)
	}
	if !k.Active(s.now()) {
		return vigil.Actor{}, vigil.Errorf(vigil.EUNAUTHORIZED, "API key %s has been revoked or has expired", k.Prefix)
	}
	a, err := s.Agents.Agent(ctx, k.AgentID)
	if err != nil {
		return vigil.Actor{}, fmt.Errorf("couldn't load agent of key %s: %w", k.Prefix, err)
	}
	sys, err := s.Agents.System(ctx, a.SystemID)
	if err != nil {
		return vigil.Actor{}, fmt.Errorf("couldn't load system of agent %s: %w", a.Name, err)
	}
	if a.Status == inventory.Suspended {
		return vigil.Actor{}, vigil.Errorf(vigil.ESUSPENDED, "agent %q is suspended: %s", a.Name, a.SuspendedReason)
	}
	if sys.Status == inventory.Suspended {
		return vigil.Actor{}, vigil.Errorf(vigil.ESUSPENDED, "AI system %q is suspended: %s", sys.Name, sys.SuspendedReason)
	}
	if s.Halt != nil {
		on, reason, err := s.Halt.Halted(ctx)
		if err != nil {
			return vigil.Actor{}, &vigil.Error{Code: vigil.EUNAVAILABLE, Message: "couldn't check the global kill switch; refusing to be safe", Err: err}
		}
		if on {
			return vigil.Actor{}, vigil.Errorf(vigil.ESUSPENDED, "Vigil is halted: every agent is stopped: %s", reason)
		}
	}
	return ActorOf(a, sys), nil
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
	if err := s.Store.ExpireAgentKeys(ctx, agentID, k.ID, s.now().Add(grace)); err != nil {
		return "", AgentKey{}, fmt.Errorf("couldn't retire old keys: %w", err)
	}
	if err := s.record(ctx, by, vigil.EventTokenRevoked, agentID, map[string]string{"kind": "agent_key", "except": k.ID, "grace": grace.String()}); err != nil {
		return "", AgentKey{}, err
	}
	return secret, k, nil
}

// RevokeAgentKey revokes one key of an agent at once.
func (s *Service) RevokeAgentKey(ctx context.Context, by vigil.Actor, agentID, keyID string) error {
	if err := s.Store.RevokeAgentKey(ctx, agentID, keyID, s.now()); err != nil {
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
// secret when one was generated (to print once), "" otherwise.
func (s *Service) Bootstrap(ctx context.Context, given string) (generated string, err error) {
	n, err := s.Store.CountTokens(ctx)
	if err != nil {
		return "", fmt.Errorf("couldn't count tokens: %w", err)
	}
	if n > 0 {
		return "", nil
	}
	secret := given
	if secret == "" {
		secret = NewSecret(TokenPrefix)
	} else if len(secret) < MinBootstrapTokenLen {
		return "", fmt.Errorf("VIGIL_ADMIN_TOKEN is too short: use at least %d random characters", MinBootstrapTokenLen)
	}
	sys := vigil.Actor{Kind: vigil.ActorSystem, Name: "bootstrap"}
	if _, err := s.storeToken(ctx, sys, "bootstrap", vigil.RoleAdmin, secret, 0); err != nil {
		return "", err
	}
	if given != "" {
		return "", nil
	}
	return secret, nil
}

func (s *Service) record(ctx context.Context, by vigil.Actor, typ, agentID string, attrs map[string]string) error {
	if _, err := s.Ledger.Record(ctx, vigil.Event{Type: typ, Time: s.now(), Actor: by.String(), AgentID: agentID, Attrs: attrs}); err != nil {
		return fmt.Errorf("couldn't record %s in the ledger: %w", typ, err)
	}
	return nil
}
