package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/keyring"
	"github.com/vigil-gateway/vigil/internal/pii"
	"github.com/vigil-gateway/vigil/internal/store/sqlite"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

func testMasker(t *testing.T, c config.PIIConfig) enforce.Masker {
	t.Helper()
	dir := t.TempDir()
	keys, err := keyring.Load(keyring.Options{Dir: dir, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "v.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m, _, err := gatewayPII(c, keys, db.PIIVault())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGatewayPIITokenizesAndRestores(t *testing.T) {
	m := testMasker(t, config.PIIConfig{})
	ctx := context.Background()
	sc := enforce.Scope{AgentID: "a1", SessionID: "s1"}
	out, sum, err := m.MaskJSON(ctx, sc, []byte(`{"messages":[{"role":"user","content":"write to jane.doe@example.org"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("jane.doe@")) || sum.Counts["EMAIL_ADDRESS"] != 1 {
		t.Fatalf("masked = %s, summary %v", out, sum)
	}
	tok := strings.SplitN(strings.SplitN(string(out), "write to ", 2)[1], `"`, 2)[0]
	answer := []byte(`{"content":"Sent to ` + tok + `; call +1 415 555 0100 if needed"}`)
	back, in, err := m.InboundJSON(ctx, sc, answer)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(back, []byte("jane.doe@example.org")) {
		t.Errorf("restored answer = %s", back)
	}
	if in.Counts["EMAIL_ADDRESS"] != 0 || in.Counts["PHONE_NUMBER"] != 1 {
		t.Errorf("inbound summary = %v; want the answer's own phone, not the restored email", in)
	}
	// Another agent's scope cannot restore the token.
	other, _, err := m.InboundJSON(ctx, enforce.Scope{AgentID: "a2"}, answer)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(other, []byte("jane.doe@")) {
		t.Error("a token was restored for another agent")
	}
	// Streams restore tokens split across chunks.
	f := m.InboundStream(ctx, sc)
	var got []byte
	for _, chunk := range []string{"Sent to " + tok[:5], tok[5:], " ok"} {
		got = append(got, f.Write([]byte(chunk))...)
	}
	got = append(got, f.Flush()...)
	if string(got) != "Sent to jane.doe@example.org ok" {
		t.Errorf("stream = %q", got)
	}
}

func TestGatewayPIIBlockAndOff(t *testing.T) {
	m := testMasker(t, config.PIIConfig{Entities: map[string]config.PIIEntityConfig{"CREDIT_CARD": {Operator: "block"}}})
	_, sum, err := m.MaskJSON(context.Background(), enforce.Scope{}, []byte(`{"card":"4111 1111 1111 1111"}`))
	if !errors.Is(err, enforce.ErrBlocked) || sum.Counts["CREDIT_CARD"] != 1 {
		t.Errorf("block: err %v, summary %v", err, sum)
	}
	if m := testMasker(t, config.PIIConfig{Mode: "off"}); m != nil {
		t.Error("mode off built a masker")
	}
}

// countingVault is a pii.Vault in memory that counts reads.
type countingVault struct {
	mu    sync.Mutex
	m     map[string]pii.VaultEntry
	reads int
}

func (v *countingVault) Put(_ context.Context, es ...pii.VaultEntry) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range es {
		v.m[e.AgentID+"/"+e.SessionID+"/"+e.ID] = e
	}
	return nil
}

func (v *countingVault) Get(_ context.Context, agent, session, id string, now time.Time) (pii.VaultEntry, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.reads++
	e, ok := v.m[agent+"/"+session+"/"+id]
	if !ok || !e.ExpiresAt.After(now) {
		return pii.VaultEntry{}, vigil.NotFound("no entry")
	}
	return e, nil
}

func (v *countingVault) Purge(context.Context, time.Time) (int64, error) { return 0, nil }

// The vault cache serves what this replica wrote or read until its expiry, and never
// remembers a miss (another replica may write the token next).
func TestVaultCache(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	under := &countingVault{m: map[string]pii.VaultEntry{}}
	c := newVaultCache(under)
	mine := pii.VaultEntry{AgentID: "a", SessionID: "s", ID: "mine00000000", Ciphertext: []byte("1"), ExpiresAt: now.Add(time.Hour)}
	if err := c.Put(ctx, mine); err != nil {
		t.Fatal(err)
	}
	if e, err := c.Get(ctx, "a", "s", mine.ID, now); err != nil || string(e.Ciphertext) != "1" || under.reads != 0 {
		t.Errorf("Get of an entry just written = %v, %v after %d store reads; want it from memory", e, err, under.reads)
	}
	if _, err := c.Get(ctx, "a", "s", mine.ID, now.Add(time.Hour)); !errors.Is(err, vigil.ErrNotFound) || under.reads != 1 {
		t.Errorf("Get at its expiry = %v after %d store reads; want the store asked and not found", err, under.reads)
	}
	// Written by another replica after a miss here.
	theirs := pii.VaultEntry{AgentID: "a", SessionID: "s", ID: "theirs000000", Ciphertext: []byte("2"), ExpiresAt: now.Add(time.Hour)}
	if _, err := c.Get(ctx, "a", "s", theirs.ID, now); !errors.Is(err, vigil.ErrNotFound) {
		t.Fatalf("Get before it exists = %v", err)
	}
	under.Put(ctx, theirs)
	if e, err := c.Get(ctx, "a", "s", theirs.ID, now); err != nil || string(e.Ciphertext) != "2" {
		t.Errorf("Get after another replica wrote it = %v, %v", e, err)
	}
	reads := under.reads
	if _, err := c.Get(ctx, "a", "s", theirs.ID, now); err != nil || under.reads != reads {
		t.Errorf("second Get = %v after %d store reads, want it from memory", err, under.reads-reads)
	}
}

// TestGatewayPIIMasksAnswersWithoutRestoringThem: with mask_answers, the answer's own
// personal data stays masked (tokenize becomes redact for answers), while tokens
// minted for the request are still restored.
func TestGatewayPIIMasksAnswersWithoutRestoringThem(t *testing.T) {
	m := testMasker(t, config.PIIConfig{MaskAnswers: true})
	ctx := context.Background()
	sc := enforce.Scope{AgentID: "a1"}
	out, _, err := m.MaskJSON(ctx, sc, []byte(`{"q":"mail jane.doe@example.org"}`))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSuffix(strings.SplitN(string(out), "mail ", 2)[1], `"}`)
	back, sum, err := m.InboundJSON(ctx, sc, []byte(`{"a":"done for `+tok+`; also bob.smith@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(back, []byte("jane.doe@example.org")) {
		t.Errorf("the request's token was not restored: %s", back)
	}
	if bytes.Contains(back, []byte("bob.smith@")) || !bytes.Contains(back, []byte("<EMAIL_ADDRESS>")) {
		t.Errorf("the answer's own email was not masked: %s", back)
	}
	if sum.Counts["EMAIL_ADDRESS"] != 1 {
		t.Errorf("inbound summary = %v; want the answer's own email counted once", sum)
	}
}
