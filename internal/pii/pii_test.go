package pii

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var ctx = context.Background()

func TestScanJSONMapsOffsetsToRawBytes(t *testing.T) {
	e := newTestEngine(t, Options{})
	doc := `{"messages":[{"role":"user","content":"mail a\u0040b.com or ca\u0072d 4111111111111111"}],` +
		`"tool_calls":[{"function":{"arguments":"{\"to\":\"x@y.org\",\"note\":\"IBAN GB82WEST12345698765432\"}"}}],"n":4111111111111111}`
	fs, err := e.ScanJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	type got struct{ Type, Value, Raw string }
	var gs []got
	for _, f := range fs {
		gs = append(gs, got{f.Type, f.Value, doc[f.Start:f.End]})
	}
	want := []got{
		{EmailAddress, "a@b.com", `a\u0040b.com`},
		{CreditCard, "4111111111111111", "4111111111111111"},
		{EmailAddress, "x@y.org", "x@y.org"},
		{IBANCode, "GB82WEST12345698765432", "GB82WEST12345698765432"},
		{CreditCard, "4111111111111111", "4111111111111111"},
	}
	if diff := cmp.Diff(want, gs); diff != "" {
		t.Errorf("ScanJSON findings (-want +got):\n%s", diff)
	}
	if _, err := e.ScanJSON([]byte(`{"a":`)); !errors.Is(err, ErrInvalidJSON) {
		t.Errorf("ScanJSON(truncated) = %v, want ErrInvalidJSON", err)
	}
}

func TestKeyNamesHint(t *testing.T) {
	e := newTestEngine(t, Options{})
	for _, tc := range []struct {
		doc  string
		want []string // type:value
	}{
		{`{"password":"Tr0ub4dor&3"}`, []string{"SECRET:Tr0ub4dor&3"}},
		{`{"headers":{"Authorization":"Bearer 9fK2mQ7xLp3Rt8Vw"}}`, []string{"SECRET:9fK2mQ7xLp3Rt8Vw"}},
		{`{"ssn":"460899847"}`, []string{"US_SSN:460899847"}},
		{`{"phone":"4155552671"}`, []string{"PHONE_NUMBER:4155552671"}},
		{`{"order_id":"4155552671"}`, nil},
		{`{"password":"${DB_PASSWORD}"}`, nil},
		{`{"max_tokens":"123456789012"}`, nil},
	} {
		fs, err := e.ScanJSON([]byte(tc.doc))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range fs {
			got = append(got, f.Type+":"+f.Value)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ScanJSON(%s) (-want +got):\n%s", tc.doc, diff)
		}
	}
}

func TestOperators(t *testing.T) {
	in := "mail jane.roe@example.com, card 4111-1111-1111-1111, key ghp_XIxB7KMNdAr3zqWtQqhE94qglHqOzn1D1stg"
	for _, tc := range []struct {
		op   Operator
		want string
	}{
		{Redact, "mail <EMAIL_ADDRESS>, card <CREDIT_CARD>, key <SECRET>"},
		{Mask, "mail ********@example.com, card ****-****-****-1111, key ghp_********"},
		{Hash, "mail <EMAIL_ADDRESS_"},
	} {
		e := newTestEngine(t, Options{Operator: tc.op, HashKey: []byte("0123456789abcdef")})
		m, err := e.MaskText(ctx, Scope{}, []byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(m.Data), tc.want) {
			t.Errorf("%s: MaskText = %q, want %q", tc.op, m.Data, tc.want)
		}
		if diff := cmp.Diff(map[string]int{EmailAddress: 1, CreditCard: 1, Secret: 1}, m.Summary.Counts); diff != "" {
			t.Errorf("%s: summary (-want +got):\n%s", tc.op, diff)
		}
	}
}

