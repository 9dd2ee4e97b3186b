package aims

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/tlog"
)

// LedgerReader is what aims reads of the ledger; a ledger.Store satisfies it. aims
// never writes through it.
type LedgerReader interface {
	TreeState(ctx context.Context) (size int64, root tlog.Hash, err error)
	ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	Entries(ctx context.Context, start, end int64) ([]ledger.Entry, error)
	Bodies(ctx context.Context, start, end int64) ([]ledger.Body, error)
	Head(ctx context.Context) (ledger.Checkpoint, error)
	Checkpoints(ctx context.Context, from, to int64) ([]ledger.Checkpoint, error)
}

var _ LedgerReader = ledger.Store(nil)

// scanChunk is how many entries are read at a time.
const scanChunk = 1000

// scan calls fn for every entry with start <= index < end, in index order.
func scan(ctx context.Context, r LedgerReader, start, end int64, fn func(index int64, env ledger.Envelope) error) error {
	for lo := start; lo < end; lo += scanChunk {
		es, err := r.Entries(ctx, lo, min(lo+scanChunk, end))
		if err != nil {
			return fmt.Errorf("couldn't read ledger entries %d..%d: %w", lo, min(lo+scanChunk, end), err)
		}
		for _, e := range es {
			env, err := ledger.ParseEnvelope(e.Data)
			if err != nil {
				return fmt.Errorf("ledger entry %d: %w", e.Index, err)
			}
			if err := fn(e.Index, env); err != nil {
				return err
			}
		}
	}
	return nil
}

// entryTime returns the time of the entry at index.
func entryTime(ctx context.Context, r LedgerReader, index int64) (time.Time, error) {
	es, err := r.Entries(ctx, index, index+1)
	if err != nil || len(es) == 0 {
		return time.Time{}, fmt.Errorf("couldn't read ledger entry %d: %w", index, err)
	}
	env, err := ledger.ParseEnvelope(es[0].Data)
	if err != nil {
		return time.Time{}, fmt.Errorf("ledger entry %d: %w", index, err)
	}
	return time.Parse(time.RFC3339Nano, env.Time)
}

// timeSlack covers entries whose times are slightly out of index order (events are
// stamped by their producers before they are sequenced).
const timeSlack = time.Minute

// indexAt returns the first index whose entry is at or after t (less the slack), by
// binary search: entries are sequenced in close to time order.
func indexAt(ctx context.Context, r LedgerReader, size int64, t time.Time) (int64, error) {
	t = t.Add(-timeSlack)
	var ferr error
	i := sort.Search(int(size), func(i int) bool {
		if ferr != nil {
			return true
		}
		et, err := entryTime(ctx, r, int64(i))
		if err != nil {
			ferr = err
			return true
		}
		return !et.Before(t)
	})
	return int64(i), ferr
}

// Activity is what the ledger says happened in a period: the runtime evidence the
// SoA, health checks, reviews and reports draw on.
type Activity struct {
	From    time.Time        `json:"from"`
	To      time.Time        `json:"to"`
	Entries int64            `json:"entries"`
	ByType  map[string]int64 `json:"by_type"`
	// Decisions counts policy decisions by effect; Rules counts rule matches.
	Decisions map[string]int64 `json:"decisions"`
	Rules     map[string]int64 `json:"rules"`
	// Approvals: requested, votes cast by people, and expired with no decision
	// (oversight's approval.expired, or an approval.decided by a system actor).
	ApprovalsRequested int64 `json:"approvals_requested"`
	ApprovalsDecided   int64 `json:"approvals_decided"`
	ApprovalsTimedOut  int64 `json:"approvals_timed_out"`
	// ApprovalsLate are approvals requested in the period that a person decided, or
	// the caller cancelled, after the SLA; ApprovalsOverdue those still pending at To
	// after waiting longer than the SLA. Expired approvals are in neither: they were
	// never answered (ApprovalsTimedOut).
	ApprovalsLate    []string `json:"approvals_late,omitempty"`
	ApprovalsOverdue []string `json:"approvals_overdue,omitempty"`
	// ApprovalsPending are approvals requested in the period still waiting at To.
	ApprovalsPending int64 `json:"approvals_pending"`
	// ApprovalMaxLatency is the longest a person took to decide an approval;
	// ApprovalMaxWait the longest any approval waited for one — decided, expired,
	// cancelled or still pending.
	ApprovalMaxLatency time.Duration `json:"approval_max_latency_ns"`
	ApprovalMaxWait    time.Duration `json:"approval_max_wait_ns"`
	// PII counts findings by entity type (from the counts of every event).
	PII               map[string]int64   `json:"pii"`
	PolicyActivations []PolicyActivation `json:"policy_activations,omitempty"`
	KillSwitch        []KillSwitchUse    `json:"kill_switch,omitempty"`
	Signoffs          int64              `json:"policy_signoffs"`
	RecordChanges     map[string]int64   `json:"record_changes"`
	// Approvers are the distinct identities that decided approvals.
	Approvers []string `json:"approvers,omitempty"`
}

