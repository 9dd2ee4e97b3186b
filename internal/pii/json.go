package pii

import (
	"encoding/binary"
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// JSON support. Agent traffic is JSON, and personal data sits in string values,
// sometimes behind escapes (\u0040 for @) and sometimes in JSON held inside a string
// (tool-call arguments). The walker below validates the document in the same pass
// that finds its string values, so nothing is unmarshalled into maps: each string is
// decoded (only when it has escapes) into a reused buffer with a map from decoded to
// raw offsets, scanned as text, and rewritten only if something was found.

// ErrInvalidJSON is returned by the JSON methods for input that isn't one valid JSON
// value. Check with errors.Is.
var ErrInvalidJSON = errors.New("not valid JSON")

// maxJSONDepth bounds nesting so hostile input can't exhaust the stack.
const maxJSONDepth = 256

// jsonValue is a string or number value found by the walker.
type jsonValue struct {
	start, end int // raw span; strings include their quotes
	num        bool
	esc        bool // the string holds escapes
	key        keyHint
}

type walker struct {
	s  *scanner // nil: key hints are not wanted
	d  []byte
	p  int
	fn func(v jsonValue) error
}

// walkJSON validates d as one JSON value and calls fn for every string and number
// value (not keys), in document order. fn's error stops the walk. With hints, each
// value carries what its key says (jsonValue.key); without, the keys are only
// validated.
func (s *scanner) walkJSON(d []byte, hints bool, fn func(v jsonValue) error) error {
	w := walker{d: d, fn: fn}
	if hints {
		w.s = s
	}
	if err := w.value(keyHint{}, 0); err != nil {
		return err
	}
	w.ws()
	if w.p != len(d) {
		return ErrInvalidJSON
	}
	return nil
}

func (w *walker) ws() {
	for w.p < len(w.d) {
		switch w.d[w.p] {
		case ' ', '\t', '\n', '\r':
			w.p++
		default:
			return
		}
	}
}

func (w *walker) value(k keyHint, depth int) error {
	if depth > maxJSONDepth {
		return ErrInvalidJSON
	}
	w.ws()
	if w.p >= len(w.d) {
		return ErrInvalidJSON
	}
	switch c := w.d[w.p]; {
	case c == '{':
		return w.object(depth)
	case c == '[':
		w.p++
		w.ws()
		if w.p < len(w.d) && w.d[w.p] == ']' {
			w.p++
			return nil
		}
		for {
			if err := w.value(k, depth+1); err != nil {
				return err
			}
			w.ws()
			if w.p >= len(w.d) {
				return ErrInvalidJSON
			}
			switch w.d[w.p] {
			case ',':
				w.p++
			case ']':
				w.p++
				return nil
			default:
				return ErrInvalidJSON
			}
		}
	case c == '"':
		start := w.p
		esc, err := w.str()
		if err != nil {
			return err
		}
		return w.fn(jsonValue{start: start, end: w.p, esc: esc, key: k})
	case c == '-' || isDigit(c):
		start := w.p
		if err := w.number(); err != nil {
			return err
		}
		return w.fn(jsonValue{start: start, end: w.p, num: true, key: k})
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(w.d)-w.p >= len(lit) && string(w.d[w.p:w.p+len(lit)]) == lit {
				w.p += len(lit)
				return nil
			}
		}
		return ErrInvalidJSON
	}
}

func (w *walker) object(depth int) error {
	w.p++
	w.ws()
	if w.p < len(w.d) && w.d[w.p] == '}' {
		w.p++
		return nil
	}
	for {
		w.ws()
		if w.p >= len(w.d) || w.d[w.p] != '"' {
			return ErrInvalidJSON
		}
		ks := w.p
		if _, err := w.str(); err != nil {
			return err
		}
		var kh keyHint
		if w.s != nil {
			kh = w.s.keyHint(w.d[ks+1 : w.p-1])
		}
		w.ws()
		if w.p >= len(w.d) || w.d[w.p] != ':' {
			return ErrInvalidJSON
		}
		w.p++
		if err := w.value(kh, depth+1); err != nil {
			return err
		}
		w.ws()
		if w.p >= len(w.d) {
			return ErrInvalidJSON
		}
		switch w.d[w.p] {
		case ',':
			w.p++
		case '}':
			w.p++
			return nil
		default:
			return ErrInvalidJSON
		}
	}
}

