package pii

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Vault stores tokenized values for the Tokenize operator. The Engine encrypts each
// value (AES-256-GCM, bound to its scope and token id) before Put, so a Vault only
// ever holds ciphertext. The storage drivers implement it; storetest checks them.
//
// Implementations MUST be safe for concurrent use.
type Vault interface {
	// Put stores entries in one transaction, replacing any entry with the same
	// (AgentID, SessionID, ID). An entry's ExpiresAt MUST NOT move earlier: when the
	// stored one is later, the later time is kept.
	Put(ctx context.Context, entries ...VaultEntry) error
	// Get returns the entry for (agentID, sessionID, id). It MUST return an error
	// matching vigil.ErrNotFound when there is none or when its ExpiresAt is not
	// after now.
	Get(ctx context.Context, agentID, sessionID, id string, now time.Time) (VaultEntry, error)
	// Purge deletes every entry whose ExpiresAt is not after now and returns how many
	// it deleted. The gateway calls it periodically.
	Purge(ctx context.Context, now time.Time) (int64, error)
}

// VaultEntry is one tokenized value, encrypted.
type VaultEntry struct {
	AgentID   string
	SessionID string
	// ID is the token's id (the 12 characters after the type in the token).
	ID string
	// Ciphertext is the nonce followed by the AES-GCM sealed type and value.
	Ciphertext []byte
	ExpiresAt  time.Time
}

// tokenIDLen is the length of a token id: 12 base32 characters, 60 bits, so a model
// inventing or mistyping a token doesn't hit another value (and ids are scoped).
const tokenIDLen = 12

var tokenEnc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// tokenID is stable per (scope, type, value): the same value in the same session
// always gets the same token, so the model sees a consistent placeholder and its
// answer can be restored; across sessions the ids differ, so they can't be joined.
func (e *Engine) tokenID(sc Scope, typ string, value []byte) string {
	m := hmac.New(sha256.New, e.idKey)
	for _, p := range [][]byte{[]byte(sc.AgentID), []byte(sc.SessionID), []byte(typ), value} {
		m.Write(p)
		m.Write([]byte{0})
	}
	var buf [32]byte
	sum := m.Sum(buf[:0])
	return tokenEnc.EncodeToString(sum[:8])[:tokenIDLen]
}

func aad(sc Scope, id string) []byte {
	return []byte(sc.AgentID + "\x00" + sc.SessionID + "\x00" + id)
}

func (e *Engine) seal(sc Scope, id, typ string, value []byte) ([]byte, error) {
	nonce := make([]byte, e.aead.NonceSize(), e.aead.NonceSize()+len(typ)+1+len(value)+e.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("couldn't make a nonce: %w", err)
	}
	plain := make([]byte, 0, len(typ)+1+len(value))
	plain = append(append(append(plain, typ...), 0), value...)
	return e.aead.Seal(nonce, nonce, plain, aad(sc, id)), nil
}

func (e *Engine) open(sc Scope, id string, ct []byte) (typ string, value []byte, err error) {
	ns := e.aead.NonceSize()
	if len(ct) < ns {
		return "", nil, errors.New("vault entry too short")
	}
	plain, err := e.aead.Open(nil, ct[:ns], ct[ns:], aad(sc, id))
	if err != nil {
		return "", nil, fmt.Errorf("couldn't decrypt vault entry: %w", err)
	}
	i := bytes.IndexByte(plain, 0)
	if i < 0 {
		return "", nil, errors.New("vault entry has no type")
	}
	return string(plain[:i]), plain[i+1:], nil
}

// recentPuts remembers vault entries written lately, so a value repeated in every
// request of a conversation (the whole history is resent each turn) costs one write
// per half TTL instead of one per request.
type recentPuts struct {
	mu sync.Mutex
	m  map[string]time.Time // scope+id → when it was written
}

const recentMax = 1 << 14

func (r *recentPuts) fresh(key string, now time.Time, ttl time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.m[key]
	return ok && now.Sub(at) < ttl/2
}

func (r *recentPuts) mark(keys []string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil || len(r.m)+len(keys) > recentMax {
		r.m = make(map[string]time.Time, len(keys))
	}
	for _, k := range keys {
		r.m[k] = now
	}
}

// parseToken reports whether t starts with a token <TYPE_id> and returns its end,
// type and id. Types are upper case with digits and underscores; ids are tokenIDLen
// characters of lower-case base32, which is what tells a token from a hash
// pseudonym (8 hex digits) or a redaction (<TYPE>).
func parseToken(t []byte) (end int, typ, id []byte) {
	if len(t) < 3+tokenIDLen || t[0] != '<' {
		return 0, nil, nil
	}
	gt := bytes.IndexByte(t[1:min(len(t), maxTokenLen)], '>') + 1
	if gt < 3+tokenIDLen || t[gt-tokenIDLen-1] != '_' {
		return 0, nil, nil
	}
	id = t[gt-tokenIDLen : gt]
	typ = t[1 : gt-tokenIDLen-1]
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return 0, nil, nil
		}
	}
	if class[typ[0]] != cUpper {
		return 0, nil, nil
	}
	for _, c := range typ {
		if class[c]&(cUpper|cDigit|cUnder) == 0 {
			return 0, nil, nil
		}
	}
	return gt + 1, typ, id
}

