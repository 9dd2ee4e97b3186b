package mcpproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// MCP tasks (2025-11-25's experimental tasks, and the io.modelcontextprotocol/tasks
// extension of 2026-07-28) split a tools/call in two: the server answers at once with
// a task handle, and the result comes later — from tasks/result (2025-11-25), or
// inline in the tasks/get answer of a finished task (the extension) — possibly in a
// later HTTP request, or a later stateless exchange. Vigil keeps the governed call's
// flight with the task, so that whatever the server says about the task reaches the
// client through that flight's inbound processing, and the final result is recorded
// once, linked to its request, as a direct call's result is.
//
// A task is bound to whoever started it through Vigil: the stateful session (whose
// upstream session or process ran it), or for the stateless revision the agent. The
// upstream server sees one authorization context (Vigil's), so it cannot keep agents'
// tasks apart; Vigil does, and relays task methods only for tasks it knows: a task id
// it does not know (another agent's, one started before Vigil restarted, one whose
// session ended) is refused without reaching the server, so a result can never flow
// back outside its flight.

// Bounds on the tasks Vigil keeps.
const (
	// maxTasksPerServer bounds a server's task book; past it the oldest are forgotten.
	maxTasksPerServer = 10000
	// maxTaskRetention is how long a task is kept when the server sets no ttl (or a
	// longer one); taskGrace is added to a server's ttl, which counts from its own clock.
	maxTaskRetention = 24 * time.Hour
	taskGrace        = time.Minute
)

// statusFields are the members of a Task (and of the results carrying one) that hold
// what the server says about the work: free text, the input it asks for, metadata
// (an immediate response for the model). They go through the flight's inbound
// processing. The bookkeeping members (taskId, status, timestamps, ttl, poll
// interval) are forwarded byte for byte: masking an id or a timestamp that looks
// like personal data would break the protocol.
var statusFields = []string{"statusMessage", "inputRequests", "_meta"}

// task is a governed tools/call that the server turned into a task.
type task struct {
	id      string // the server's task id
	owner   string // the stateful session that started it; "" for the stateless revision
	agent   string // the agent that started it
	token   string // rawKey of the call's progress token, which stays valid for the task
	flight  *enforce.Flight
	expires time.Time
	added   time.Time

	mu     sync.Mutex
	ended  bool  // the flight's result is recorded (or being recorded)
	lost   error // the server that ran the task stopped: fetches fail with this
	status string
}

// claim reports, once, that the caller records the task's result.
func (t *task) claim() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended {
		return false
	}
	t.ended = true
	return true
}

func (t *task) lostErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lost
}

func (t *task) setStatus(s string) {
	if s == "" {
		return
	}
	t.mu.Lock()
	t.status = s
	t.mu.Unlock()
}

// end records the task's response (the caller claimed it), tagged with the task.
func (t *task) end(log *slog.Logger, o enforce.Outcome) {
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	if o.Attrs == nil {
		o.Attrs = map[string]string{}
	}
	o.Attrs["task"] = t.id
	t.mu.Lock()
	if t.status != "" {
		o.Attrs["task_status"] = t.status
	}
	t.mu.Unlock()
	if err := t.flight.End(ctx, o); err != nil {
		log.Error("couldn't record an MCP task's result", "request", t.flight.EventID, "err", err)
	}
}

// abandon records, if nobody did, that the task's result never reached the client.
func (t *task) abandon(log *slog.Logger, status int, code vigil.Code, msg string) {
	if t.claim() {
		t.end(log, enforce.Outcome{Status: status, Err: &vigil.Error{Code: code, Message: msg}})
	}
}

type taskKey struct{ owner, id string }

// taskBook holds the tasks started through Vigil on one server.
type taskBook struct {
	mu    sync.Mutex
	tasks map[taskKey]*task
}

func newTaskBook() *taskBook { return &taskBook{tasks: map[taskKey]*task{}} }

// add registers t. When the book is full it forgets the oldest tasks, preferring
// those whose result was delivered, and returns them for the caller to abandon.
func (b *taskBook) add(t *task) (evicted []*task) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tasks[taskKey{t.owner, t.id}] = t
	for len(b.tasks) > maxTasksPerServer {
		var oldest *task
		oldestEnded := false
		for _, c := range b.tasks {
			if c == t {
				continue
			}
			c.mu.Lock()
			ended := c.ended
			c.mu.Unlock()
			if oldest == nil || ended && !oldestEnded || ended == oldestEnded && c.added.Before(oldest.added) {
				oldest, oldestEnded = c, ended
			}
		}
		delete(b.tasks, taskKey{oldest.owner, oldest.id})
		evicted = append(evicted, oldest)
	}
	return evicted
}

