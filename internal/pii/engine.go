package pii

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nyaruka/phonenumbers"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Operator says what masking does with a finding.
type Operator string

// The operators. Every entity type has one (Options.Operator unless
// Options.Operators says otherwise).
const (
	// Redact replaces the value with its type: <EMAIL_ADDRESS>.
	Redact Operator = "redact"
	// Mask keeps a few characters that help a human recognise the value and stars
	// the rest: ************1111 for a card, ****@example.com for an email.
	Mask Operator = "mask"
	// Hash replaces the value with a stable pseudonym, a keyed HMAC of the value:
	// <EMAIL_ADDRESS_3f9a1c0b>. The same value gives the same pseudonym everywhere
	// the same HashKey is used; without the key it can't be reversed or guessed.
	Hash Operator = "hash"
	// Tokenize replaces the value with a token that Restore turns back into the
	// value, for the same agent and session, until the vault entry expires:
	// <EMAIL_ADDRESS_k7q2m9x3vb4c>. The value is kept encrypted in the Vault.
	Tokenize Operator = "tokenize"
	// Block refuses the whole payload: masking returns an error matching ErrBlocked.
	Block Operator = "block"
)

// Operators lists the operators in the order the manual gives them.
func Operators() []Operator { return []Operator{Redact, Mask, Hash, Tokenize, Block} }

func (o Operator) valid() bool {
	switch o {
	case Redact, Mask, Hash, Tokenize, Block:
		return true
	}
	return false
}

// ErrBlocked is returned (wrapped in a caller-safe *vigil.Error with code
// policy_denied) when a payload holds a finding whose operator is Block. Check with
// errors.Is. The message names the types, never the values.
var ErrBlocked = errors.New("payload holds personal data or a secret that policy blocks")

// Defaults for Options.
const (
	DefaultOperator = Redact
	// DefaultVaultTTL is how long a tokenized value can be restored.
	DefaultVaultTTL = 24 * time.Hour
	// DefaultMaxNesting is how many levels of JSON-inside-a-string (tool-call
	// arguments holding JSON) are decoded and scanned as JSON.
	DefaultMaxNesting = 2
	// DefaultMaxStreamHold caps the bytes a StreamMasker holds back while an entity
	// may still be growing (PEM private keys are the long case).
	DefaultMaxStreamHold = 8 << 10
)

// DefaultPhoneRegions are the regions whose national number formats are checked
// when a phone-shaped number carries no country code and no context word
// (Presidio's default list).
var DefaultPhoneRegions = []string{"US", "CA", "GB", "DE", "FR", "IL", "IN", "BR"}

// DefaultDisabled lists built-in types that are off unless Options.Entities turns
// them on. None today: context-only types already need a context word.
var DefaultDisabled = []string{}

// Scope identifies whose tokens these are: a token made for one agent's session is
// never restored for another.
type Scope struct {
	AgentID   string
	SessionID string
}

// CustomRecognizer finds an organisation-specific identifier (employee ids,
// project code names) with a regular expression. Custom patterns run over every
// decoded string that passes their literal prefilter, so they cost more than the
// built-in recognizers: prefer patterns that begin with a literal (EMP-\d{6}).
type CustomRecognizer struct {
	// Name is the entity type reported, upper case (EMPLOYEE_ID). It MUST NOT be a
	// built-in type.
	Name string
	// Pattern is a Go regular expression (RE2 syntax) for the value.
	Pattern string
	// Validator is "" (none), "luhn", "mod97" or "verhoeff", applied to the
	// match's letters and digits.
	Validator string
	// Context words (whole words, any case) that raise the score by 0.35 when found
	// among the five words before a match or in its JSON key.
	Context []string
	// Score is the base score of a match (0..1]. Default 0.6, enough without context.
	Score float64
}

