package pii

import (
	"bytes"
	"encoding/base64"
	"math"
)

// Credentials (SECRET findings). Provider token formats are matched by their literal
// prefix, then their exact charset and length; formats follow the public
// documentation of each provider and the rule sets of gitleaks (MIT) and Nosey
// Parker (Apache-2.0), reimplemented here without regular expressions.

// charset bits for secret bodies.
const (
	csAlnum    = 1 << iota // A-Z a-z 0-9
	csUnder                // _
	csDash                 // -
	csDot                  // .
	csSlash                // / +
	csEq                   // =
	csLowerHex             // restricts to 0-9 a-f (with csAlnum unset)
	csUpper32              // A-Z 2-7 (AWS key ids)
	csLetters              // A-Z a-z only
	csLower32              // a-z 2-7 (Vigil's own keys)
	csUpperNum             // A-Z 0-9
)

type secretRule struct {
	id       string
	prefix   string
	cs       int
	min, max int     // body length after the prefix
	entropy  float64 // minimum Shannon entropy (bits per byte) of the body; 0 = none
	contains string  // the body must contain this (OpenAI's T3BlbkFJ marker)
}

var secretRules = []secretRule{
	{id: "aws-access-key-id", prefix: "AKIA", cs: csUpper32, min: 16, max: 16},
	{id: "aws-access-key-id", prefix: "ASIA", cs: csUpper32, min: 16, max: 16},
	{id: "aws-access-key-id", prefix: "ABIA", cs: csUpper32, min: 16, max: 16},
	{id: "aws-access-key-id", prefix: "ACCA", cs: csUpper32, min: 16, max: 16},
	{id: "aws-access-key-id", prefix: "A3T", cs: csUpperNum, min: 17, max: 17},
	{id: "github-pat", prefix: "ghp_", cs: csAlnum, min: 36, max: 36},
	{id: "github-oauth-token", prefix: "gho_", cs: csAlnum, min: 36, max: 36},
	{id: "github-app-token", prefix: "ghu_", cs: csAlnum, min: 36, max: 36},
	{id: "github-app-token", prefix: "ghs_", cs: csAlnum, min: 36, max: 36},
	{id: "github-refresh-token", prefix: "ghr_", cs: csAlnum, min: 36, max: 76},
	{id: "github-fine-grained-pat", prefix: "github_pat_", cs: csAlnum | csUnder, min: 82, max: 82},
	{id: "gitlab-pat", prefix: "glpat-", cs: csAlnum | csUnder | csDash | csDot, min: 20, max: 300},
	{id: "gitlab-pipeline-trigger-token", prefix: "glptt-", cs: csLowerHex, min: 40, max: 40},
	{id: "gitlab-runner-token", prefix: "glrt-", cs: csAlnum | csUnder | csDash | csDot, min: 20, max: 300},
	{id: "gitlab-runner-registration-token", prefix: "GR1348941", cs: csAlnum | csUnder | csDash, min: 20, max: 20},
	{id: "gitlab-deploy-token", prefix: "gldt-", cs: csAlnum | csUnder | csDash, min: 20, max: 300},
	{id: "gitlab-oauth-secret", prefix: "gloas-", cs: csAlnum | csUnder | csDash, min: 20, max: 300},
	{id: "slack-bot-token", prefix: "xoxb-", cs: csAlnum | csDash, min: 20, max: 250},
	{id: "slack-user-token", prefix: "xoxp-", cs: csAlnum | csDash, min: 20, max: 250},
	{id: "slack-legacy-token", prefix: "xoxa-", cs: csAlnum | csDash, min: 10, max: 250},
	{id: "slack-legacy-token", prefix: "xoxr-", cs: csAlnum | csDash, min: 10, max: 250},
	{id: "slack-legacy-token", prefix: "xoxs-", cs: csAlnum | csDash, min: 10, max: 250},
	{id: "slack-config-token", prefix: "xoxe.xox", cs: csAlnum | csDash | csDot, min: 20, max: 300},
	{id: "slack-app-token", prefix: "xapp-", cs: csAlnum | csDash, min: 20, max: 250},
	{id: "slack-webhook", prefix: "hooks.slack.com/services/", cs: csAlnum | csSlash | csUnder, min: 20, max: 120},
	{id: "stripe-secret-key", prefix: "sk_live_", cs: csAlnum, min: 10, max: 247},
	{id: "stripe-secret-key", prefix: "sk_test_", cs: csAlnum, min: 10, max: 247},
	{id: "stripe-restricted-key", prefix: "rk_live_", cs: csAlnum, min: 10, max: 247},
	{id: "stripe-restricted-key", prefix: "rk_test_", cs: csAlnum, min: 10, max: 247},
	{id: "stripe-webhook-secret", prefix: "whsec_", cs: csAlnum, min: 24, max: 64},
	{id: "anthropic-api-key", prefix: "sk-ant-api03-", cs: csAlnum | csUnder | csDash, min: 80, max: 120},
	{id: "anthropic-admin-key", prefix: "sk-ant-admin01-", cs: csAlnum | csUnder | csDash, min: 80, max: 120},
	{id: "anthropic-api-key", prefix: "sk-ant-", cs: csAlnum | csUnder | csDash, min: 32, max: 200},
	{id: "openai-api-key", prefix: "sk-proj-", cs: csAlnum | csUnder | csDash, min: 40, max: 250},
	{id: "openai-api-key", prefix: "sk-svcacct-", cs: csAlnum | csUnder | csDash, min: 40, max: 250},
	{id: "openai-api-key", prefix: "sk-admin-", cs: csAlnum | csUnder | csDash, min: 40, max: 250},
	{id: "openai-api-key", prefix: "sk-", cs: csAlnum | csUnder | csDash, min: 32, max: 250, contains: "T3BlbkFJ"},
	{id: "openai-api-key", prefix: "sk-", cs: csAlnum, min: 40, max: 64, entropy: 3.5}, // legacy keys
	{id: "google-api-key", prefix: "AIza", cs: csAlnum | csUnder | csDash, min: 35, max: 35},
	{id: "google-oauth-client-secret", prefix: "GOCSPX-", cs: csAlnum | csUnder | csDash, min: 28, max: 28},
	{id: "google-oauth-access-token", prefix: "ya29.", cs: csAlnum | csUnder | csDash, min: 30, max: 2048},
	{id: "huggingface-token", prefix: "hf_", cs: csLetters, min: 34, max: 34},
	{id: "huggingface-org-token", prefix: "api_org_", cs: csLetters, min: 34, max: 34},
	{id: "npm-token", prefix: "npm_", cs: csAlnum, min: 36, max: 36},
	{id: "pypi-token", prefix: "pypi-AgEIcHlwaS5vcmc", cs: csAlnum | csUnder | csDash, min: 50, max: 300},
	{id: "sendgrid-api-key", prefix: "SG.", cs: csAlnum | csUnder | csDash | csDot, min: 66, max: 66},
	{id: "digitalocean-token", prefix: "dop_v1_", cs: csLowerHex, min: 64, max: 64},
	{id: "digitalocean-token", prefix: "doo_v1_", cs: csLowerHex, min: 64, max: 64},
	{id: "digitalocean-token", prefix: "dor_v1_", cs: csLowerHex, min: 64, max: 64},
	{id: "groq-api-key", prefix: "gsk_", cs: csAlnum, min: 52, max: 52},
	{id: "databricks-token", prefix: "dapi", cs: csLowerHex, min: 32, max: 32},
	{id: "shopify-token", prefix: "shpat_", cs: csAlnum, min: 32, max: 32},
	{id: "shopify-token", prefix: "shpca_", cs: csAlnum, min: 32, max: 32},
	{id: "shopify-token", prefix: "shppa_", cs: csAlnum, min: 32, max: 32},
	{id: "shopify-token", prefix: "shpss_", cs: csAlnum, min: 32, max: 32},
	{id: "postman-api-key", prefix: "PMAK-", cs: csAlnum | csDash, min: 59, max: 59},
	{id: "age-secret-key", prefix: "AGE-SECRET-KEY-1", cs: csUpperNum, min: 58, max: 58},
	{id: "vigil-agent-key", prefix: "vk_", cs: csLower32, min: 52, max: 52},
	{id: "vigil-token", prefix: "vt_", cs: csLower32, min: 52, max: 52},
	{id: "jwt", prefix: "eyJ"}, // handled by jwt()
}

