package ledger

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"time"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// EnvelopeVersion is the version of the leaf format written by this code.
const EnvelopeVersion = 1

// MaxEntrySize is the largest envelope a leaf may hold: tlog-tiles entry bundles use a
// 16-bit length prefix.
const MaxEntrySize = 1<<16 - 1

// Envelope is the canonical, versioned leaf. Its JSON encoding (fields in this order,
// maps with sorted keys, no HTML escaping, UTC times with nanoseconds) is the leaf
// data; ParseEnvelope refuses any other encoding of the same content, so one event has
// exactly one leaf hash.
type Envelope struct {
	V        int               `json:"v"`
	ID       string            `json:"id"`
	Type     string            `json:"type"`
	Time     string            `json:"time"`
	Actor    string            `json:"actor,omitempty"`
	Agent    string            `json:"agent,omitempty"`
	System   string            `json:"system,omitempty"`
	Session  string            `json:"session,omitempty"`
	Seq      int64             `json:"seq,omitempty"`
	Policy   string            `json:"policy,omitempty"`
	Decision string            `json:"decision,omitempty"`
	Rules    []string          `json:"rules,omitempty"`
	Timings  map[string]int64  `json:"timings,omitempty"`
	Counts   map[string]int64  `json:"counts,omitempty"`
	Attrs    map[string]string `json:"attrs,omitempty"`
	// Body commits to the erasable content without revealing it.
	Body *BodyRef `json:"body,omitempty"`
}

// BodyRef is the leaf's commitment to a body: HMAC-SHA256 keyed with a random
// per-entry salt (kept, encrypted, with the body), so a guessed low-entropy prompt
// cannot be confirmed from the leaf alone.
type BodyRef struct {
	Digest string `json:"digest"`
	Len    int    `json:"len"`
}

var typePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)

// envelopeOf builds the envelope of e. body is nil when e has no body.
func envelopeOf(e vigil.Event, body *BodyRef) Envelope {
	return Envelope{
		V: EnvelopeVersion, ID: e.ID, Type: e.Type, Time: e.Time.UTC().Format(time.RFC3339Nano),
		Actor: e.Actor, Agent: e.AgentID, System: e.SystemID, Session: e.SessionID, Seq: e.SessionSeq,
		Policy: e.Policy, Decision: string(e.Decision), Rules: e.Rules, Timings: e.Timings,
		Counts: e.Counts, Attrs: e.Attrs, Body: body,
	}
}

// Event converts the envelope back to an event (without its body).
func (env Envelope) Event() vigil.Event {
	t, _ := time.Parse(time.RFC3339Nano, env.Time)
	return vigil.Event{
		ID: env.ID, Type: env.Type, Time: t, Actor: env.Actor, AgentID: env.Agent, SystemID: env.System,
		SessionID: env.Session, SessionSeq: env.Seq, Policy: env.Policy, Decision: vigil.Effect(env.Decision),
		Rules: env.Rules, Timings: env.Timings, Counts: env.Counts, Attrs: env.Attrs,
	}
}

// Marshal returns the canonical encoding: what encoding/json produces for env
// without HTML escaping (see codec.go).
func (env Envelope) Marshal() ([]byte, error) {
	return appendEnvelope(make([]byte, 0, 256), &env), nil
}

// ParseEnvelope decodes a leaf and checks that it is canonical and well-formed.
func ParseEnvelope(data []byte) (Envelope, error) {
	if env, err := parseEnvelopeFast(data); err == nil {
		if err := env.validate(); err == nil && bytes.Equal(appendEnvelope(make([]byte, 0, len(data)), &env), data) {
			return env, nil
		}
	}
	// Not the common canonical form: encoding/json says what is wrong.
	return parseEnvelopeJSON(data)
}

func parseEnvelopeJSON(data []byte) (Envelope, error) {
	var env Envelope
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return Envelope{}, fmt.Errorf("leaf is not a valid envelope: %w", err)
	}
	if err := env.validate(); err != nil {
		return Envelope{}, err
	}
	again, err := env.Marshal()
	if err != nil {
		return Envelope{}, err
	}
	if !bytes.Equal(again, data) {
		return Envelope{}, errors.New("leaf is not in canonical form")
	}
	return env, nil
}

