package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/vigil-gateway/vigil/internal/pii"
)

// PIIConfig is the pii: section: how personal data and secrets are detected and
// masked in requests to models and tools, and restored in their answers.
//
//	pii:
//	  mode: tokenize
//	  entities:
//	    IP_ADDRESS: {enabled: false}
//	    US_SSN: {operator: block}
//	  allow:
//	    values: [support@example.com]
//	  custom:
//	    - name: EMPLOYEE_ID
//	      pattern: 'EMP-\d{6}'
//	      context: [employee]
type PIIConfig struct {
	// Mode is what happens to findings of every type not given its own operator:
	// off (no scanning at all), redact (<EMAIL_ADDRESS>), mask (************1111),
	// hash (<EMAIL_ADDRESS_3f9a1c0b>, a keyed pseudonym stable per deployment),
	// tokenize (a token that is turned back into the value in the answer, for the same
	// agent and session; the value is kept encrypted in the database) or block
	// (refuse the request). Default tokenize in the gateway (vigil serve); the
	// stand-alone `vigil pii mask` command defaults to redact, since it has no vault to
	// restore from.
	Mode string `yaml:"mode"`

	// Threshold is the score (0 to 1) a finding needs to count. Values with a
	// checksum score 1; weak shapes need a context word nearby. Default 0.5.
	Threshold float64 `yaml:"threshold"`

	// Entities tunes each entity type, keyed by its name (EMAIL_ADDRESS,
	// PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, US_SSN, IP_ADDRESS, MAC_ADDRESS, CRYPTO,
	// US_ITIN, US_BANK_NUMBER, US_PASSPORT, US_DRIVER_LICENSE, DATE_OF_BIRTH, UK_NHS,
	// UK_NINO, IN_AADHAAR, ES_NIF, IT_FISCAL_CODE, AU_TFN, SECRET, or a custom
	// recognizer's name). Types not listed are on, with Mode and Threshold.
	Entities map[string]PIIEntityConfig `yaml:"entities"`

	// Allow lists values that are never masked.
	Allow PIIAllowConfig `yaml:"allow"`

	// Custom recognizers for the organisation's own identifiers.
	Custom []PIICustomConfig `yaml:"custom"`

	// PhoneRegions are the ISO 3166 region codes whose national phone formats are
	// recognised without a country code. Default US, GB, DE, FR, IL, IN, BR.
	PhoneRegions []string `yaml:"phone_regions"`

	// VaultTTL is how long a tokenized value can be restored after it was last
	// sent. Default 24h.
	VaultTTL time.Duration `yaml:"vault_ttl"`

	// Restore turns tokens in model and tool answers back into the values, so the
	// agent's user reads a natural answer (policy may still forbid it per call).
	// Default true; only meaningful with tokenize.
	Restore *bool `yaml:"restore"`

	// MaskAnswers masks personal data that model and tool answers carry themselves
	// (not the tokens Vigil restores), with the same operators. Default false: such
	// findings are counted in the ledger and metrics, and the agent's user sees them.
	MaskAnswers bool `yaml:"mask_answers"`

	// JSONDepth is how many levels of JSON held inside JSON strings (tool-call
	// arguments) are parsed as JSON. Default 2; 0 means the default, -1 none.
	JSONDepth int `yaml:"json_depth"`
}

// PIIEntityConfig tunes one entity type.
type PIIEntityConfig struct {
	// Enabled turns the type off when false. Default true.
	Enabled *bool `yaml:"enabled"`
	// Operator overrides Mode for this type: redact, mask, hash, tokenize or block.
	Operator string `yaml:"operator"`
	// Threshold overrides the section's Threshold for this type (0 to 1).
	Threshold float64 `yaml:"threshold"`
}

// PIIAllowConfig lists values that are never masked.
type PIIAllowConfig struct {
	// Values are exact values (compared case-insensitively), such as the company's
	// own support address.
	Values []string `yaml:"values"`
	// Patterns are Go regular expressions that must match a whole value, such as
	// '.*@example\.com'.
	Patterns []string `yaml:"patterns"`
}

