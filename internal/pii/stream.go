package pii

import (
	"bytes"
	"context"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// lookbehind is how much already-sent text a StreamMasker keeps as context for
// the next chunk ("password: " sent, the value arriving next).
const lookbehind = 96

// StreamMasker masks a stream of text deltas (server-sent events of model output)
// so that an entity split across deltas is still caught. It holds back only the
// trailing bytes that could still grow into an entity — the last unfinished token,
// plus the digit groups before it when they may be part of a spaced number — and
// never more than Options.MaxStreamHold, so the stream never stalls.
//
// A StreamMasker is not safe for concurrent use; use one per stream.
type StreamMasker struct {
	e    *Engine
	m    *masker
	buf  []byte // received, not yet sent
	look []byte // the tail of what was sent, for context
}

// NewStreamMasker starts masking one stream for scope.
func (e *Engine) NewStreamMasker(scope Scope) *StreamMasker {
	return &StreamMasker{e: e, m: e.newMasker(scope)}
}

// Write takes the next delta and returns the masked text that can be sent now
// (possibly empty). Errors are as for MaskText; after an error the stream MUST be
// cut off.
func (sm *StreamMasker) Write(ctx context.Context, delta []byte) ([]byte, error) {
	sm.buf = append(sm.buf, delta...)
	cut := safeCut(sm.buf)
	if len(sm.buf)-cut > sm.e.maxHold {
		cut = len(sm.buf)
	}
	return sm.emit(ctx, cut, false)
}

// Flush returns the masked remainder at the end of the stream.
func (sm *StreamMasker) Flush(ctx context.Context) ([]byte, error) {
	return sm.emit(ctx, len(sm.buf), true)
}

// Summary counts what the stream held so far, by type.
func (sm *StreamMasker) Summary() vigil.PIISummary {
	c := make(map[string]int, len(sm.m.counts))
	for k, v := range sm.m.counts {
		c[k] = v
	}
	return vigil.PIISummary{Counts: c}
}

func (sm *StreamMasker) emit(ctx context.Context, cut int, final bool) ([]byte, error) {
	if cut == 0 {
		return nil, nil
	}
	e := sm.e
	s := e.getScanner()
	defer e.putScanner(s)
	lb := len(sm.look)
	text := append(sm.look, sm.buf...)
	s.scanText(text)
	hits := s.hits[:0]
	for _, h := range s.hits {
		if h.start < lb {
			continue // already sent
		}
		h.start -= lb
		h.end -= lb
		if h.start < cut && h.end > cut && !final {
			cut = h.start // an entity still growing across the cut: hold it back
		}
		hits = append(hits, h)
	}
	sm.look = text[:lb] // text may have reused look's array; restore the view
	var use []hit
	for _, h := range hits {
		if h.end <= cut {
			use = append(use, h)
		}
	}
	out, err := sm.m.apply(nil, sm.buf[:cut], use)
	if err != nil {
		return nil, err
	}
	if _, err := sm.m.finish(ctx, nil); err != nil {
		return nil, err
	}
	sent := append(sm.look, sm.buf[:cut]...)
	if len(sent) > lookbehind {
		sent = sent[len(sent)-lookbehind:]
	}
	sm.look = append(make([]byte, 0, lookbehind+256), sent...)
	sm.buf = append(sm.buf[:0], sm.buf[cut:]...)
	return out, nil
}

// safeCut returns how much of b can be finalised: everything before the last token,
// which may still grow, and before spaced digit groups that may continue it
// (4111 1111 | 1111 1111), and before an unterminated PEM block.
func safeCut(b []byte) int {
	i := len(b)
	if i > 0 && b[i-1] == ' ' {
		// A finished word; only a digit group or a few capitals may go on
		// ("4111 " + "1111").
		k := i - 1
		for k > 0 && b[k-1] > ' ' {
			k--
		}
		if k == i-1 || !groupLike(b[k:i-1]) {
			return cutPEM(b, len(b))
		}
		i--
	} else if i > 0 && b[i-1] <= ' ' {
		return cutPEM(b, len(b))
	}
	// The last token.
	for i > 0 && b[i-1] > ' ' {
		i--
	}
	// Groups before it that could belong to the same spaced entity.
	for i > 1 && b[i-1] == ' ' {
		j := i - 1
		k := j
		for k > 0 && b[k-1] > ' ' && j-k <= 8 {
			k--
		}
		if k == j || j-k > 8 || !groupLike(b[k:j]) || len(b)-k > 48 {
			break
		}
		i = k
	}
	return cutPEM(b, i)
}

// groupLike reports whether a short word may be a group of a spaced card, IBAN,
// phone or NINO: it holds a digit, or is a few capitals, or opens a phone number.
func groupLike(w []byte) bool {
	caps := true
	for _, c := range w {
		if isDigit(c) || c == '+' || c == '(' {
			return true
		}
		if class[c] != cUpper {
			caps = false
		}
	}
	return caps && len(w) <= 4
}

// cutPEM moves the cut back to an unterminated private key block.
func cutPEM(b []byte, cut int) int {
	k := bytes.LastIndex(b, pemBegin)
	if k >= 0 && k < cut && bytes.Index(b[k:], pemEnd) < 0 {
		return k
	}
	// An END line whose closing dashes haven't arrived yet.
	if k >= 0 && k < cut {
		if e := bytes.Index(b[k:], pemEnd); e >= 0 && bytes.Index(b[k+e+len(pemEnd):], []byte("-----")) < 0 {
			return k
		}
	}
	return cut
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
