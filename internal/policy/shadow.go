package policy

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Shadow mode evaluates a candidate policy beside the live one on the same actions and
// the same usage, and counts how their effects compare. The candidate's decision is
// never returned, recorded or counted toward usage: it cannot change the live decision
// or fail the call.

// ShadowReport is the state of shadow mode, for GET /api/policy/shadow.
type ShadowReport struct {
	// Live and Candidate are the versions compared; CandidateName is where the
	// candidate came from.
	Live          string    `json:"live"`
	Candidate     string    `json:"candidate"`
	CandidateName string    `json:"candidate_name"`
	Since         time.Time `json:"since"`
	Decisions     int64     `json:"decisions"`
	Agreements    int64     `json:"agreements"`
	Differences   int64     `json:"differences"`
	// Counts are the non-zero cells of the live effect × candidate effect table.
	Counts []ShadowCount `json:"counts"`
	// Recent are the latest differences, newest first, at most Options.ShadowKeep.
	Recent []ShadowDifference `json:"recent"`
}

// ShadowCount is how many actions the live policy gave Live and the candidate Shadow.
type ShadowCount struct {
	Live   vigil.Effect `json:"live"`
	Shadow vigil.Effect `json:"shadow"`
	N      int64        `json:"n"`
}

// ShadowDifference is one action on which the two policies' effects differed.
type ShadowDifference struct {
	Time   time.Time      `json:"time"`
	Action ActionSummary  `json:"action"`
	Live   vigil.Decision `json:"live"`
	Shadow vigil.Decision `json:"shadow"`
}

// ActionSummary describes an action without its argument values or any payload, so it
// can be shown to policy authors: argument names and PII counts only.
type ActionSummary struct {
	ID        string           `json:"id,omitempty"`
	Kind      vigil.ActionKind `json:"kind"`
	AgentID   string           `json:"agent_id,omitempty"`
	Agent     string           `json:"agent,omitempty"`
	System    string           `json:"system,omitempty"`
	Model     *vigil.Model     `json:"model,omitempty"`
	Tool      *vigil.Tool      `json:"tool,omitempty"`
	Resource  string           `json:"resource,omitempty"`
	ArgNames  []string         `json:"arg_names,omitempty"`
	PIICounts map[string]int   `json:"pii_counts,omitempty"`
}

// Summarize returns a's summary.
func Summarize(a *vigil.Action) ActionSummary {
	s := ActionSummary{ID: a.ID, Kind: a.Kind, AgentID: a.Actor.ID, Agent: a.Actor.Name,
		System: a.Actor.SystemName, Resource: a.Resource, PIICounts: maps.Clone(a.PII.Counts)}
	if a.Model != nil {
		m := *a.Model
		s.Model = &m
	}
	if a.Tool != nil {
		t := *a.Tool
		s.Tool = &t
	}
	if len(a.Args) > 0 {
		s.ArgNames = slices.Sorted(maps.Keys(a.Args))
	}
	return s
}

// effectIndex maps effects to table rows: 0 for an invalid effect.
func effectIndex(e vigil.Effect) int { return e.Precedence() }

var effectsByIndex = [4]vigil.Effect{"", vigil.Allow, vigil.RequireApproval, vigil.Deny}

type shadow struct {
	candidate *Policy
	live      string
	since     time.Time
	keep      int
	counts    [4][4]atomic.Int64

	mu     sync.Mutex
	recent []ShadowDifference // ring of at most keep entries
	next   int                // where the next difference goes once the ring is full
}

func newShadow(candidate, live *Policy, now time.Time, keep int) *shadow {
	s := &shadow{candidate: candidate, since: now, keep: keep}
	if live != nil {
		s.live = live.version
	}
	return s
}

// observe evaluates the candidate on a and compares with the live decision d. It never
// panics and never changes d.
func (s *shadow) observe(a *vigil.Action, u *Usage, d *vigil.Decision) {
	defer func() { _ = recover() }()
	sd := s.candidate.Evaluate(a, u)
	s.counts[effectIndex(d.Effect)][effectIndex(sd.Effect)].Add(1)
	if sd.Effect == d.Effect {
		return
	}
	diff := ShadowDifference{Time: a.Time, Action: Summarize(a), Live: *d, Shadow: sd}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recent) < s.keep {
		s.recent = append(s.recent, diff)
		return
	}
	s.recent[s.next] = diff
	s.next = (s.next + 1) % s.keep
}

func (s *shadow) report() ShadowReport {
	r := ShadowReport{Live: s.live, Candidate: s.candidate.version, CandidateName: s.candidate.name, Since: s.since}
	for i := range s.counts {
		for j := range s.counts[i] {
			n := s.counts[i][j].Load()
			if n == 0 {
				continue
			}
			r.Counts = append(r.Counts, ShadowCount{Live: effectsByIndex[i], Shadow: effectsByIndex[j], N: n})
			r.Decisions += n
			if i == j {
				r.Agreements += n
			} else {
				r.Differences += n
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Oldest first is recent[next:] then recent[:next]; the report wants newest first.
	r.Recent = make([]ShadowDifference, 0, len(s.recent))
	for i := len(s.recent) - 1; i >= 0; i-- {
		r.Recent = append(r.Recent, s.recent[(s.next+i)%len(s.recent)])
	}
	return r
}

// SetShadow starts evaluating candidate beside the live policy, with fresh counts; nil
// stops shadow mode.
func (e *Engine) SetShadow(candidate *Policy) {
	if candidate == nil {
		e.shadow.Store(nil)
		return
	}
	e.shadow.Store(newShadow(candidate, e.live.Load(), e.opts.Now(), e.opts.ShadowKeep))
}

// ShadowReport returns the comparison so far, and false when shadow mode is off.
func (e *Engine) ShadowReport() (ShadowReport, bool) {
	s := e.shadow.Load()
	if s == nil {
		return ShadowReport{}, false
	}
	return s.report(), true
}
