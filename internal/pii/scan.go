package pii

import (
	"bytes"
	"cmp"
	"slices"
)

// Byte classes for the single pass over the text.
const (
	cDigit byte = 1 << iota
	cUpper
	cLower
	cUnder   // '_'
	cSpecial // only in scanClass
	cWord    = cDigit | cUpper | cLower | cUnder
)

var class = func() (t [256]byte) {
	for c := '0'; c <= '9'; c++ {
		t[c] = cDigit
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = cUpper
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = cLower
	}
	t['_'] = cUnder
	return t
}()

// scanClass is class plus cSpecial on the non-word bytes that can start a
// candidate (@ + ( -), so the hot loop decides with one lookup per byte.
var scanClass = func() (t [256]byte) {
	t = class
	for _, c := range []byte("@+(-") {
		t[c] = cSpecial
	}
	return t
}()

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool { return class[c]&(cDigit|cUpper|cLower) != 0 }
func isWord(c byte) bool  { return class[c] != 0 }
func isHex(c byte) bool {
	return isDigit(c) || (c|0x20) >= 'a' && (c|0x20) <= 'f'
}
func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 32
	}
	return c
}
func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 32
	}
	return c
}

// hit is a candidate that passed its recognizer, in offsets of the scanned text.
type hit struct {
	start, end int
	ent        entity
	score      float64
	rule       string
}

// scanner holds the state of one scan. Scanners are pooled by the Engine so that a
// scan allocates nothing in the steady state; a scanner is used by one goroutine.
type scanner struct {
	e    *Engine
	t    []byte
	key  keyHint
	hits []hit
	tmp  [64]byte // digits of the candidate in hand
	// JSON decoding buffers, reused across string values.
	dec   []byte
	omap  []int32
	first int // index in hits of this scan's first finding
	// ctx0 is the index in hits of the first finding that counts as context: first,
	// or 0 for a stream whose hits start with those already sent (scanFrom).
	ctx0 int
	// scratch holds one masked or restored value until it is copied into the
	// rewritten document.
	scratch []byte
	keys    [keyCacheSize]keyCacheEntry // remembered key hints
}

// keyHint is what the JSON key holding a string says about its value.
type keyHint struct {
	ctx      uint64 // entity bits whose context words appear in the key
	neg      bool   // the key names an identifier (order_id, version)
	secret   bool   // the key names a credential (password, api_key, authorization...)
	password bool   // ... and that credential is a password
}

func (e *Engine) getScanner() *scanner {
	s := e.pool.Get().(*scanner)
	s.hits = s.hits[:0]
	s.key = keyHint{}
	return s
}

func (e *Engine) putScanner(s *scanner) {
	if cap(s.hits) > 4096 || cap(s.dec) > 1<<20 || cap(s.scratch) > 1<<20 {
		return // don't keep huge buffers alive
	}
	s.t = nil
	e.pool.Put(s)
}

// scanText finds candidates in t (decoded text) and appends validated, resolved
// hits to s.hits, sorted by start and non-overlapping.
func (s *scanner) scanText(t []byte) { s.scanValue(t, keyHint{}) }

// scanValue is scanText for a JSON value whose key says k.
//
// This is the hot loop: it looks at each byte once through a class table. Lower-case
// words followed by a space, which are most of prose, cost a few table lookups; only
// digits, upper-case or mixed words, and the bytes @ + ( - start candidate checks.
func (s *scanner) scanValue(t []byte, k keyHint) {
	first := len(s.hits)
	s.first = first
	s.t = t
	s.key = k
	if k.secret {
		s.keyedValue(t, k.password)
	}
	s.scan(t, 0, first, first)
}

// scanFrom scans text t from offset from on; the bytes before from are context
// only (a stream's lookbehind): their words count as context, but no candidate
// starts there. The hits already in s.hits are those masked in that context; they
// count as one word each, as their masking output will (idempotence, and the same
// findings in a stream as in the whole text).
func (s *scanner) scanFrom(t []byte, from int) {
	s.t = t
	s.key = keyHint{}
	s.scan(t, from, len(s.hits), 0)
}

