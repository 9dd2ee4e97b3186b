package ledger

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The envelope's canonical encoding, written and read by hand: every append
// marshals one envelope and the verifier parses every leaf, and encoding/json's
// reflection was most of the verifier's time. The encoding is byte-for-byte what
// encoding/json (without HTML escaping) produces for Envelope; the tests check it
// against encoding/json, and anything the fast parser does not recognise goes to
// the encoding/json path, so both accept exactly the same leaves.

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as encoding/json does with SetEscapeHTML(false).
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendField(dst []byte, name string) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	return append(dst, '"', ':')
}

func appendStringField(dst []byte, name, v string) []byte {
	if v == "" {
		return dst
	}
	return appendJSONString(appendField(dst, name), v)
}

func appendIntMap(dst []byte, name string, m map[string]int64) []byte {
	if len(m) == 0 {
		return dst
	}
	dst = append(appendField(dst, name), '{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(appendJSONString(dst, k), ':')
		dst = strconv.AppendInt(dst, m[k], 10)
	}
	return append(dst, '}')
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendEnvelope appends the canonical encoding of env (see Envelope.Marshal).
func appendEnvelope(dst []byte, env *Envelope) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(env.V), 10)
	dst = appendJSONString(appendField(dst, "id"), env.ID)
	dst = appendJSONString(appendField(dst, "type"), env.Type)
	dst = appendJSONString(appendField(dst, "time"), env.Time)
	dst = appendStringField(dst, "actor", env.Actor)
	dst = appendStringField(dst, "agent", env.Agent)
	dst = appendStringField(dst, "system", env.System)
	dst = appendStringField(dst, "session", env.Session)
	if env.Seq != 0 {
		dst = strconv.AppendInt(appendField(dst, "seq"), env.Seq, 10)
	}
	dst = appendStringField(dst, "policy", env.Policy)
	dst = appendStringField(dst, "decision", env.Decision)
	if len(env.Rules) > 0 {
		dst = append(appendField(dst, "rules"), '[')
		for i, r := range env.Rules {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, r)
		}
		dst = append(dst, ']')
	}
	dst = appendIntMap(dst, "timings", env.Timings)
	dst = appendIntMap(dst, "counts", env.Counts)
	if len(env.Attrs) > 0 {
		dst = append(appendField(dst, "attrs"), '{')
		for i, k := range sortedKeys(env.Attrs) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(appendJSONString(dst, k), ':')
			dst = appendJSONString(dst, env.Attrs[k])
		}
		dst = append(dst, '}')
	}
	if env.Body != nil {
		dst = append(appendField(dst, "body"), `{"digest":`...)
		dst = appendJSONString(dst, env.Body.Digest)
		dst = append(dst, `,"len":`...)
		dst = strconv.AppendInt(dst, int64(env.Body.Len), 10)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// errNotFast means the fast parser does not handle this input; the caller falls
// back to encoding/json, which gives the authoritative answer.
var errNotFast = errors.New("not in the fast path")

// envParser reads the canonical envelope encoding.
type envParser struct {
	b   []byte
	i   int
	err error
}

func (p *envParser) lit(s string) bool {
	if p.err != nil {
		return false
	}
	if !bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		return false
	}
	p.i += len(s)
	return true
}

func (p *envParser) must(s string) {
	if !p.lit(s) && p.err == nil {
		p.err = errNotFast
	}
}

func (p *envParser) str() string {
	if p.err != nil {
		return ""
	}
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		p.err = errNotFast
		return ""
	}
	p.i++
	start := p.i
	// Common case: no escapes.
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			s := string(p.b[start:p.i])
			p.i++
			return s
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.i++
	}
	buf := append([]byte(nil), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(buf)
		case c < 0x20:
			p.err = errNotFast
			return ""
		case c != '\\':
			buf = append(buf, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			p.err = errNotFast
			return ""
		}
		e := p.b[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			if p.i+4 > len(p.b) {
				p.err = errNotFast
				return ""
			}
			r, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 16)
			if err != nil || utf16.IsSurrogate(rune(r)) {
				p.err = errNotFast // surrogates: leave them to encoding/json
				return ""
			}
			p.i += 4
			buf = utf8.AppendRune(buf, rune(r))
		default:
			p.err = errNotFast
			return ""
		}
	}
	p.err = errNotFast
	return ""
}

func (p *envParser) int() int64 {
	if p.err != nil {
		return 0
	}
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	n, err := strconv.ParseInt(string(p.b[start:p.i]), 10, 64)
	if err != nil {
		p.err = errNotFast
	}
	return n
}

// field reads `,"name":` if it is next.
func (p *envParser) field(name string) bool {
	if p.err != nil || p.i+len(name)+4 > len(p.b) || p.b[p.i] != ',' || p.b[p.i+1] != '"' {
		return false
	}
	if string(p.b[p.i+2:p.i+2+len(name)]) != name || p.b[p.i+2+len(name)] != '"' || p.b[p.i+3+len(name)] != ':' {
		return false
	}
	p.i += len(name) + 4
	return true
}

func (p *envParser) optString(name string) string {
	if p.field(name) {
		return p.str()
	}
	return ""
}

// object reads {"k":v,...}, calling val for each value.
func (p *envParser) object(val func(k string)) {
	p.must("{")
	if p.lit("}") {
		return
	}
	for p.err == nil {
		k := p.str()
		p.must(":")
		val(k)
		if p.lit("}") {
			return
		}
		p.must(",")
	}
}

func (p *envParser) intMap() map[string]int64 {
	m := map[string]int64{}
	p.object(func(k string) { m[k] = p.int() })
	return m
}

// parseEnvelopeFast parses the canonical encoding without reflection. It returns
// errNotFast for anything outside the form appendEnvelope writes.
func parseEnvelopeFast(data []byte) (Envelope, error) {
	p := &envParser{b: data}
	var env Envelope
	p.must(`{"v":`)
	env.V = int(p.int())
	p.must(`,"id":`)
	env.ID = p.str()
	p.must(`,"type":`)
	env.Type = p.str()
	p.must(`,"time":`)
	env.Time = p.str()
	env.Actor = p.optString("actor")
	env.Agent = p.optString("agent")
	env.System = p.optString("system")
	env.Session = p.optString("session")
	if p.field("seq") {
		env.Seq = p.int()
	}
	env.Policy = p.optString("policy")
	env.Decision = p.optString("decision")
	if p.field("rules") {
		p.must("[")
		for p.err == nil && !p.lit("]") {
			if len(env.Rules) > 0 {
				p.must(",")
			}
			env.Rules = append(env.Rules, p.str())
		}
	}
	if p.field("timings") {
		env.Timings = p.intMap()
	}
	if p.field("counts") {
		env.Counts = p.intMap()
	}
	if p.field("attrs") {
		env.Attrs = map[string]string{}
		p.object(func(k string) { env.Attrs[k] = p.str() })
	}
	if p.field("body") {
		env.Body = &BodyRef{}
		p.must(`{"digest":`)
		env.Body.Digest = p.str()
		p.must(`,"len":`)
		env.Body.Len = int(p.int())
		p.must("}")
	}
	p.must("}")
	if p.err != nil {
		return Envelope{}, p.err
	}
	if p.i != len(data) {
		return Envelope{}, errNotFast
	}
	return env, nil
}
