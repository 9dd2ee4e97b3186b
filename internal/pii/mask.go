package pii

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Masked is the result of masking a payload.
type Masked struct {
	// Data is the masked payload. When nothing was found it is the input itself
	// (not a copy).
	Data []byte
	// Summary counts the findings by type; it never holds values.
	Summary vigil.PIISummary
}

// ScanText returns the findings in plain text, with byte offsets into text.
func (e *Engine) ScanText(text []byte) []vigil.Finding {
	s := e.getScanner()
	defer e.putScanner(s)
	s.scanText(text)
	out := make([]vigil.Finding, 0, len(s.hits))
	for _, h := range s.hits {
		out = append(out, e.finding(h, text, h.start, h.end))
	}
	return out
}

// ScanJSON returns the findings in the string (and number) values of a JSON
// document, including JSON held inside strings. Start and End are offsets into doc
// (raw bytes, escapes included); Value is the decoded text. Invalid JSON gives an
// error matching ErrInvalidJSON.
func (e *Engine) ScanJSON(doc []byte) ([]vigil.Finding, error) {
	s := e.getScanner()
	defer e.putScanner(s)
	var out []vigil.Finding
	if err := e.scanJSON(s, doc, 0, nil, &out); err != nil {
		return nil, fmt.Errorf("couldn't scan JSON: %w", err)
	}
	return out, nil
}

// Scan scans doc as JSON when it is a JSON object or array, and as text otherwise.
func (e *Engine) Scan(doc []byte) []vigil.Finding {
	if looksJSON(doc) {
		if fs, err := e.ScanJSON(doc); err == nil {
			return fs
		}
	}
	return e.ScanText(doc)
}

func looksJSON(d []byte) bool {
	d = bytes.TrimLeft(d, " \t\r\n")
	return len(d) > 0 && (d[0] == '{' || d[0] == '[')
}

// offMap maps offsets of a nested document to offsets of the outermost one.
type offMap func(int) int

func (e *Engine) scanJSON(s *scanner, doc []byte, depth int, outer offMap, out *[]vigil.Finding) error {
	mapOff := func(i int) int {
		if outer == nil {
			return i
		}
		return outer(i)
	}
	return s.walkJSON(doc, true, func(v jsonValue) error {
		text, om, off := s.valueText(doc, v)
		var omc []int32
		if !v.num && depth < e.maxNesting && nestedJSON(text) {
			text = append([]byte(nil), text...)
			if om != nil {
				omc = append([]int32(nil), om...)
			}
			inner := func(i int) int {
				if omc == nil {
					return mapOff(off + i)
				}
				return mapOff(off + int(omc[i]))
			}
			if err := e.scanJSON(s, text, depth+1, inner, out); err == nil {
				return nil
			}
			om = omc
		}
		first := len(s.hits)
		s.scanValue(text, v.key)
		for _, h := range s.hits[first:] {
			a, b := off+h.start, off+h.end
			if om != nil {
				a, b = off+int(om[h.start]), off+int(om[h.end])
			}
			*out = append(*out, e.finding(h, text, mapOff(a), mapOff(b)))
		}
		s.hits = s.hits[:first]
		return nil
	})
}

// valueText returns the text of a string or number value: the raw bytes when there
// is nothing to decode, else the decoded string with its offset map; off is where
// the text's raw bytes begin in doc.
func (s *scanner) valueText(doc []byte, v jsonValue) (text []byte, om []int32, off int) {
	if v.num {
		return doc[v.start:v.end], nil, v.start
	}
	raw := doc[v.start+1 : v.end-1]
	if !v.esc {
		return raw, nil, v.start + 1
	}
	t, om := s.decode(raw)
	return t, om, v.start + 1
}

func (e *Engine) finding(h hit, text []byte, start, end int) vigil.Finding {
	rec := "custom"
	if h.ent < numBuiltin {
		rec = recognizerName[h.ent]
	}
	return vigil.Finding{
		Type:       e.names[h.ent],
		Value:      string(text[h.start:h.end]),
		Start:      start,
		End:        end,
		Score:      float64(int(h.score*100+0.5)) / 100,
		Recognizer: rec,
		Rule:       h.rule,
	}
}