// scan is the loop of scanValue and scanFrom; the hits from first on are resolved
// together, those from ctx0 on are context.
func (s *scanner) scan(t []byte, from, first, ctx0 int) {
	s.first, s.ctx0 = first, ctx0
	n := len(t)
	for i := from; i < n; {
		k := scanClass[t[i]]
		if k&cWord == 0 {
			if k != 0 {
				i = s.special(i)
			} else {
				i++
			}
			continue
		}
		// A word: [A-Za-z0-9_]+. f is the OR of the classes of its bytes after the
		// first.
		j := i + 1
		var f byte
		for j < len(t) {
			k2 := class[t[j]]
			if k2 == 0 {
				break
			}
			f |= k2
			j++
		}
		// A capitalised word (The, Reach) is plain like a lower-case one: no
		// provider prefix, IBAN, NINO or hex group starts with one capital and
		// lower-case letters only (two letters may open a spaced NINO, "Ab 12 34
		// 56 C", as before). So is a word that ends a sentence ("ring. "),
		// where a dot joined to more letters would be an address or a host.
		plain := (k == cLower || k == cUpper && j-i != 2) && f&^cLower == 0 &&
			(j == n || plainAfter[t[j]] || t[j] == '.' && (j+1 == n || class[t[j+1]] == 0))
		f |= k
		switch {
		case f == cDigit:
			// A number right after a finding's end and a dot starts afresh, as it
			// would once the finding is masked (idempotence).
			if i > 0 && continuesToken(t, i) && !s.anyHitEndsAt(i-1) {
				i = j
				continue
			}
			if end := s.numeric(i, j); end > j {
				j = end
			}
		case plain:
			// Plain word, most of prose: nothing starts here unless it is a secret
			// keyword followed by an assignment after a space ("password is x",
			// "Token = x") or an auth scheme ("Bearer x"). Both are ruled out by a
			// table lookup or two for almost every word. The space after it
			// starts nothing either.
			if j < n && t[j] == ' ' {
				if j-i >= 3 && j-i <= 24 {
					if secretSuffix.has(t, j) {
						s.keywordSecret(i, j)
					}
					if (j-i == 6 || j-i == 5) && t[i]|0x20 == 'b' && (t[i+1] == 'e' || t[i+1] == 'a' || t[i+1] == 'E' || t[i+1] == 'A') {
						s.authScheme(i, j)
					}
				}
				j++
			}
		default:
			if end := s.word(i, j, f); end > j {
				j = end
			}
		}
		i = j
	}
	for _, cr := range s.e.custom {
		cr.scan(s, t, from)
	}
	s.resolve(first)
}

// plainAfter marks the bytes after which a lower-case word is plain prose: not the
// start of a dashed or dotted token (e-mail, host names), a key (password:, x=) or a
// quoted name.
var plainAfter = func() (t [256]bool) {
	for c := range t {
		t[c] = class[c] == 0
	}
	for _, c := range []byte("-.:=\"'") {
		t[c] = false
	}
	return t
}()

// continuesToken reports whether the digit word at i continues a token that began
// before it (1.2.3 after v, a-123 ids, decimals), so it isn't a number of its own.
func continuesToken(t []byte, i int) bool {
	p := t[i-1]
	if p == ':' {
		// 12:30, and after a run of colons too (1::0300, a failed IPv6 candidate
		// whose parts are not numbers of their own).
		k := i - 1
		for k > 0 && t[k-1] == ':' {
			k--
		}
		return k >= 1 && isWord(t[k-1])
	}
	if p == '.' || p == '-' || p == '/' || p == ',' {
		return i >= 2 && isWord(t[i-2])
	}
	return p == '#' && i >= 2 && isWord(t[i-2])
}

