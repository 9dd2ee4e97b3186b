package pii

import "strings"

// genericTLDs are the generic top-level domains that carry most mail. Every
// two-letter top-level domain is a country code and counts as public too. Reserved
// names (example, invalid, localhost, test, local, internal) are deliberately absent:
// addresses there reach nobody outside, so they need a context word.
var genericTLDs = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range strings.Fields(`
com net org edu gov mil int info biz name pro aero coop museum mobi jobs travel tel asia cat
xxx post app dev page ai io co online site tech store blog cloud email digital agency company
solutions services network systems software global world today news media live life shop club
xyz top icu vip work link space website art design studio group team center academy institute
university school law legal bank finance money capital ventures consulting partners health
care clinic doctor dental hospital fitness fund insurance realty estate properties house homes
land eco green energy solar auto cars bike tours holiday flights hotel restaurant cafe bar pizza
food wine beer fashion clothing shoes jewelry watch games game fun social chat community
foundation charity ngo gay love dating wedding family kids baby pet dog mba phd careers
training education courses mail inc llc ltd gmbh corp host hosting domains web one zone city
london nyc paris berlin tokyo amsterdam wien moscow istanbul madrid barcelona sydney melbourne
quebec scot wales swiss africa arab lat eus gal bzh cymru ovh google gmail amazon apple microsoft
yahoo icloud proton protonmail fastmail hotmail outlook live msn aol zoho yandex gmx mailru
press reviews report guide guru expert express express review solutions support systems
technology tools trade trading plus plc works world xn--p1ai
`) {
		m[t] = true
	}
	return m
}()

// knownTLD reports whether tld (ASCII letters) is a public top-level domain.
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
	return genericTLDs[string(buf[:len(tld)])]
}
