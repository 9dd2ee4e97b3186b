package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/keyring"
	"github.com/vigil-gateway/vigil/internal/store/sqlite"
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