// strStop marks the bytes that end the fast part of a string scan.
var strStop = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// strStop8 reports whether any of the eight bytes in x is a quote, a backslash or
// a control character (the bytes strStop marks), with the usual SWAR tests: a byte
// of v is zero exactly when (v-1)&^v has its top bit set, and below 0x20 when
// (v-0x20)&^v has. Borrows make the tests inexact about which byte it is, never
// about whether there is one.
func strStop8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ (ones * '"')
	b := x ^ (ones * '\\')
	return ((q-ones)&^q|(b-ones)&^b|(x-ones*0x20)&^x)&highs != 0
}

// str consumes a string at w.p (on its opening quote), validating escapes.
func (w *walker) str() (esc bool, err error) {
	d := w.d
	p := w.p + 1
	for {
		// Eight bytes at a time while none of them ends the fast part.
		for p+8 <= len(d) && !strStop8(binary.LittleEndian.Uint64(d[p:])) {
			p += 8
		}
		for p < len(d) && !strStop[d[p]] {
			p++
		}
		if p >= len(d) {
			return false, ErrInvalidJSON
		}
		switch d[p] {
		case '"':
			w.p = p + 1
			return esc, nil
		case '\\':
			esc = true
			if p+1 >= len(d) {
				return false, ErrInvalidJSON
			}
			switch d[p+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p += 2
			case 'u':
				if p+6 > len(d) || !isHex(d[p+2]) || !isHex(d[p+3]) || !isHex(d[p+4]) || !isHex(d[p+5]) {
					return false, ErrInvalidJSON
				}
				p += 6
			default:
				return false, ErrInvalidJSON
			}
		default:
			return false, ErrInvalidJSON // a raw control character
		}
	}
}

func (w *walker) number() error {
	d := w.d
	p := w.p
	if d[p] == '-' {
		p++
	}
	digits := func() int {
		s := p
		for p < len(d) && isDigit(d[p]) {
			p++
		}
		return p - s
	}
	if p < len(d) && d[p] == '0' {
		p++
	} else if digits() == 0 {
		return ErrInvalidJSON
	}
	if p < len(d) && d[p] == '.' {
		p++
		if digits() == 0 {
			return ErrInvalidJSON
		}
	}
	if p < len(d) && (d[p] == 'e' || d[p] == 'E') {
		p++
		if p < len(d) && (d[p] == '+' || d[p] == '-') {
			p++
		}
		if digits() == 0 {
			return ErrInvalidJSON
		}
	}
	w.p = p
	return nil
}

// genericKeys are key words too common to say anything about their values.
var genericKeys = map[string]bool{
	"text": true, "content": true, "value": true, "data": true, "message": true, "messages": true,
	"input": true, "output": true, "query": true, "prompt": true, "arguments": true, "args": true,
	"description": true, "body": true, "result": true, "delta": true, "parts": true, "address": true,
}

// keyCacheSize is how many key names a scanner remembers the hints of. Agent
// traffic repeats a few dozen keys (role, content, type, name...), and scanners are
// pooled, so in the steady state nearly every key is a hit.
const keyCacheSize = 64

// keyCacheEntry is one remembered key name (up to 30 bytes) and its hint.
type keyCacheEntry struct {
	n    uint8 // length of the key; 0 = empty slot
	name [30]byte
	hint keyHint
}

// keyHint is Engine.keyHint through the scanner's cache. The Engine is immutable,
// so a hint never goes stale.
func (s *scanner) keyHint(k []byte) keyHint {
	if len(k) == 0 || len(k) > len(keyCacheEntry{}.name) {
		return s.e.keyHint(k)
	}
	x := uint32(len(k))
	for _, b := range k {
		x = x*31 + uint32(b)
	}
	// Two ways per set, so two keys that hash alike don't evict each other.
	set := x % (keyCacheSize / 2) * 2
	for w := set; w < set+2; w++ {
		if c := &s.keys[w]; int(c.n) == len(k) && string(c.name[:len(k)]) == string(k) {
			return c.hint
		}
	}
	c := &s.keys[set+x/(keyCacheSize/2)%2]
	h := s.e.keyHint(k)
	c.n = uint8(copy(c.name[:], k))
	c.hint = h
	return h
}