// masker carries one masking call's state: the scope for tokens, the vault entries
// to write, the counts and the blocked types.
type masker struct {
	e       *Engine
	scope   Scope
	counts  map[string]int
	blocked map[string]bool
	pending []VaultEntry
	keys    []string
	seen    map[string]bool
}

func (e *Engine) newMasker(sc Scope) *masker {
	return &masker{e: e, scope: sc}
}

// MaskText masks plain text. It returns an error matching ErrBlocked when a finding's
// operator is Block, and a wrapped store error when tokens couldn't be saved; in both
// cases the payload MUST NOT be forwarded.
func (e *Engine) MaskText(ctx context.Context, scope Scope, text []byte) (Masked, error) {
	s := e.getScanner()
	defer e.putScanner(s)
	m := e.newMasker(scope)
	s.scanText(text)
	out := text
	if len(s.hits) > 0 {
		var err error
		if out, err = m.apply(nil, text, s.hits); err != nil {
			return Masked{}, err
		}
	}
	return m.finish(ctx, out)
}

// MaskJSON masks the string (and number) values of a JSON document, keeping its
// structure: a masked value is re-encoded as a JSON string, everything else is copied
// byte for byte. JSON held in strings is masked as JSON. Errors as for MaskText, plus
// ErrInvalidJSON.
func (e *Engine) MaskJSON(ctx context.Context, scope Scope, doc []byte) (Masked, error) {
	s := e.getScanner()
	defer e.putScanner(s)
	m := e.newMasker(scope)
	out, err := m.maskJSON(s, doc)
	if err != nil {
		return Masked{}, fmt.Errorf("couldn't mask JSON: %w", err)
	}
	return m.finish(ctx, out)
}

// Mask masks doc as JSON when it is a JSON object or array, and as text otherwise.
func (e *Engine) Mask(ctx context.Context, scope Scope, doc []byte) (Masked, error) {
	if looksJSON(doc) {
		m, err := e.MaskJSON(ctx, scope, doc)
		if !errors.Is(err, ErrInvalidJSON) {
			return m, err
		}
	}
	return e.MaskText(ctx, scope, doc)
}

func (m *masker) maskJSON(s *scanner, doc []byte) ([]byte, error) {
	out, _, err := s.rewriteJSON(doc, 0, true, func(dst, text []byte, v jsonValue) ([]byte, error) {
		first := len(s.hits)
		s.scanValue(text, v.key)
		if len(s.hits) == first {
			return nil, nil
		}
		defer func() { s.hits = s.hits[:first] }()
		return m.apply(dst, text, s.hits[first:])
	})
	return out, err
}

// apply appends text to dst with each hit replaced by its operator's output.
func (m *masker) apply(dst, text []byte, hits []hit) ([]byte, error) {
	last := 0
	for _, h := range hits {
		dst = append(dst, text[last:h.start]...)
		var err error
		if dst, err = m.replace(dst, h, text[h.start:h.end]); err != nil {
			return nil, err
		}
		last = h.end
	}
	return append(dst, text[last:]...), nil
}

// replace appends the replacement of one finding and records it.
func (m *masker) replace(dst []byte, h hit, v []byte) ([]byte, error) {
	e := m.e
	typ := e.names[h.ent]
	if m.counts == nil {
		m.counts = map[string]int{}
	}
	m.counts[typ]++
	switch e.operator[h.ent] {
	case Block:
		if m.blocked == nil {
			m.blocked = map[string]bool{}
		}
		m.blocked[typ] = true
		return append(dst, '<', '>'), nil
	case Mask:
		return maskValue(dst, h.ent, v), nil
	case Hash:
		mac := hmac.New(sha256.New, e.hashKey)
		mac.Write([]byte(typ))
		mac.Write([]byte{0})
		mac.Write(normalize(h.ent, v))
		var sum [32]byte
		var hx [8]byte
		hex.Encode(hx[:], mac.Sum(sum[:0])[:4])
		dst = append(append(append(dst, '<'), typ...), '_')
		return append(append(dst, hx[:]...), '>'), nil
	case Tokenize:
		id := e.tokenID(m.scope, typ, v)
		key := m.scope.AgentID + "\x00" + m.scope.SessionID + "\x00" + id
		if !m.seen[key] && !e.recent.fresh(key, e.now(), e.ttl) {
			if m.seen == nil {
				m.seen = map[string]bool{}
			}
			m.seen[key] = true
			ct, err := e.seal(m.scope, id, typ, v)
			if err != nil {
				return nil, err
			}
			m.pending = append(m.pending, VaultEntry{AgentID: m.scope.AgentID, SessionID: m.scope.SessionID, ID: id, Ciphertext: ct, ExpiresAt: e.now().Add(e.ttl)})
			m.keys = append(m.keys, key)
		}
		dst = append(append(append(dst, '<'), typ...), '_')
		return append(append(dst, id...), '>'), nil
	}
	return append(append(append(dst, '<'), typ...), '>'), nil
}

