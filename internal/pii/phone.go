package pii

import (
	"github.com/nyaruka/phonenumbers"
)

// phone scores a phone-shaped window. libphonenumber (nyaruka/phonenumbers) costs
// 10–25 µs and ~50 allocations a call, so it runs only when the shape and the words
// around a candidate leave the decision open: with a context word ("phone", "call",
// "fax"...) the shape suffices; without one, an international number (+CC) must be
// valid for its country and a national one valid in one of the configured regions.
func (s *scanner) phone(w *window, neg bool) {
	nd := len(w.digits)
	if nd < 7 || nd > 15 || (w.plus && nd < 8) {
		return
	}
	if w.sepKinds > 2 || allSame(w.digits) {
		return
	}
	// Group shapes: decimals and long blocks aren't phone numbers.
	for k := 0; k < w.nb; k++ {
		l := w.glen[k]
		if w.sep == '.' && w.nb > 1 && l < 2 {
			return
		}
		if w.nb > 2 && l > 5 || w.nb == 2 && l > 8 {
			return
		}
	}
	if w.nb > 1 && w.glen[0] == 1 && !w.plus && !w.paren && w.nb < 3 {
		return
	}
	if w.nb == 1 && !w.plus && nd > 12 {
		return
	}
	var base float64
	switch {
	case w.plus:
		base = 0.5
	case w.paren || w.ext:
		base = 0.5
	case w.nb >= 3:
		base = 0.45
		if w.nb == 3 && w.glen[0] == 3 && w.glen[1] == 2 && w.glen[2] == 4 {
			base = 0.3 // the SSN shape
		}
	case w.nb == 2:
		base = 0.4
	default:
		base = 0.25
	}
	if !w.plus && s.addressNumber(w.start, w.end) {
		// House and suite numbers ("office is at 17031 2202 Rissik St"): the words
		// of an address outweigh a phone context word, which often names the
		// place ("office").
		return
	}
	ctx := s.hasContext(ePhone, w.start, w.end)
	if neg && !ctx {
		return
	}
	if ctx {
		s.add(ePhone, w.start, w.end, base, "")
		return
	}
	ssnShape := w.nb == 3 && w.glen[0] == 3 && w.glen[1] == 2 && w.glen[2] == 4
	if base+contextBoost < s.e.threshold[ePhone] || w.nb == 1 && !w.plus || ssnShape {
		return // could not pass even if valid; bare digits and the SSN shape need context
	}
	raw := string(s.t[w.start:w.end])
	var pn phonenumbers.PhoneNumber
	if w.plus {
		if phonenumbers.ParseToNumber(raw, "", &pn) != nil {
			return
		}
		switch {
		case phonenumbers.IsValidNumber(&pn):
			base = 0.85
		case phonenumbers.IsPossibleNumber(&pn):
			base = 0.6
		default:
			return
		}
		s.add(ePhone, w.start, w.end, base, "")
		return
	}
	for _, r := range s.e.regions {
		// National formats: a leading 0 is the trunk prefix of most non-NANP regions,
		// and NANP numbers never start with 0 or 1 after the optional country code.
		trunk := s.e.trunkZero[r]
		if (w.digits[0] == '0') != trunk {
			continue
		}
		if phonenumbers.ParseToNumber(raw, r, &pn) == nil && phonenumbers.IsValidNumberForRegion(&pn, r) {
			s.add(ePhone, w.start, w.end, base+0.25, "")
			return
		}
	}
}