func TestHashIsStableAndKeyed(t *testing.T) {
	k1 := newTestEngine(t, Options{Operator: Hash, HashKey: []byte("0123456789abcdef")})
	k2 := newTestEngine(t, Options{Operator: Hash, HashKey: []byte("fedcba9876543210")})
	a, _ := k1.MaskText(ctx, Scope{}, []byte("card 4111 1111 1111 1111"))
	b, _ := k1.MaskText(ctx, Scope{AgentID: "other"}, []byte("card 4111-1111-1111-1111"))
	c, _ := k2.MaskText(ctx, Scope{}, []byte("card 4111 1111 1111 1111"))
	if string(a.Data) != string(b.Data) {
		t.Errorf("same card, same key: %q != %q", a.Data, b.Data)
	}
	if string(a.Data) == string(c.Data) {
		t.Errorf("different keys gave the same pseudonym %q", a.Data)
	}
	if len(a.Data) != len("card <CREDIT_CARD_12345678>") {
		t.Errorf("pseudonym %q is not <TYPE_8hex>", a.Data)
	}
}

func TestBlock(t *testing.T) {
	e := newTestEngine(t, Options{Operators: map[string]Operator{CreditCard: Block}})
	_, err := e.MaskText(ctx, Scope{}, []byte("card 4111 1111 1111 1111"))
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("MaskText = %v, want ErrBlocked", err)
	}
	if vigil.ErrorCode(err) != vigil.EDENIED || strings.Contains(err.Error(), "4111") || !strings.Contains(vigil.ErrorMessage(err), CreditCard) {
		t.Errorf("blocked error = %v (%s); want policy_denied naming the type, not the value", err, vigil.ErrorCode(err))
	}
	if m, err := e.MaskText(ctx, Scope{}, []byte("mail a@b.com")); err != nil || string(m.Data) != "mail <EMAIL_ADDRESS>" {
		t.Errorf("other types still masked: %q, %v", m.Data, err)
	}
}

