package pii

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzMaskJSON: no panics; the output is valid JSON when the input was; masking is
// idempotent; a card or secret seeded into any string value never survives (the
// output holds no more copies of it than the unseeded input did).
func FuzzMaskJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":"b"}`, `{"messages":[{"role":"user","content":"hi jane@ex.com"}]}`,
		`{"x":"a\u0040b.com \ud83d\ude00 \"q\""}`, `["4111 1111 1111 1111", 4111111111111111]`,
		`{"arguments":"{\"password\":\"Tr0ub4dor&3\"}"}`, `"plain"`, `{"k":"\xff\xfe"}`, `[[[[[]]]]]`,
	} {
		f.Add([]byte(s), uint8(0))
	}
	e := newTestEngine(f, Options{})
	seeds := []string{"4111 1111 1111 1111", "ghp_XIxB7KMNdAr3zqWtQqhE94qglHqOzn1D1stg", "5500-0000-0000-0004"}
	f.Fuzz(func(t *testing.T, doc []byte, pick uint8) {
		valid := json.Valid(doc)
		m, err := e.MaskJSON(ctx, Scope{}, doc)
		if err != nil {
			if valid && bytes.Count(doc, []byte("[")) < maxJSONDepth/2 {
				t.Fatalf("MaskJSON(valid %q) = %v", doc, err)
			}
			return
		}
		if !json.Valid(m.Data) {
			t.Fatalf("MaskJSON output is not JSON: %q -> %q", doc, m.Data)
		}
		again, err := e.MaskJSON(ctx, Scope{}, m.Data)
		if err != nil || !bytes.Equal(again.Data, m.Data) {
			t.Fatalf("masking is not idempotent: %q -> %q -> %q (%v)", doc, m.Data, again.Data, err)
		}
		// Seed a secret into every string value and check none survives.
		secret := seeds[int(pick)%len(seeds)]
		var v any
		if json.Unmarshal(doc, &v) != nil {
			return
		}
		seeded, _ := json.Marshal(seed(v, " "+secret+" "))
		sm, err := e.MaskJSON(ctx, Scope{}, seeded)
		if err != nil {
			t.Fatalf("MaskJSON(seeded %s) = %v", seeded, err)
		}
		// The input itself may hold the seed inside something that is not one
		// ("4111 1111 1111 11110" is no card); only the seeded copies must go.
		if bytes.Count(sm.Data, []byte(secret)) > bytes.Count(doc, []byte(secret)) {
			t.Fatalf("seeded %q survived: %s", secret, sm.Data)
		}
	})
}

func seed(v any, s string) any {
	switch x := v.(type) {
	case string:
		return x + s
	case []any:
		for i := range x {
			x[i] = seed(x[i], s)
		}
		return append(x, strings.TrimSpace(s))
	case map[string]any:
		for k := range x {
			x[k] = seed(x[k], s)
		}
		x["seeded"] = s
		return x
	}
	return s
}

// FuzzMaskText: no panics on any bytes (invalid UTF-8 included); offsets are in
// range and values are the text at them; masking is idempotent.
func FuzzMaskText(f *testing.F) {
	for _, s := range []string{"card 4111 1111 1111 1111", "+1 (415) 555-2671 x12", "a@b.co", "\xff\xfe@\x00x.com", "-----BEGIN PRIVATE KEY-----", "password: x", "::1 1.2.3.4"} {
		f.Add([]byte(s))
	}
	e := newTestEngine(f, Options{})
	f.Fuzz(func(t *testing.T, text []byte) {
		for _, fd := range e.ScanText(text) {
			if fd.Start < 0 || fd.End > len(text) || fd.Start >= fd.End || string(text[fd.Start:fd.End]) != fd.Value {
				t.Fatalf("bad finding %+v in %q", fd, text)
			}
		}
		m, err := e.MaskText(ctx, Scope{}, text)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := e.MaskText(ctx, Scope{}, m.Data)
		if !bytes.Equal(again.Data, m.Data) {
			t.Fatalf("not idempotent: %q -> %q -> %q", text, m.Data, again.Data)
		}
	})
}

func TestHugeInputs(t *testing.T) {
	e := newTestEngine(t, Options{})
	// Deep nesting is refused, not a stack overflow.
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	if _, err := e.MaskJSON(ctx, Scope{}, []byte(deep)); err == nil {
		t.Error("MaskJSON accepted 100000 levels of nesting")
	}
	// 1 MiB of digits and separators: linear, bounded work.
	big := bytes.Repeat([]byte("1 2-3.4 "), 1<<17)
	if fs := e.ScanText(big); len(fs) != 0 {
		t.Errorf("found %d things in filler", len(fs))
	}
	// One 1 MiB token, invalid UTF-8 around it.
	tok := append(append([]byte("\xff"), bytes.Repeat([]byte("A"), 1<<20)...), 0xfe)
	if _, err := e.MaskText(ctx, Scope{}, tok); err != nil {
		t.Fatal(err)
	}
}

// FuzzStreamMasker: a text streamed in chunks of any size is masked exactly as
// MaskText masks it whole, as long as no entity outgrows MaxStreamHold.
func FuzzStreamMasker(f *testing.F) {
	for _, s := range []string{
		"card 4111 1111 1111 1111 is on its way", "password is Tr0ub4dor&3 ok", "Suite 680 36 4022 Oakridge Lane",
		"Cookie: sid=Zq81vXk2LmP0aTr4; theme=dark", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
		"mail jane.roe@example.com; +44 20 7946 0958 x12",
	} {
		f.Add(s, uint8(3))
	}
	e := newTestEngine(f, Options{})
	f.Fuzz(func(t *testing.T, text string, size uint8) {
		if len(text) > 4<<10 {
			return
		}
		want, err := e.MaskText(ctx, Scope{}, []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		got := streamMask(t, e.NewStreamMasker(Scope{}), text, int(size%64)+1)
		if string(got) != string(want.Data) {
			t.Fatalf("chunks of %d: stream %q\nwhole %q\ntext %q", size%64+1, got, want.Data, text)
		}
	})
}
