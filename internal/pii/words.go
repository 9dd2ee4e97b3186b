package pii

import (
	"bytes"
	"net/netip"
)

// word handles a word t[i:j] that holds an upper-case letter, an underscore or a
// digit beside letters, or a lower-case word glued to punctuation; f is the OR of its
// byte classes. It returns where scanning goes on.
func (s *scanner) word(i, j int, f byte) int {
	t := s.t
	w := t[i:j]
	l := j - i
	next := at(t, j)
	if end := s.secretPrefix(i, j); end > i {
		return end
	}
	if (next == ':' || next == '-') && l <= 4 && allHex(w) {
		if end := s.hexColon(i); end > i {
			return end
		}
	}
	if next == '.' && l == 4 && allHex(w) {
		if end := s.mac(i); end > i {
			return end
		}
	}
	if l >= 4 && isLetter(w[0]) && isLetter(w[1]) && isDigit(w[2]) && isDigit(w[3]) {
		if end := s.iban(i); end > i {
			return end
		}
	}
	if f&(cUpper|cLower) != 0 && f&cDigit != 0 {
		switch {
		case l == 9 && isLetter(w[0]) && isLetter(w[1]) && digitsOnly(w[2:8]) && isLetter(w[8]):
			s.nino(i, j)
		case l == 9 && digitsOnly(w[:8]) && isLetter(w[8]):
			s.nif(i, j)
		case l == 16:
			s.fiscal(i, j)
		}
		if (w[0] == '1' || w[0] == '3') && l >= 26 && l <= 35 && base58Check(w) {
			s.add(eCrypto, i, j, scoreValidated, "")
			return j
		}
		if l >= 42 && l <= 90 && (w[0] == 'b' || w[0] == 'B') && (w[1] == 'c' || w[1] == 'C') && w[2] == '1' && bech32Check(w) {
			s.add(eCrypto, i, j, scoreValidated, "")
			return j
		}
		if isLetter(w[0]) && digitsOnly(w[1:]) {
			if l == 9 && class[w[0]]&cUpper != 0 {
				s.add(ePassport, i, j, 0.2, "")
			}
			if l >= 7 && l <= 15 {
				s.add(eDriverLicense, i, j, 0.15, "")
			}
		}
	}
	if l == 2 && isLetter(w[0]) && isLetter(w[1]) && next == ' ' {
		s.nino(i, j) // spaced form: AB 12 34 56 C
	}
	if next == ' ' && (l == 6 || l == 5) && (w[0]|0x20) == 'b' {
		s.authScheme(i, j)
	}
	if f&(cUpper|cLower) != 0 && l >= 3 && secretSuffix.has(w, l) {
		s.keywordSecret(i, j)
	}
	return j
}

func isLetter(c byte) bool { return class[c]&(cUpper|cLower) != 0 }

func digitsOnly(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return len(b) > 0
}

func allHex(b []byte) bool {
	for _, c := range b {
		if !isHex(c) {
			return false
		}
	}
	return len(b) > 0
}

// email handles an '@' at i: it scans the local part backwards and the domain
// forwards. An address whose top-level domain is a public one scores 1.0; others
// (corp.internal, example.invalid) need a context word. userinfo in a URL
// (scheme://user:pass@host) is a credential, not an address.
func (s *scanner) email(at int) {
	t := s.t
	if s.urlCredentials(at) {
		return
	}
	a := at
	for a > 0 && at-a < 64 && isLocal(t[a-1]) {
		a--
	}
	for a < at && (t[a] == '.' || t[a] == '-' || t[a] == '+') {
		a++
	}
	if a == at || t[at-1] == '.' {
		return
	}
	// Domain: labels of letters, digits and hyphens separated by dots.
	p := at + 1
	labels, lastStart, lastEnd := 0, 0, 0
	for p < len(t) {
		q := p
		for q < len(t) && (isAlnum(t[q]) || t[q] == '-' || t[q] >= 0x80) && q-p < 63 {
			q++
		}
		if q == p || t[p] == '-' || t[q-1] == '-' {
			break
		}
		labels++
		lastStart, lastEnd = p, q
		if q+1 < len(t) && t[q] == '.' && isAlnum(t[q+1]) {
			p = q + 1
			continue
		}
		p = q
		break
	}
	if labels < 2 || (p < len(t) && (isWord(t[p]) || t[p] == '-')) {
		return
	}
	if d := t[at+1 : lastEnd]; len(d) > len(serviceAccounts) && bytes.EqualFold(d[len(d)-len(serviceAccounts):], serviceAccounts) {
		return // a Google Cloud service account: it names a workload, not a person
	}
	if labels == 4 {
		// A mailbox on a host named by its IPv4 address (user@192.168.1.100): the
		// address as a whole is the finding, not just the host.
		if ip, err := netip.ParseAddr(string(t[at+1 : lastEnd])); err == nil && ip.Is4() {
			s.add(eEmail, a, lastEnd, scoreValidated, "")
			return
		}
	}
	tld := t[lastStart:lastEnd]
	for _, c := range tld {
		if !isLetter(c) {
			return
		}
	}
	score := 0.4
	if knownTLD(tld) {
		score = scoreValidated
	}
	s.add(eEmail, a, lastEnd, score, "")
}

