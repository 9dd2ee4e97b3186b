package pii

// Numeric candidates: runs of digit groups joined by single separators, such as
// 4111 1111 1111 1111, 123-45-6789, +44 (0)20 7946 0958 x12, 192.168.1.20.

const maxGroups = 8

// numRun is a parsed run of digit groups.
type numRun struct {
	start, end int // text span, including a leading '+' or '(' and an extension
	plus       bool
	ng         int
	gs, ge     [maxGroups]int // digit spans of the groups
	sep        [maxGroups]byte
	paren      [maxGroups]bool // group k was written (k)
	ext        bool            // an extension (x123, ext. 123) follows the last group
	digitsEnd  int             // end of the last group
	more       bool            // the run goes on past maxGroups
}

// isSep reports whether c may join two digit groups.
func isSep(c byte) bool { return c == ' ' || c == '-' || c == '.' || c == '/' }

// numeric handles a run starting at i ('+', '(' or a digit word t[i:j]); it returns
// the end of what it consumed.
func (s *scanner) numeric(i, j int) int {
	t := s.t
	n := len(t)
	if t[i] != '+' && t[i] != '(' {
		// Fast path: a short number standing alone (years, counts, prices).
		extends := j+1 < n && isSep(t[j]) && (isDigit(t[j+1]) || t[j+1] == '(')
		if !extends {
			if j < n && t[j] == ':' {
				return s.hexColon(i)
			}
			if j-i == 8 && j+2 < n && t[j] == '-' && class[t[j+1]]&cUpper != 0 && !isWord(at(t, j+2)) {
				s.nif(i, j+2)
				return j + 2
			}
			if j-i < 7 {
				return j
			}
		}
	}
	var r numRun
	if !s.parseRun(i, &r) {
		return j
	}
	if r.ng >= 4 && r.sep[1] == r.sep[2] && (r.sep[1] == '-' || r.sep[1] == '/' || r.sep[1] == '.') && r.sep[3] == ' ' {
		// A date followed by more numbers (2012-10-01 00:46): the date stands alone.
		var d [64]byte
		n := 0
		var glen [3]int
		for k := 0; k < 3; k++ {
			n += copy(d[n:], s.t[r.gs[k]:r.ge[k]])
			glen[k] = r.ge[k] - r.gs[k]
		}
		if n <= 8 && isDate(d[:n], glen[:]) {
			s.evalRun(&r, 0, 3)
			s.evalRun(&r, 3, r.ng)
			return r.end
		}
	}
	s.evalFrom(&r, 0)
	// A candidate that ends at a separator inside the run (from this run or one
	// before it) leaves the groups after it to stand as a run of their own, as they
	// will once the candidate is masked: "<PHONE_NUMBER>.1.0.0.0" holds an IP
	// address that "…0 0.1.0.0.0", five dotted groups, does not. Evaluating them so
	// too makes masking find the same the second time (idempotence); it only adds
	// candidates, and resolve keeps the best of overlapping ones.
	for k := 1; k < r.ng; k++ {
		if !r.paren[k] && s.anyHitEndsAt(r.gs[k]-1) {
			s.evalFrom(&r, k)
		}
	}
	if r.more {
		// Too many groups for one entity: go on from the middle, so an entity
		// that straddles the cut is seen whole by the next run — or from the
		// first group after a candidate, if that comes sooner: there a run of its
		// own begins once the candidate is masked, with groups past the cut.
		for k := 1; k < r.ng/2; k++ {
			if !r.paren[k] && s.anyHitEndsAt(r.gs[k]-1) {
				return r.gs[k]
			}
		}
		return r.gs[r.ng/2]
	}
	return r.end
}

