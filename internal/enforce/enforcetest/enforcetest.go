// Package enforcetest has stand-ins for the pipeline's dependencies (PII engine,
// policy engine, oversight, ledger, usage sink) with simple, documented behaviour, for
// tests of the ingresses. They are not for production.
package enforcetest

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var (
	_ enforce.Masker    = (*Masker)(nil)
	_ enforce.Decider   = (*Policy)(nil)
	_ enforce.Holder    = (*Holder)(nil)
	_ enforce.Recorder  = (*Ledger)(nil)
	_ enforce.UsageSink = (*Usage)(nil)
)

// Masker tokenizes email addresses under .example domains as <EMAIL_ADDRESS_n> and
// 16-digit card numbers (digits, optionally grouped by spaces or dashes) as
// <CREDIT_CARD_n>, the same value always getting the same token, and restores tokens
// inbound. It is a stand-in for the PII engine: no validation, no other entities.
type Masker struct {
	mu     sync.Mutex
	vault  map[string]string // token -> value
	values map[string]string // value -> token
}

var (
	recognizers = []struct {
		typ string
		re  *regexp.Regexp
	}{
		{"EMAIL_ADDRESS", regexp.MustCompile(`[a-z0-9.]+@[a-z0-9]+\.example`)},
		{"CREDIT_CARD", regexp.MustCompile(`\b\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{4}\b`)},
	}
	tokenRe = regexp.MustCompile(`<([A-Z_]+)_[0-9]+>`)
)

// NewMasker returns a Masker with an empty vault.
func NewMasker() *Masker {
	return &Masker{vault: map[string]string{}, values: map[string]string{}}
}

// MaskJSON replaces every recognised value by its token.
func (m *Masker) MaskJSON(_ context.Context, _ enforce.Scope, doc []byte) ([]byte, vigil.PIISummary, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sum := vigil.PIISummary{Counts: map[string]int{}}
	out := doc
	for _, r := range recognizers {
		out = r.re.ReplaceAllFunc(out, func(v []byte) []byte {
			sum.Counts[r.typ]++
			t, ok := m.values[string(v)]
			if !ok {
				t = "<" + r.typ + "_" + strconv.Itoa(len(m.vault)+1) + ">"
				m.vault[t], m.values[string(v)] = string(v), t
			}
			return []byte(t)
		})
	}
	return out, sum, nil
}

func (m *Masker) restore(doc []byte) ([]byte, vigil.PIISummary) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sum := vigil.PIISummary{Counts: map[string]int{}}
	out := tokenRe.ReplaceAllFunc(doc, func(t []byte) []byte {
		if v, ok := m.vault[string(t)]; ok {
			sum.Counts[string(tokenRe.FindSubmatch(t)[1])]++
			return []byte(v)
		}
		return t
	})
	return out, sum
}

// InboundJSON restores tokens and counts each restored value.
func (m *Masker) InboundJSON(_ context.Context, _ enforce.Scope, doc []byte) ([]byte, vigil.PIISummary, error) {
	out, sum := m.restore(doc)
	return out, sum, nil
}

// InboundText is InboundJSON for text.
func (m *Masker) InboundText(ctx context.Context, s enforce.Scope, t []byte) ([]byte, vigil.PIISummary, error) {
	return m.InboundJSON(ctx, s, t)
}

// InboundStream returns a filter that holds back text from an unclosed "<".
func (m *Masker) InboundStream(context.Context, enforce.Scope) enforce.StreamFilter {
	return &filter{m: m, sum: vigil.PIISummary{Counts: map[string]int{}}}
}

// filter holds back text from an unclosed '<' (a token may be split there).
type filter struct {
	m    *Masker
	held []byte
	sum  vigil.PIISummary
}

func (f *filter) Write(chunk []byte) []byte {
	buf := append(f.held, chunk...)
	cut := len(buf)
	if i := bytes.LastIndexByte(buf, '<'); i >= 0 && !bytes.Contains(buf[i:], []byte(">")) && len(buf)-i < 32 {
		cut = i
	}
	f.held = append([]byte(nil), buf[cut:]...)
	out, sum := f.m.restore(buf[:cut])
	f.add(sum)
	return out
}