// maxTokenLen bounds a token: '<', a type of up to 64 characters, '_', id, '>'.
const maxTokenLen = 67 + tokenIDLen

// tokenPrefix reports whether t (the tail of a stream) could still grow into a token.
func tokenPrefix(t []byte) bool {
	if len(t) == 0 || t[0] != '<' || len(t) >= maxTokenLen {
		return false
	}
	for _, c := range t[1:] {
		if !(class[c]&(cUpper|cDigit|cUnder|cLower) != 0) {
			return false
		}
	}
	return true
}

// restorer replaces tokens with their values for one scope, caching lookups.
type restorer struct {
	e     *Engine
	scope Scope
	cache map[string][]byte // token → value (nil: not restorable)
	n     int               // tokens restored
}

func (e *Engine) newRestorer(sc Scope) *restorer {
	return &restorer{e: e, scope: sc, cache: map[string][]byte{}}
}

// value returns the value behind a token, or nil when it isn't one of this scope's.
func (r *restorer) value(ctx context.Context, tok, typ, id []byte) ([]byte, error) {
	if v, ok := r.cache[string(tok)]; ok {
		return v, nil
	}
	ent, err := r.e.vault.Get(ctx, r.scope.AgentID, r.scope.SessionID, string(id), r.e.now())
	var v []byte
	switch {
	case errors.Is(err, vigil.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("couldn't read the PII vault: %w", err)
	default:
		gotTyp, val, err := r.e.open(r.scope, string(id), ent.Ciphertext)
		if err != nil {
			return nil, err
		}
		if gotTyp == string(typ) {
			v = val
		}
	}
	r.cache[string(tok)] = v
	return v, nil
}

// restoreText appends t to dst with every restorable token replaced. jsonEscape
// escapes restored values for the inside of a JSON string.
func (r *restorer) restoreText(ctx context.Context, dst, t []byte, jsonEscape bool) ([]byte, error) {
	last := 0
	for i := 0; i < len(t); {
		k := bytes.IndexByte(t[i:], '<')
		if k < 0 {
			break
		}
		i += k
		end, typ, id := parseToken(t[i:])
		if end == 0 {
			i++
			continue
		}
		v, err := r.value(ctx, t[i:i+end], typ, id)
		if err != nil {
			return nil, err
		}
		if v != nil {
			dst = append(dst, t[last:i]...)
			if jsonEscape {
				q := appendString(nil, v)
				dst = append(dst, q[1:len(q)-1]...)
			} else {
				dst = append(dst, v...)
			}
			last = i + end
			r.n++
		}
		i += end
	}
	return append(dst, t[last:]...), nil
}

// Restore replaces the tokens in text that this scope's vault can resolve with their
// original values; everything else, including tokens the model invented or took from
// another session, is left as it is. It returns the text and how many tokens it
// restored. Callers decide by policy whether a response may be restored.
func (e *Engine) Restore(ctx context.Context, scope Scope, text []byte) ([]byte, int, error) {
	if e.vault == nil || e.aead == nil {
		return text, 0, nil
	}
	if bytes.IndexByte(text, '<') < 0 {
		return text, 0, nil
	}
	r := e.newRestorer(scope)
	out, err := r.restoreText(ctx, make([]byte, 0, len(text)), text, false)
	if err != nil {
		return nil, 0, err
	}
	return out, r.n, nil
}

// RestoreJSON is Restore for a JSON document: tokens are restored inside string
// values (also behind escapes and in JSON held in strings), and restored values are
// escaped so the document stays valid. Invalid JSON gives an error matching
// ErrInvalidJSON.
func (e *Engine) RestoreJSON(ctx context.Context, scope Scope, doc []byte) ([]byte, int, error) {
	if e.vault == nil || e.aead == nil {
		return doc, 0, nil
	}
	r := e.newRestorer(scope)
	s := e.getScanner()
	defer e.putScanner(s)
	out, err := r.restoreJSON(ctx, s, doc)
	if err != nil {
		return nil, 0, err
	}
	return out, r.n, nil
}

func (r *restorer) restoreJSON(ctx context.Context, s *scanner, doc []byte) ([]byte, error) {
	out, _, err := s.rewriteJSON(doc, 0, false, func(dst, text []byte, v jsonValue) ([]byte, error) {
		if v.num || bytes.IndexByte(text, '<') < 0 {
			return nil, nil
		}
		before := r.n
		got, err := r.restoreText(ctx, dst, text, false)
		if err != nil || r.n == before {
			return nil, err
		}
		return got, nil
	})
	return out, err
}