// Options configure an Engine. The zero value is usable: every built-in type on,
// operator redact, threshold 0.5. Tokenize needs Vault and VaultKey; Hash needs
// HashKey.
type Options struct {
	// Operator applies to every type not named in Operators. Default Redact.
	Operator Operator
	// Operators overrides the operator per entity type.
	Operators map[string]Operator
	// Entities turns types on (true) or off (false); unnamed types keep their
	// default (on, except those in DefaultDisabled). Custom types are always on.
	Entities map[string]bool
	// Threshold is the minimum score a finding needs (0..1]. Default 0.5.
	Threshold float64
	// Thresholds overrides Threshold per entity type.
	Thresholds map[string]float64
	// AllowValues are values never reported (exact match after trimming, case
	// insensitive), e.g. the company's support address.
	AllowValues []string
	// AllowPatterns are Go regular expressions; a finding whose whole value matches
	// one is not reported (e.g. `.*@example\.com`).
	AllowPatterns []string
	// Custom recognizers for organisation-specific identifiers.
	Custom []CustomRecognizer
	// PhoneRegions are ISO 3166 region codes for national phone formats. Default
	// DefaultPhoneRegions.
	PhoneRegions []string
	// HashKey keys the Hash operator's HMAC; at least 16 bytes when any type uses
	// Hash. Keep it per deployment so pseudonyms stay stable across restarts.
	HashKey []byte
	// VaultKey is the 32-byte AES-256 key for tokenized values; the Vault only ever
	// sees ciphertext. Required when any type uses Tokenize.
	VaultKey []byte
	// Vault stores tokenized values. Required when any type uses Tokenize.
	Vault Vault
	// VaultTTL is how long a tokenized value stays restorable after it was last
	// seen. Default DefaultVaultTTL.
	VaultTTL time.Duration
	// MaxNesting is how many levels of JSON held in strings are parsed as JSON.
	// Default DefaultMaxNesting; negative means none.
	MaxNesting int
	// MaxStreamHold caps what a StreamMasker holds back. Default DefaultMaxStreamHold.
	MaxStreamHold int
	// Now returns the current time (tests set it). Default time.Now.
	Now func() time.Time
}

// Engine detects and masks personal data and secrets. It is immutable after New and
// safe for concurrent use by any number of goroutines.
type Engine struct {
	names      []string // entity index → type name
	enabled    uint64   // bit per entity index
	threshold  [maxEntities]float64
	operator   [maxEntities]Operator
	ctx        wordTable // lower-case word → context it carries
	custom     []*customRecognizer
	allowVals  map[string]struct{}
	allowPats  []*regexp.Regexp
	regions    []string
	trunkZero  map[string]bool // region → its national numbers start with 0
	hashKey    []byte
	idKey      []byte
	aead       cipher.AEAD
	vault      Vault
	ttl        time.Duration
	maxNesting int
	maxHold    int
	now        func() time.Time
	recent     recentPuts
	pool       sync.Pool // *scanner
}

// wordInfo is what a word says about nearby candidates.
type wordInfo struct {
	pos uint64 // entity bits whose context word this is
	neg bool   // an identifier word (order, version...) that vetoes weak numeric shapes
}

// wordTable holds the context and negative words. Most words of a text or a JSON key
// are in neither list, so a filter comes before the map: a word whose first byte
// and length, or last byte and length, no listed word has is ruled out with two
// table lookups instead of a string hash.
type wordTable struct {
	m     map[string]wordInfo
	first [256]uint32 // bit min(len, 31) is set when a listed word of that length starts with the byte
	last  [256]uint32 // the same for the last byte
}

func (wt *wordTable) add(w string, info wordInfo) {
	if w == "" {
		return
	}
	old := wt.m[w]
	old.pos |= info.pos
	old.neg = old.neg || info.neg
	wt.m[w] = old
	bit := uint32(1) << min(len(w), 31)
	wt.first[w[0]] |= bit
	wt.last[w[len(w)-1]] |= bit
}

// get looks up a lower-case word.
func (wt *wordTable) get(w []byte) (wordInfo, bool) {
	if len(w) == 0 {
		return wordInfo{}, false
	}
	bit := uint32(1) << min(len(w), 31)
	if wt.first[w[0]]&bit == 0 || wt.last[w[len(w)-1]]&bit == 0 {
		return wordInfo{}, false
	}
	wi, ok := wt.m[string(w)]
	return wi, ok
}

