package pii

import (
	"crypto/sha256"
)

// Check-digit algorithms used by the validators. Each takes the candidate's
// characters with separators already removed and never allocates.

// luhn reports whether the ASCII digits in d pass the Luhn (mod 10) check.
func luhn(d []byte) bool {
	sum, dbl := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if dbl {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
		dbl = !dbl
	}
	return sum%10 == 0
}

// mod97 reports whether an IBAN (upper-case letters and digits, no separators)
// passes ISO 7064 MOD 97-10: the first four characters move to the end, letters
// become 10..35, and the resulting number mod 97 is 1.
func mod97(s []byte) bool {
	if len(s) < 5 {
		return false
	}
	r := 0
	add := func(c byte) bool {
		switch {
		case c >= '0' && c <= '9':
			r = (r*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			r = (r*100 + int(c-'A'+10)) % 97
		default:
			return false
		}
		return true
	}
	for _, c := range s[4:] {
		if !add(c) {
			return false
		}
	}
	for _, c := range s[:4] {
		if !add(c) {
			return false
		}
	}
	return r == 1
}

var (
	verhoeffD = [10][10]byte{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 4, 0, 6, 7, 8, 9, 5},
		{2, 3, 4, 0, 1, 7, 8, 9, 5, 6}, {3, 4, 0, 1, 2, 8, 9, 5, 6, 7},
		{4, 0, 1, 2, 3, 9, 5, 6, 7, 8}, {5, 9, 8, 7, 6, 0, 4, 3, 2, 1},
		{6, 5, 9, 8, 7, 1, 0, 4, 3, 2}, {7, 6, 5, 9, 8, 2, 1, 0, 4, 3},
		{8, 7, 6, 5, 9, 3, 2, 1, 0, 4}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0},
	}
	verhoeffP = [8][10]byte{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 5, 7, 6, 2, 8, 3, 0, 9, 4},
		{5, 8, 0, 3, 7, 9, 6, 1, 4, 2}, {8, 9, 1, 6, 0, 4, 3, 5, 2, 7},
		{9, 4, 5, 3, 1, 2, 6, 8, 7, 0}, {4, 2, 8, 6, 5, 7, 3, 9, 0, 1},
		{2, 7, 9, 3, 8, 0, 6, 4, 1, 5}, {7, 0, 4, 6, 9, 1, 3, 2, 5, 8},
	}
)

// verhoeff reports whether the digits in d pass the Verhoeff check (Aadhaar).
func verhoeff(d []byte) bool {
	c := byte(0)
	for i := 0; i < len(d); i++ {
		c = verhoeffD[c][verhoeffP[i%8][d[len(d)-1-i]-'0']]
	}
	return c == 0
}

// nhsCheck reports whether 10 digits form a valid NHS number: weights 10..2 over
// the first nine, 11 - (sum mod 11) is the tenth (11 → 0; 10 is never valid).
func nhsCheck(d []byte) bool {
	if len(d) != 10 {
		return false
	}
	sum := 0
	for i := 0; i < 9; i++ {
		sum += int(d[i]-'0') * (10 - i)
	}
	c := 11 - sum%11
	if c == 11 {
		c = 0
	}
	return c != 10 && c == int(d[9]-'0')
}

// tfnCheck reports whether 9 digits form a valid Australian tax file number.
func tfnCheck(d []byte) bool {
	if len(d) != 9 {
		return false
	}
	w := [9]int{1, 4, 3, 7, 5, 8, 6, 9, 10}
	sum := 0
	for i, c := range d {
		sum += int(c-'0') * w[i]
	}
	return sum%11 == 0
}

const nifLetters = "TRWAGMYFPDXBNJZSQVHLCKE"

// nifCheck reports whether 8 digits and a letter form a valid Spanish NIF (DNI).
func nifCheck(digits []byte, letter byte) bool {
	n := 0
	for _, c := range digits {
		n = n*10 + int(c-'0')
	}
	return nifLetters[n%23] == upper(letter)
}

// Italian fiscal code check character tables (odd positions are 1-based odd).
var fiscalOdd = [36]int{
	// 0-9
	1, 0, 5, 7, 9, 13, 15, 17, 19, 21,
	// A-Z
	1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
}

// fiscalCheck reports whether a 16-character upper-case codice fiscale has the
// right control letter.
func fiscalCheck(s []byte) bool {
	if len(s) != 16 {
		return false
	}
	sum := 0
	for i := 0; i < 15; i++ {
		c := s[i]
		var idx int
		switch {
		case c >= '0' && c <= '9':
			idx = int(c - '0')
		case c >= 'A' && c <= 'Z':
			idx = int(c-'A') + 10
		default:
			return false
		}
		if i%2 == 0 { // 1-based odd
			sum += fiscalOdd[idx]
		} else if idx < 10 {
			sum += idx
		} else {
			sum += idx - 10
		}
	}
	return s[15] == byte('A'+sum%26)
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

var base58Index = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(base58Alphabet); i++ {
		t[base58Alphabet[i]] = int8(i)
	}
	return t
}()

// base58Check reports whether s is a Base58Check string of a 25-byte Bitcoin
// address (version byte, 20-byte hash, 4-byte double-SHA-256 checksum).
func base58Check(s []byte) bool {
	var out [25]byte
	for _, c := range s {
		v := int(base58Index[c])
		if v < 0 {
			return false
		}
		carry := v
		for i := len(out) - 1; i >= 0; i-- {
			carry += 58 * int(out[i])
			out[i] = byte(carry)
			carry >>= 8
		}
		if carry != 0 {
			return false // more than 25 bytes
		}
	}
	// Leading '1's stand for leading zero bytes; the decoded length must be exactly 25.
	ones := 0
	for ones < len(s) && s[ones] == '1' {
		ones++
	}
	lead := 0
	for lead < len(out) && out[lead] == 0 {
		lead++
	}
	if lead != ones {
		return false
	}
	h := sha256.Sum256(out[:21])
	h = sha256.Sum256(h[:])
	return h[0] == out[21] && h[1] == out[22] && h[2] == out[23] && h[3] == out[24]
}

const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

// bech32Check reports whether s (all lower-case or all upper-case) is a valid
// Bech32 or Bech32m string with human-readable part "bc" (BIP 173, BIP 350).
func bech32Check(s []byte) bool {
	if len(s) < 14 || len(s) > 90 {
		return false
	}
	lower, upper := false, false
	var buf [90]byte
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= 'A' && c <= 'Z':
			upper = true
			c |= 0x20
		}
		buf[i] = c
	}
	if lower && upper {
		return false
	}
	b := buf[:len(s)]
	if b[0] != 'b' || b[1] != 'c' || b[2] != '1' {
		return false
	}
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	poly := func(v uint32) {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ v
		for i := 0; i < 5; i++ {
			if (top>>i)&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	// hrp "bc" expanded: high bits, 0, low bits.
	poly('b' >> 5)
	poly('c' >> 5)
	poly(0)
	poly('b' & 31)
	poly('c' & 31)
	for _, c := range b[3:] {
		idx := -1
		for j := 0; j < len(bech32Charset); j++ {
			if bech32Charset[j] == c {
				idx = j
				break
			}
		}
		if idx < 0 {
			return false
		}
		poly(uint32(idx))
	}
	return chk == 1 || chk == 0x2bc830a3
}