// keyHint reads a JSON key: its words (snake_case, kebab-case and camelCase split)
// act as context words for the value, and a credential name marks the value itself.
func (e *Engine) keyHint(k []byte) keyHint {
	var h keyHint
	if len(k) == 0 || len(k) > 64 {
		return h
	}
	h.secret, h.password = isSecretName(k)
	var w [24]byte
	i := 0
	for i < len(k) {
		for i < len(k) && !isAlnum(k[i]) {
			i++
		}
		j := i
		for j < len(k) && isAlnum(k[j]) {
			if j > i && class[k[j]] == cUpper && class[k[j-1]] == cLower {
				break
			}
			j++
		}
		if j > i && j-i <= len(w) {
			for x, c := range k[i:j] {
				w[x] = lower(c)
			}
			if wi, ok := e.ctx.get(w[:j-i]); ok && !genericKeys[string(w[:j-i])] {
				h.ctx |= wi.pos
				h.neg = h.neg || wi.neg
			}
		}
		if j == i {
			j++
		}
		i = j
	}
	return h
}

// decode decodes the content of a JSON string (between its quotes) into s.dec, and
// fills s.omap so that s.omap[i] is the offset in raw of the escape or byte that
// produced decoded byte i; s.omap[len(dec)] is len(raw).
func (s *scanner) decode(raw []byte) ([]byte, []int32) {
	dec, om := s.dec[:0], s.omap[:0]
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dec = append(dec, c)
			om = append(om, int32(i))
			i++
			continue
		}
		start := i
		var r rune
		switch raw[i+1] {
		case '"':
			r = '"'
		case '\\':
			r = '\\'
		case '/':
			r = '/'
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'u':
			r = hex4(raw[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2 = hex4(raw[i+2 : i+6])
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			n := len(dec)
			dec = utf8.AppendRune(dec, r)
			for ; n < len(dec); n++ {
				om = append(om, int32(start))
			}
			continue
		}
		i += 2
		dec = append(dec, byte(r))
		om = append(om, int32(start))
	}
	om = append(om, int32(len(raw)))
	s.dec, s.omap = dec, om
	return dec, om
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// appendString appends s as a JSON string, escaping only what JSON requires
// (quote, backslash, control characters), so masked output stays close to the input.
func appendString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		// Eight bytes at a time while none needs escaping (the bytes strStop
		// marks are exactly those).
		for i+8 <= len(s) && !strStop8(binary.LittleEndian.Uint64(s[i:])) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			const hexd = "0123456789abcdef"
			dst = append(dst, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&15])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// rewriteJSON returns doc with the values that edit replaces re-encoded as JSON
// strings; every other byte is copied as it is. It is the walk that masking and
// restoring share. A string whose decoded text holds JSON is rewritten as JSON
// itself, down to maxNesting levels, and re-encoded only when something inside it
// changed; when it does not parse, it is edited as text like any other.
//
// edit gets a value's decoded text (valid only during the call) and appends its
// replacement to dst, returning nil to keep the value. With hints, values carry
// what their keys say. changed is false, and out is doc itself (not a copy), when
// nothing was replaced. Errors are ErrInvalidJSON for doc, or edit's.
func (s *scanner) rewriteJSON(doc []byte, depth int, hints bool, edit func(dst, text []byte, v jsonValue) ([]byte, error)) (out []byte, changed bool, err error) {
	last := 0
	replace := func(v jsonValue, text []byte) {
		if out == nil {
			// One allocation in the usual case: replacements are about as long
			// as what they replace.
			out = make([]byte, 0, len(doc)+len(doc)/8+64)
		}
		out = append(out, doc[last:v.start]...)
		out = appendString(out, text)
		last = v.end
	}
	err = s.walkJSON(doc, hints, func(v jsonValue) error {
		text, _, _ := s.valueText(doc, v)
		if !v.num && depth < s.e.maxNesting && nestedJSON(text) {
			// text may be the decode buffer, which the inner walk reuses.
			inner := append([]byte(nil), text...)
			got, changed, err := s.rewriteJSON(inner, depth+1, hints, edit)
			switch {
			case err == nil:
				if changed {
					replace(v, got)
				}
				return nil
			case !errors.Is(err, ErrInvalidJSON):
				return err
			}
			text = inner
		}
		repl, err := edit(s.scratch[:0], text, v)
		if err != nil || repl == nil {
			return err
		}
		replace(v, repl)
		s.scratch = repl[:0]
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if out == nil {
		return doc, false, nil
	}
	return append(out, doc[last:]...), true, nil
}

// nestedJSON reports whether decoded string content looks like a JSON object or
// array worth parsing (tool-call arguments, JSON results of MCP tools).
func nestedJSON(t []byte) bool {
	i := 0
	for i < len(t) && (t[i] == ' ' || t[i] == '\n' || t[i] == '\t' || t[i] == '\r') {
		i++
	}
	return i < len(t) && (t[i] == '{' || t[i] == '[') && len(t)-i >= 2
}