// get finds the task id of owner ("" for the stateless revision) started by agent.
func (b *taskBook) get(owner, agent, id string) *task {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.tasks[taskKey{owner, id}]
	if t == nil || t.agent != agent {
		return nil
	}
	return t
}

// byToken finds the task of owner and agent whose call had the progress token key.
func (b *taskBook) byToken(owner, agent, key string) *task {
	if key == "" {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, t := range b.tasks {
		if k.owner == owner && t.agent == agent && t.token == key {
			return t
		}
	}
	return nil
}

// drop forgets the tasks of owner and returns them.
func (b *taskBook) drop(owner string) []*task {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*task
	for k, t := range b.tasks {
		if k.owner == owner {
			out = append(out, t)
			delete(b.tasks, k)
		}
	}
	return out
}

// expire forgets the tasks whose retention ended by now and returns them.
func (b *taskBook) expire(now time.Time) []*task {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*task
	for k, t := range b.tasks {
		if now.After(t.expires) {
			out = append(out, t)
			delete(b.tasks, k)
		}
	}
	return out
}

// lose marks the tasks of owner lost (the server process that ran them stopped) and
// records that their results will never come. They stay in the book until they
// expire, so a fetch gets that explanation rather than "unknown task".
func (b *taskBook) lose(log *slog.Logger, owner string, server string) {
	b.mu.Lock()
	var lost []*task
	for k, t := range b.tasks {
		if k.owner == owner {
			lost = append(lost, t)
		}
	}
	b.mu.Unlock()
	msg := fmt.Sprintf("MCP server %s stopped while running this task, so its result is lost; call the tool again", server)
	for _, t := range lost {
		t.mu.Lock()
		if t.lost == nil {
			t.lost = &vigil.Error{Code: vigil.EUPSTREAM, Message: msg}
		}
		t.mu.Unlock()
		t.abandon(log, 502, vigil.EUPSTREAM, msg)
	}
}

// taskOwner is the owner key of the tasks this session starts.
func (s *session) taskOwner() string {
	if s.stateless {
		return ""
	}
	return s.id
}

func (s *session) lookupTask(id string) *task {
	if id == "" {
		return nil
	}
	return s.srv.tasks.get(s.taskOwner(), s.actor.ID, id)
}

// createdTask reports whether a tools/call result is a task handle instead of the
// tool's result, and the task's id: {"task": {"taskId": …}} (2025-11-25) or
// {"resultType": "task", "taskId": …} (the tasks extension).
func createdTask(res object) (string, bool) {
	if res.str("resultType") == "task" {
		id := res.str("taskId")
		return id, id != ""
	}
	inner, err := decodeObject(res["task"])
	if err != nil || len(res["task"]) == 0 {
		return "", false
	}
	id := inner.str("taskId")
	return id, id != ""
}

// taskTTL is the retention the server announced for a task, in ttl (2025-11-25) or
// ttlMs (the extension); 0 when it set none or null (unlimited).
func taskTTL(t object) time.Duration {
	for _, k := range []string{"ttl", "ttlMs"} {
		var ms float64
		if json.Unmarshal(t[k], &ms) == nil && ms > 0 {
			return time.Duration(ms) * time.Millisecond
		}
	}
	return 0
}

// startTask registers the task a governed call became and relays its handle. The
// call's flight stays open: it ends when the result reaches the client.
func (s *session) startTask(cc *clientCall, f *enforce.Flight, id string, res object) {
	ttl := taskTTL(res)
	if inner, err := decodeObject(res["task"]); err == nil && len(res["task"]) > 0 {
		ttl = taskTTL(inner)
	}
	keep := maxTaskRetention
	if ttl > 0 && ttl+taskGrace < keep {
		keep = ttl + taskGrace
	}
	now := time.Now()
	t := &task{id: id, owner: s.taskOwner(), agent: s.actor.ID, flight: f, added: now, expires: now.Add(keep), status: "working"}
	if cc.token != nil {
		t.token = rawKey(cc.token)
	}
	out, err := s.relayTask(cc.ctx, t, res)
	if err != nil {
		// The handle can't be relayed safely; the task runs on unseen. Record that.
		t.abandon(s.g.log, 200, vigil.EUNAVAILABLE, vigil.ErrorMessage(err))
		s.answerResult(cc, toolError(err))
		return
	}
	for _, old := range s.srv.tasks.add(t) {
		old.abandon(s.g.log, 410, vigil.EUNAVAILABLE, "Vigil forgot the task (too many tasks on this server) before its result was fetched")
	}
	s.answerResult(cc, out.encode())
}

// relayTask processes what a server says about a task before it reaches the client:
// a CreateTaskResult, a Task (tasks/get, tasks/cancel, a tasks/list entry, a status
// notification). Its status fields are masked or restored through the call's flight
// without counting (a poll repeats them); a final result or error carried inline
// (the extension's tasks/get) is delivered as the call's result.
func (s *session) relayTask(ctx context.Context, t *task, obj object) (object, error) {
	out := clone(obj)
	if len(obj["task"]) > 0 {
		if inner, err := decodeObject(obj["task"]); err == nil {
			masked, err := s.relayTask(ctx, t, inner)
			if err != nil {
				return nil, err
			}
			out["task"] = masked.encode()
		}
	}
	sub := object{}
	for _, k := range statusFields {
		if v, ok := obj[k]; ok {
			sub[k] = v
		}
	}
	if len(sub) > 0 {
		masked, err := t.flight.Restore(ctx, sub.encode())
		if err != nil {
			return nil, err
		}
		m, err := decodeObject(masked)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			out[k] = v
		}
	}
	t.setStatus(obj.str("status"))
	if raw, ok := obj["result"]; ok && len(raw) > 0 {
		res, err := s.deliverTaskResult(ctx, t, raw)
		if err != nil {
			return nil, err
		}
		out["result"] = res
	}
	if raw, ok := obj["error"]; ok && len(raw) > 0 && obj.str("status") == "failed" {
		masked, err := s.deliverTaskError(ctx, t, raw)
		if err != nil {
			return nil, err
		}
		out["error"] = masked
	}
	return out, nil
}