// rulesByFirst indexes secretRules by the first byte of their prefix, longest
// prefix first so that sk-ant- is tried before sk-. rulesSecond filters on the
// second byte: bit c&63 of rulesSecond[first] is set when a rule's prefix starts
// with first, c; most words that share a first byte with a rule fail there.
var rulesByFirst, rulesSecond = func() (t [256][]int, second [256]uint64) {
	for i, r := range secretRules {
		c := r.prefix[0]
		t[c] = append(t[c], i)
		second[c] |= 1 << (r.prefix[1] & 63)
	}
	for c := range t {
		l := t[c]
		for a := 1; a < len(l); a++ {
			for b := a; b > 0 && len(secretRules[l[b]].prefix) > len(secretRules[l[b-1]].prefix); b-- {
				l[b], l[b-1] = l[b-1], l[b]
			}
		}
	}
	return t, second
}()

// mayHaveRulePrefix reports whether a rule's prefix may start at t[i]: its first
// two bytes pass the tables.
func mayHaveRulePrefix(t []byte, i int) bool {
	return i+1 < len(t) && rulesSecond[t[i]]>>(t[i+1]&63)&1 != 0
}

func inCharset(c byte, cs int) bool {
	switch {
	case cs&csLowerHex != 0:
		return isDigit(c) || (c >= 'a' && c <= 'f')
	case cs&csUpper32 != 0:
		return (c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7')
	case cs&csLower32 != 0:
		return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')
	case cs&csUpperNum != 0:
		return (c >= 'A' && c <= 'Z') || isDigit(c)
	case cs&csLetters != 0:
		return isLetter(c)
	}
	switch {
	case isAlnum(c):
		return cs&csAlnum != 0
	case c == '_':
		return cs&csUnder != 0
	case c == '-':
		return cs&csDash != 0
	case c == '.':
		return cs&csDot != 0
	case c == '/' || c == '+':
		return cs&csSlash != 0
	case c == '=':
		return cs&csEq != 0
	}
	return false
}

// secretPrefix tries the provider rules whose prefix starts at i; it returns the end
// of a match, or i.
func (s *scanner) secretPrefix(i, j int) int {
	t := s.t
	if !mayHaveRulePrefix(t, i) {
		return i
	}
	rest := t[i:]
	for _, k := range rulesByFirst[t[i]] {
		r := &secretRules[k]
		if len(rest) < len(r.prefix) || rest[1] != r.prefix[1] || string(rest[:len(r.prefix)]) != r.prefix {
			continue
		}
		if r.id == "jwt" {
			if end := s.jwt(i); end > i {
				return end
			}
			continue
		}
		b := i + len(r.prefix)
		p := b
		for p < len(t) && p-b <= r.max && inCharset(t[p], r.cs) {
			p++
		}
		// A trailing dot is punctuation, not part of the token.
		for p > b && t[p-1] == '.' && r.cs&csDot != 0 {
			p--
		}
		body := t[b:p]
		if len(body) < r.min || len(body) > r.max || (p < len(t) && isAlnum(t[p])) {
			continue
		}
		if r.contains != "" && !bytes.Contains(body, []byte(r.contains)) {
			continue
		}
		if r.id == "aws-access-key-id" && bytes.HasSuffix(body, []byte("EXAMPLE")) {
			continue // AWS's documentation key
		}
		if r.entropy > 0 && entropy(body) < r.entropy {
			continue
		}
		if placeholder(body) {
			continue
		}
		if r.id == "slack-user-token" && !slackUserToken(body) {
			continue
		}
		id := r.id
		if id == "slack-bot-token" && bytes.Count(body, []byte("-")) == 1 {
			id = "slack-legacy-bot-token" // xoxb-<digits>-<secret>, the pre-2019 form
		}
		s.add(eSecret, i, p, scoreValidated, id)
		return p
	}
	return i
}

// slackUserToken checks the body of an xoxp- token: three numeric ids of 10 to 13
// digits and a 32-digit lower-case hex secret, the structure of the tokens Slack
// issues (and of every real one in Nosey Parker's examples).
func slackUserToken(body []byte) bool {
	for k := 0; k < 3; k++ {
		d := 0
		for d < len(body) && isDigit(body[d]) {
			d++
		}
		if d < 10 || d > 13 || d >= len(body) || body[d] != '-' {
			return false
		}
		body = body[d+1:]
	}
	if len(body) != 32 {
		return false
	}
	for _, c := range body {
		if !isDigit(c) && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// jwt matches a JSON Web Token: three base64url segments whose header decodes to a
// JSON object naming "alg" or "typ".
func (s *scanner) jwt(i int) int {
	t := s.t
	seg := func(p int) int {
		for p < len(t) && (isAlnum(t[p]) || t[p] == '_' || t[p] == '-') {
			p++
		}
		return p
	}
	h := seg(i)
	if h-i < 10 || h >= len(t) || t[h] != '.' {
		return i
	}
	pl := seg(h + 1)
	if pl-h-1 < 10 || pl >= len(t) || t[pl] != '.' {
		return i
	}
	sig := seg(pl + 1)
	for sig < len(t) && t[sig] == '=' {
		sig++
	}
	if sig < len(t) && isAlnum(t[sig]) {
		return i
	}
	var buf [96]byte
	src := t[i:min(h, i+128)]
	n, err := base64.RawURLEncoding.Decode(buf[:], src[:len(src)/4*4])
	if err != nil && n == 0 {
		return i
	}
	hdr := buf[:n]
	if len(hdr) < 2 || hdr[0] != '{' || !(bytes.Contains(hdr, []byte(`"alg"`)) || bytes.Contains(hdr, []byte(`"typ"`))) {
		return i
	}
	// An unsigned token ("alg":"none", empty signature) proves nothing, and the
	// jwt.io sample is documentation.
	if sig == pl+1 || bytes.Contains(hdr, []byte(`"none"`)) || bytes.HasPrefix(t[pl+1:], []byte("SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")) {
		return i
	}
	if m, _ := base64.RawURLEncoding.Decode(buf[:], t[h+1:min(pl, h+1+64)]); m == 0 || buf[0] != '{' {
		return i
	}
	s.add(eSecret, i, sig, scoreValidated, "jwt")
	return sig
}

var (
	pemBegin = []byte("-----BEGIN ")
	pemEnd   = []byte("-----END ")
)

// pem matches a PEM private key block. A block cut short (no END line, as in a
// truncated paste) is still a secret: the finding runs to the end of the key body.
func (s *scanner) pem(i int) int {
	t := s.t
	p := i + len(pemBegin)
	q := p
	for q < len(t) && q-p < 40 && (class[t[q]]&(cUpper|cDigit) != 0 || t[q] == ' ') {
		q++
	}
	label := t[p:q]
	if !bytes.HasSuffix(label, []byte("PRIVATE KEY")) && !bytes.HasSuffix(label, []byte("PRIVATE KEY BLOCK")) {
		return i
	}
	if !bytes.HasPrefix(t[q:], []byte("-----")) {
		return i
	}
	body := q + 5
	end := -1
	limit := min(len(t), body+16<<10)
	if k := bytes.Index(t[body:limit], pemEnd); k >= 0 {
		e := body + k + len(pemEnd)
		if m := bytes.Index(t[e:min(len(t), e+60)], []byte("-----")); m >= 0 {
			end = e + m + 5
		}
	}
	// Count the key material; a template with no body is not a key.
	stop := end
	if stop < 0 {
		stop = body
		for stop < limit && (isAlnum(t[stop]) || t[stop] == '+' || t[stop] == '/' || t[stop] == '=' || t[stop] == '\n' || t[stop] == '\r' || t[stop] == ' ' || t[stop] == ':' || t[stop] == '-' && !bytes.HasPrefix(t[stop:], []byte("-----"))) {
			stop++
		}
	}
	material := 0
	for _, c := range t[body:stop] {
		if isAlnum(c) || c == '+' || c == '/' {
			material++
		}
	}
	if material < 40 {
		return i
	}
	if end < 0 {
		end = stop
		for end > body && (t[end-1] == '\n' || t[end-1] == '\r' || t[end-1] == ' ') {
			end--
		}
	}
	s.add(eSecret, i, end, scoreValidated, "private-key")
	return end
}

// secretKeywords name credentials in key = value text and in JSON keys. A word (or
// identifier such as DB_PASSWORD, aws_secret_access_key) ending in one of them
// marks the value after it.
var secretKeywords = []string{
	"password", "passwd", "pwd", "passphrase", "pass", "secret", "token", "apikey", "api_key", "api-key",
	"accesskey", "access_key", "secretkey", "secret_key", "privatekey", "private_key", "credential",
	"credentials", "auth", "authorization", "client_secret", "clientsecret",
	"session", "sessionid", "session_id", "sess", "sessid", "jsessionid", "phpsessid", "cookie",
	"subscriptionkey", "subscription_key", "subscription-key",
}

// suffixSet is a bit set of three-byte word endings, case-insensitive. Each byte is
// folded to its low five bits (which also folds upper case onto lower case), so the
// set may hold a few endings that no keyword has (a digit and a letter can fold
// together): it is a filter, never the final test.
type suffixSet [1 << 15 / 64]uint64

func suffixKey(b0, b1, b2 byte) uint32 {
	return uint32(b0&31)<<10 | uint32(b1&31)<<5 | uint32(b2&31)
}

func (s *suffixSet) add(w string) {
	k := suffixKey(w[len(w)-3], w[len(w)-2], w[len(w)-1])
	s[k/64] |= 1 << (k % 64)
}

// has reports whether the three bytes before end in t may end a keyword; end >= 3.
func (s *suffixSet) has(t []byte, end int) bool {
	k := suffixKey(t[end-3], t[end-2], t[end-1])
	return s[k/64]>>(k%64)&1 != 0
}

// secretSuffix holds the last three bytes of every secret keyword, and
// secretBySuffix the keywords (indexes into secretKeywords, in order) per ending.
var secretSuffix, secretBySuffix = func() (s suffixSet, by map[uint32][]int) {
	by = map[uint32][]int{}
	for i, k := range secretKeywords {
		s.add(k)
		key := suffixKey(k[len(k)-3], k[len(k)-2], k[len(k)-1])
		by[key] = append(by[key], i)
	}
	return s, by
}()

// isSecretName reports whether an identifier (any case) names a credential, and
// whether it is a password (which may be shorter and less random than a token).
func isSecretName(w []byte) (yes, password bool) {
	if len(w) < 3 || len(w) > 48 {
		return false, false
	}
	// Every keyword must end the identifier, so one lookup of the last three bytes
	// rules out nearly every word (role, content, model, the words of prose) before
	// the keywords are compared one by one.
	if !secretSuffix.has(w, len(w)) {
		return false, false
	}
	var buf [48]byte
	for i, c := range w {
		buf[i] = lower(c)
	}
	lw := buf[:len(w)]
	// The keyword must end the identifier and start a part of it. Only keywords
	// with the identifier's last three bytes can end it.
	for _, x := range secretBySuffix[suffixKey(lw[len(lw)-3], lw[len(lw)-2], lw[len(lw)-1])] {
		k := secretKeywords[x]
		if !bytes.HasSuffix(lw, []byte(k)) {
			continue
		}
		at := len(lw) - len(k)
		if at > 0 && isLetter(lw[at-1]) && !(class[w[at]]&cUpper != 0 && class[w[at-1]]&cLower != 0) && k != "sessid" && k != "jsessionid" {
			continue // "bypass", "compass"; but "dbPassword" splits at the capital
		}
		if k == "pass" && at == 0 && len(lw) == 4 {
			return true, true
		}
		pw := k == "password" || k == "passwd" || k == "pwd" || k == "passphrase" || k == "pass"
		return true, pw
	}
	return false, false
}

// keywordSecret handles "password: x", "api_key=x", "token is x" with the name at
// t[i:j]: the value after the assignment is a SECRET when it looks like one.
func (s *scanner) keywordSecret(i, j int) {
	t := s.t
	// Cheap gate first: what follows must be an assignment.
	p := j
	if p < len(t) && (t[p] == '"' || t[p] == '\'') {
		p++
	}
	for p < len(t) && t[p] == ' ' && p-j < 3 {
		p++
	}
	if p >= len(t) {
		return
	}
	query := false
	switch {
	case t[p] == ':' || t[p] == '=':
		query = t[p] == '='
		p++
		if p < len(t) && (t[p] == '=' || t[p] == '>') {
			p++
		}
	case p+2 < len(t) && t[p] == 'i' && t[p+1] == 's' && t[p+2] == ' ':
		p += 2
	default:
		return
	}
	// The name may be a header or identifier with dashes: X-API-Key.
	for i >= 2 && t[i-1] == '-' && isAlnum(t[i-2]) {
		i -= 2
		for i > 0 && isAlnum(t[i-1]) {
			i--
		}
	}
	yes, pw := isSecretName(t[i:j])
	if !yes {
		yes, pw = twoWordName(t, i, j)
	}
	if !yes {
		return
	}
	for p < len(t) && (t[p] == ' ' || t[p] == '\t') {
		p++
	}
	if n := j - i; n >= 6 && bytes.EqualFold(t[j-6:j], []byte("cookie")) && (n == 6 || t[j-7] == '-') && cookiePair(t[p:]) {
		// Cookie: a=1; b=2 is a list of cookies, not one value.
		s.cookies(p, n > 6)
		return
	}
	quote := byte(0)
	if p < len(t) && (t[p] == '"' || t[p] == '\'' || t[p] == '`') {
		quote = t[p]
		p++
	}
	// Authorization: Bearer x / Basic x, and provider tokens, which their own
	// rules name more precisely.
	if q := s.authScheme(p, wordEnd(t, p)); q > p {
		return
	}
	if p < len(t) && isWord(t[p]) {
		if q := s.secretPrefix(p, wordEnd(t, p)); q > p {
			return
		}
		if hasRulePrefix(t[p:]) {
			return // a provider's prefix with the wrong shape: a fake or a truncation
		}
	}
	v := p
	for v < len(t) && v-p < 256 && t[v] > ' ' && t[v] != quote && (quote != 0 || (t[v] != ',' && t[v] != ';' && t[v] != '"' && t[v] != '\'' && (t[v] != '&' || !query))) {
		v++
	}
	for v > p && quote == 0 && (t[v-1] == '.' || t[v-1] == ')') {
		v--
	}
	if looksSecret(t[p:v], pw) {
		s.add(eSecret, p, v, 0.9, ruleFor(pw))
	}
}

// twoWordName reports whether the word t[i:j] and the word before it, joined, name
// a credential: "API key", "subscription key", "access token" written as two words.
func twoWordName(t []byte, i, j int) (yes, password bool) {
	if i < 3 || t[i-1] != ' ' || j-i > 12 {
		return false, false
	}
	k := i - 1
	for k > 0 && isLetter(t[k-1]) && i-k < 14 {
		k--
	}
	if k == i-1 || (k > 0 && isAlnum(t[k-1])) {
		return false, false
	}
	var buf [32]byte
	n := copy(buf[:], t[k:i-1])
	buf[n] = '_'
	n++
	n += copy(buf[n:], t[i:j])
	return isSecretName(buf[:n])
}

// cookiePair reports whether t starts with name=value (a base64 value ending in =
// is not a pair).
func cookiePair(t []byte) bool {
	for k, c := range t {
		switch {
		case c == '=':
			return k > 0 && k+1 < len(t) && t[k+1] > ' ' && t[k+1] != ';' && t[k+1] != '='
		case c == ';' || c <= ' ' || c == '"' || c == '\'':
			return false
		}
	}
	return false
}

// cookies handles the value of a Cookie header at p: each cookie's value is a
// SECRET when it looks like one (session cookies have any name). Cookies whose
// names are credential names are left to the scan, which finds them as name=value
// anyway. In Set-Cookie (set) only the first pair is a cookie; the rest are its
// attributes (Path, Domain, Expires).
func (s *scanner) cookies(p int, set bool) {
	t := s.t
	for p < len(t) {
		n := p
		for n < len(t) && t[n] != '=' && t[n] != ';' && t[n] > ' ' {
			n++
		}
		if n >= len(t) || t[n] != '=' || n == p {
			return
		}
		v := n + 1
		e := v
		for e < len(t) && t[e] != ';' && t[e] > ' ' && t[e] != '"' && t[e] != '\'' {
			e++
		}
		// A cookie whose name says nothing must look random: a session id mixes
		// letters and digits (a preference such as settings_abcdef does not).
		if named, _ := isSecretName(t[p:n]); !named && e > v && looksSecret(t[v:e], false) && hasDigit(t[v:e]) && bytes.ContainsFunc(t[v:e], isLetterRune) {
			s.add(eSecret, v, e, 0.9, "cookie")
		}
		if set || e >= len(t) || t[e] != ';' {
			return
		}
		p = e + 1
		for p < len(t) && t[p] == ' ' {
			p++
		}
	}
}

func isLetterRune(r rune) bool { return r < 0x80 && isLetter(byte(r)) }

// hasRulePrefix reports whether t starts with a provider rule's prefix.
func hasRulePrefix(t []byte) bool {
	if !mayHaveRulePrefix(t, 0) {
		return false
	}
	for _, k := range rulesByFirst[t[0]] {
		if p := secretRules[k].prefix; len(p) >= 3 && bytes.HasPrefix(t, []byte(p)) {
			return true
		}
	}
	return false
}

func ruleFor(password bool) string {
	if password {
		return "password"
	}
	return "generic-secret"
}

func wordEnd(t []byte, p int) int {
	for p < len(t) && isAlnum(t[p]) {
		p++
	}
	return p
}

// authScheme matches "Bearer <token>" and "Basic <base64 user:pass>" with the scheme
// word at t[i:j]; it returns the end of the credential, or i.
func (s *scanner) authScheme(i, j int) int {
	t := s.t
	w := t[i:j]
	bearer := len(w) == 6 && bytes.EqualFold(w, []byte("bearer"))
	basic := len(w) == 5 && bytes.EqualFold(w, []byte("basic"))
	if !bearer && !basic || j >= len(t) || t[j] != ' ' {
		return i
	}
	p := j + 1
	q := p
	for q < len(t) && q-p < 4096 && (isAlnum(t[q]) || bytes.IndexByte([]byte("-._~+/="), t[q]) >= 0) {
		q++
	}
	for q > p && t[q-1] == '.' {
		q--
	}
	tok := t[p:q]
	if bearer {
		if len(tok) < 8 || placeholder(tok) || !(entropy(tok) >= 3 || classes(tok) >= 3) {
			return i
		}
		if s.jwt(p) == q { // a JWT is reported as such
			return q
		}
		s.add(eSecret, p, q, 0.95, "bearer-token")
		return q
	}
	var buf [192]byte
	if len(tok) < 8 || base64.StdEncoding.DecodedLen(len(tok)) > len(buf) {
		return i
	}
	n, err := base64.StdEncoding.Decode(buf[:], tok)
	if err != nil || bytes.IndexByte(buf[:n], ':') <= 0 {
		return i
	}
	s.add(eSecret, p, q, 0.95, "basic-auth")
	return q
}

// urlCredentials reports (and records) a password in a URL's userinfo:
// scheme://user:password@host.
func (s *scanner) urlCredentials(at int) bool {
	t := s.t
	a := at
	for a > 0 && at-a < 256 && t[a-1] > ' ' && t[a-1] != '/' && t[a-1] != '"' && t[a-1] != '@' {
		a--
	}
	if a < 3 || t[a-1] != '/' || t[a-2] != '/' || t[a-3] != ':' {
		return false
	}
	colon := bytes.IndexByte(t[a:at], ':')
	if colon < 0 {
		return true // https://token@host: a provider rule may report the token
	}
	pw := t[a+colon+1 : at]
	if len(pw) == 0 || pw[0] == '$' || pw[0] == '{' || pw[0] == '<' || pw[0] == '%' || pw[0] == '*' || allSame(pw) {
		return true
	}
	s.add(eSecret, a+colon+1, at, 0.95, "url-credentials")
	return true
}

// looksSecret decides whether a value assigned to a credential name is a real
// credential rather than a placeholder, a variable reference or a word.
func looksSecret(v []byte, password bool) bool {
	if len(v) > 512 || placeholder(v) || v[0] == '/' || bytes.Contains(v, []byte("://")) {
		return false
	}
	if at := bytes.IndexByte(v, '@'); at > 0 && bytes.IndexByte(v[at:], '.') > 0 {
		return false // an account name (user@host), not a secret
	}

	var lowerN, upperN, digitN, otherN int
	for _, c := range v {
		switch class[c] {
		case cLower:
			lowerN++
		case cUpper:
			upperN++
		case cDigit:
			digitN++
		default:
			if c <= ' ' {
				return false
			}
			otherN++
		}
	}
	kinds := 0
	for _, n := range []int{lowerN, upperN, digitN, otherN} {
		if n > 0 {
			kinds++
		}
	}
	if password {
		return len(v) >= 6 && (kinds >= 2 || len(v) >= 12)
	}
	return len(v) >= 12 && kinds >= 2 && entropy(v) >= 3
}

// placeholder reports values that stand in for a secret: ${VAR}, {{x}}, <token>,
// %s, ****, xxxx, "changeme", "your-api-key", "example"...
func placeholder(v []byte) bool {
	if len(v) == 0 {
		return true
	}
	switch v[0] {
	case '$', '{', '<', '%', '*', '[', '(':
		return true
	}
	if allSame(v) || holdsMaskOutput(v) {
		return true
	}
	var buf [64]byte
	n := min(len(v), len(buf))
	for i := 0; i < n; i++ {
		buf[i] = lower(v[i])
	}
	lv := buf[:n]
	switch string(lv) {
	case "password", "secret", "token", "null", "none", "nil", "true", "false", "undefined", "required", "string", "hidden":
		return true
	}
	for _, w := range [...]string{"example", "placeholder", "your_", "your-", "yourkey", "changeme", "xxxxx", "redacted", "dummy", "...",
		"tokenhere", "keyhere", "secrethere", "passwordhere", "_here", "-here"} {
		if bytes.Contains(lv, []byte(w)) {
			return true
		}
	}
	return false
}

// holdsMaskOutput reports whether v holds what masking writes (<TYPE>, <TYPE_3f9a1c0b>,
// <TYPE_k7q2m9x3vb4c>): a value already masked in part is not a secret, and treating
// it as one would make masking its own output mask again.
func holdsMaskOutput(v []byte) bool {
	for i := bytes.IndexByte(v, '<'); i >= 0 && i+1 < len(v); {
		j := i + 1
		for j < len(v) && (class[v[j]]&(cUpper|cDigit|cUnder) != 0 || j > i+1 && class[v[j]] == cLower) {
			j++
		}
		if j < len(v) && v[j] == '>' && j-i > 3 && class[v[i+1]] == cUpper {
			return true
		}
		k := bytes.IndexByte(v[i+1:], '<')
		if k < 0 {
			break
		}
		i += 1 + k
	}
	return false
}

// classes counts the kinds of character in b: lower, upper, digit, other.
func classes(b []byte) int {
	var k [4]bool
	for _, c := range b {
		switch class[c] {
		case cLower:
			k[0] = true
		case cUpper:
			k[1] = true
		case cDigit:
			k[2] = true
		default:
			k[3] = true
		}
	}
	n := 0
	for _, x := range k {
		if x {
			n++
		}
	}
	return n
}

// entropy is the Shannon entropy of b in bits per byte.
func entropy(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	var counts [256]uint16
	for _, c := range b {
		counts[c]++
	}
	h := 0.0
	n := float64(len(b))
	for _, k := range counts {
		if k > 0 {
			p := float64(k) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// keyedValue handles a JSON string value whose key names a credential: the whole
// value is the candidate.
func (s *scanner) keyedValue(t []byte, password bool) {
	v := bytes.TrimSpace(t)
	off := bytes.Index(t, v)
	if len(v) == 0 || off < 0 {
		return
	}
	if sp := bytes.IndexByte(v, ' '); sp > 0 {
		s.authScheme(off, off+sp) // "Bearer x" in an authorization field
		return
	}
	if looksSecret(v, password) {
		s.add(eSecret, off, off+len(v), 0.9, ruleFor(password))
	}
}
