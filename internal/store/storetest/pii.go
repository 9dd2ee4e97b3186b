package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-gateway/vigil/internal/pii"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// testPIIVault checks the pii.Vault contract: scoped lookups, expiry that never
// moves earlier, atomic batches, purge of expired entries only; then a tokenize and
// restore round trip through the engine, showing the store holds only ciphertext.
func testPIIVault(t *testing.T, st Stores) {
	ctx := context.Background()
	v := st.PIIVault
	exp := now.Add(time.Hour)
	a := pii.VaultEntry{AgentID: "agent-1", SessionID: "s1", ID: "abcdefghijkl", Ciphertext: []byte{1, 2, 3}, ExpiresAt: exp}
	b := pii.VaultEntry{AgentID: "agent-1", SessionID: "s2", ID: "abcdefghijkl", Ciphertext: []byte{4, 5, 6}, ExpiresAt: exp}
	if err := v.Put(ctx, a, b); err != nil {
		t.Fatalf("Put: %v", err)
	}

	t.Run("GetIsScoped", func(t *testing.T) {
		got, err := v.Get(ctx, "agent-1", "s1", "abcdefghijkl", now)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, got); diff != "" {
			t.Errorf("Get mismatch (-want +got):\n%s", diff)
		}
		got, err = v.Get(ctx, "agent-1", "s2", "abcdefghijkl", now)
		if err != nil || !bytes.Equal(got.Ciphertext, b.Ciphertext) {
			t.Errorf("Get(s2) = %v, %v; want session s2's entry", got.Ciphertext, err)
		}
		for _, k := range [][3]string{{"agent-2", "s1", "abcdefghijkl"}, {"agent-1", "s3", "abcdefghijkl"}, {"agent-1", "s1", "zzzzzzzzzzzz"}} {
			if _, err := v.Get(ctx, k[0], k[1], k[2], now); !errors.Is(err, vigil.ErrNotFound) {
				t.Errorf("Get(%v) = %v, want ErrNotFound", k, err)
			}
		}
	})

	t.Run("ExpiredIsNotFound", func(t *testing.T) {
		if _, err := v.Get(ctx, "agent-1", "s1", "abcdefghijkl", exp); !errors.Is(err, vigil.ErrNotFound) {
			t.Errorf("Get at expiry = %v, want ErrNotFound", err)
		}
	})

	t.Run("PutReplacesAndNeverShortens", func(t *testing.T) {
		c := a
		c.Ciphertext = []byte{9, 9}
		c.ExpiresAt = now.Add(time.Minute) // earlier than stored
		if err := v.Put(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := v.Get(ctx, "agent-1", "s1", "abcdefghijkl", now)
		if err != nil {
			t.Fatal(err)
		}
		want := a
		want.Ciphertext = c.Ciphertext
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("after re-Put (-want +got):\n%s", diff)
		}
		c.ExpiresAt = now.Add(2 * time.Hour)
		if err := v.Put(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, _ = v.Get(ctx, "agent-1", "s1", "abcdefghijkl", now)
		if !got.ExpiresAt.Equal(c.ExpiresAt) {
			t.Errorf("ExpiresAt = %v, want extended to %v", got.ExpiresAt, c.ExpiresAt)
		}
	})

	t.Run("Purge", func(t *testing.T) {
		old := pii.VaultEntry{AgentID: "agent-1", SessionID: "old", ID: "oldoldoldold", Ciphertext: []byte{7}, ExpiresAt: now.Add(-time.Second)}
		if err := v.Put(ctx, old); err != nil {
			t.Fatal(err)
		}
		n, err := v.Purge(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("Purge deleted %d entries, want 1 (only the expired one)", n)
		}
		if _, err := v.Get(ctx, "agent-1", "s2", "abcdefghijkl", now); err != nil {
			t.Errorf("Purge removed a live entry: %v", err)
		}
	})

	t.Run("TokenizeRoundTrip", func(t *testing.T) {
		key := bytes.Repeat([]byte{0x42}, 32)
		e, err := pii.New(pii.Options{Operator: pii.Tokenize, Vault: v, VaultKey: key, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		sc := pii.Scope{AgentID: "agent-9", SessionID: "conv-1"}
		in := []byte("write to jane.roe@example.com about card 4111 1111 1111 1111")
		m, err := e.MaskText(ctx, sc, in)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(m.Data, []byte("jane.roe")) || bytes.Contains(m.Data, []byte("4111")) {
			t.Fatalf("masked text still holds the values: %q", m.Data)
		}
		got, n, err := e.Restore(ctx, sc, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(in) || n != 2 {
			t.Errorf("Restore = %q (%d tokens), want %q (2)", got, n, in)
		}
		other, n, err := e.Restore(ctx, pii.Scope{AgentID: "agent-9", SessionID: "conv-2"}, m.Data)
		if err != nil || n != 0 || string(other) != string(m.Data) {
			t.Errorf("Restore in another session = %q (%d), %v; want tokens left alone", other, n, err)
		}
	})
}
