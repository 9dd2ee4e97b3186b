package pii

import (
	"bytes"
	"context"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// lookbehind is how much already-sent text a StreamMasker keeps as context for
// the next chunk: the five words before a candidate ("my card is" sent, the number
// arriving next) and an assignment whose value is still to come ("password: ").
const lookbehind = 96

// StreamMasker masks a stream of text deltas (server-sent events of model output)
// so that an entity split across deltas is still caught. It holds back only the
// trailing bytes that could still grow into an entity — the last unfinished token,
// plus the digit groups before it when they may be part of a spaced number — and
// never more than Options.MaxStreamHold, so the stream never stalls.
//
// Each byte is scanned about once: a Write that can't send anything yet scans
// nothing, and one that can scans the held-back bytes, starting at the last sent
// token only when that token may begin an entity that goes on (a keyword
// assignment, a spaced digit group). Already-sent text is kept only as context, in
// one buffer that doesn't grow with the stream.
//
// A StreamMasker is not safe for concurrent use; use one per stream.
type StreamMasker struct {
	e *Engine
	m *masker
	// win is the tail of what was sent (win[:lb], at most lookbehind bytes, for
	// context) followed by what was received and not yet sent.
	win []byte
	lb  int
	// sent are the findings masked in win[:lb], in win offsets: context for the
	// next scan, where each counts as the one word its masking output is.
	sent []hit
}

// NewStreamMasker starts masking one stream for scope.
func (e *Engine) NewStreamMasker(scope Scope) *StreamMasker {
	return &StreamMasker{e: e, m: e.newMasker(scope)}
}

// Write takes the next delta and returns the masked text that can be sent now
// (possibly empty; the caller owns it). Errors are as for MaskText; after an error
// the stream MUST be cut off.
func (sm *StreamMasker) Write(ctx context.Context, delta []byte) ([]byte, error) {
	sm.win = append(sm.win, delta...)
	pending := sm.win[sm.lb:]
	cut := safeCut(pending)
	if len(pending)-cut > sm.e.maxHold {
		cut = len(pending)
	}
	return sm.emit(ctx, cut, false)
}

// Flush returns the masked remainder at the end of the stream.
func (sm *StreamMasker) Flush(ctx context.Context) ([]byte, error) {
	return sm.emit(ctx, len(sm.win)-sm.lb, true)
}

// Summary counts what the stream held so far, by type.
func (sm *StreamMasker) Summary() vigil.PIISummary {
	c := make(map[string]int, len(sm.m.counts))
	for k, v := range sm.m.counts {
		c[k] = v
	}
	return vigil.PIISummary{Counts: c}
}

// emit masks and returns the first cut bytes of the pending text (fewer when an
// entity found there runs past the cut and the stream is not final).
func (sm *StreamMasker) emit(ctx context.Context, cut int, final bool) ([]byte, error) {
	if cut == 0 {
		return nil, nil
	}
	e := sm.e
	s := e.getScanner()
	defer e.putScanner(s)
	lb := sm.lb
	s.hits = append(s.hits, sm.sent...)
	prior := len(s.hits)
	s.scanFrom(sm.win, restart(sm.win[:lb]))
	// Keep the hits in the pending text (those before it were sent), in pending
	// offsets; an entity still growing across the cut is held back whole.
	hits := s.hits[:0]
	for _, h := range s.hits[prior:] {
		if h.start < lb {
			continue
		}
		h.start -= lb
		h.end -= lb
		if h.start < cut && h.end > cut && !final {
			cut = h.start
		}
		hits = append(hits, h)
	}
	use := hits[:0]
	for _, h := range hits {
		if h.end <= cut {
			use = append(use, h)
		}
	}
	pending := sm.win[lb:]
	out, err := sm.m.apply(nil, pending[:cut], use)
	if err != nil {
		return nil, err
	}
	if _, err := sm.m.finish(ctx, nil); err != nil {
		return nil, err
	}
	// Slide the window: keep the last lookbehind bytes of what is now sent, then
	// the rest of the pending text, and the findings in what is kept.
	for _, h := range use {
		h.start += lb
		h.end += lb
		sm.sent = append(sm.sent, h)
	}
	sent := lb + cut
	drop := max(0, sent-lookbehind)
	sm.win = sm.win[:copy(sm.win, sm.win[drop:])]
	sm.lb = sent - drop
	kept := sm.sent[:0]
	for _, h := range sm.sent {
		if h.end -= drop; h.end > 0 {
			h.start = max(0, h.start-drop)
			kept = append(kept, h)
		}
	}
	sm.sent = kept
	return out, nil
}

// restart returns where scanning must begin in look+pending so that an entity
// that began in the sent text look and goes on in the pending text is seen whole
// (hits that start in look are dropped; the scan only has to see them begin). That
// is the start of the token cut in two, if the last send ended inside one, and
// before it the tokens that may begin such an entity: digit groups and capitals of a
// spaced number, a credential name, an assignment (: = => is) or an auth scheme.
// Everything else in look is context only and is not scanned again.
func restart(look []byte) int {
	from := len(look)
	for from > 0 && look[from-1] > ' ' {
		from-- // a token split by MaxStreamHold
	}
	assigned := false // an assignment was passed: only a name may come before it
	for from > 0 {
		a, b := tokenBefore(look, from)
		if a == b {
			break
		}
		switch tok := look[a:b]; {
		case !assigned && groupLike(tok):
			from = a // 4111, GB82, +44, (0)20
		case assignment(tok):
			from, assigned = a, true // =, is, password:, "password":, pass"is
		case nameOrScheme(tok):
			return a // password, X-API-Key, Bearer, {"auth":"Bearer
		default:
			return from
		}
	}
	return from
}

// tokenBefore returns the span of the whitespace-separated token that ends before
// i (skipping the whitespace before i); empty when there is none.
func tokenBefore(b []byte, i int) (start, end int) {
	end = i
	for end > 0 && b[end-1] <= ' ' {
		end--
	}
	start = end
	for start > 0 && b[start-1] > ' ' {
		start--
	}
	return start, end
}

// assignment reports whether a sent token assigns what follows: an operator or
// quote (= => : " '), "is", or a name glued to one (password:, pass"is).
func assignment(tok []byte) bool {
	n := len(tok)
	switch tok[n-1] {
	case ':', '=', '>', '"', '\'', '`':
		return true
	}
	return n >= 2 && tok[n-2] == 'i' && tok[n-1] == 's' && (n == 2 || !isAlnum(tok[n-3]))
}

// nameOrScheme reports whether a sent token ends in a credential name or an auth
// scheme, whose value may follow in the pending text.
func nameOrScheme(tok []byte) bool {
	k := len(tok)
	for k > 0 && (isWord(tok[k-1]) || tok[k-1] == '-') {
		k--
	}
	w := tok[k:]
	if len(w) == 6 && bytes.EqualFold(w, []byte("bearer")) || len(w) == 5 && bytes.EqualFold(w, []byte("basic")) {
		return true
	}
	yes, _ := isSecretName(w)
	return yes
}

// safeCut returns how much of b can be finalised: everything before the last token,
// which may still grow, and before spaced digit groups that may continue it
// (4111 1111 | 1111 1111), before a number whose following words have not arrived,
// and before an unterminated PEM block.
func safeCut(b []byte) int {
	return cutPEM(b, holdForContext(b, lastToken(b)))
}

// lastToken returns where the last token of b, which may still grow, begins, with
// the spaced groups before it that may belong to it; len(b) after a finished word.
func lastToken(b []byte) int {
	i := len(b)
	if i > 0 && b[i-1] == ' ' {
		// A finished word; only a digit group or a few capitals may go on
		// ("4111 " + "1111"), one or two spaces later.
		e := i - 1
		for e > 0 && b[e-1] == ' ' && i-e < 2 {
			e--
		}
		k := e
		for k > 0 && b[k-1] > ' ' {
			k--
		}
		if k == e || !groupLike(b[k:e]) {
			return len(b)
		}
		i = e
	} else if i > 0 && b[i-1] <= ' ' {
		return len(b)
	}
	for i > 0 && b[i-1] > ' ' {
		i--
	}
	return groupsBefore(b, i, len(b))
}

// groupsBefore moves i back over the spaced groups before it that could belong to
// the same entity, within 48 bytes of end.
func groupsBefore(b []byte, i, end int) int {
	for i > 1 && b[i-1] == ' ' {
		j := i - 1
		for j > 0 && b[j-1] == ' ' && i-j < 3 {
			j-- // groups may be two spaces apart (AB  12 34 56 C)
		}
		k := j
		for k > 0 && b[k-1] > ' ' && end-k <= 48 {
			k--
		}
		at := groupAt(b[k:j])
		g := k + at
		if at < 0 || j-g > 8 || end-g > 48 {
			break
		}
		i = g
		if g > k {
			break // punctuation before the group ("x!AB 12"): nothing before it belongs
		}
	}
	return i
}

func hasDigit(b []byte) bool {
	for _, c := range b {
		if isDigit(c) {
			return true
		}
	}
	return false
}

// holdForContext moves the cut back to a token with a digit among the two words
// before it (and the groups before that token): the two words after a numeric
// candidate are context ("2671 mobile") or make it an address ("2202 Rissik St"),
// so it waits for them, as MaskText of the whole text would see them.
func holdForContext(b []byte, cut int) int {
	hold, holdEnd, i := cut, cut, cut
	for n := 0; n < 2; n++ {
		k, j := tokenBefore(b, i)
		if k == j {
			break
		}
		if hasDigit(b[k:j]) {
			hold, holdEnd = k, j
		}
		i = k
	}
	if hold == cut {
		return cut
	}
	return groupsBefore(b, hold, holdEnd)
}

// groupLike reports whether a short word may be (or end in) a group of a spaced
// card, IBAN, phone or NINO.
func groupLike(w []byte) bool { return groupAt(w) >= 0 }

// groupAt returns where in the token w a group of a spaced entity may begin, or -1:
// the run of letters, digits, separators (. - /) and ( ) + at its end when that run
// holds a digit or opens a phone number, else a run of one to four capitals at its
// end ("GB82", "WEST", "AB" of a NINO, also after punctuation: "x!AB").
func groupAt(w []byte) int {
	k := len(w)
	for k > 0 && (isAlnum(w[k-1]) || isSep(w[k-1]) && w[k-1] != ' ' || w[k-1] == '+' || w[k-1] == '(' || w[k-1] == ')') {
		k--
	}
	run := w[k:]
	opens := -1 // the last ( or + in the run
	digit := false
	for x, c := range run {
		switch {
		case isDigit(c):
			digit = true
		case c == '(' || c == '+':
			opens = x
		}
	}
	if digit || opens >= 0 {
		if len(run) > 8 && opens > 0 {
			return k + opens // a long run: a group may still open at its last ( or +
		}
		return k
	}
	c := len(w)
	for c > 0 && class[w[c-1]] == cUpper {
		c--
	}
	if n := len(w) - c; n == 0 || n > 4 || c > 0 && isAlnum(w[c-1]) {
		// A NINO prefix may be written Ab (UK_NINO reads it in capitals).
		if n := len(w); n >= 2 && class[w[n-2]] == cUpper && class[w[n-1]] == cLower && (n == 2 || !isAlnum(w[n-3])) {
			return n - 2
		}
		return -1
	}
	return c
}

// cutPEM moves the cut back to an unterminated private key block.
func cutPEM(b []byte, cut int) int {
	if bytes.IndexByte(b[:cut], '-') < 0 {
		return cut // no BEGIN line before the cut (IndexByte is the fast test)
	}
	// The first BEGIN line whose block is not closed yet (no END line, or an END
	// line whose closing dashes haven't arrived).
	for k := 0; ; {
		x := bytes.Index(b[k:], pemBegin)
		if x < 0 || k+x >= cut {
			return cut
		}
		k += x
		e := bytes.Index(b[k+len(pemBegin):], pemEnd)
		if e < 0 {
			return k
		}
		end := k + len(pemBegin) + e + len(pemEnd)
		if bytes.Index(b[end:], []byte("-----")) < 0 {
			return k
		}
		k = end
	}
}

// StreamRestorer restores tokens in a stream of text deltas, holding back a trailing
// "<TYPE_..." that may be the start of a token until it is complete (at most a
// token's length).
//
// A StreamRestorer is not safe for concurrent use; use one per stream.
type StreamRestorer struct {
	r   *restorer
	buf []byte
}

// NewStreamRestorer starts restoring one stream for scope.
func (e *Engine) NewStreamRestorer(scope Scope) *StreamRestorer {
	return &StreamRestorer{r: e.newRestorer(scope)}
}

// Write takes the next delta and returns the restored text that can be sent now.
func (sr *StreamRestorer) Write(ctx context.Context, delta []byte) ([]byte, error) {
	sr.buf = append(sr.buf, delta...)
	hold := len(sr.buf)
	if k := bytes.LastIndexByte(sr.buf, '<'); k >= 0 && tokenPrefix(sr.buf[k:]) {
		hold = k
	}
	return sr.emit(ctx, hold)
}

// Flush returns the restored remainder at the end of the stream.
func (sr *StreamRestorer) Flush(ctx context.Context) ([]byte, error) {
	return sr.emit(ctx, len(sr.buf))
}

// Restored is how many tokens the stream restored so far.
func (sr *StreamRestorer) Restored() int { return sr.r.n }

func (sr *StreamRestorer) emit(ctx context.Context, n int) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	var out []byte
	if sr.r.e.vault == nil || sr.r.e.aead == nil {
		out = append(out, sr.buf[:n]...)
	} else {
		var err error
		if out, err = sr.r.restoreText(ctx, nil, sr.buf[:n], false); err != nil {
			return nil, err
		}
	}
	sr.buf = append(sr.buf[:0], sr.buf[n:]...)
	return out, nil
}