// evalFrom evaluates the groups of r from k on as a run: all of them, and when
// nothing fits (or the run was cut), every span of space-separated parts (a year or count glued to a
// card number by a space); resolve keeps the best of overlapping candidates, so a
// card beats a phone made of its groups.
func (s *scanner) evalFrom(r *numRun, k int) {
	before := len(s.hits)
	s.evalRun(r, k, r.ng)
	if r.ng-k < 2 {
		return
	}
	// A candidate of the whole run makes its parts moot — unless the run was cut
	// at maxGroups: then that candidate may end inside a token that goes on and
	// lose to one found there (an IP address, "…0 0 1.0|.0.0"), and the parts
	// before stand alone, as they do once that one is masked.
	if !r.more && len(s.hits) > before {
		return
	}
	for a := k; a < r.ng; a++ {
		if a > k && r.sep[a] != ' ' {
			continue
		}
		for b := a + 1; b <= r.ng; b++ {
			if (b < r.ng && r.sep[b] != ' ') || (a == k && b == r.ng) {
				continue
			}
			s.evalRun(r, a, b)
		}
	}
}

// anyHitEndsAt reports whether a finding so far (of this scan or its context) ends
// at i.
func (s *scanner) anyHitEndsAt(i int) bool {
	for k := len(s.hits) - 1; k >= s.ctx0; k-- {
		if s.hits[k].end == i {
			return true
		}
	}
	return false
}

func at(t []byte, i int) byte {
	if i < len(t) {
		return t[i]
	}
	return ' '
}

// parseRun parses the run at i into r; false when there is no digit group.
func (s *scanner) parseRun(i int, r *numRun) bool {
	t := s.t
	n := len(t)
	p := i
	r.start = i
	if t[p] == '+' {
		r.plus = true
		p++
	}
	var sep byte
	end := p
	for r.ng < maxGroups && p < n {
		k := r.ng
		if t[p] == '(' {
			q := p + 1
			for q < n && isDigit(t[q]) {
				q++
			}
			if q == p+1 || q-p-1 > 5 || q >= n || t[q] != ')' {
				break
			}
			r.gs[k], r.ge[k], r.sep[k], r.paren[k] = p+1, q, sep, true
			r.ng++
			q++
			end = q
			if q+1 < n && (t[q] == ' ' || t[q] == '-') && isDigit(t[q+1]) {
				sep, p = t[q], q+1
				continue
			}
			if q < n && isDigit(t[q]) {
				sep, p = ')', q
				continue
			}
			break
		}
		if !isDigit(t[p]) {
			break
		}
		q := p
		for q < n && isDigit(t[q]) {
			q++
		}
		r.gs[k], r.ge[k], r.sep[k], r.paren[k] = p, q, sep, false
		r.ng++
		end = q
		if q+1 < n && isSep(t[q]) && (isDigit(t[q+1]) || t[q+1] == '(') {
			sep, p = t[q], q+1
			continue
		}
		break
	}
	if r.ng == 0 {
		return false
	}
	if r.ng == maxGroups && end+1 < n && isSep(t[end]) && isDigit(t[end+1]) {
		r.more = true
	}
	// The run must end at a word boundary; an extension may follow. A last group
	// followed by a colon begins a time or an IPv6 address (0::2), not a group of
	// this run.
	r.digitsEnd = end
	// Only a group of up to four digits can begin a time or an IPv6 address; a
	// longer one before a colon ends the run whatever follows, so masking what
	// follows ("0000000:<…>") changes nothing (idempotence).
	colonStarts := end+1 < n && t[end] == ':' && (isHex(t[end+1]) || t[end+1] == ':') && end-r.gs[r.ng-1] <= 4
	if end < n && (isWord(t[end]) || colonStarts) {
		if x := extension(t, end); x > end {
			r.ext, end = true, x
		} else {
			r.ng--
			if r.ng == 0 {
				return false
			}
			end = r.ge[r.ng-1]
			if r.paren[r.ng-1] {
				end++
			}
			r.digitsEnd = end
		}
	} else if x := extension(t, end); x > end {
		r.ext, end = true, x
	}
	r.end = end
	return true
}