// validate checks what the format requires beyond being JSON.
func (env *Envelope) validate() error {
	if env.V != EnvelopeVersion {
		return fmt.Errorf("leaf has envelope version %d; this verifier knows %d", env.V, EnvelopeVersion)
	}
	if env.ID == "" || !validType(env.Type) {
		return errors.New("leaf has no event id or a malformed type")
	}
	if _, err := time.Parse(time.RFC3339Nano, env.Time); err != nil {
		return fmt.Errorf("leaf has a malformed time: %w", err)
	}
	return nil
}

// validType reports whether t matches typePattern (dotted lowercase words), without
// the regexp: it runs for every leaf verified.
func validType(t string) bool {
	word := false // inside a word
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z':
			word = true
		case (c >= '0' && c <= '9' || c == '_') && word:
		case c == '.' && word:
			word = false
		default:
			return false
		}
	}
	return word
}

// sealer encrypts and decrypts bodies with the deployment's body key.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("body key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead}, nil
}

const saltSize = 32

// seal commits to body and encrypts it. It returns the leaf's BodyRef and the sealed
// bytes to store.
func (s *sealer) seal(eventID string, body []byte) (*BodyRef, []byte) {
	plain := make([]byte, saltSize+len(body))
	if _, err := rand.Read(plain[:saltSize]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // unreachable on supported platforms
	}
	copy(plain[saltSize:], body)
	ref := &BodyRef{Digest: BodyDigest(plain[:saltSize], body), Len: len(body)}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return ref, s.aead.Seal(nonce, nonce, plain, []byte(eventID))
}

// open decrypts a sealed body, returning its salt and content.
func (s *sealer) open(eventID string, sealed []byte) (salt, body []byte, err error) {
	return s.openInto(nil, eventID, sealed)
}

// openInto is open that decrypts into dst's memory when it is large enough.
func (s *sealer) openInto(dst []byte, eventID string, sealed []byte) (salt, body []byte, err error) {
	ns := s.aead.NonceSize()
	if len(sealed) < ns+saltSize+s.aead.Overhead() {
		return nil, nil, errors.New("sealed body is too short")
	}
	plain, err := s.aead.Open(dst[:0], sealed[:ns], sealed[ns:], []byte(eventID))
	if err != nil {
		return nil, nil, errors.New("sealed body does not decrypt with this deployment's key (substituted or corrupted)")
	}
	return plain[:saltSize], plain[saltSize:], nil
}

// digester computes BodyDigest reusing its SHA-256 states (the verifier checks a
// million bodies). It is not safe for concurrent use.
type digester struct {
	inner, outer hash.Hash
	pad          [sha256.BlockSize]byte
	sum          [sha256.Size]byte
	hex          [2 * sha256.Size]byte
}

func newDigester() *digester { return &digester{inner: sha256.New(), outer: sha256.New()} }

// matches reports whether BodyDigest(salt, body) == digest, without allocating.
func (d *digester) matches(salt, body []byte, digest string) bool {
	if len(salt) > sha256.BlockSize {
		return BodyDigest(salt, body) == digest
	}
	// HMAC (RFC 2104): H((K ^ opad) || H((K ^ ipad) || m)), K zero-padded.
	d.pad = [sha256.BlockSize]byte{}
	copy(d.pad[:], salt)
	for i := range d.pad {
		d.pad[i] ^= 0x36
	}
	d.inner.Reset()
	d.inner.Write(d.pad[:])
	d.inner.Write(body)
	d.inner.Sum(d.sum[:0])
	for i := range d.pad {
		d.pad[i] ^= 0x36 ^ 0x5c
	}
	d.outer.Reset()
	d.outer.Write(d.pad[:])
	d.outer.Write(d.sum[:])
	d.outer.Sum(d.sum[:0])
	hex.Encode(d.hex[:], d.sum[:])
	return string(d.hex[:]) == digest
}

// BodyDigest is the commitment a leaf holds to a body: hex HMAC-SHA256(salt, body).
func BodyDigest(salt, body []byte) string {
	m := hmac.New(sha256.New, salt)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
