package pii

import (
	"strings"

	"golang.org/x/net/publicsuffix"
)

// genericTLDs are the top-level domains that carry most mail, answered without a
// lookup. Every two-letter top-level domain is a country code and counts as public
// too; the rest are looked up in the Public Suffix List (knownTLD).
var genericTLDs = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range strings.Fields(`
com net org edu gov mil int info biz name pro aero coop museum mobi jobs travel tel asia cat
app dev page ai io co online site tech store blog cloud email digital agency company
solutions services network systems software global world today news media live life shop club
xyz top icu vip work link space website art design studio group team center academy institute
university school law legal bank finance money capital ventures consulting partners health
care clinic doctor dental hospital fitness fund insurance realty estate properties house homes
`) {
		m[t] = true
	}
	return m
}()

// privateTLDs are names reserved for documentation, tests and private networks
// (RFC 2606, RFC 6761, RFC 6762, ICANN's .internal) and the ones companies commonly
// use internally. An address there belongs to a person as much as a public one does
// (maria@acme.internal is Maria's work address), so it is an EMAIL_ADDRESS too.
// .invalid is left out: it is guaranteed to reach nobody, and is written so on
// purpose; it needs a context word.
var privateTLDs = map[string]bool{
	"example": true, "test": true, "localhost": true, "local": true,
	"internal": true, "intranet": true, "corp": true, "lan": true, "home": true, "private": true,
}

// knownTLD reports whether tld (ASCII letters) is a top-level domain mail is sent
// to: a public one (ICANN's section of the Public Suffix List, which holds every
// delegated TLD: .events, .photography, .insure…) or a private-use one. File
// extensions (png, txt, json, html) are neither.
func knownTLD(tld []byte) bool {
	if len(tld) == 2 {
		return true
	}
	if len(tld) > 24 {
		return false
	}
	var buf [24]byte
	for i, c := range tld {
		buf[i] = lower(c)
	}
	t := buf[:len(tld)]
	if genericTLDs[string(t)] || privateTLDs[string(t)] {
		return true
	}
	suffix, icann := publicsuffix.PublicSuffix(string(t))
	return icann && len(suffix) == len(t)
}