// extension returns the end of a phone extension at i (x123, X123, " ext. 123",
// " ext 123"), or i.
func extension(t []byte, i int) int {
	p := i
	if p < len(t) && (t[p] == 'x' || t[p] == 'X') {
		p++
	} else if p+4 < len(t) && t[p] == ' ' && t[p+1] == 'e' && t[p+2] == 'x' && t[p+3] == 't' {
		p += 4
		if t[p] == '.' {
			p++
		}
		if p < len(t) && t[p] == ' ' {
			p++
		}
	} else {
		return i
	}
	q := p
	for q < len(t) && isDigit(t[q]) && q-p < 6 {
		q++
	}
	if q == p || (q < len(t) && isWord(t[q])) {
		return i
	}
	return q
}

// window is groups [a, b) of a run, flattened for the recognizers.
type window struct {
	start, end int // text span (digits, plus '+', parentheses and extension at the ends)
	digits     []byte
	glen       [maxGroups]int
	nb         int
	plus, ext  bool
	paren      bool
	sepKinds   int  // distinct separators between groups (')' counts as its own)
	sep        byte // the separator, when sepKinds == 1
}

func (s *scanner) evalRun(r *numRun, a, b int) {
	var w window
	w.start = r.gs[a]
	if r.paren[a] {
		w.start--
	}
	if a == 0 && r.plus {
		w.start, w.plus = r.start, true
	}
	w.end = r.ge[b-1]
	if r.paren[b-1] {
		w.end++
	}
	if b == r.ng {
		w.end, w.ext = r.end, r.ext
	}
	nd := 0
	var seen [4]byte
	for k := a; k < b; k++ {
		g := s.t[r.gs[k]:r.ge[k]]
		if nd+len(g) > len(s.tmp) {
			return // longer than any entity
		}
		copy(s.tmp[nd:], g)
		nd += len(g)
		w.glen[w.nb] = len(g)
		w.nb++
		w.paren = w.paren || r.paren[k]
		if k > a {
			c := r.sep[k]
			dup := false
			for x := 0; x < w.sepKinds; x++ {
				if seen[x] == c {
					dup = true
				}
			}
			if !dup && w.sepKinds < len(seen) {
				seen[w.sepKinds] = c
				w.sepKinds++
			}
		}
	}
	if w.sepKinds == 1 {
		w.sep = seen[0]
	}
	w.digits = s.tmp[:nd]
	s.numericHits(&w)
}

