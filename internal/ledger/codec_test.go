package ledger

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// marshalJSON is the reference encoding: encoding/json without HTML escaping.
func marshalJSON(t testing.TB, env Envelope) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(env); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

var trickyStrings = []string{"", "plain", `quote " and \ backslash`, "ctl \x00\x01\x1f\x7f \b\f\n\r\t", "<html> & 'x'",
	"ünïcødé ✓ 𝄞", "\u2028\u2029", "bad utf8 \xff\xfe end", "/slash/", "emoji 😀", "\xed\xa0\x80 surrogate bytes"}

func randomEnvelope(r *rand.Rand) Envelope {
	s := func() string { return trickyStrings[r.IntN(len(trickyStrings))] }
	env := Envelope{V: EnvelopeVersion, ID: "id-" + s(), Type: "a.b", Time: "2026-11-27T00:00:00.123456789Z"}
	if r.IntN(2) == 0 {
		env.Actor, env.Agent, env.System, env.Session = s(), s(), s(), s()
	}
	if r.IntN(2) == 0 {
		env.Seq = r.Int64N(1<<40) - 5
	}
	if r.IntN(2) == 0 {
		env.Policy, env.Decision = s(), s()
		for range r.IntN(3) {
			env.Rules = append(env.Rules, s())
		}
	}
	if r.IntN(2) == 0 {
		env.Timings, env.Counts, env.Attrs = map[string]int64{}, map[string]int64{}, map[string]string{}
		for range r.IntN(4) {
			env.Timings[s()] = r.Int64()
			env.Counts[s()] = -r.Int64N(100)
			env.Attrs[s()] = s()
		}
	}
	if r.IntN(2) == 0 {
		env.Body = &BodyRef{Digest: s(), Len: r.IntN(1 << 20)}
	}
	return env
}

func TestCodecMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		env := randomEnvelope(r)
		want := marshalJSON(t, env)
		got, _ := env.Marshal()
		if !bytes.Equal(got, want) {
			t.Fatalf("envelope %d:\n got %s\nwant %s", i, got, want)
		}
		fast, fastErr := ParseEnvelope(want)
		slow, slowErr := parseEnvelopeJSON(want)
		if (fastErr == nil) != (slowErr == nil) {
			t.Fatalf("envelope %d %s: fast path error %v, encoding/json error %v", i, want, fastErr, slowErr)
		}
		if diff := cmp.Diff(slow, fast); diff != "" {
			t.Fatalf("envelope %d parsed differently (-json +fast):\n%s", i, diff)
		}
		// Mutations: whatever the fast path decides must be what encoding/json
		// decides.
		for range 20 {
			m := bytes.Clone(want)
			switch r.IntN(3) {
			case 0:
				m[r.IntN(len(m))] ^= byte(1 << r.IntN(8))
			case 1:
				j := r.IntN(len(m))
				m = append(m[:j], m[j+1:]...)
			case 2:
				j := r.IntN(len(m))
				m = append(m[:j], append([]byte{` "\,{}0a`[r.IntN(8)]}, m[j:]...)...)
			}
			checkSameVerdict(t, m)
		}
	}
}

func checkSameVerdict(t *testing.T, data []byte) {
	t.Helper()
	fast, fastErr := ParseEnvelope(data)
	slow, slowErr := parseEnvelopeJSON(data)
	if (fastErr == nil) != (slowErr == nil) {
		t.Fatalf("%q: ParseEnvelope error %v, encoding/json error %v", data, fastErr, slowErr)
	}
	if diff := cmp.Diff(slow, fast); diff != "" {
		t.Fatalf("%q parsed differently (-json +fast):\n%s", data, diff)
	}
}

func FuzzParseEnvelope(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		f.Add(marshalJSON(f, randomEnvelope(r)))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkSameVerdict(t, data) })
}

func TestValidTypeMatchesPattern(t *testing.T) {
	for _, s := range []string{"", "a", "a.b", "tool.call", "a1_b.c2", "1a", "a..b", ".a", "a.", "A", "a.B", "a_", "_a", "a.1", "a-b", "ledger.erasure", "a.b.c.d"} {
		if got, want := validType(s), typePattern.MatchString(s); got != want {
			t.Errorf("validType(%q) = %v, the pattern says %v", s, got, want)
		}
	}
}

func TestDigesterMatchesBodyDigest(t *testing.T) {
	d := newDigester()
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 500 {
		salt := make([]byte, []int{0, 1, 32, 63, 64, 65, 100}[i%7])
		body := make([]byte, r.IntN(3000))
		for j := range salt {
			salt[j] = byte(r.Uint32())
		}
		for j := range body {
			body[j] = byte(r.Uint32())
		}
		want := BodyDigest(salt, body)
		if !d.matches(salt, body, want) {
			t.Fatalf("digester disagrees with BodyDigest for salt %d bytes, body %d bytes", len(salt), len(body))
		}
		if d.matches(salt, append(body, 0), want) {
			t.Fatal("digester matched a different body")
		}
	}
}