// PIICustomConfig is a custom recognizer.
type PIICustomConfig struct {
	// Name is the entity type reported: upper case letters, digits and _
	// (EMPLOYEE_ID). It must not be a built-in type.
	Name string `yaml:"name"`
	// Pattern is a Go regular expression for the value. Patterns that start with
	// a literal (EMP-\d{6}) are cheap: the literal is looked for first.
	Pattern string `yaml:"pattern"`
	// Validator checks a match's digits: luhn, mod97 or verhoeff. Default none.
	Validator string `yaml:"validator"`
	// Context words raise a match's score by 0.35 when one of them is among the
	// five words before it or in its JSON key.
	Context []string `yaml:"context"`
	// Score is a match's base score (0 to 1). Default 0.6, enough on its own.
	Score float64 `yaml:"score"`
	// Operator overrides Mode for this type.
	Operator string `yaml:"operator"`
}

// PIIModes are the values Mode accepts.
var PIIModes = []string{"off", "redact", "mask", "hash", "tokenize", "block"}

// RestoreEnabled reports whether tokens are restored in answers (default true).
func (p *PIIConfig) RestoreEnabled() bool { return p.Restore == nil || *p.Restore }

// validate adds the section's problems to errs, each with its field path.
func (p *PIIConfig) validate(errs *FieldErrors) {
	switch p.Mode {
	case "", "off", "redact", "mask", "hash", "tokenize", "block":
	default:
		errs.add("pii.mode", "%q is not one of off, redact, mask, hash, tokenize, block", p.Mode)
	}
	if p.Threshold < 0 || p.Threshold > 1 {
		errs.add("pii.threshold", "%v is not between 0 and 1", p.Threshold)
	}
	known := map[string]bool{}
	for _, n := range pii.Entities() {
		known[n] = true
	}
	for i, c := range p.Custom {
		path := fmt.Sprintf("pii.custom[%d]", i)
		if known[c.Name] {
			errs.add(path+".name", "%q is already an entity type", c.Name)
			continue
		}
		err := pii.CheckCustom(pii.CustomRecognizer{Name: c.Name, Pattern: c.Pattern, Validator: c.Validator, Context: c.Context, Score: c.Score})
		if err != nil {
			errs.add(path, "%v", err)
		}
		if c.Operator != "" {
			if _, err := pii.ParseOperator(c.Operator); err != nil {
				errs.add(path+".operator", "%v", err)
			}
		}
		known[c.Name] = true
	}
	for _, name := range sortedKeys(p.Entities) {
		ec := p.Entities[name]
		path := "pii.entities." + name
		if !known[name] {
			errs.add(path, "unknown entity type (built-in types are %v, or name a custom recognizer)", pii.Entities())
			continue
		}
		if ec.Operator != "" {
			if _, err := pii.ParseOperator(ec.Operator); err != nil {
				errs.add(path+".operator", "%v", err)
			}
		}
		if ec.Threshold < 0 || ec.Threshold > 1 {
			errs.add(path+".threshold", "%v is not between 0 and 1", ec.Threshold)
		}
	}
	for i, pat := range p.Allow.Patterns {
		if _, err := regexp.Compile(pat); err != nil {
			errs.add(fmt.Sprintf("pii.allow.patterns[%d]", i), "not a valid regular expression: %v", err)
		}
	}
	for i, r := range p.PhoneRegions {
		if !pii.ValidPhoneRegion(r) {
			errs.add(fmt.Sprintf("pii.phone_regions[%d]", i), "%q is not an ISO 3166 region code (US, GB, DE...)", r)
		}
	}
	if p.VaultTTL < 0 {
		errs.add("pii.vault_ttl", "must not be negative")
	}
	if p.JSONDepth < -1 || p.JSONDepth > 8 {
		errs.add("pii.json_depth", "%d is not between -1 and 8", p.JSONDepth)
	}
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