// numericHits runs every numeric recognizer over a window.
func (s *scanner) numericHits(w *window) {
	d := w.digits
	nd := len(d)
	plain := w.nb == 1 && !w.plus && !w.paren && !w.ext
	// sepIs reports whether the groups are joined by one of the given separators only.
	sepIs := func(seps string) bool {
		if w.nb == 1 {
			return true
		}
		if w.sepKinds != 1 {
			return false
		}
		for i := 0; i < len(seps); i++ {
			if seps[i] == w.sep {
				return true
			}
		}
		return false
	}
	groups := func(lens ...int) bool {
		if w.nb != len(lens) {
			return false
		}
		for k, l := range lens {
			if w.glen[k] != l {
				return false
			}
		}
		return true
	}
	simple := !w.plus && !w.paren && !w.ext

	if simple && w.nb == 4 && sepIs(".") && w.glen[0] <= 3 && w.glen[1] <= 3 && w.glen[2] <= 3 && w.glen[3] <= 3 {
		s.ipv4(w)
		return
	}
	if simple && w.nb == 3 && sepIs("-/.") && isDate(d, w.glen[:3]) {
		// A date is never a phone or an account number; it is a date of birth
		// only when a context word says so.
		s.add(eDOB, w.start, w.end, 0.2, "")
		return
	}
	if simple && w.nb == 2 && groups(4, 4) && isYear(d[:4]) && isYear(d[4:]) {
		return // a year range
	}
	if nd < 7 {
		return // shorter than every recognizer below (a phone number has seven digits)
	}
	_, neg := s.context(w.start, w.end)

	if simple && nd >= 12 && nd <= 19 && (sepIs(" -") || sepIs(".") && groups(4, 4, 4, 4)) && cardGrouping(w) && luhn(d) && cardIssuer(d) && !allSame(d) {
		// A plain block of digits after "order" or "invoice" is an order number; a
		// number grouped like a card is a card whatever precedes it.
		if !neg || w.nb > 1 || s.hasContext(eCard, w.start, w.end) {
			s.add(eCard, w.start, w.end, scoreValidated, "")
		}
	}
	if simple && nd == 9 {
		formatted := groups(3, 2, 4) && sepIs("- .")
		// A house or suite number ("Suite 680 36 4022 Oakridge Lane") is not an
		// identity number unless a context word says it is.
		idShape := (formatted || plain) && !(s.addressNumber(w.start, w.end) &&
			!s.hasContext(eSSN, w.start, w.end) && !s.hasContext(eITIN, w.start, w.end))
		if idShape {
			if validSSN(d) {
				base := 0.2 // nine bare digits need a context word
				if formatted {
					base = 0.6
					if w.sep == '-' {
						base = 0.75
					}
				}
				s.add(eSSN, w.start, w.end, base, "")
			} else if validITIN(d) {
				base := 0.2
				if formatted {
					base = 0.6
				}
				s.add(eITIN, w.start, w.end, base, "")
			}
		}
		if (plain || groups(3, 3, 3) && sepIs(" -")) && tfnCheck(d) {
			s.add(eTFN, w.start, w.end, 0.3, "")
		}
		if plain {
			s.add(ePassport, w.start, w.end, 0.2, "")
		}
	}
	if simple && nd == 10 && (plain || groups(3, 3, 4) && sepIs(" -")) && nhsCheck(d) {
		s.add(eNHS, w.start, w.end, 0.4, "")
	}
	if simple && nd == 12 && (plain || groups(4, 4, 4) && sepIs(" -")) && d[0] >= '2' && verhoeff(d) && !palindrome(d) {
		s.add(eAadhaar, w.start, w.end, 0.3, "")
	}
	if sequential(d) {
		// 1234567890 is a placeholder, not an account or document number.
		s.phone(w, neg)
		return
	}
	if plain && nd >= 8 && nd <= 17 {
		s.add(eBank, w.start, w.end, 0.2, "")
	}
	if simple && nd >= 7 && nd <= 14 && (plain || sepIs("-")) {
		s.add(eDriverLicense, w.start, w.end, 0.15, "")
	}
	s.phone(w, neg)
}

// sequential reports whether b holds a run of eight or more consecutive ascending
// or descending characters (12345678, abcdefgh, 98765432): filler, not data.
func sequential(b []byte) bool {
	up, down := 1, 1
	for i := 1; i < len(b); i++ {
		if b[i] == b[i-1]+1 {
			up++
		} else {
			up = 1
		}
		if b[i] == b[i-1]-1 {
			down++
		} else {
			down = 1
		}
		if up >= 8 || down >= 8 {
			return true
		}
	}
	return false
}

func allSame(d []byte) bool {
	for _, c := range d {
		if c != d[0] {
			return false
		}
	}
	return true
}

func palindrome(d []byte) bool {
	for i, j := 0, len(d)-1; i < j; i, j = i+1, j-1 {
		if d[i] != d[j] {
			return false
		}
	}
	return true
}

func num(d []byte) int {
	n := 0
	for _, c := range d {
		n = n*10 + int(c-'0')
	}
	return n
}

func isYear(d []byte) bool {
	y := num(d)
	return y >= 1900 && y <= 2100
}

