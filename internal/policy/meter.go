package policy

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// The meter counts usage in memory and reconciles with a UsageStore in the background.
//
// Each counter cell holds three parts: stored (the store's total as last read), inflight
// (local additions being written by the current flush) and pending (local additions not
// yet written). Its value is their sum. A flush moves pending to inflight, writes it,
// folds it into stored, then re-reads stored for every subject active in the last
// minute, which is how other replicas' additions arrive. So a count seen here lags
// other replicas by at most their flush interval plus ours (1s + 1s by default), and
// never lags this replica's own calls. A subject idle for longer is re-read from the
// store, synchronously, the next time a policy that needs usage decides for it.

const (
	// refreshIdle is how long a subject stays refreshed by flushes after its last use.
	refreshIdle = 60
	// evictIdle is how long an idle subject stays in memory: past its day window, so
	// nothing it holds is still current. Unwritten additions keep it longer.
	evictIdle = 25 * 3600
	// pruneEvery is how often a flush deletes expired windows from the store.
	pruneEvery = time.Hour
)

type subjectKey struct {
	system bool
	id     string
}

func (k subjectKey) String() string {
	if k.system {
		return "system:" + k.id
	}
	return "agent:" + k.id
}

type cell struct {
	start                     int64 // window start, Unix seconds
	stored, inflight, pending int64
}

type tally struct {
	cells [nMetrics][nWindows]cell
	// loaded is set once stored has been read from the store and cleared when the
	// subject goes idle, after which stored may lag other replicas.
	loaded bool
	seen   int64 // Unix seconds of last use
}

type meter struct {
	// store is nil when counts live in this process only; windows that roll over are
	// then simply dropped.
	store UsageStore

	flushMu   sync.Mutex // serialises flushes
	lastPrune time.Time  // guarded by flushMu

	mu      sync.Mutex // guards everything below
	tallies map[subjectKey]*tally
	spill   []UsageDelta // additions to windows that have rolled over, not yet written
}

func newMeter(store UsageStore) *meter {
	return &meter{store: store, tallies: map[subjectKey]*tally{}}
}

func subjects(a *vigil.Actor) (agent subjectKey, system subjectKey, hasSystem bool) {
	agent.id = a.ID
	if agent.id == "" {
		agent.id = a.Name
	}
	system = subjectKey{system: true, id: a.SystemID}
	if system.id == "" {
		system.id = a.SystemName
	}
	return agent, system, system.id != ""
}

func (m *meter) key(sk subjectKey, mt metric, w window, start int64) UsageKey {
	return UsageKey{Subject: sk.String(), Metric: metricNames[mt],
		Window: time.Duration(windowSeconds[w]) * time.Second, Start: time.Unix(start, 0).UTC()}
}

// tallyLocked returns sk's tally, creating it. m.mu must be held.
func (m *meter) tallyLocked(sk subjectKey) *tally {
	t := m.tallies[sk]
	if t == nil {
		t = &tally{}
		m.tallies[sk] = t
	}
	return t
}

// roll moves c to the window starting at ws, spilling additions to the old window so a
// later flush writes them. m.mu must be held.
func (m *meter) roll(sk subjectKey, mt metric, w window, c *cell, ws int64) {
	if c.start == ws {
		return
	}
	if c.pending != 0 && m.store != nil {
		m.spill = append(m.spill, UsageDelta{Key: m.key(sk, mt, w, c.start), N: c.pending})
	}
	// inflight additions belong to the flush under way, which writes them regardless.
	*c = cell{start: ws}
}

// addLocked adds n to metric mt of sk in every window holding now. m.mu must be held.
func (m *meter) addLocked(sk subjectKey, t *tally, mt metric, now time.Time, n int64) {
	for w := range nWindows {
		ws := windowStart(now, w)
		c := &t.cells[mt][w]
		if ws < c.start {
			// The clock went back across a window boundary: count it where it belongs.
			if m.store != nil {
				m.spill = append(m.spill, UsageDelta{Key: m.key(sk, mt, w, ws), N: n})
			}
			continue
		}
		m.roll(sk, mt, w, c, ws)
		c.pending += n
	}
}

