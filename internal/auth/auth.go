// Package auth authenticates callers: agents by API key, automation and the CLI by
// role tokens, people by password and session cookie. Secrets are high-entropy random
// strings shown once and stored only as hashes; a short prefix identifies a key in
// lists and logs without revealing it.
//
// Agent keys and role tokens are different kinds with different prefixes and tables:
// an agent key never authenticates on an admin route and a token never on an agent
// route.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"
	"time"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Secret prefixes. They make a leaked secret recognisable to secret scanners and tell
// at a glance which kind it is.
const (
	AgentKeyPrefix = "vk_"
	TokenPrefix    = "vt_"
)

// DisplayPrefixLen is how many characters of a secret are kept in the clear to
// identify it (e.g. "vk_7hq2mf4x").
const DisplayPrefixLen = 11

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewSecret returns a new secret with the given kind prefix and 256 bits of entropy.
func NewSecret(kind string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // unreachable on supported platforms
	}
	return kind + b32.EncodeToString(b[:])
}

// Hash is how a secret is stored. Secrets carry 256 bits of entropy, so a fast hash is
// as strong as a slow one here (unlike passwords, which use argon2id).
func Hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// DisplayPrefix is the identifying prefix of a secret, safe to show and log.
func DisplayPrefix(secret string) string {
	if len(secret) <= DisplayPrefixLen {
		return secret[:min(len(secret), 4)] + "…"
	}
	return secret[:DisplayPrefixLen]
}

// FromHeader extracts a credential from "Authorization: Bearer X" or, for the
// Anthropic API, "x-api-key: X".
func FromHeader(authorization, apiKey string) string {
	if s, ok := strings.CutPrefix(authorization, "Bearer "); ok {
		return strings.TrimSpace(s)
	}
	if s, ok := strings.CutPrefix(authorization, "bearer "); ok {
		return strings.TrimSpace(s)
	}
	return strings.TrimSpace(apiKey)
}

// AgentKey is a stored agent API key (never the key itself).
type AgentKey struct {
	ID        string     `json:"id"`
	AgentID   string     `json:"agent_id"`
	Prefix    string     `json:"prefix"`
	Hash      string     `json:"-"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Active reports whether the key may be used at now.
func (k AgentKey) Active(now time.Time) bool {
	return k.RevokedAt == nil && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}

// Token is a stored role token for automation and the CLI.
type Token struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      vigil.Role `json:"role"`
	Prefix    string     `json:"prefix"`
	Hash      string     `json:"-"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Active reports whether the token may be used at now.
func (t Token) Active(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// Store keeps keys and tokens.
//
// Lookups by hash MUST return an error matching vigil.ErrNotFound when nothing
// matches. Implementations MUST be safe for concurrent use.
type Store interface {
	CreateAgentKey(ctx context.Context, k AgentKey) error
	AgentKeyByHash(ctx context.Context, hash string) (AgentKey, error)
	ListAgentKeys(ctx context.Context, agentID string) ([]AgentKey, error)
	// ExpireAgentKeys makes every unrevoked key of the agent except keepID expire at
	// at (or earlier, if it already expires sooner).
	ExpireAgentKeys(ctx context.Context, agentID, keepID string, at time.Time) error
	RevokeAgentKey(ctx context.Context, agentID, keyID string, at time.Time) error

	CreateToken(ctx context.Context, t Token) error
	TokenByHash(ctx context.Context, hash string) (Token, error)
	ListTokens(ctx context.Context) ([]Token, error)
	RevokeToken(ctx context.Context, id string, at time.Time) error
	CountTokens(ctx context.Context) (int, error)
}