// special handles a candidate starting at a non-word byte; it returns where to go on.
func (s *scanner) special(i int) int {
	t := s.t
	switch t[i] {
	case '@':
		s.email(i)
	case '+', '(':
		// After a word a + or ( doesn't open a number, but after a finding it
		// does, as it will once the finding is masked (idempotence).
		if i+1 < len(t) && isDigit(t[i+1]) && (i == 0 || !isWord(t[i-1]) || s.hitEndsAt(i)) {
			if end := s.numeric(i, i+1); end > i+1 {
				return end
			}
		}
	case '-':
		if bytes.HasPrefix(t[i:], pemBegin) {
			if end := s.pem(i); end > i {
				return end
			}
		}
	}
	return i + 1
}

// hitEndsAt reports whether the last finding so far (of this scan or its context)
// ends at i.
func (s *scanner) hitEndsAt(i int) bool {
	return len(s.hits) > s.ctx0 && s.hits[len(s.hits)-1].end == i
}

// add scores a candidate and keeps it when the type is on and the score reaches the
// type's threshold. base is the shape score; ctx asks for the context check.
func (s *scanner) add(ent entity, start, end int, base float64, rule string) {
	e := s.e
	if e.enabled&(1<<ent) == 0 || start >= end {
		return
	}
	score := base
	if score < 1 {
		if pos, _ := s.context(start, end); pos&(1<<ent) != 0 {
			score += contextBoost
			if score > 1 {
				score = 1
			}
		}
	}
	if score < e.threshold[ent] {
		return
	}
	s.hits = append(s.hits, hit{start: start, end: end, ent: ent, score: score, rule: rule})
}

// hasContext reports whether a context word for ent is near [start, end).
func (s *scanner) hasContext(ent entity, start, end int) bool {
	pos, _ := s.context(start, end)
	return pos&(1<<ent) != 0
}

// context looks at up to five whole words before start and two after end (within
// a short window, on the same line or the one before), and at the JSON key holding
// the text. It returns the entity bits whose context words it saw and whether one of
// the two words right before is a negative word (order, version...).
func (s *scanner) context(start, end int) (pos uint64, neg bool) {
	t := s.t
	pos, neg = s.key.ctx, s.key.neg
	var w [24]byte
	// Words before.
	i := start
	lo := max(0, start-80)
	for n := 0; n < 5 && i > lo; n++ {
		masked := false
		for i > lo && !isWordish(t[i-1]) {
			// Masking output (<PHONE_NUMBER>) and markup are not context, but
			// masking output counts as the one word it replaced.
			if t[i-1] == '>' {
				from := max(0, i-1-maxTokenLen) // the whole token, even past lo
				if k := bytes.LastIndexByte(t[from:i-1], '<'); k >= 0 && bytes.IndexByte(t[from+k:i-1], '>') < 0 {
					i = from + k
					if masked = maskShaped(t[i:]); masked {
						break
					}
					continue
				}
			}
			// A sentence boundary ends the context.
			if c := t[i-1]; c == ';' || c == '?' || c == '!' || c == '.' && i < start && t[i] == ' ' {
				i = lo
				break
			}
			i--
		}
		if masked {
			continue
		}
		// A finding before the candidate counts as one word, as it will once it
		// is masked, so masking its output finds the same (idempotence).
		if h := s.hitEndingAt(i); h >= 0 {
			i = h
			continue
		}
		j := i
		for i > lo && isWordish(t[i-1]) {
			i--
		}
		if j == i {
			break
		}
		if wi, ok := s.lookupWord(t[i:j], &w); ok {
			pos |= wi.pos
			if n < 2 && wi.neg {
				neg = true
			}
		}
	}
	// Words after.
	i = end
	hi := min(len(t), end+32)
	for n := 0; n < 2 && i < hi; n++ {
		masked := false
		for i < hi && !isWordish(t[i]) {
			if t[i] == '\n' && n > 0 {
				return pos, neg
			}
			if t[i] == '<' {
				if k := bytes.IndexByte(t[i:min(len(t), i+maxTokenLen)], '>'); k >= 0 {
					i += k // the whole token, even past hi
					if masked = maskShaped(t[i-k:]); masked {
						i++ // one word, as above
						break
					}
				}
			}
			i++
		}
		if masked {
			continue
		}
		j := i
		for i < hi && isWordish(t[i]) {
			i++
		}
		if j == i {
			break
		}
		if wi, ok := s.lookupWord(t[j:i], &w); ok {
			pos |= wi.pos
		}
	}
	return pos, neg
}