// serviceAccounts is the domain of Google Cloud service accounts.
var serviceAccounts = []byte(".gserviceaccount.com")

func isLocal(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

// hexColon handles hex words joined by ':' or '-': MAC addresses and IPv6.
func (s *scanner) hexColon(i int) int {
	if end := s.mac(i); end > i {
		return end
	}
	t := s.t
	if i > 0 && (t[i-1] == ':' || isHex(t[i-1])) {
		return i
	}
	j := i
	for j < len(t) && j-i < 46 && (isHex(t[j]) || t[j] == ':' || t[j] == '.') {
		j++
	}
	a, j, ok := parseIPv6(t, i, j)
	if !ok {
		// "1::.1::": the address may end at a dot that no IPv4 part follows; as
		// masked text ("1::.<IP_ADDRESS>") it would, so masking stays idempotent.
		d := bytes.IndexByte(t[i:j], '.')
		if d <= 0 {
			return i
		}
		if a, j, ok = parseIPv6(t, i, i+d); !ok {
			return i
		}
	}
	if a.IsLoopback() || a.IsUnspecified() {
		return i
	}
	s.add(eIP, i, j, 0.9, "")
	return j
}

// parseIPv6 parses t[i:j], less trailing dots and single colons, as an IPv6 address
// that ends at a word boundary; it returns the address and where it ends.
func parseIPv6(t []byte, i, j int) (netip.Addr, int, bool) {
	for j > i && (t[j-1] == '.' || t[j-1] == ':' && (j-2 < i || t[j-2] != ':')) {
		j--
	}
	if bytes.Count(t[i:j], []byte(":")) < 2 || (j < len(t) && isWord(t[j])) {
		return netip.Addr{}, j, false
	}
	a, err := netip.ParseAddr(string(t[i:j]))
	return a, j, err == nil && a.Is6()
}

// mac matches six hex pairs joined by one separator (: or -) or the Cisco form
// xxxx.xxxx.xxxx, refusing the all-zero and broadcast addresses.
func (s *scanner) mac(i int) int {
	t := s.t
	var hex [12]byte
	n := 0
	end := 0
	if i+17 <= len(t) && (t[i+2] == ':' || t[i+2] == '-') {
		sep := t[i+2]
		for k := 0; k < 6; k++ {
			p := i + 3*k
			if !isHex(t[p]) || !isHex(t[p+1]) || (k < 5 && t[p+2] != sep) {
				return i
			}
			hex[n], hex[n+1] = lower(t[p]), lower(t[p+1])
			n += 2
		}
		end = i + 17
	} else if i+14 <= len(t) && t[i+4] == '.' && t[i+9] == '.' {
		for k := 0; k < 14; k++ {
			if k == 4 || k == 9 {
				continue
			}
			if !isHex(t[i+k]) {
				return i
			}
			hex[n] = lower(t[i+k])
			n++
		}
		end = i + 14
	} else {
		return i
	}
	if end < len(t) && (isWord(t[end]) || t[end] == ':' || t[end] == '-') {
		return i
	}
	if string(hex[:]) == "000000000000" || string(hex[:]) == "ffffffffffff" {
		return i
	}
	s.add(eMAC, i, end, 0.6, "")
	return end
}

// ibanLengths is the IBAN length per country (SWIFT IBAN registry).
var ibanLengths = map[[2]byte]int{
	{'A', 'D'}: 24, {'A', 'E'}: 23, {'A', 'L'}: 28, {'A', 'T'}: 20, {'A', 'Z'}: 28, {'B', 'A'}: 20,
	{'B', 'E'}: 16, {'B', 'G'}: 22, {'B', 'H'}: 22, {'B', 'I'}: 27, {'B', 'R'}: 29, {'B', 'Y'}: 28,
	{'C', 'H'}: 21, {'C', 'R'}: 22, {'C', 'Y'}: 28, {'C', 'Z'}: 24, {'D', 'E'}: 22, {'D', 'J'}: 27,
	{'D', 'K'}: 18, {'D', 'O'}: 28, {'E', 'E'}: 20, {'E', 'G'}: 29, {'E', 'S'}: 24, {'F', 'I'}: 18,
	{'F', 'K'}: 18, {'F', 'O'}: 18, {'F', 'R'}: 27, {'G', 'B'}: 22, {'G', 'E'}: 22, {'G', 'I'}: 23,
	{'G', 'L'}: 18, {'G', 'R'}: 27, {'G', 'T'}: 28, {'H', 'N'}: 28, {'H', 'R'}: 21, {'H', 'U'}: 28,
	{'I', 'E'}: 22, {'I', 'L'}: 23, {'I', 'Q'}: 23, {'I', 'S'}: 26, {'I', 'T'}: 27, {'J', 'O'}: 30,
	{'K', 'W'}: 30, {'K', 'Z'}: 20, {'L', 'B'}: 28, {'L', 'C'}: 32, {'L', 'I'}: 21, {'L', 'T'}: 20,
	{'L', 'U'}: 20, {'L', 'V'}: 21, {'L', 'Y'}: 25, {'M', 'C'}: 27, {'M', 'D'}: 24, {'M', 'E'}: 22,
	{'M', 'K'}: 19, {'M', 'N'}: 20, {'M', 'R'}: 27, {'M', 'T'}: 31, {'M', 'U'}: 30, {'N', 'I'}: 28,
	{'N', 'L'}: 18, {'N', 'O'}: 15, {'O', 'M'}: 23, {'P', 'K'}: 24, {'P', 'L'}: 28, {'P', 'S'}: 29,
	{'P', 'T'}: 25, {'Q', 'A'}: 29, {'R', 'O'}: 24, {'R', 'S'}: 22, {'R', 'U'}: 33, {'S', 'A'}: 24,
	{'S', 'C'}: 31, {'S', 'D'}: 18, {'S', 'E'}: 24, {'S', 'I'}: 19, {'S', 'K'}: 24, {'S', 'M'}: 27,
	{'S', 'O'}: 23, {'S', 'T'}: 25, {'S', 'V'}: 28, {'T', 'L'}: 23, {'T', 'N'}: 24, {'T', 'R'}: 26,
	{'U', 'A'}: 29, {'V', 'A'}: 22, {'V', 'G'}: 24, {'X', 'K'}: 20, {'Y', 'E'}: 30,
}

// iban matches an IBAN at i, compact or in groups of four separated by single
// spaces or dashes, in either case; the country's length and mod 97 must hold.
func (s *scanner) iban(i int) int {
	t := s.t
	if i > 0 && isAlnum(t[i-1]) {
		return i
	}
	want, ok := ibanLengths[[2]byte{upper(t[i]), upper(t[i+1])}]
	if !ok {
		return i
	}
	var buf [34]byte
	n, p := 0, i
	lowerSeen, upperSeen := false, false
	for p < len(t) && n < want {
		c := t[p]
		if isAlnum(c) {
			if class[c] == cLower {
				lowerSeen = true
			} else if class[c] == cUpper {
				upperSeen = true
			}
			buf[n] = upper(c)
			n++
			p++
			continue
		}
		if (c == ' ' || c == '-') && n%4 == 0 && p+1 < len(t) && isAlnum(t[p+1]) {
			p++
			continue
		}
		break
	}
	if n != want || (p < len(t) && isAlnum(t[p])) || (lowerSeen && upperSeen) || !mod97(buf[:n]) {
		return i
	}
	s.add(eIBAN, i, p, scoreValidated, "")
	return p
}

// nino matches a UK National Insurance number: two prefix letters (not D, F, I, Q,
// U, V; second not O; not BG, GB, KN, NK, NT, TN, ZZ), six digits, suffix A–D;
// compact or as AB 12 34 56 C. There is no check digit, so the score is modest.
func (s *scanner) nino(i, j int) {
	t := s.t
	var d [9]byte
	p, n := i, 0
	for p < len(t) && n < 9 {
		c := t[p]
		if c == ' ' && n >= 2 && n%2 == 0 && n <= 8 {
			p++
			continue
		}
		if !isAlnum(c) {
			break
		}
		d[n] = upper(c)
		n++
		p++
	}
	if n != 9 || (p < len(t) && isWord(t[p])) {
		return
	}
	if class[t[i]]&cLower != 0 {
		return // written in capitals
	}
	a, b := d[0], d[1]
	bad := func(c byte, set string) bool {
		for k := 0; k < len(set); k++ {
			if set[k] == c {
				return true
			}
		}
		return false
	}
	if !isLetter(a) || !isLetter(b) || bad(a, "DFIQUV") || bad(b, "DFIOQUV") || !digitsOnly(d[2:8]) || d[8] < 'A' || d[8] > 'D' {
		return
	}
	switch string(d[:2]) {
	case "BG", "GB", "KN", "NK", "NT", "TN", "ZZ":
		return
	}
	s.add(eNINO, i, p, 0.55, "")
}

// nif matches a Spanish NIF (DNI): eight digits and the check letter, optionally
// joined by a dash; t[i:j] is the whole candidate.
func (s *scanner) nif(i, j int) {
	t := s.t
	letter := t[j-1]
	digits := t[i : i+8]
	if !nifCheck(digits, letter) {
		return
	}
	s.add(eNIF, i, j, 0.8, "")
}

// fiscal matches an Italian codice fiscale (16 characters, upper case, with the
// omocodia letters allowed in digit positions) and checks its control letter.
func (s *scanner) fiscal(i, j int) {
	w := s.t[i:j]
	const omocodia = "LMNPQRSTUV"
	digitPos := func(c byte) bool {
		if isDigit(c) {
			return true
		}
		for k := 0; k < len(omocodia); k++ {
			if omocodia[k] == c {
				return true
			}
		}
		return false
	}
	for k, c := range w {
		switch {
		case k < 6 || k == 8 || k == 11 || k == 15:
			if class[c] != cUpper {
				return
			}
		default:
			if !digitPos(c) {
				return
			}
		}
	}
	if !fiscalCheck(w) {
		return
	}
	s.add(eFiscal, i, j, scoreValidated, "")
}

// streetWords are common street suffixes and unitWords the secondary unit
// designators of postal addresses (after USPS Publication 28, appendices C1 and C2,
// with a few non-US ones).
var (
	streetWords = wordSet("street", "st", "avenue", "ave", "road", "rd", "lane", "ln", "drive", "dr",
		"boulevard", "blvd", "way", "court", "ct", "place", "pl", "terrace", "circle", "cir", "parkway",
		"pkwy", "highway", "hwy", "square", "sq", "trail", "alley", "crescent", "close")
	unitWords = wordSet("suite", "ste", "apt", "apartment", "unit", "floor", "fl", "building", "bldg",
		"room", "rm", "box", "po")
)

func wordSet(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// addressNumber reports whether the number at t[start:end] reads as part of a
// postal address: right after a unit word ("Suite 680 36 4022"), or right before a
// street name and its suffix on the same line ("2202 Rissik St", "4022 Oakridge
// Lane"). The street name must be capitalised, so "call 415 555 2671 st once" is not
// an address.
func (s *scanner) addressNumber(start, end int) bool {
	t := s.t
	// The word before, skipping spaces and the punctuation of "Apt. #12".
	i := start
	for i > 0 && (t[i-1] == ' ' || t[i-1] == '.' || t[i-1] == '#' || t[i-1] == ',') {
		i--
	}
	j := i
	for i > 0 && isLetter(t[i-1]) && j-i < 12 {
		i--
	}
	if j > i && (i == 0 || !isAlnum(t[i-1])) && inSet(unitWords, t[i:j]) {
		return true
	}
	// A capitalised name, then a street word.
	next := func(p int) (a, b int) {
		for p < len(t) && t[p] == ' ' {
			p++
		}
		q := p
		for q < len(t) && isLetter(t[q]) && q-p < 24 {
			q++
		}
		return p, q
	}
	a, b := next(end)
	if a == end || b == a || class[t[a]] != cUpper {
		return false
	}
	c, d := next(b)
	return d > c && c > b && inSet(streetWords, t[c:d]) && (d == len(t) || !isAlnum(t[d]))
}

// inSet reports whether the word w, in any case, is in set.
func inSet(set map[string]bool, w []byte) bool {
	var buf [24]byte
	if len(w) > len(buf) {
		return false
	}
	for i, c := range w {
		buf[i] = lower(c)
	}
	return set[string(buf[:len(w)])]
}