// deliverTaskResult processes a task's final result for the client. The first
// delivery goes through the flight's Inbound (its findings counted) and records the
// result; a later one (a client may fetch a result again) is processed the same way
// without counting or recording it again.
func (s *session) deliverTaskResult(ctx context.Context, t *task, raw json.RawMessage) (json.RawMessage, error) {
	if !t.claim() {
		return t.flight.Restore(ctx, raw)
	}
	out, err := t.flight.Inbound(ctx, raw)
	if err != nil {
		t.end(s.g.log, enforce.Outcome{Status: 200, Err: err})
		return nil, err
	}
	t.end(s.g.log, enforce.Outcome{Status: toolStatus(out), Body: out})
	return out, nil
}

// deliverTaskError processes the JSON-RPC error a failed task ended with (the
// extension carries it in tasks/get): masked for the client and the ledger alike.
func (s *session) deliverTaskError(ctx context.Context, t *task, raw json.RawMessage) (json.RawMessage, error) {
	if !t.claim() {
		return t.flight.Restore(ctx, raw)
	}
	var w jsonrpc.Error
	_ = json.Unmarshal(raw, &w)
	out, err := t.flight.Inbound(ctx, raw)
	o := enforce.Outcome{Status: 500, Err: &vigil.Error{Code: vigil.EUPSTREAM, Message: fmt.Sprintf("the MCP server's task failed with JSON-RPC error %d", w.Code)}, Body: out}
	if err != nil {
		o = enforce.Outcome{Status: 200, Err: err}
	}
	t.end(s.g.log, o)
	return out, err
}

// toolStatus is the status a tool result is recorded with: 500 for isError.
func toolStatus(result json.RawMessage) int {
	var head struct {
		IsError bool `json:"isError"`
	}
	_ = json.Unmarshal(result, &head)
	if head.IsError {
		return 500
	}
	return 200
}

// errUnknownTask answers a task method for a task Vigil did not relay to this
// session (or, stateless, this agent). It does not say whether the task exists.
var errUnknownTask = &jsonrpc.Error{Code: codeInvalidParams, Message: "unknown task: Vigil relays the tasks a session (for the stateless revision, an agent) " +
	"started through it, until the session ends or the task expires; this is not one of them"}