func (t *tally) read(now time.Time, c *Counters) {
	for mt := range nMetrics {
		win := c.window(mt)
		for w := range nWindows {
			x := &t.cells[mt][w]
			if x.start == windowStart(now, w) {
				*win.at(w) = x.stored + x.inflight + x.pending
			}
		}
	}
}

// reservation is what admit counted for an action, so release can take it back.
type reservation struct {
	agent, system subjectKey
	hasSystem     bool
	kind          vigil.ActionKind
	now           time.Time
}

// admit returns the usage before a and, when a is a call, counts it. With load set it
// first reads the counts of subjects not refreshed recently from the store; that read
// is the only I/O on the decision path, and its error is returned (fail closed).
func (m *meter) admit(ctx context.Context, a *vigil.Action, now time.Time, load bool) (Usage, reservation, error) {
	var u Usage
	agent, system, hasSystem := subjects(&a.Actor)
	r := reservation{agent: agent, system: system, hasSystem: hasSystem, kind: a.Kind, now: now}
	m.mu.Lock()
	ta := m.tallyLocked(agent)
	var ts *tally
	if hasSystem {
		ts = m.tallyLocked(system)
	}
	if load && m.store != nil && (!ta.loaded || (ts != nil && !ts.loaded)) {
		m.mu.Unlock()
		sks := []subjectKey{agent}
		if hasSystem {
			sks = append(sks, system)
		}
		if err := m.refresh(ctx, now, sks); err != nil {
			return u, r, err
		}
		m.mu.Lock()
		ta = m.tallyLocked(agent)
		if hasSystem {
			ts = m.tallyLocked(system)
		}
	}
	sec := now.Unix()
	ta.read(now, &u.Agent)
	ta.seen = sec
	if ts != nil {
		ts.read(now, &u.System)
		ts.seen = sec
	}
	if isCall(a.Kind) {
		m.countLocked(r, ta, ts, 1)
	}
	m.mu.Unlock()
	return u, r, nil
}

func (m *meter) countLocked(r reservation, ta, ts *tally, n int64) {
	m.addLocked(r.agent, ta, mCalls, r.now, n)
	if ts != nil {
		m.addLocked(r.system, ts, mCalls, r.now, n)
	}
	if r.kind == vigil.ToolCall {
		m.addLocked(r.agent, ta, mToolCalls, r.now, n)
		if ts != nil {
			m.addLocked(r.system, ts, mToolCalls, r.now, n)
		}
	}
}

// release takes back what admit counted, for an action that was denied.
func (m *meter) release(r reservation) {
	if !isCall(r.kind) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ta := m.tallyLocked(r.agent)
	var ts *tally
	if r.hasSystem {
		ts = m.tallyLocked(r.system)
	}
	m.countLocked(r, ta, ts, -1)
}

// observe adds tokens and cost (micro-units) reported after a response.
func (m *meter) observe(a *vigil.Actor, now time.Time, tokens, cost int64) {
	agent, system, hasSystem := subjects(a)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, sk := range []subjectKey{agent, system} {
		if sk.system && !hasSystem {
			continue
		}
		t := m.tallyLocked(sk)
		t.seen = now.Unix()
		if tokens != 0 {
			m.addLocked(sk, t, mTokens, now, tokens)
		}
		if cost != 0 {
			m.addLocked(sk, t, mCost, now, cost)
		}
	}
}

// currentKeys lists the counters of sk in the windows holding now, in cell order.
func (m *meter) currentKeys(keys []UsageKey, sk subjectKey, now time.Time) []UsageKey {
	for mt := range nMetrics {
		for w := range nWindows {
			keys = append(keys, m.key(sk, mt, w, windowStart(now, w)))
		}
	}
	return keys
}

