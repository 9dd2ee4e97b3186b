// Package pii detects and masks personal data and secrets in the payloads that
// agents send to models and tools, and restores tokenized values on the way back.
//
// It is pure: no network, no files, no database. The one stateful piece, the vault
// of tokenized values, is the small Vault interface that the storage drivers
// implement; the Engine encrypts every value before it reaches the Vault.
//
// # Detection
//
// Entity types are named as in Microsoft Presidio (EMAIL_ADDRESS, PHONE_NUMBER,
// CREDIT_CARD, IBAN_CODE, US_SSN, IP_ADDRESS, ...) plus SECRET for credentials, with
// vigil.Finding.Rule naming the kind (github-pat, aws-access-key-id, private-key,
// jwt, password...). Scoring follows Presidio's model: a shape gets a base score, a
// passed checksum (Luhn, mod 97, Verhoeff, mod 11, Base58Check, Bech32, the NIF and
// codice fiscale letters) sets it to 1.0, and a context word among the five words
// before a candidate, the two after it, or in the JSON key holding it adds 0.35.
// Context words match whole words only (Presidio's substring matching makes "lic"
// match "public"). Types without a checksum (US_BANK_NUMBER, US_PASSPORT,
// US_DRIVER_LICENSE, DATE_OF_BIRTH) score below the threshold unless a context word
// is present. Words such as "order", "invoice" or "version" just before a number
// veto the weak numeric shapes, so order numbers and versions stay as they are.
//
// # Why it is fast
//
// Go's regexp runs at 10–60 MB/s per pattern and divides by the number of patterns;
// a Presidio-like set of recognizers over whole bodies would crawl at about 1 MB/s.
// This package instead makes one pass over the bytes with a 256-entry class table.
// Plain words — lower-case or capitalised, followed by a space or ending a sentence,
// most of prose — cost a few table lookups each; only digits, capitals inside words,
// mixed words and the bytes @ + ( - start a candidate, and only a candidate of the
// right shape reaches a validator. Lookups that most words fail sit behind filters:
// credential names behind a set of three-byte endings, context words behind their
// first and last bytes and length, provider prefixes behind their first two bytes
// (the rules are found by literal prefix, never by scanning for each rule).
// libphonenumber, at 10–25 µs a call, runs only for phone shapes that no context word
// settles. JSON is walked and validated without unmarshalling, eight bytes at a time
// through strings: a string without escapes is scanned in place, one with escapes is
// decoded into a reused buffer with a map back to raw offsets, and a document is
// copied only where something is replaced. Scanners are pooled and remember the
// hints of the JSON keys they saw, so a scan allocates nothing in the steady state
// unless it finds something. BENCHMARKS.md has the numbers.
//
// # Operators
//
// Redact (<EMAIL_ADDRESS>), Mask (************1111), Hash (<EMAIL_ADDRESS_3f9a1c0b>,
// a keyed HMAC, stable per deployment), Tokenize (<EMAIL_ADDRESS_k7q2m9x3vb4c>,
// reversible through the vault for the same agent and session until it expires) and
// Block (the payload is refused with an error matching ErrBlocked). See
// docs/adr/0004-pii-engine.md for the token format and the decisions behind it.
//
// # Use in the gateway
//
// Outbound: MaskJSON (or MaskText) the request body; forward Masked.Data and record
// Masked.Summary. Inbound: RestoreJSON the response when policy allows, or, for a
// stream, pass each text delta through a StreamRestorer (and a StreamMasker when the
// response itself must be masked). Engine is safe for concurrent use; stream maskers
// and restorers belong to one stream.
package pii