// isDate reports whether three groups read as a calendar date: y-m-d, d/m/y or m/d/y.
func isDate(d []byte, glen []int) bool {
	g0, g1, g2 := d[:glen[0]], d[glen[0]:glen[0]+glen[1]], d[glen[0]+glen[1]:]
	day := func(b []byte) bool { v := num(b); return len(b) <= 2 && v >= 1 && v <= 31 }
	month := func(b []byte) bool { v := num(b); return len(b) <= 2 && v >= 1 && v <= 12 }
	if len(g0) == 4 {
		return isYear(g0) && month(g1) && day(g2)
	}
	if len(g2) == 4 && isYear(g2) || len(g2) == 2 {
		return (day(g0) && month(g1)) || (month(g0) && day(g1))
	}
	return false
}

// cardGrouping accepts the ways cards are written: one block, groups of four with a
// shorter last group, or Amex/Diners 4-6-5 and 4-6-4.
func cardGrouping(w *window) bool {
	if w.nb == 1 {
		return true
	}
	if w.nb == 3 && w.glen[0] == 4 && w.glen[1] == 6 && (w.glen[2] == 5 || w.glen[2] == 4) {
		return true
	}
	for k := 0; k < w.nb-1; k++ {
		if w.glen[k] != 4 {
			return false
		}
	}
	return w.glen[w.nb-1] >= 1 && w.glen[w.nb-1] <= 4
}

// cardIssuer reports whether the leading digits belong to a card scheme's range:
// Visa 4; Mastercard 51–55 and 2221–2720; Amex 34, 37; Diners 30, 36, 38, 39;
// JCB 35, 1800, 2131; Discover and UnionPay 6; Maestro 50, 56–69; Mir 2200–2204;
// RuPay 81, 82. Other leading digits (0, 7, 9, most 1 and 2, 8) are not cards.
func cardIssuer(d []byte) bool {
	p2 := num(d[:2])
	p4 := num(d[:4])
	switch d[0] {
	case '0':
		return p4 == 604 // UK domestic Maestro
	case '1':
		return p4 == 1800
	case '2':
		return p4 == 2131 || (p4 >= 2200 && p4 <= 2204) || (p4 >= 2221 && p4 <= 2720)
	case '3', '4', '5', '6':
		return true
	case '8':
		return p2 == 81 || p2 == 82
	}
	return false
}

// validSSN applies the SSA's rules: area not 000, 666 or 900–999; group not 00;
// serial not 0000; not one digit repeated; not a number published as an example.
func validSSN(d []byte) bool {
	area, group, serial := num(d[:3]), num(d[3:5]), num(d[5:])
	if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 || allSame(d) {
		return false
	}
	switch string(d) {
	case "078051120", "219099999", "123456789", "457555462", "987654320":
		return false
	}
	return true
}

// validITIN: area 9xx with group 50–65, 70–88, 90–92 or 94–99.
func validITIN(d []byte) bool {
	if d[0] != '9' {
		return false
	}
	g := num(d[3:5])
	return (g >= 50 && g <= 65) || (g >= 70 && g <= 88) || (g >= 90 && g <= 92) || (g >= 94 && g <= 99)
}

// ipv4 validates a dotted quad. Loopback, unspecified and broadcast addresses are
// not about anyone and are left alone, and so are version-like numbers after
// "version" or "v".
func (s *scanner) ipv4(w *window) {
	var oct [4]int
	p := 0
	for k := 0; k < 4; k++ {
		g := w.digits[p : p+w.glen[k]]
		p += w.glen[k]
		if len(g) > 3 || (len(g) > 1 && g[0] == '0') {
			return
		}
		oct[k] = num(g)
		if oct[k] > 255 {
			return
		}
	}
	if oct[0] == 127 || oct == [4]int{} || oct == [4]int{255, 255, 255, 255} {
		return
	}
	if _, neg := s.context(w.start, w.end); neg {
		return
	}
	s.add(eIP, w.start, w.end, 0.9, "")
}
