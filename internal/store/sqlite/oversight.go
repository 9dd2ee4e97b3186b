package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var (
	_ oversight.Store         = (*oversightStore)(nil)
	_ oversight.DeliveryStore = (*oversightStore)(nil)
)

// oversightStore implements oversight.Store and oversight.DeliveryStore. Every state
// change runs in a write transaction; SQLite's single writer serialises them, so a
// check and the update that depends on it can never interleave with another's.
type oversightStore struct{ db *DB }

// Oversight returns the store of approval requests and the global halt.
func (db *DB) Oversight() oversight.Store { return &oversightStore{db} }

// Deliveries returns the store of webhook delivery attempts.
func (db *DB) Deliveries() oversight.DeliveryStore { return &oversightStore{db} }

const approvalCols = `id, status, source, agent_id, agent_name, agent_owner, system_id, system_name, session_id,
	tool, model, args, rules, message, policy, spec, created_at, expires_at, decided_at, decided_by, reason, edited_args`

// nullJSON marshals v, or returns NULL for a nil pointer or map.
func nullJSON(v any, isNil bool) (any, error) {
	if isNil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func unmarshalNull(s sql.NullString, v any) error {
	if !s.Valid {
		return nil
	}
	return json.Unmarshal([]byte(s.String), v)
}

type rowScanner interface{ Scan(...any) error }

func scanApproval(row rowScanner) (oversight.Request, error) {
	var r oversight.Request
	var tool, model, args, edited sql.NullString
	var rules, spec string
	var created, expires int64
	var decided sql.NullInt64
	if err := row.Scan(&r.ID, &r.Status, &r.Source, &r.AgentID, &r.AgentName, &r.AgentOwner, &r.SystemID, &r.SystemName,
		&r.SessionID, &tool, &model, &args, &rules, &r.Message, &r.Policy, &spec, &created, &expires, &decided,
		&r.DecidedBy, &r.Reason, &edited); err != nil {
		return r, err
	}
	r.CreatedAt, r.ExpiresAt, r.DecidedAt = fromMicros(created), fromMicros(expires), fromMicrosPtr(decided)
	if tool.Valid {
		r.Tool = &vigil.Tool{}
	}
	if model.Valid {
		r.Model = &vigil.Model{}
	}
	err := errors.Join(unmarshalNull(tool, r.Tool), unmarshalNull(model, r.Model), unmarshalNull(args, &r.Args),
		unmarshalNull(edited, &r.EditedArgs), json.Unmarshal([]byte(rules), &r.Rules), json.Unmarshal([]byte(spec), &r.Spec))
	if err != nil {
		return r, fmt.Errorf("approval request %s has corrupt JSON: %w", r.ID, err)
	}
	r.Votes = []oversight.Vote{}
	return r, nil
}

func (s *oversightStore) CreateRequest(ctx context.Context, r oversight.Request) error {
	tool, err1 := nullJSON(r.Tool, r.Tool == nil)
	model, err2 := nullJSON(r.Model, r.Model == nil)
	args, err3 := nullJSON(r.Args, r.Args == nil)
	edited, err4 := nullJSON(r.EditedArgs, r.EditedArgs == nil)
	rules, err5 := json.Marshal(nonNil(r.Rules))
	spec, err6 := json.Marshal(r.Spec)
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		return fmt.Errorf("couldn't encode approval request: %w", err)
	}
	_, err := s.db.writes.ExecContext(ctx, `INSERT INTO approvals (`+approvalCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		r.ID, r.Status, r.Source, r.AgentID, r.AgentName, r.AgentOwner, r.SystemID, r.SystemName, r.SessionID,
		tool, model, args, string(rules), r.Message, r.Policy, string(spec), micros(r.CreatedAt), micros(r.ExpiresAt),
		microsPtr(r.DecidedAt), r.DecidedBy, r.Reason, edited)
	if isUnique(err) {
		return vigil.Conflict("approval request %s already exists", r.ID)
	}
	if err != nil {
		return fmt.Errorf("couldn't create approval request: %w", err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// rowQuerier is the read pool or a write transaction.
type rowQuerier interface {
	querier
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// request reads one request with its votes through q (the read pool or a write tx).
func (s *oversightStore) request(ctx context.Context, q rowQuerier, id string) (oversight.Request, error) {
	r, err := scanApproval(q.QueryRowContext(ctx, `SELECT `+approvalCols+` FROM approvals WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, vigil.NotFound("no approval request %q", id)
	}
	if err != nil {
		return r, fmt.Errorf("couldn't read approval request: %w", err)
	}
	list := []oversight.Request{r}
	if err := s.votes(ctx, q, list); err != nil {
		return r, err
	}
	return list[0], nil
}

// votes fills in the votes of reqs.
func (s *oversightStore) votes(ctx context.Context, q querier, reqs []oversight.Request) error {
	if len(reqs) == 0 {
		return nil
	}
	idx := map[string]int{}
	ids := make([]any, len(reqs))
	for i, r := range reqs {
		idx[r.ID], ids[i] = i, r.ID
	}
	rows, err := q.QueryContext(ctx, `SELECT approval_id, reviewer, verdict, reason, args, at FROM approval_votes
		WHERE approval_id IN (`+placeholders(len(ids))+`) ORDER BY at, reviewer`, ids...)
	if err != nil {
		return fmt.Errorf("couldn't read votes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var v oversight.Vote
		var args sql.NullString
		var at int64
		if err := rows.Scan(&id, &v.Reviewer, &v.Verdict, &v.Reason, &args, &at); err != nil {
			return err
		}
		v.At = fromMicros(at)
		if err := unmarshalNull(args, &v.Args); err != nil {
			return fmt.Errorf("vote on %s has corrupt arguments: %w", id, err)
		}
		i := idx[id]
		reqs[i].Votes = append(reqs[i].Votes, v)
	}
	return rows.Err()
}

func (s *oversightStore) Request(ctx context.Context, id string) (oversight.Request, error) {
	return s.request(ctx, s.db.read, id)
}

func (s *oversightStore) ListRequests(ctx context.Context, f oversight.Filter) ([]oversight.Request, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.reads.QueryContext(ctx, `SELECT `+approvalCols+` FROM approvals
		WHERE (?='' OR status=?) AND (?='' OR agent_id=?) AND (?='' OR system_id=?)
		ORDER BY created_at DESC, id DESC LIMIT ?`,
		f.Status, f.Status, f.AgentID, f.AgentID, f.SystemID, f.SystemID, limit)
	if err != nil {
		return nil, fmt.Errorf("couldn't list approval requests: %w", err)
	}
	out, err := collectApprovals(rows)
	if err != nil {
		return nil, err
	}
	return out, s.votes(ctx, s.db.read, out)
}

func collectApprovals(rows *sql.Rows) ([]oversight.Request, error) {
	defer rows.Close()
	out := []oversight.Request{}
	for rows.Next() {
		r, err := scanApproval(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *oversightStore) Vote(ctx context.Context, id string, v oversight.Vote) (oversight.Request, error) {
	var out oversight.Request
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		r, err := s.request(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.Status != oversight.Pending {
			return vigil.Conflict("approval request %s is already %s", id, r.Status)
		}
		if !v.At.Before(r.ExpiresAt) {
			return vigil.Conflict("approval request %s has expired", id)
		}
		args, err := nullJSON(v.Args, v.Args == nil)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO approval_votes (approval_id, reviewer, verdict, reason, args, at) VALUES (?,?,?,?,?,?)`,
			id, v.Reviewer, v.Verdict, v.Reason, args, micros(v.At))
		if isUnique(err) {
			return vigil.Conflict("%s has already decided on approval request %s", v.Reviewer, id)
		}
		if err != nil {
			return fmt.Errorf("couldn't record vote: %w", err)
		}
		r = r.WithVote(v)
		edited, err := nullJSON(r.EditedArgs, r.EditedArgs == nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE approvals SET status=?, decided_at=?, decided_by=?, reason=?, edited_args=? WHERE id=? AND status='pending'`,
			r.Status, microsPtr(r.DecidedAt), r.DecidedBy, r.Reason, edited, id); err != nil {
			return fmt.Errorf("couldn't update approval request: %w", err)
		}
		out = r
		return nil
	})
	return out, err
}

// finish moves the pending requests selected by where (with its args) to status,
// returning them as changed.
func (s *oversightStore) finish(ctx context.Context, where string, whereArgs []any, status oversight.Status, by, reason string, at time.Time) ([]oversight.Request, error) {
	var out []oversight.Request
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+approvalCols+` FROM approvals WHERE status='pending' AND `+where, whereArgs...)
		if err != nil {
			return err
		}
		if out, err = collectApprovals(rows); err != nil {
			return err
		}
		for i := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE approvals SET status=?, decided_at=?, decided_by=?, reason=? WHERE id=?`,
				status, micros(at), by, reason, out[i].ID); err != nil {
				return err
			}
			d := at
			out[i].Status, out[i].DecidedAt, out[i].DecidedBy, out[i].Reason = status, &d, by, reason
		}
		return s.votes(ctx, tx, out)
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't move approval requests to %s: %w", status, err)
	}
	return out, nil
}

func (s *oversightStore) ExpireDue(ctx context.Context, now time.Time, by, reason string, limit int) ([]oversight.Request, error) {
	if limit <= 0 {
		limit = 100
	}
	return s.finish(ctx, `expires_at <= ? ORDER BY expires_at LIMIT ?`, []any{micros(now), limit}, oversight.Expired, by, reason, now)
}

func (s *oversightStore) Cancel(ctx context.Context, scope oversight.Scope, by, reason string, at time.Time) ([]oversight.Request, error) {
	switch {
	case scope.ID != "":
		return s.finish(ctx, `id=?`, []any{scope.ID}, oversight.Cancelled, by, reason, at)
	case scope.AgentID != "":
		return s.finish(ctx, `agent_id=?`, []any{scope.AgentID}, oversight.Cancelled, by, reason, at)
	case scope.SystemID != "":
		return s.finish(ctx, `system_id=?`, []any{scope.SystemID}, oversight.Cancelled, by, reason, at)
	case scope.All:
		return s.finish(ctx, `1=1`, nil, oversight.Cancelled, by, reason, at)
	}
	return nil, errors.New("cancel: empty scope")
}

func (s *oversightStore) CountPending(ctx context.Context) (int, error) {
	var n int
	if err := s.db.reads.QueryRowContext(ctx, `SELECT count(*) FROM approvals WHERE status='pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("couldn't count pending approvals: %w", err)
	}
	return n, nil
}

func (s *oversightStore) Halt(ctx context.Context) (oversight.Halt, error) {
	var h oversight.Halt
	var at int64
	err := s.db.reads.QueryRowContext(ctx, `SELECT halted, reason, set_by, set_at FROM halt WHERE id=1`).Scan(&h.On, &h.Reason, &h.By, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return oversight.Halt{}, nil
	}
	if err != nil {
		return h, fmt.Errorf("couldn't read the halt flag: %w", err)
	}
	h.At = fromMicros(at)
	return h, nil
}

func (s *oversightStore) SetHalt(ctx context.Context, h oversight.Halt) error {
	_, err := s.db.writes.ExecContext(ctx, `INSERT INTO halt (id, halted, reason, set_by, set_at) VALUES (1,?,?,?,?)
		ON CONFLICT (id) DO UPDATE SET halted=excluded.halted, reason=excluded.reason, set_by=excluded.set_by, set_at=excluded.set_at`,
		h.On, h.Reason, h.By, micros(h.At))
	if err != nil {
		return fmt.Errorf("couldn't store the halt flag: %w", err)
	}
	return nil
}

func (s *oversightStore) RecordDelivery(ctx context.Context, d oversight.Delivery) error {
	_, err := s.db.writes.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, webhook, event, approval_id, attempt, status, error, at, duration_us)
		VALUES (?,?,?,?,?,?,?,?,?)`, d.ID, d.Webhook, d.Event, d.ApprovalID, d.Attempt, d.Status, d.Error, micros(d.At), d.Duration.Microseconds())
	if isUnique(err) {
		return vigil.Conflict("delivery %s already recorded", d.ID)
	}
	if err != nil {
		return fmt.Errorf("couldn't record webhook delivery: %w", err)
	}
	return nil
}

func (s *oversightStore) ListDeliveries(ctx context.Context, approvalID string, limit int) ([]oversight.Delivery, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.reads.QueryContext(ctx, `SELECT id, webhook, event, approval_id, attempt, status, error, at, duration_us
		FROM webhook_deliveries WHERE ?='' OR approval_id=? ORDER BY at DESC, id DESC LIMIT ?`, approvalID, approvalID, limit)
	if err != nil {
		return nil, fmt.Errorf("couldn't list webhook deliveries: %w", err)
	}
	defer rows.Close()
	out := []oversight.Delivery{}
	for rows.Next() {
		var d oversight.Delivery
		var at, us int64
		if err := rows.Scan(&d.ID, &d.Webhook, &d.Event, &d.ApprovalID, &d.Attempt, &d.Status, &d.Error, &at, &us); err != nil {
			return nil, err
		}
		d.At, d.Duration = fromMicros(at), time.Duration(us)*time.Microsecond
		out = append(out, d)
	}
	return out, rows.Err()
}