func TestMaskJSONKeepsStructure(t *testing.T) {
	e := newTestEngine(t, Options{})
	doc := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"I am jane@ex.com \"quoted\" \u00e9"}],` +
		`"tools":[{"function":{"arguments":"{\"card\":\"4111111111111111\",\"n\":1}"}}],"x":4111111111111111,"ok":true}`)
	m, err := e.MaskJSON(ctx, Scope{}, doc)
	if err != nil {
		t.Fatal(err)
	}
	var got any
	if err := json.Unmarshal(m.Data, &got); err != nil {
		t.Fatalf("masked output is not JSON: %v\n%s", err, m.Data)
	}
	want := map[string]any{
		"model":    "gpt-4o",
		"messages": []any{map[string]any{"role": "user", "content": `I am <EMAIL_ADDRESS> "quoted" é`}},
		"tools":    []any{map[string]any{"function": map[string]any{"arguments": `{"card":"<CREDIT_CARD>","n":1}`}}},
		"x":        "<CREDIT_CARD>",
		"ok":       true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("MaskJSON (-want +got):\n%s", diff)
	}
	clean := []byte(`{"a":"nothing here","b":[1,2,3]}`)
	if m, _ := e.MaskJSON(ctx, Scope{}, clean); &m.Data[0] != &clean[0] {
		t.Error("MaskJSON copied a document with nothing to mask")
	}
}

func TestTokenizeAndRestore(t *testing.T) {
	v := &memVault{}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := newTestEngine(t, Options{Operator: Tokenize, Vault: v, VaultKey: testKey, VaultTTL: time.Hour, Now: func() time.Time { return now }})
	sc := Scope{AgentID: "a1", SessionID: "s1"}
	in := []byte(`{"messages":[{"role":"user","content":"email jane@ex.com twice: jane@ex.com, password: \"Tr0ub4dor&3\""}]}`)
	m, err := e.MaskJSON(ctx, sc, in)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(m.Data, []byte("jane@ex.com")) || bytes.Contains(m.Data, []byte("Tr0ub4dor")) {
		t.Fatalf("values left in %s", m.Data)
	}
	toks := tokenRe(m.Data)
	if len(toks) != 3 || toks[0] != toks[1] {
		t.Fatalf("tokens %q: want the same token for the same value", toks)
	}
	for _, e := range v.m {
		if bytes.Contains(e.Ciphertext, []byte("jane")) {
			t.Fatal("vault holds plaintext")
		}
	}
	// The model answers with the tokens, inside JSON with a quote in the value.
	answer := []byte(`{"choices":[{"message":{"content":"I wrote to ` + toks[0] + ` with ` + toks[2] + `; fake <EMAIL_ADDRESS_aaaaaaaaaaaa>"}}]}`)
	got, n, err := e.RestoreJSON(ctx, sc, answer)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Choices []struct{ Message struct{ Content string } }
	}
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatalf("restored JSON invalid: %v: %s", err, got)
	}
	if want := `I wrote to jane@ex.com with Tr0ub4dor&3; fake <EMAIL_ADDRESS_aaaaaaaaaaaa>`; doc.Choices[0].Message.Content != want || n != 2 {
		t.Errorf("RestoreJSON content = %q (%d), want %q (2)", doc.Choices[0].Message.Content, n, want)
	}
	// Another session, or after expiry, gets nothing back.
	if out, n, _ := e.Restore(ctx, Scope{AgentID: "a1", SessionID: "s2"}, []byte(toks[0])); n != 0 || string(out) != toks[0] {
		t.Errorf("Restore in another session = %q, %d", out, n)
	}
	now = now.Add(2 * time.Hour)
	if _, n, _ := e.Restore(ctx, sc, []byte(toks[0])); n != 0 {
		t.Error("Restore after the TTL restored a token")
	}
	// Writes are batched: one Put for the whole document.
	if v.puts != 1 {
		t.Errorf("vault Put called %d times, want 1", v.puts)
	}
}

func tokenRe(b []byte) []string {
	var out []string
	for i := 0; i < len(b); i++ {
		if end, _, _ := parseToken(b[i:]); end > 0 {
			out = append(out, string(b[i:i+end]))
			i += end - 1
		}
	}
	return out
}

func TestStreamMaskerCatchesSplitEntities(t *testing.T) {
	e := newTestEngine(t, Options{})
	text := "Call me at +1 415-555-2671 or mail jane.roe@example.com; card 4111 1111 1111 1111. Key ghp_XIxB7KMNdAr3zqWtQqhE94qglHqOzn1D1stg done."
	want, _ := e.MaskText(ctx, Scope{}, []byte(text))
	for _, size := range []int{1, 2, 3, 5, 7, 13, 64} {
		sm := e.NewStreamMasker(Scope{})
		if out := streamMask(t, sm, text, size); string(out) != string(want.Data) {
			t.Errorf("chunks of %d: got %q\nwant %q", size, out, want.Data)
		}
		if diff := cmp.Diff(want.Summary, sm.Summary()); diff != "" {
			t.Errorf("chunks of %d: summary (-want +got):\n%s", size, diff)
		}
	}
}

func TestStreamMaskerDoesNotStall(t *testing.T) {
	e := newTestEngine(t, Options{})
	sm := e.NewStreamMasker(Scope{})
	out, _ := sm.Write(ctx, []byte("Hello there, how are you "))
	if string(out) != "Hello there, how are you " {
		t.Errorf("prose held back: emitted %q", out)
	}
	big := bytes.Repeat([]byte("x"), DefaultMaxStreamHold+10)
	out, _ = sm.Write(ctx, big)
	if len(out) < DefaultMaxStreamHold {
		t.Errorf("a long token was held back past MaxStreamHold: emitted %d bytes", len(out))
	}
}

func TestStreamRestorer(t *testing.T) {
	v := &memVault{}
	e := newTestEngine(t, Options{Operator: Tokenize, Vault: v, VaultKey: testKey})
	sc := Scope{AgentID: "a", SessionID: "s"}
	m, err := e.MaskText(ctx, sc, []byte("jane@ex.com"))
	if err != nil {
		t.Fatal(err)
	}
	answer := "Sure, I emailed " + string(m.Data) + " and <b>done</b> <EMAIL_ADDRESS_zzzzzzzzzzzz>."
	for _, size := range []int{1, 4, 9, 100} {
		sr := e.NewStreamRestorer(sc)
		var out []byte
		for i := 0; i < len(answer); i += size {
			c, err := sr.Write(ctx, []byte(answer[i:min(len(answer), i+size)]))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, c...)
		}
		rest, _ := sr.Flush(ctx)
		out = append(out, rest...)
		if want := "Sure, I emailed jane@ex.com and <b>done</b> <EMAIL_ADDRESS_zzzzzzzzzzzz>."; string(out) != want || sr.Restored() != 1 {
			t.Errorf("chunks of %d: %q (%d restored), want %q", size, out, sr.Restored(), want)
		}
	}
}

func TestAllowListsAndCustom(t *testing.T) {
	e := newTestEngine(t, Options{
		AllowValues:   []string{"Support@Example.com"},
		AllowPatterns: []string{`.*@internal\.example\.org`},
		Custom:        []CustomRecognizer{{Name: "EMPLOYEE_ID", Pattern: `EMP-\d{6}`, Context: []string{"employee"}, Score: 0.3}},
	})
	got := e.ScanText([]byte("EMP-654321 was seen. support@example.com, ops@internal.example.org, jane@ex.com, our employee EMP-123456"))
	var types []string
	for _, f := range got {
		types = append(types, f.Type+":"+f.Value)
	}
	want := []string{"EMAIL_ADDRESS:jane@ex.com", "EMPLOYEE_ID:EMP-123456"} // EMP-654321 lacks context
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"bad operator", Options{Operator: "shred"}},
		{"unknown entity", Options{Entities: map[string]bool{"NAME": true}}},
		{"threshold", Options{Threshold: 2}},
		{"hash without key", Options{Operator: Hash}},
		{"tokenize without vault", Options{Operator: Tokenize, VaultKey: testKey}},
		{"short vault key", Options{Operator: Tokenize, Vault: &memVault{}, VaultKey: []byte("short")}},
		{"bad region", Options{PhoneRegions: []string{"XX"}}},
		{"bad allow pattern", Options{AllowPatterns: []string{"("}}},
		{"custom clash", Options{Custom: []CustomRecognizer{{Name: "US_SSN", Pattern: "x"}}}},
		{"custom empty match", Options{Custom: []CustomRecognizer{{Name: "X_ID", Pattern: "a*"}}}},
	} {
		if _, err := New(tc.o); err == nil {
			t.Errorf("%s: New accepted %+v", tc.name, tc.o)
		}
	}
	e := newTestEngine(t, Options{Entities: map[string]bool{EmailAddress: false}})
	if fs := e.ScanText([]byte("jane@ex.com")); len(fs) != 0 {
		t.Errorf("disabled type still reported: %v", fs)
	}
}

// TestStreamMaskerMatchesMaskText feeds every committed accuracy case, and texts
// that put keyword assignments and spaced numbers at chunk edges, through a
// StreamMasker in chunks of many sizes: the masked stream must equal MaskText of
// the whole text.
func TestStreamMaskerMatchesMaskText(t *testing.T) {
	b, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct{ Text string }
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	texts := []string{
		"Your refund to card 4111 1111 1111 1111 is on its way; write to help@example.com with questions. ",
		"the password is Tr0ub4dor&3 and the token = 9fK2mQ7xLp3Rt8Vw2Zq, then Authorization: Bearer mF_9.B5f-4.1JqM done",
		`config {"password": "Tr0ub4dor&3", "api_key": "9fK2mQ7xLp3Rt8Vw2Zq"} X-API-Key: 9fK2mQ7xLp3Rt8Vw2Zq end`,
		"IBAN GB82 WEST 1234 5698 7654 32 and phone +44 20 7946 0958 and NINO AB 12 34 56 C, numbers 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18",
		strings.Repeat("Lorem ipsum dolor sit amet, ", 10) + "my SSN is 460-89-9847. " + strings.Repeat("x", 300) + " mail jane@ex.com",
		"write to 0496 46 46 70 (mobile) or 5130634 license, not 17031 2202 Rissik St",
	}
	for _, c := range cases {
		texts = append(texts, c.Text, "Before it: "+c.Text+" and after.")
	}
	e := newTestEngine(t, Options{})
	for _, text := range texts {
		want, err := e.MaskText(ctx, Scope{}, []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 31, 64, 1000} {
			if out := streamMask(t, e.NewStreamMasker(Scope{}), text, size); string(out) != string(want.Data) {
				t.Errorf("chunks of %d:\n got %q\nwant %q", size, out, want.Data)
			}
		}
	}
}

// streamMask passes text through sm in chunks of size bytes and returns all it sent.
func streamMask(t testing.TB, sm *StreamMasker, text string, size int) []byte {
	t.Helper()
	var out []byte
	for i := 0; i < len(text); i += size {
		chunk, err := sm.Write(ctx, []byte(text[i:min(len(text), i+size)]))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, chunk...)
	}
	rest, err := sm.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return append(out, rest...)
}
