package pii

import (
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// strStop8 must agree with the byte table on every block: any byte of any value
// at any position, and random blocks.
func TestStrStop8MatchesTable(t *testing.T) {
	check := func(b [8]byte) {
		want := false
		for _, c := range b {
			want = want || strStop[c]
		}
		if got := strStop8(binary.LittleEndian.Uint64(b[:])); got != want {
			t.Fatalf("strStop8(%q) = %v, want %v", b, got, want)
		}
	}
	for _, fill := range []byte{'a', 0x7f, 0x80, 0xff, ' ', '!'} {
		for pos := 0; pos < 8; pos++ {
			for c := 0; c < 256; c++ {
				var b [8]byte
				for i := range b {
					b[i] = fill
				}
				b[pos] = byte(c)
				check(b)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], r.Uint64())
		check(b)
	}
}

// The suffix filter must pass every keyword in any case, so isSecretName never
// misses a name it recognised before the filter.
func TestSecretSuffixPassesKeywords(t *testing.T) {
	for _, k := range secretKeywords {
		for _, w := range []string{k, "DB_" + k, "x" + upperString(k)} {
			if !secretSuffix.has([]byte(w), len(w)) {
				t.Errorf("suffix filter rejects %q", w)
			}
		}
	}
}

func upperString(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = upper(c)
	}
	return string(b)
}

// appendString must produce a JSON string that decodes back to its input, for
// every byte that needs escaping at every position of an eight-byte block.
func TestAppendStringRoundTrips(t *testing.T) {
	for n := 0; n < 20; n++ {
		for pos := 0; pos < n; pos++ {
			for _, c := range []byte{0, 1, '\n', 0x1f, '"', '\\', ' ', 'a', 0x7f} {
				b := []byte(strings.Repeat("x", n))
				b[pos] = c
				var got string
				if err := json.Unmarshal(appendString(nil, b), &got); err != nil || got != string(b) {
					t.Fatalf("appendString(%q) = %s, decodes to %q (%v)", b, appendString(nil, b), got, err)
				}
			}
		}
	}
}