// taskCall handles tasks/get, tasks/result, tasks/cancel and tasks/update: refused
// unless the task is this session's; the answer relayed through the task's flight.
func (s *session) taskCall(cc *clientCall, method string, params object) {
	t := s.lookupTask(params.str("taskId"))
	if t == nil {
		s.answerError(cc, errUnknownTask)
		return
	}
	if err := t.lostErr(); err != nil {
		s.answerError(cc, vigilError(err))
		return
	}
	params, err := s.inputResponses(method, params)
	if err != nil {
		s.answerError(cc, vigilError(err))
		return
	}
	timeout := s.srv.request
	if method == "tasks/result" {
		timeout = 0 // it blocks until the task is done: as long as the task lives
	}
	r, err := s.requestWithin(cc.ctx, cc, method, params.encode(), timeout)
	if err != nil {
		if cc.ctx.Err() == nil {
			s.answerError(cc, upstreamError(s.srv.name, err))
		}
		return
	}
	if r.Error != nil {
		if isOurs(r) {
			s.answer(cc, r)
			return
		}
		// The server's message is masked like the task's result would be.
		o, werr := s.errorOutcome(cc, t.flight, r)
		if method == "tasks/result" && t.claim() {
			// What the underlying call answered (or the server no longer knows the
			// task): either way, the task's final answer.
			t.end(s.g.log, o)
		}
		s.answerError(cc, werr)
		return
	}
	if method == "tasks/result" {
		out, err := s.deliverTaskResult(cc.ctx, t, r.Result)
		if err != nil {
			s.answerError(cc, vigilError(err))
			return
		}
		s.answerResult(cc, out)
		return
	}
	res, err := decodeObject(r.Result)
	if err != nil {
		s.answerError(cc, &jsonrpc.Error{Code: codeInternal, Message: fmt.Sprintf("MCP server %s answered %s with a malformed result", s.srv.name, method)})
		return
	}
	out, err := s.relayTask(cc.ctx, t, res)
	if err != nil {
		s.answerError(cc, vigilError(err))
		return
	}
	s.answerResult(cc, out.encode())
}

// filterTaskList answers tasks/list (2025-11-25) with this session's tasks only,
// relayed like tasks/get answers: the server may list tasks of every client that
// shares Vigil's authorization context with it.
func (s *session) filterTaskList(cc *clientCall, r *jsonrpc.Response) {
	if r.Error != nil {
		s.answer(cc, r)
		return
	}
	res, tasks, err := listResult(r.Result, "tasks")
	if err != nil {
		s.answerError(cc, &jsonrpc.Error{Code: codeInternal, Message: fmt.Sprintf("MCP server %s answered tasks/list with a malformed result", s.srv.name)})
		return
	}
	visible := make([]json.RawMessage, 0, len(tasks))
	for _, raw := range tasks {
		obj, err := decodeObject(raw)
		if err != nil {
			continue
		}
		t := s.lookupTask(obj.str("taskId"))
		if t == nil {
			continue
		}
		out, err := s.relayTask(cc.ctx, t, obj)
		if err != nil {
			s.answerError(cc, vigilError(err))
			return
		}
		visible = append(visible, out.encode())
	}
	res["tasks"] = mustJSON(visible)
	s.answerResult(cc, res.encode())
}

// taskNotification relays a task status notification through the task's flight. It
// reports false when the notification must not reach this client: the task is not
// this session's, or it could not be processed (fail-closed).
func (s *session) taskNotification(m *jsonrpc.Request) (*jsonrpc.Request, bool) {
	params, err := decodeObject(m.Params)
	if err != nil {
		return nil, false
	}
	t := s.lookupTask(params.str("taskId"))
	if t == nil {
		return nil, false
	}
	out, err := s.relayTask(s.ctx, t, params)
	if err != nil {
		s.g.log.Warn("couldn't check a task status notification for personal data; dropped it (fail-closed)", "server", s.srv.name, "session", s.short(), "err", err)
		return nil, false
	}
	return &jsonrpc.Request{Method: m.Method, Params: out.encode()}, true
}

// maskProgress passes a progress notification's message through the flight of the
// call (or task) it reports on, without counting. It reports false when that failed.
func maskProgress(ctx context.Context, f *enforce.Flight, params object) (object, bool) {
	if f == nil || len(params["message"]) == 0 {
		return params, true
	}
	masked, err := f.Restore(ctx, object{"message": params["message"]}.encode())
	if err != nil {
		return nil, false
	}
	m, err := decodeObject(masked)
	if err != nil {
		return nil, false
	}
	out := clone(params)
	out["message"] = m["message"]
	return out, true
}

// expireTasks forgets the tasks whose retention ended, recording those whose
// result never reached the client.
func (g *Gateway) expireTasks(now time.Time) {
	for _, srv := range g.servers {
		for _, t := range srv.tasks.expire(now) {
			t.abandon(g.log, 504, vigil.ETIMEOUT, "the task's result was not fetched before Vigil stopped keeping the task")
		}
	}
}
