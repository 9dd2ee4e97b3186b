package pii

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// customRecognizer is a compiled CustomRecognizer.
type customRecognizer struct {
	ent       entity
	re        *regexp.Regexp
	literal   []byte // the pattern's literal prefix, a cheap prefilter
	foldLit   bool   // the literal is matched case-insensitively
	validator func([]byte) bool
	context   []string
	score     float64
}

func compileCustom(c CustomRecognizer, ent entity) (*customRecognizer, error) {
	if c.Name == "" {
		return nil, errors.New("name is empty")
	}
	for _, r := range c.Name {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return nil, fmt.Errorf("name %q must be upper case letters, digits and _", c.Name)
		}
	}
	if c.Pattern == "" {
		return nil, errors.New("pattern is empty")
	}
	re, err := regexp.Compile(c.Pattern)
	if err != nil {
		return nil, fmt.Errorf("pattern: %w", err)
	}
	if re.Match(nil) {
		return nil, errors.New("pattern matches the empty string")
	}
	cr := &customRecognizer{ent: ent, re: re, score: c.Score}
	if cr.score == 0 {
		cr.score = 0.6
	}
	if cr.score < 0 || cr.score > 1 {
		return nil, fmt.Errorf("score %v is not in (0, 1]", c.Score)
	}
	if lit, _ := re.LiteralPrefix(); lit != "" {
		cr.literal = []byte(lit)
		cr.foldLit = strings.HasPrefix(c.Pattern, "(?i)")
	}
	switch c.Validator {
	case "":
	case "luhn":
		cr.validator = func(b []byte) bool { d := onlyDigits(b); return len(d) > 1 && luhn(d) }
	case "mod97":
		cr.validator = func(b []byte) bool { return mod97(bytes.ToUpper(onlyAlnum(b))) }
	case "verhoeff":
		cr.validator = func(b []byte) bool { d := onlyDigits(b); return len(d) > 1 && verhoeff(d) }
	default:
		return nil, fmt.Errorf("validator %q is not one of luhn, mod97, verhoeff", c.Validator)
	}
	for _, w := range c.Context {
		w = strings.ToLower(strings.TrimSpace(w))
		if w == "" || strings.ContainsAny(w, " \t") {
			return nil, fmt.Errorf("context word %q must be one word", w)
		}
		cr.context = append(cr.context, w)
	}
	return cr, nil
}

func onlyDigits(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if isDigit(c) {
			out = append(out, c)
		}
	}
	return out
}

func onlyAlnum(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if isAlnum(c) {
			out = append(out, c)
		}
	}
	return out
}

// scan runs the pattern over t[from:] when its literal prefix occurs there.
func (cr *customRecognizer) scan(s *scanner, t []byte, from int) {
	off := from
	t = t[from:]
	if cr.literal != nil {
		if cr.foldLit {
			if !bytes.Contains(bytes.ToLower(t), bytes.ToLower(cr.literal)) {
				return
			}
		} else if !bytes.Contains(t, cr.literal) {
			return
		}
	}
	for _, m := range cr.re.FindAllIndex(t, -1) {
		a, b := m[0], m[1]
		// Whole tokens only: a match inside a longer word is a different thing.
		if a > 0 && isAlnum(t[a-1]) && isAlnum(t[a]) || b < len(t) && isAlnum(t[b]) && isAlnum(t[b-1]) {
			continue
		}
		if cr.validator != nil && !cr.validator(t[a:b]) {
			continue
		}
		s.add(cr.ent, off+a, off+b, cr.score, "")
	}
}