// New validates opts and builds an Engine.
func New(opts Options) (*Engine, error) {
	e := &Engine{
		ctx:        wordTable{m: map[string]wordInfo{}},
		allowVals:  map[string]struct{}{},
		ttl:        opts.VaultTTL,
		maxNesting: opts.MaxNesting,
		maxHold:    opts.MaxStreamHold,
		now:        opts.Now,
		vault:      opts.Vault,
	}
	if e.ttl == 0 {
		e.ttl = DefaultVaultTTL
	}
	if e.ttl < 0 {
		return nil, fmt.Errorf("pii: vault TTL %v is negative", e.ttl)
	}
	if e.maxNesting == 0 {
		e.maxNesting = DefaultMaxNesting
	}
	if e.maxHold == 0 {
		e.maxHold = DefaultMaxStreamHold
	}
	if e.maxHold < 256 {
		return nil, fmt.Errorf("pii: MaxStreamHold %d is under 256 bytes", e.maxHold)
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.names = append(e.names, builtinNames[:]...)
	for i, c := range opts.Custom {
		cr, err := compileCustom(c, entity(len(e.names)))
		if err != nil {
			return nil, fmt.Errorf("pii: custom recognizer %d (%s): %w", i, c.Name, err)
		}
		if slicesIndex(e.names, c.Name) >= 0 {
			return nil, fmt.Errorf("pii: custom recognizer %d: %s is already an entity type", i, c.Name)
		}
		if len(e.names) >= maxEntities {
			return nil, fmt.Errorf("pii: more than %d entity types", maxEntities)
		}
		e.names = append(e.names, c.Name)
		e.custom = append(e.custom, cr)
	}
	index := func(name string) (entity, bool) {
		i := slicesIndex(e.names, name)
		return entity(i), i >= 0
	}

	def := opts.Operator
	if def == "" {
		def = DefaultOperator
	}
	if !def.valid() {
		return nil, fmt.Errorf("pii: operator %q is not one of redact, mask, hash, tokenize, block", def)
	}
	th := opts.Threshold
	if th == 0 {
		th = DefaultThreshold
	}
	if th < 0 || th > 1 {
		return nil, fmt.Errorf("pii: threshold %v is not in (0, 1]", th)
	}
	for i := range e.names {
		e.operator[i] = def
		e.threshold[i] = th
		e.enabled |= 1 << i
	}
	for _, n := range DefaultDisabled {
		if x, ok := index(n); ok {
			e.enabled &^= 1 << x
		}
	}
	for _, n := range sortedKeys(opts.Operators) {
		x, ok := index(n)
		if !ok {
			return nil, fmt.Errorf("pii: operator for unknown entity type %q", n)
		}
		if op := opts.Operators[n]; !op.valid() {
			return nil, fmt.Errorf("pii: operator %q for %s is not one of redact, mask, hash, tokenize, block", op, n)
		}
		e.operator[x] = opts.Operators[n]
	}
	for _, n := range sortedKeys(opts.Entities) {
		x, ok := index(n)
		if !ok {
			return nil, fmt.Errorf("pii: unknown entity type %q", n)
		}
		if opts.Entities[n] {
			e.enabled |= 1 << x
		} else {
			e.enabled &^= 1 << x
		}
	}
	for _, n := range sortedKeys(opts.Thresholds) {
		x, ok := index(n)
		if !ok {
			return nil, fmt.Errorf("pii: threshold for unknown entity type %q", n)
		}
		v := opts.Thresholds[n]
		if v <= 0 || v > 1 {
			return nil, fmt.Errorf("pii: threshold %v for %s is not in (0, 1]", v, n)
		}
		e.threshold[x] = v
	}

	uses := func(op Operator) bool {
		for i := range e.names {
			if e.enabled&(1<<i) != 0 && e.operator[i] == op {
				return true
			}
		}
		return false
	}
	if uses(Hash) {
		if len(opts.HashKey) < 16 {
			return nil, errors.New("pii: the hash operator needs a HashKey of at least 16 bytes")
		}
		e.hashKey = append([]byte(nil), opts.HashKey...)
	}
	if len(opts.VaultKey) > 0 || uses(Tokenize) {
		if len(opts.VaultKey) != 32 {
			return nil, fmt.Errorf("pii: VaultKey is %d bytes; tokenize needs a 32-byte key", len(opts.VaultKey))
		}
		if opts.Vault == nil && uses(Tokenize) {
			return nil, errors.New("pii: the tokenize operator needs a Vault")
		}
		block, err := aes.NewCipher(derive(opts.VaultKey, "vigil/pii/vault-encryption"))
		if err != nil {
			return nil, fmt.Errorf("pii: couldn't set up vault encryption: %w", err)
		}
		e.aead, err = cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("pii: couldn't set up vault encryption: %w", err)
		}
		e.idKey = derive(opts.VaultKey, "vigil/pii/token-id")
	}

	for _, v := range opts.AllowValues {
		e.allowVals[strings.ToLower(strings.TrimSpace(v))] = struct{}{}
	}
	for _, p := range opts.AllowPatterns {
		re, err := regexp.Compile(`^(?:` + p + `)$`)
		if err != nil {
			return nil, fmt.Errorf("pii: allow pattern %q: %w", p, err)
		}
		e.allowPats = append(e.allowPats, re)
	}

	e.regions = opts.PhoneRegions
	if len(e.regions) == 0 {
		e.regions = DefaultPhoneRegions
	}
	supported := phonenumbers.GetSupportedRegions()
	for _, r := range e.regions {
		if !supported[r] {
			return nil, fmt.Errorf("pii: phone region %q is not an ISO 3166 region code that libphonenumber knows", r)
		}
	}
	e.regions = append([]string(nil), e.regions...)
	e.trunkZero = map[string]bool{}
	for _, r := range e.regions {
		e.trunkZero[r] = phonenumbers.GetNddPrefixForRegion(r, true) == "0"
	}

	for ent, words := range contextWords {
		for _, w := range words {
			e.ctx.add(w, wordInfo{pos: 1 << ent})
		}
	}
	for _, w := range negativeWords {
		e.ctx.add(w, wordInfo{neg: true})
	}
	for _, cr := range e.custom {
		for _, w := range cr.context {
			e.ctx.add(w, wordInfo{pos: 1 << cr.ent})
		}
	}
	e.pool.New = func() any { return &scanner{e: e} }
	return e, nil
}

