package policy

import (
	"context"
	"time"
)

// MicrosPerUnit is how many stored cost units make one unit of the deployment's
// currency: cost is counted in millionths so that sums are exact integers.
const MicrosPerUnit = 1_000_000

// metric is one of the quantities usage counts.
type metric uint8

const (
	mCalls     metric = iota // calls (model, tool, resource, prompt) that were not denied
	mToolCalls               // tool calls that were not denied
	mTokens                  // tokens reported through Engine.Observe
	mCost                    // cost in micro-units reported through Engine.Observe
	nMetrics
)

var metricNames = [nMetrics]string{"calls", "tool_calls", "tokens", "cost"}

// window is one of the fixed windows usage is counted in.
type window uint8

const (
	wMinute window = iota
	wHour
	wDay
	nWindows
)

var (
	windowNames   = [nWindows]string{"minute", "hour", "day"}
	windowSeconds = [nWindows]int64{60, 3600, 86400}
)

// windowStart is the start, in Unix seconds, of the window of kind w holding t. Windows
// are fixed and aligned to the Unix epoch, so days run from 00:00 UTC.
func windowStart(t time.Time, w window) int64 {
	s := t.Unix()
	n := windowSeconds[w]
	r := s % n
	if r < 0 {
		r += n
	}
	return s - r
}

// Window is one counter's value in the current minute, hour and day. Windows are fixed
// and UTC-aligned: "minute" is since the start of this clock minute, "day" since
// 00:00 UTC.
type Window struct {
	Minute int64 `json:"minute" yaml:"minute"`
	Hour   int64 `json:"hour" yaml:"hour"`
	Day    int64 `json:"day" yaml:"day"`
}

func (w *Window) at(i window) *int64 {
	switch i {
	case wMinute:
		return &w.Minute
	case wHour:
		return &w.Hour
	}
	return &w.Day
}

// Counters is what one agent, or all the agents of one system, used.
type Counters struct {
	// Calls counts model calls, tool calls, resource reads and prompt gets that policy
	// did not deny (held ones count).
	Calls Window `json:"calls"`
	// ToolCalls counts the tool calls among Calls.
	ToolCalls Window `json:"tool_calls"`
	// Tokens counts tokens reported through Engine.Observe.
	Tokens Window `json:"tokens"`
	// Cost is in micro-units of the deployment's currency (see MicrosPerUnit),
	// reported through Engine.Observe. CEL sees it divided by MicrosPerUnit.
	Cost Window `json:"cost"`
}

func (c *Counters) window(m metric) *Window {
	switch m {
	case mCalls:
		return &c.Calls
	case mToolCalls:
		return &c.ToolCalls
	case mTokens:
		return &c.Tokens
	}
	return &c.Cost
}

// Usage is what limits and the CEL variable `usage` see: the acting agent's counters
// and those of its AI system, before the action being decided.
type Usage struct {
	Agent  Counters `json:"agent"`
	System Counters `json:"system"`
}

// UsageKey names one fixed-window counter in a UsageStore.
type UsageKey struct {
	// Subject is whose usage it is: "agent:<id>" or "system:<id>".
	Subject string
	// Metric is calls, tool_calls, tokens or cost (micro-units).
	Metric string
	// Window is the window's length: a minute, an hour or a day.
	Window time.Duration
	// Start is the window's start: UTC, a whole multiple of Window since the Unix epoch.
	Start time.Time
}

// UsageDelta is an amount to add to one counter.
type UsageDelta struct {
	Key UsageKey
	N   int64
}

// UsageStore keeps usage counters where every replica sharing the database sees them.
// The engine keeps its own running counts in memory and talks to the store only in
// the background (every Options.FlushInterval) and when it meets an agent it has not
// seen for a while, so the store is never on the path of a decision that it can avoid.
//
// Implementations MUST be safe for concurrent use, including by several processes
// sharing one database: concurrent additions to one counter MUST all count.
type UsageStore interface {
	// AddUsage adds each delta to its counter, creating the counter at zero. A key may
	// appear more than once; every delta is added. It is atomic: when it returns an
	// error, nothing was added.
	AddUsage(ctx context.Context, deltas []UsageDelta) error
	// ReadUsage returns each counter's value, in the order of keys: 0 for a counter
	// that was never added to.
	ReadUsage(ctx context.Context, keys []UsageKey) ([]int64, error)
	// PruneUsage deletes the counters whose window ended at or before t and returns
	// how many it deleted.
	PruneUsage(ctx context.Context, t time.Time) (int64, error)
}