// maskShaped reports whether t starts with what masking writes: <TYPE>, <TYPE_id>.
func maskShaped(t []byte) bool {
	if len(t) < 3 || t[0] != '<' || class[t[1]] != cUpper {
		return false
	}
	for k := 2; k < len(t) && k < maxTokenLen; k++ {
		switch c := t[k]; {
		case c == '>':
			return true
		case class[c] == 0:
			return false
		}
	}
	return false
}

// hitEndingAt returns the start of a finding of this scan that ends at i, or -1.
// Of several candidates ending there ("010 0000000" as a phone and its last group
// as a licence number) it takes the one resolve will keep — highest score, then
// longest — since that one is what masking turns into one word.
func (s *scanner) hitEndingAt(i int) int {
	best := -1
	for k := len(s.hits) - 1; k >= s.ctx0; k-- {
		h := &s.hits[k]
		if h.end != i {
			continue
		}
		if best < 0 || h.score > s.hits[best].score || h.score == s.hits[best].score && h.start < s.hits[best].start {
			best = k
		}
	}
	if best < 0 {
		return -1
	}
	return s.hits[best].start
}

// isWordish is a byte that can be part of a context word (letters, digits, and the
// apostrophe and dot of driver's and d.o.b; non-ASCII so accented words stay whole).
func isWordish(c byte) bool { return isAlnum(c) || c == '\'' || c >= 0x80 }

func (s *scanner) lookupWord(b []byte, w *[24]byte) (wordInfo, bool) {
	if len(b) > len(w) || len(b) == 0 {
		return wordInfo{}, false
	}
	for k, c := range b {
		w[k] = lower(c)
	}
	// Drop a trailing possessive or dot ("card's", "d.o.b.").
	n := len(b)
	if n > 2 && w[n-2] == '\'' && w[n-1] == 's' {
		if wi, ok := s.e.ctx.get(w[:n-2]); ok {
			return wi, true
		}
	}
	return s.e.ctx.get(w[:n])
}

// resolve sorts the hits from first on and removes overlaps: of two overlapping hits
// the higher score wins, then the longer one (Presidio's anonymizer rule for
// contained spans), then the earlier one. Allow-listed values go too.
func (s *scanner) resolve(first int) {
	h := s.hits[first:]
	if len(h) == 0 {
		return
	}
	slices.SortFunc(h, func(a, b hit) int {
		if a.score != b.score {
			return cmp.Compare(b.score, a.score)
		}
		if la, lb := a.end-a.start, b.end-b.start; la != lb {
			return cmp.Compare(lb, la)
		}
		if a.start != b.start {
			return cmp.Compare(a.start, b.start)
		}
		return cmp.Compare(a.ent, b.ent)
	})
	kept := h[:0]
	for _, x := range h {
		overlap := false
		for _, k := range kept {
			if x.start < k.end && k.start < x.end {
				overlap = true
				break
			}
		}
		if overlap || s.e.allowed(s.t[x.start:x.end]) {
			continue
		}
		kept = append(kept, x)
	}
	slices.SortFunc(kept, func(a, b hit) int { return cmp.Compare(a.start, b.start) })
	s.hits = s.hits[:first+len(kept)]
}

// allowed reports whether an allow-list exempts the value.
func (e *Engine) allowed(v []byte) bool {
	if len(e.allowVals) > 0 {
		var buf [128]byte
		tv := bytes.TrimSpace(v)
		if len(tv) <= len(buf) {
			for i, c := range tv {
				buf[i] = lower(c)
			}
			if _, ok := e.allowVals[string(buf[:len(tv)])]; ok {
				return true
			}
		} else if _, ok := e.allowVals[string(bytes.ToLower(tv))]; ok {
			return true
		}
	}
	for _, re := range e.allowPats {
		if re.Match(v) {
			return true
		}
	}
	return false
}
