package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/keyring"
	"github.com/vigil-gateway/vigil/internal/pii"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// gatewayPII builds the gateway's PII engine from the pii: section: tokenize by default,
// keys derived from the keyring, the vault in the database. It returns a nil Masker
// when pii.mode is off.
func gatewayPII(c config.PIIConfig, keys *keyring.Keyring, vault pii.Vault) (enforce.Masker, *pii.Engine, error) {
	if c.Mode == "off" {
		return nil, nil, nil
	}
	if c.Mode == "" {
		c.Mode = string(pii.Tokenize)
	}
	opts := piiOptions(c)
	opts.HashKey = keys.Derive(keyring.PurposePIIHash)
	opts.VaultKey = keys.Derive(keyring.PurposePIIVault)
	opts.Vault = newVaultCache(vault)
	e, err := pii.New(opts)
	if err != nil {
		return nil, nil, err
	}
	m := &piiMasker{e: e, answers: e, restore: c.RestoreEnabled(), maskAnswers: c.MaskAnswers}
	if c.MaskAnswers {
		// An answer's own personal data is masked for the agent's user, not for a
		// provider: a token there would be restored right back (tokens are for values
		// that must come back). So answers use the same operators with tokenize
		// turned into redact.
		if m.answers, err = pii.New(answerOptions(opts)); err != nil {
			return nil, nil, err
		}
	}
	return m, e, nil
}

// answerOptions are opts with every tokenize operator replaced by redact.
func answerOptions(opts pii.Options) pii.Options {
	if opts.Operator == pii.Tokenize || opts.Operator == "" {
		opts.Operator = pii.Redact
	}
	ops := make(map[string]pii.Operator, len(opts.Operators))
	for t, op := range opts.Operators {
		if op == pii.Tokenize {
			op = pii.Redact
		}
		ops[t] = op
	}
	opts.Operators = ops
	return opts
}

// vaultCache keeps the vault entries this replica wrote or read, so restoring the
// tokens in an answer — every answer, usually tokens the request just minted — reads
// memory instead of the database. A copy stays valid until the expiry it was read
// with: a token id is an HMAC of its scope, type and value, so an entry never changes
// meaning; Put never moves an expiry earlier; and only expired entries are ever
// deleted (Purge). A token not found is not remembered: another replica may write it
// next. Entries are ciphertext, as in the database.
type vaultCache struct {
	pii.Vault
	mu sync.RWMutex
	m  map[vaultKey]pii.VaultEntry
}

type vaultKey struct{ agent, session, id string }

// maxVaultCache bounds the cache (about 5 MiB); past it, it starts over. Answers
// mostly carry tokens their own request just minted, so recent entries are the ones
// that matter.
const maxVaultCache = 1 << 14

func newVaultCache(v pii.Vault) *vaultCache {
	return &vaultCache{Vault: v, m: map[vaultKey]pii.VaultEntry{}}
}

func (c *vaultCache) Put(ctx context.Context, entries ...pii.VaultEntry) error {
	if err := c.Vault.Put(ctx, entries...); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range entries {
		c.keep(e)
	}
	return nil
}

func (c *vaultCache) Get(ctx context.Context, agentID, sessionID, id string, now time.Time) (pii.VaultEntry, error) {
	k := vaultKey{agentID, sessionID, id}
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if ok && e.ExpiresAt.After(now) {
		return e, nil
	}
	e, err := c.Vault.Get(ctx, agentID, sessionID, id, now)
	if err != nil {
		return e, err
	}
	c.mu.Lock()
	c.keep(e)
	c.mu.Unlock()
	return e, nil
}

// keep remembers e, never with an earlier expiry than one already kept. c.mu is held.
func (c *vaultCache) keep(e pii.VaultEntry) {
	k := vaultKey{e.AgentID, e.SessionID, e.ID}
	if old, ok := c.m[k]; ok && old.ExpiresAt.After(e.ExpiresAt) {
		return
	}
	if len(c.m) >= maxVaultCache {
		clear(c.m)
	}
	c.m[k] = e
}

// purgeVault drops expired tokenized values every interval until ctx ends.
func purgeVault(ctx context.Context, log *slog.Logger, v pii.Vault, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := v.Purge(ctx, time.Now()); err != nil && ctx.Err() == nil {
				log.Warn("couldn't purge expired PII vault entries", "err", err)
			} else if n > 0 {
				log.Debug("purged expired PII vault entries", "count", n)
			}
		}
	}
}

