package mcpproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Bounds on what a stream keeps for clients that resume with Last-Event-ID.
const (
	streamKeepEvents = 1000
	streamKeepBytes  = 8 << 20
	keepaliveEvery   = 15 * time.Second
	// retryAfter is the reconnection delay Vigil suggests in priming events.
	retryAfter = time.Second
)

// stream is one response stream of a session towards the client: the answer to a
// POST that carried calls, or the standalone stream a client opens with GET (id "").
//
// A stream outlives the HTTP request that opened it. In a stateful session every
// event gets an id ("<stream>_<index>") and is kept (within bounds), so a client whose
// connection broke can GET the rest with Last-Event-ID; events written while no
// request is attached wait for one. A stream of the stateless revision lives and dies
// with its POST, and answers with plain JSON when its only message is the response
// (with the HTTP status that revision gives protocol errors).
type stream struct {
	id        string
	seq       uint64 // creation order within the session
	resumable bool   // stateful session: events have ids and are kept
	prime     bool   // send a priming event (protocol 2025-11-25 and later)
	stateless bool   // the 2026-07-28 revision: the first message picks JSON or SSE

	mu       sync.Mutex
	w        http.ResponseWriter // the attached response, nil when none
	rc       *http.ResponseController
	attached chan struct{} // closed when the attached request must return (replaced per attach)
	started  bool          // headers written on the attached response
	sse      bool
	events   []storedEvent // oldest first
	kept     int           // bytes in events
	next     int           // index of the next event
	pending  map[string]bool
	finished chan struct{} // closed once every call on the stream is answered; nil for GET streams
	ended    bool          // the session closed
}

type storedEvent struct {
	idx       int
	data      []byte
	delivered bool
}

func newStream(id string, resumable, prime, stateless bool, calls []string) *stream {
	st := &stream{id: id, resumable: resumable, prime: prime, stateless: stateless, pending: map[string]bool{}}
	if id != "" {
		st.finished = make(chan struct{})
		for _, c := range calls {
			st.pending[c] = true
		}
	}
	return st
}

// attach makes w the stream's output. Events kept and not yet delivered (or, with
// resumeAfter >= 0, every kept event after that index) are written at once. The
// returned channel is closed when the request must return: the stream finished, the
// session ended, or another request attached.
func (st *stream) attach(w http.ResponseWriter, resumeAfter int) <-chan struct{} {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.attached != nil {
		close(st.attached) // one request per stream: the newer wins
	}
	st.w, st.rc, st.started = w, http.NewResponseController(w), false
	st.attached = make(chan struct{})
	if st.ended || st.finishedLocked() && !st.undeliveredLocked(resumeAfter) {
		close(st.attached)
		st.attached = nil
		st.w = nil
		return closedChan
	}
	if !st.stateless {
		st.startSSELocked()
	}
	for i := range st.events {
		e := &st.events[i]
		if resumeAfter >= 0 && e.idx <= resumeAfter || resumeAfter < 0 && e.delivered {
			continue
		}
		if err := st.writeEventLocked(*e); err != nil {
			st.detachLocked()
			return closedChan
		}
		e.delivered = true
	}
	if st.finishedLocked() {
		done := st.attached
		close(done)
		st.attached = nil
		return done
	}
	return st.attached
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// detach is called by the request that attached w when it returns, so nothing is
// written to a finished response.
func (st *stream) detach(w http.ResponseWriter) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.w == w {
		st.detachLocked()
	}
}

func (st *stream) detachLocked() {
	st.w, st.rc = nil, nil
	if st.attached != nil {
		close(st.attached)
		st.attached = nil
	}
}

func (st *stream) finishedLocked() bool {
	return st.finished != nil && len(st.pending) == 0
}

func (st *stream) undeliveredLocked(after int) bool {
	for _, e := range st.events {
		if after >= 0 && e.idx > after || after < 0 && !e.delivered {
			return true
		}
	}
	return false
}

// send writes one message (an encoded JSON-RPC message) to the stream. answers is
// the idKey of the call it responds to, or "". A message for a stream with no
// attached request waits for one (stateful sessions) or is dropped (stateless).
func (st *stream) send(data []byte, answers string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return
	}
	e := storedEvent{idx: st.next, data: data}
	st.next++
	if answers != "" {
		delete(st.pending, answers)
	}
	last := st.finishedLocked()
	if st.w != nil {
		var err error
		if st.stateless && !st.started && answers != "" && last {
			err = st.writeJSONLocked(data)
		} else {
			err = st.writeEventLocked(e)
		}
		if err == nil {
			e.delivered = true
		} else {
			st.detachLocked()
		}
	}
	if st.resumable {
		st.keepLocked(e)
	}
	if last {
		select {
		case <-st.finished:
		default:
			close(st.finished)
		}
		if st.attached != nil {
			close(st.attached)
			st.attached = nil
		}
	}
}