// finish refuses blocked payloads and saves pending tokens.
func (m *masker) finish(ctx context.Context, out []byte) (Masked, error) {
	if len(m.blocked) > 0 {
		return Masked{}, blocked(m.blocked)
	}
	if len(m.pending) > 0 {
		if err := m.e.vault.Put(ctx, m.pending...); err != nil {
			return Masked{}, fmt.Errorf("couldn't save PII tokens: %w", err)
		}
		m.e.recent.mark(m.keys, m.e.now())
		m.pending, m.keys = m.pending[:0], m.keys[:0]
	}
	return Masked{Data: out, Summary: vigil.PIISummary{Counts: m.counts}}, nil
}

// normalize gives the form a value is hashed in, so that the same card or phone
// written differently gets the same pseudonym.
func normalize(ent entity, v []byte) []byte {
	switch ent {
	case eCard, eSSN, eITIN, ePhone, eBank, eNHS, eAadhaar, eTFN:
		out := make([]byte, 0, len(v))
		for _, c := range v {
			if isDigit(c) || c == '+' {
				out = append(out, c)
			}
		}
		return out
	case eEmail, eIBAN, eNINO, eNIF, eFiscal, eMAC, eIP:
		out := make([]byte, 0, len(v))
		for _, c := range v {
			if c != ' ' && c != '-' || ent == eEmail || ent == eIP {
				out = append(out, lower(c))
			}
		}
		return out
	}
	return v
}

// maskValue appends the partially masked form of v: letters and digits become '*'
// except the few a person needs to recognise the value; separators stay.
func maskValue(dst []byte, ent entity, v []byte) []byte {
	switch ent {
	case eEmail:
		at := bytes.LastIndexByte(v, '@')
		for range v[:at] {
			dst = append(dst, '*')
		}
		return append(dst, v[at:]...)
	case eSecret:
		// A provider token keeps its prefix (which provider leaked is useful to
		// know); other secrets are fully starred, with a fixed length.
		k := 0
		for k < len(v) && k < 12 && (class[v[k]] == cLower || v[k] == '_' || v[k] == '-') {
			k++
		}
		if k >= 3 && k < len(v) && (v[k-1] == '_' || v[k-1] == '-') {
			dst = append(dst, v[:k]...)
		}
		return append(dst, "********"...)
	case eIP, eMAC:
		// Keep the network part: the first group.
		k := bytes.IndexAny(v, ".:-")
		if k < 0 {
			k = 0
		}
		dst = append(dst, v[:k]...)
		for _, c := range v[k:] {
			if isAlnum(c) {
				c = '*'
			}
			dst = append(dst, c)
		}
		return dst
	case eDOB, ePassport, eDriverLicense, eNINO, eNIF, eFiscal, eTFN:
		for _, c := range v {
			if isAlnum(c) {
				c = '*'
			}
			dst = append(dst, c)
		}
		return dst
	}
	// Cards, accounts, phones and the like keep their last four.
	alnum := 0
	for _, c := range v {
		if isAlnum(c) {
			alnum++
		}
	}
	keep := 4
	if alnum < 10 {
		keep = 2
	}
	for _, c := range v {
		if isAlnum(c) {
			if alnum > keep {
				c = '*'
			}
			alnum--
		}
		dst = append(dst, c)
	}
	return dst
}