func (f *filter) Flush() []byte {
	out, sum := f.m.restore(f.held)
	f.add(sum)
	f.held = nil
	return out
}

func (f *filter) add(s vigil.PIISummary) {
	for t, n := range s.Counts {
		f.sum.Counts[t] += n
	}
}

// Summary is what the filter restored so far.
func (f *filter) Summary() vigil.PIISummary { return f.sum }

// Policy decides by name: a model or tool whose name starts with "deny" is denied
// (rule "no-<name>", message "<name> is not allowed here"), one starting with "hold"
// requires approval (rule "human"), everything else is allowed (rule "ok"). The
// policy hash is "p1". It records every action it saw.
type Policy struct {
	mu   sync.Mutex
	seen []vigil.Action
}

// Decide decides a by its model or tool name.
func (p *Policy) Decide(_ context.Context, a vigil.Action) (vigil.Decision, error) {
	p.mu.Lock()
	p.seen = append(p.seen, a)
	p.mu.Unlock()
	name := ""
	if a.Tool != nil {
		name = a.Tool.Name
	} else if a.Model != nil {
		name = a.Model.Name
	}
	switch {
	case strings.HasPrefix(name, "deny"):
		return vigil.Decision{Effect: vigil.Deny, Rules: []string{"no-" + name}, Message: name + " is not allowed here", Policy: "p1"}, nil
	case strings.HasPrefix(name, "hold"):
		return vigil.Decision{Effect: vigil.RequireApproval, Rules: []string{"human"}, Policy: "p1"}, nil
	}
	return vigil.Decision{Effect: vigil.Allow, Rules: []string{"ok"}, Policy: "p1"}, nil
}

// Actions returns the actions decided so far.
func (p *Policy) Actions() []vigil.Action {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]vigil.Action(nil), p.seen...)
}

// Holder stands in for oversight: a human approves tools whose name starts with
// "hold_ok" (approval "ap-1") and denies every other held action with the reason
// "not today" (approval "ap-2"), at once.
type Holder struct {
	mu  sync.Mutex
	got []enforce.HoldRequest
}

// Hold decides r at once as described on Holder.
func (h *Holder) Hold(_ context.Context, r enforce.HoldRequest) (enforce.HoldResult, error) {
	h.mu.Lock()
	h.got = append(h.got, r)
	h.mu.Unlock()
	if r.Action.Tool != nil && strings.HasPrefix(r.Action.Tool.Name, "hold_ok") {
		return enforce.HoldResult{ApprovalID: "ap-1", Status: "approved", Reviewers: []string{"user:rita"}}, nil
	}
	return enforce.HoldResult{ApprovalID: "ap-2", Status: "denied", Reviewers: []string{"user:rita"}, Reason: "not today"}, nil
}

// Ledger keeps events in memory.
type Ledger struct {
	mu     sync.Mutex
	events []vigil.Event
}

// Record appends e.
func (l *Ledger) Record(_ context.Context, e vigil.Event) (vigil.Receipt, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	return vigil.Receipt{ID: e.ID, Index: int64(len(l.events) - 1)}, nil
}

// All returns the events recorded so far.
func (l *Ledger) All() []vigil.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]vigil.Event(nil), l.events...)
}

// OfType returns the events of a type.
func (l *Ledger) OfType(typ string) []vigil.Event {
	var out []vigil.Event
	for _, e := range l.All() {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// Usage keeps the usage reported to it.
type Usage struct {
	mu  sync.Mutex
	got []enforce.Usage
}

// AddUsage keeps us.
func (u *Usage) AddUsage(_ context.Context, _ vigil.Action, us enforce.Usage) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.got = append(u.got, us)
	return nil
}

// All returns the usage reported so far.
func (u *Usage) All() []enforce.Usage {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]enforce.Usage(nil), u.got...)
}