// PolicyActivation is a policy.activated event.
type PolicyActivation struct {
	Hash  string    `json:"hash"`
	At    time.Time `json:"at"`
	Index int64     `json:"index"`
	Actor string    `json:"actor"`
}

// KillSwitchUse is an agent.suspended event.
type KillSwitchUse struct {
	At     time.Time `json:"at"`
	Index  int64     `json:"index"`
	Actor  string    `json:"actor"`
	Scope  string    `json:"scope"`
	Agent  string    `json:"agent,omitempty"`
	System string    `json:"system,omitempty"`
	Name   string    `json:"name,omitempty"`
}

// piiKey matches counts keys that are PII entity types: Presidio's upper-case names
// ("EMAIL_ADDRESS") or "pii." followed by one.
var piiKey = regexp.MustCompile(`^(pii\.)?([A-Z][A-Z0-9_]*)$`)

// PIIType returns the entity type a counts key stands for, if it is one.
func PIIType(key string) (string, bool) {
	m := piiKey.FindStringSubmatch(key)
	if m == nil {
		return "", false
	}
	return m[2], true
}

// approvalID is the approval an approval event is about: attr "approval" (or
// "approval_id"), else the event id of the request.
func approvalID(env ledger.Envelope) string {
	if a := env.Attrs["approval"]; a != "" {
		return a
	}
	if a := env.Attrs["approval_id"]; a != "" {
		return a
	}
	return env.ID
}