// drop forgets a call without answering it (the client cancelled it).
func (st *stream) drop(call string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.pending[call]; !ok {
		return
	}
	delete(st.pending, call)
	if st.finishedLocked() {
		close(st.finished)
		if st.attached != nil {
			close(st.attached)
			st.attached = nil
		}
	}
}

// open reports whether the stream still waits for responses.
func (st *stream) open() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return !st.ended && (st.finished == nil || len(st.pending) > 0)
}

// live reports whether a request is attached.
func (st *stream) live() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.w != nil
}

// end releases the attached request for good: the session is over.
func (st *stream) end() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.ended = true
	st.detachLocked()
	st.events = nil
}

// keepalive writes an SSE comment, so that proxies and clients see a live connection
// while a call waits (an approval, a slow tool).
func (st *stream) keepalive() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.w == nil {
		return
	}
	if !st.started {
		st.startSSELocked()
	}
	if !st.sse {
		return
	}
	if _, err := st.w.Write([]byte(": keepalive\n\n")); err != nil {
		st.detachLocked()
		return
	}
	st.flushLocked()
}

func (st *stream) keepLocked(e storedEvent) {
	st.events = append(st.events, e)
	st.kept += len(e.data)
	for len(st.events) > streamKeepEvents || st.kept > streamKeepBytes && len(st.events) > 1 {
		st.kept -= len(st.events[0].data)
		st.events = st.events[1:]
	}
}

func (st *stream) startSSELocked() {
	if st.started {
		return
	}
	h := st.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no")
	st.w.WriteHeader(http.StatusOK)
	st.started, st.sse = true, true
	if st.prime && st.id != "" && st.next == 0 {
		// A priming event: an id before any data, so a client whose connection
		// breaks before the first message can still resume (2025-11-25).
		e := storedEvent{idx: st.next}
		st.next++
		st.keepLocked(storedEvent{idx: e.idx, delivered: true})
		writeSSE(st.w, sseEvent{ID: st.eventID(e.idx), Retry: retryAfter})
	}
	st.flushLocked()
}

func (st *stream) writeEventLocked(e storedEvent) error {
	if !st.started {
		st.startSSELocked()
	}
	if !st.sse {
		return errors.New("the response is JSON")
	}
	if len(e.data) == 0 {
		return nil // the priming event, already delivered
	}
	ev := sseEvent{Name: "message", Data: e.data}
	if st.resumable {
		ev.ID = st.eventID(e.idx)
	}
	if err := writeSSE(st.w, ev); err != nil {
		return err
	}
	return st.flushLocked()
}

// writeJSONLocked answers with the response alone, as application/json; protocol
// errors get the HTTP status the 2026-07-28 revision gives them.
func (st *stream) writeJSONLocked(data []byte) error {
	h := st.w.Header()
	h.Set("Content-Type", "application/json")
	st.w.WriteHeader(statelessStatus(data))
	st.started = true
	_, err := st.w.Write(data)
	return err
}

func (st *stream) flushLocked() error {
	if err := st.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

func (st *stream) eventID(idx int) string { return st.id + "_" + strconv.Itoa(idx) }

// parseEventID splits a Last-Event-ID into stream id and index.
func parseEventID(s string) (streamID string, idx int, ok bool) {
	i := bytes.LastIndexByte([]byte(s), '_')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil || n < 0 {
		return "", 0, false
	}
	return s[:i], n, true
}

// statelessStatus is the HTTP status of a JSON-RPC response under the 2026-07-28
// revision: method not found is 404; invalid params, an unsupported protocol version
// and missing client capabilities are 400; everything else 200.
func statelessStatus(data []byte) int {
	var r struct {
		Error *struct {
			Code int64 `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &r) != nil || r.Error == nil {
		return http.StatusOK
	}
	switch r.Error.Code {
	case -32601:
		return http.StatusNotFound
	case codeInvalidParams, -32022, -32021:
		return http.StatusBadRequest
	}
	return http.StatusOK
}
