package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

func testAuth(t *testing.T, st Stores) {
	ctx := context.Background()
	s := st.Auth
	sys := inventory.System{ID: newID(), Name: "sys", Lifecycle: "operation", Status: inventory.Active, CreatedAt: now, UpdatedAt: now}
	if err := st.Inventory.CreateSystem(ctx, sys); err != nil {
		t.Fatal(err)
	}
	agent := inventory.Agent{ID: newID(), Name: "a1", SystemID: sys.ID, Status: inventory.Active, CreatedAt: now, UpdatedAt: now}
	if err := st.Inventory.CreateAgent(ctx, agent); err != nil {
		t.Fatal(err)
	}

	k1 := auth.AgentKey{ID: newID(), AgentID: agent.ID, Prefix: "vk_aaaaaaaa", Hash: auth.Hash("secret-1"), CreatedAt: now}
	k2 := auth.AgentKey{ID: newID(), AgentID: agent.ID, Prefix: "vk_bbbbbbbb", Hash: auth.Hash("secret-2"), CreatedAt: now.Add(time.Second)}
	for _, k := range []auth.AgentKey{k1, k2} {
		if err := s.CreateAgentKey(ctx, k); err != nil {
			t.Fatalf("CreateAgentKey: %v", err)
		}
	}
	t.Run("AgentKeyByHash", func(t *testing.T) {
		got, err := s.AgentKeyByHash(ctx, auth.Hash("secret-2"))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(k2, got); diff != "" {
			t.Errorf("AgentKeyByHash mismatch (-want +got):\n%s", diff)
		}
		if _, err := s.AgentKeyByHash(ctx, auth.Hash("wrong")); !errors.Is(err, vigil.ErrNotFound) {
			t.Errorf("AgentKeyByHash(wrong) = %v, want ErrNotFound", err)
		}
	})
	t.Run("ErrDuplicateKeyHash", func(t *testing.T) {
		dup := k1
		dup.ID = newID()
		if err := s.CreateAgentKey(ctx, dup); !errors.Is(err, vigil.ErrConflict) {
			t.Errorf("CreateAgentKey(duplicate hash) = %v, want ErrConflict", err)
		}
	})
	t.Run("ExpireAgentKeysKeepsOne", func(t *testing.T) {
		at := now.Add(time.Hour)
		if err := s.ExpireAgentKeys(ctx, agent.ID, k2.ID, at); err != nil {
			t.Fatal(err)
		}
		keys, err := s.ListAgentKeys(ctx, agent.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 2 {
			t.Fatalf("ListAgentKeys = %d keys, want 2", len(keys))
		}
		if keys[0].ID != k1.ID || keys[0].ExpiresAt == nil || !keys[0].ExpiresAt.Equal(at) {
			t.Errorf("k1 after expire = %+v, want expires_at %v", keys[0], at)
		}
		if keys[1].ExpiresAt != nil {
			t.Errorf("kept key got expires_at %v", keys[1].ExpiresAt)
		}
		// A later expiry never extends an earlier one.
		if err := s.ExpireAgentKeys(ctx, agent.ID, k2.ID, at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, _ := s.AgentKeyByHash(ctx, k1.Hash)
		if got.ExpiresAt == nil || !got.ExpiresAt.Equal(at) {
			t.Errorf("expiry extended to %v, want it kept at %v", got.ExpiresAt, at)
		}
	})
	t.Run("RevokeAgentKey", func(t *testing.T) {
		if err := s.RevokeAgentKey(ctx, agent.ID, k2.ID, now); err != nil {
			t.Fatal(err)
		}
		got, _ := s.AgentKeyByHash(ctx, k2.Hash)
		if got.RevokedAt == nil || got.Active(now) {
			t.Errorf("revoked key = %+v, want revoked_at set and inactive", got)
		}
		if err := s.RevokeAgentKey(ctx, agent.ID, k2.ID, now); !errors.Is(err, vigil.ErrNotFound) {
			t.Errorf("revoking twice = %v, want ErrNotFound", err)
		}
	})

	t.Run("Tokens", func(t *testing.T) {
		if n, err := s.CountTokens(ctx); err != nil || n != 0 {
			t.Fatalf("CountTokens on empty = %d, %v; want 0", n, err)
		}
		exp := now.Add(24 * time.Hour)
		tok := auth.Token{ID: newID(), Name: "ci", Role: vigil.RoleAuditor, Prefix: "vt_cccccccc", Hash: auth.Hash("tok"), CreatedBy: "system:bootstrap", CreatedAt: now, ExpiresAt: &exp}
		if err := s.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		got, err := s.TokenByHash(ctx, auth.Hash("tok"))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tok, got); diff != "" {
			t.Errorf("TokenByHash mismatch (-want +got):\n%s", diff)
		}
		if _, err := s.TokenByHash(ctx, auth.Hash("nope")); !errors.Is(err, vigil.ErrNotFound) {
			t.Errorf("TokenByHash(wrong) = %v, want ErrNotFound", err)
		}
		bad := tok
		bad.ID, bad.Hash, bad.Role = newID(), auth.Hash("other"), "superuser"
		if err := s.CreateToken(ctx, bad); err == nil {
			t.Error("CreateToken with an unknown role succeeded; the store must refuse it")
		}
		if n, _ := s.CountTokens(ctx); n != 1 {
			t.Errorf("CountTokens = %d, want 1", n)
		}
		list, err := s.ListTokens(ctx)
		if err != nil || len(list) != 1 {
			t.Fatalf("ListTokens = %v, %v", list, err)
		}
		if err := s.RevokeToken(ctx, tok.ID, now); err != nil {
			t.Fatal(err)
		}
		got, _ = s.TokenByHash(ctx, tok.Hash)
		if got.Active(now) {
			t.Error("revoked token still active")
		}
		if err := s.RevokeToken(ctx, tok.ID, now); !errors.Is(err, vigil.ErrNotFound) {
			t.Errorf("revoking twice = %v, want ErrNotFound", err)
		}
	})
}