// ScanActivity reads the ledger's entries stamped within [from, to) and counts what
// they show. sla is the approval SLA: approvals requested in the period and decided
// (or cancelled) after it are listed as late, those still pending past it at to as
// overdue. An approval is decided by the vote that settles it (with N-of-M, the Nth
// approval or a denial), and stops waiting when it expires or is cancelled.
func ScanActivity(ctx context.Context, r LedgerReader, from, to time.Time, sla time.Duration) (*Activity, error) {
	a := &Activity{From: from, To: to, ByType: map[string]int64{}, Decisions: map[string]int64{}, Rules: map[string]int64{},
		PII: map[string]int64{}, RecordChanges: map[string]int64{}}
	size, _, err := r.TreeState(ctx)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the ledger's size: %w", err)
	}
	start, err := indexAt(ctx, r, size, from)
	if err != nil {
		return nil, err
	}
	requested := map[string]time.Time{}
	decided := map[string]time.Time{}   // settled by a person
	expired := map[string]time.Time{}   // no decision in time
	cancelled := map[string]time.Time{} // withdrawn by the caller
	approvers := map[string]bool{}
	err = scan(ctx, r, start, size, func(index int64, env ledger.Envelope) error {
		at, _ := time.Parse(time.RFC3339Nano, env.Time)
		if at.Before(from) || !at.Before(to) {
			return nil
		}
		a.Entries++
		a.ByType[env.Type]++
		for k, n := range env.Counts {
			if t, ok := PIIType(k); ok {
				a.PII[t] += n
			}
		}
		switch env.Type {
		case vigil.EventDecision:
			a.Decisions[env.Decision]++
			for _, rule := range env.Rules {
				a.Rules[rule]++
			}
		case vigil.EventApprovalRequest:
			a.ApprovalsRequested++
			requested[approvalID(env)] = at
		case vigil.EventApprovalDecision:
			if strings.HasPrefix(env.Actor, "system") || env.Attrs["decision"] == "timeout" || env.Attrs["outcome"] == "timeout" {
				a.ApprovalsTimedOut++
				expired[approvalID(env)] = at
			} else {
				a.ApprovalsDecided++
				approvers[env.Actor] = true
				// A vote that leaves an N-of-M request pending does not answer it.
				if env.Attrs["status"] != "pending" {
					decided[approvalID(env)] = at
				}
			}
		case oversight.EventApprovalExpired:
			a.ApprovalsTimedOut++
			expired[approvalID(env)] = at
		case oversight.EventApprovalCancelled:
			cancelled[approvalID(env)] = at
		case vigil.EventPolicyActivated:
			a.PolicyActivations = append(a.PolicyActivations, PolicyActivation{Hash: activatedVersion(env), At: at, Index: index, Actor: env.Actor})
		case vigil.EventAgentSuspended:
			a.KillSwitch = append(a.KillSwitch, KillSwitchUse{At: at, Index: index, Actor: env.Actor, Scope: env.Attrs["scope"], Agent: env.Agent, System: env.System, Name: env.Attrs["name"]})
		case EventPolicySignoff:
			a.Signoffs++
		case EventRecordChanged:
			a.RecordChanges[env.Attrs["kind"]]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for id, at := range requested {
		if end, ok := expired[id]; ok {
			a.ApprovalMaxWait = max(a.ApprovalMaxWait, end.Sub(at))
			continue
		}
		if d, ok := decided[id]; ok {
			wait := d.Sub(at)
			a.ApprovalMaxLatency = max(a.ApprovalMaxLatency, wait)
			a.ApprovalMaxWait = max(a.ApprovalMaxWait, wait)
			if wait > sla {
				a.ApprovalsLate = append(a.ApprovalsLate, id)
			}
			continue
		}
		if c, ok := cancelled[id]; ok {
			wait := c.Sub(at)
			a.ApprovalMaxWait = max(a.ApprovalMaxWait, wait)
			if wait > sla {
				a.ApprovalsLate = append(a.ApprovalsLate, id)
			}
			continue
		}
		wait := to.Sub(at)
		a.ApprovalsPending++
		a.ApprovalMaxWait = max(a.ApprovalMaxWait, wait)
		if wait > sla {
			a.ApprovalsOverdue = append(a.ApprovalsOverdue, id)
		}
	}
	sort.Strings(a.ApprovalsLate)
	sort.Strings(a.ApprovalsOverdue)
	for p := range approvers {
		a.Approvers = append(a.Approvers, p)
	}
	sort.Strings(a.Approvers)
	return a, nil
}

// LivePolicy returns the newest policy.activated event in the ledger up to now, or
// ok false when there is none. It scans backwards from the end.
func LivePolicy(ctx context.Context, r LedgerReader) (p PolicyActivation, ok bool, err error) {
	size, _, err := r.TreeState(ctx)
	if err != nil {
		return p, false, err
	}
	for hi := size; hi > 0; hi -= scanChunk {
		lo := max(0, hi-scanChunk)
		es, err := r.Entries(ctx, lo, hi)
		if err != nil {
			return p, false, err
		}
		for i := len(es) - 1; i >= 0; i-- {
			env, err := ledger.ParseEnvelope(es[i].Data)
			if err != nil {
				return p, false, fmt.Errorf("ledger entry %d: %w", es[i].Index, err)
			}
			if env.Type == vigil.EventPolicyActivated {
				at, _ := time.Parse(time.RFC3339Nano, env.Time)
				return PolicyActivation{Hash: activatedVersion(env), At: at, Index: es[i].Index, Actor: env.Actor}, true, nil
			}
		}
	}
	return p, false, nil
}

// activatedVersion is the policy version (content hash) a policy.activated event
// activated: the envelope's policy field, as the policy engine writes it.
func activatedVersion(env ledger.Envelope) string {
	if env.Policy != "" {
		return env.Policy
	}
	return env.Attrs["version"]
}