// piiMasker adapts the PII engine to the pipeline: outbound masking, and inbound
// counting (PII an answer carries itself), optional masking of answers and restoring
// of tokens — in that order, so restored values are never counted as the answer's own.
type piiMasker struct {
	e *pii.Engine
	// answers masks the PII answers carry themselves (never tokenizing).
	answers     *pii.Engine
	restore     bool
	maskAnswers bool
}

var _ enforce.Masker = (*piiMasker)(nil)

func scope(s enforce.Scope) pii.Scope { return pii.Scope{AgentID: s.AgentID, SessionID: s.SessionID} }

func (m *piiMasker) MaskJSON(ctx context.Context, s enforce.Scope, doc []byte) ([]byte, vigil.PIISummary, error) {
	out, err := m.e.MaskJSON(ctx, scope(s), doc)
	if errors.Is(err, pii.ErrBlocked) {
		fs, _ := m.e.ScanJSON(doc)
		return nil, pii.Summarize(fs), errors.Join(enforce.ErrBlocked, err)
	}
	if err != nil {
		return nil, vigil.PIISummary{}, err
	}
	return out.Data, out.Summary, nil
}

func (m *piiMasker) InboundJSON(ctx context.Context, s enforce.Scope, doc []byte) ([]byte, vigil.PIISummary, error) {
	fs, err := m.e.ScanJSON(doc)
	if err != nil {
		return nil, vigil.PIISummary{}, err
	}
	sum := pii.Summarize(fs)
	if m.maskAnswers && sum.Total() > 0 {
		out, err := m.answers.MaskJSON(ctx, scope(s), doc)
		if err != nil && !errors.Is(err, pii.ErrBlocked) {
			return nil, sum, err
		}
		if err == nil {
			doc = out.Data
		}
	}
	if m.restore {
		if doc, _, err = m.e.RestoreJSON(ctx, scope(s), doc); err != nil {
			return nil, sum, err
		}
	}
	return doc, sum, nil
}

func (m *piiMasker) InboundText(ctx context.Context, s enforce.Scope, text []byte) ([]byte, vigil.PIISummary, error) {
	sum := pii.Summarize(m.e.ScanText(text))
	if m.maskAnswers && sum.Total() > 0 {
		out, err := m.answers.MaskText(ctx, scope(s), text)
		if err != nil && !errors.Is(err, pii.ErrBlocked) {
			return nil, sum, err
		}
		if err == nil {
			text = out.Data
		}
	}
	if m.restore {
		var err error
		if text, _, err = m.e.Restore(ctx, scope(s), text); err != nil {
			return nil, sum, err
		}
	}
	return text, sum, nil
}

func (m *piiMasker) InboundStream(ctx context.Context, s enforce.Scope) enforce.StreamFilter {
	f := &piiStream{ctx: ctx}
	if m.maskAnswers {
		f.mask = m.answers.NewStreamMasker(scope(s))
	} else {
		f.e = m.e
	}
	if m.restore {
		f.restore = m.e.NewStreamRestorer(scope(s))
	}
	return f
}

// maxCounted bounds how much of a stream is kept to count the PII it carries when
// answers are not masked.
const maxCounted = 1 << 20

// piiStream filters one stream of text deltas. Errors from the engine (a vault read
// failing) let the text through unrestored rather than stalling the stream: tokens
// then reach the agent as tokens, which leaks nothing.
type piiStream struct {
	ctx     context.Context
	mask    *pii.StreamMasker
	restore *pii.StreamRestorer
	e       *pii.Engine
	seen    []byte
	sum     vigil.PIISummary
}

func (f *piiStream) Write(chunk []byte) []byte {
	if f.mask != nil {
		if out, err := f.mask.Write(f.ctx, chunk); err == nil {
			chunk = out
		}
	} else if f.e != nil && len(f.seen) < maxCounted {
		f.seen = append(f.seen, chunk...)
	}
	if f.restore != nil {
		if out, err := f.restore.Write(f.ctx, chunk); err == nil {
			chunk = out
		}
	}
	return chunk
}

func (f *piiStream) Flush() []byte {
	var tail []byte
	if f.mask != nil {
		tail, _ = f.mask.Flush(f.ctx)
		f.sum = f.mask.Summary()
	} else if f.e != nil {
		f.sum = pii.Summarize(f.e.ScanText(f.seen))
	}
	if f.restore != nil {
		if len(tail) > 0 {
			if out, err := f.restore.Write(f.ctx, tail); err == nil {
				tail = out
			}
		}
		rest, _ := f.restore.Flush(f.ctx)
		tail = append(tail, rest...)
	}
	return tail
}

func (f *piiStream) Summary() vigil.PIISummary { return f.sum }