// ValidPhoneRegion reports whether r is a region code that phone validation knows.
func ValidPhoneRegion(r string) bool { return phonenumbers.GetSupportedRegions()[r] }

// ParseOperator returns the operator named s, or an error listing the valid names.
func ParseOperator(s string) (Operator, error) {
	if op := Operator(s); op.valid() {
		return op, nil
	}
	return "", fmt.Errorf("%q is not one of redact, mask, hash, tokenize, block", s)
}

// CheckCustom validates a custom recognizer the way New does, for config checks.
func CheckCustom(c CustomRecognizer) error {
	if IsEntity(c.Name) {
		return fmt.Errorf("%s is a built-in entity type", c.Name)
	}
	_, err := compileCustom(c, numBuiltin)
	return err
}

func derive(key []byte, label string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return m.Sum(nil)
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Summarize counts findings by type. The summary never holds values.
func Summarize(fs []vigil.Finding) vigil.PIISummary {
	s := vigil.PIISummary{}
	for _, f := range fs {
		if s.Counts == nil {
			s.Counts = map[string]int{}
		}
		s.Counts[f.Type]++
	}
	return s
}

// blocked builds the caller-safe error for a payload holding blocked types.
func blocked(types map[string]bool) error {
	names := make([]string, 0, len(types))
	for t := range types {
		names = append(names, t)
	}
	sort.Strings(names)
	return &vigil.Error{
		Code:    vigil.EDENIED,
		Message: "the payload holds data that policy doesn't let leave: " + strings.Join(names, ", "),
		Err:     ErrBlocked,
	}
}