// setStored records values read for sk's current windows (in currentKeys order).
// m.mu must be held.
func (m *meter) setStoredLocked(sk subjectKey, now time.Time, vals []int64) {
	t := m.tallyLocked(sk)
	i := 0
	for mt := range nMetrics {
		for w := range nWindows {
			c := &t.cells[mt][w]
			ws := windowStart(now, w)
			if ws >= c.start {
				m.roll(sk, mt, w, c, ws)
				c.stored = vals[i]
			}
			i++
		}
	}
	t.loaded = true
}

// refresh reads the current windows of sks from the store and records them as
// stored, which marks each subject loaded.
func (m *meter) refresh(ctx context.Context, now time.Time, sks []subjectKey) error {
	var keys []UsageKey
	for _, sk := range sks {
		keys = m.currentKeys(keys, sk, now)
	}
	vals, err := m.store.ReadUsage(ctx, keys)
	if err == nil && len(vals) != len(keys) {
		err = fmt.Errorf("usage store returned %d values for %d keys", len(vals), len(keys))
	}
	if err != nil {
		return fmt.Errorf("couldn't read usage counters: %w", err)
	}
	per := int(nMetrics) * int(nWindows)
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, sk := range sks {
		m.setStoredLocked(sk, now, vals[i*per:(i+1)*per])
	}
	return nil
}

type cellRef struct {
	sk    subjectKey
	t     *tally
	mt    metric
	w     window
	start int64
}

func (r cellRef) cell() *cell { return &r.t.cells[r.mt][r.w] }

// flush writes local additions to the store and re-reads the counts of recently active
// subjects. On a write error the additions stay pending for the next flush.
func (m *meter) flush(ctx context.Context, now time.Time) error {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	sec := now.Unix()

	m.mu.Lock()
	deltas := m.spill
	m.spill = nil
	spilled := len(deltas)
	var refs []cellRef
	var fresh []subjectKey
	for sk, t := range m.tallies {
		busy := false
		for mt := range nMetrics {
			for w := range nWindows {
				c := &t.cells[mt][w]
				if c.pending != 0 {
					c.inflight, c.pending = c.pending, 0
					deltas = append(deltas, UsageDelta{Key: m.key(sk, mt, w, c.start), N: c.inflight})
					refs = append(refs, cellRef{sk: sk, t: t, mt: mt, w: w, start: c.start})
					busy = true
				}
			}
		}
		switch idle := sec - t.seen; {
		case idle <= refreshIdle:
			fresh = append(fresh, sk)
		case idle > evictIdle && !busy:
			delete(m.tallies, sk)
		default:
			t.loaded = false
		}
	}
	m.mu.Unlock()

	var err error
	if m.store != nil && len(deltas) > 0 {
		err = m.store.AddUsage(ctx, deltas)
	}
	m.mu.Lock()
	for i, r := range refs {
		c := r.cell()
		switch {
		case c.start != r.start:
			// The window rolled while writing; a failed write goes back to the spill.
			if err != nil {
				m.spill = append(m.spill, deltas[spilled+i])
			}
		case err != nil:
			c.pending += c.inflight
			c.inflight = 0
		default:
			c.stored += c.inflight
			c.inflight = 0
		}
	}
	if err != nil {
		m.spill = append(m.spill, deltas[:spilled]...)
	}
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("couldn't write usage counters: %w", err)
	}
	if m.store == nil {
		return nil
	}

	if len(fresh) > 0 {
		if err := m.refresh(ctx, now, fresh); err != nil {
			return err
		}
	}

	if now.Sub(m.lastPrune) >= pruneEvery {
		// Keep two days: the day window in use and the one before it.
		if _, perr := m.store.PruneUsage(ctx, now.Add(-48*time.Hour)); perr != nil {
			return fmt.Errorf("couldn't prune usage counters: %w", perr)
		}
		m.lastPrune = now
	}
	return nil
}
