package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var (
	_ oversight.Store         = (*oversightStore)(nil)
	_ oversight.DeliveryStore = (*oversightStore)(nil)
)

// oversightStore implements oversight.Store and oversight.DeliveryStore. Replicas
// share it, so each state change locks the rows it decides on (SELECT … FOR UPDATE,
// or FOR UPDATE SKIP LOCKED for sweeps) and updates them only while still pending:
// two replicas racing on one request produce exactly one transition.
type oversightStore struct{ db *DB }

// Oversight returns the store of approval requests and the global halt.
func (db *DB) Oversight() oversight.Store { return &oversightStore{db} }

// Deliveries returns the store of webhook delivery attempts.
func (db *DB) Deliveries() oversight.DeliveryStore { return &oversightStore{db} }

const approvalCols = `id, status, source, agent_id, agent_name, agent_owner, system_id, system_name, session_id,
	tool, model, args, rules, message, policy, spec, created_at, expires_at, decided_at, decided_by, reason, edited_args`

// jsonParam marshals v for a jsonb parameter, or returns NULL when isNil.
func jsonParam(v any, isNil bool) (any, error) {
	if isNil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func unmarshalJSON(b []byte, v any) error {
	if b == nil {
		return nil
	}
	return json.Unmarshal(b, v)
}

func scanApproval(row pgx.Row) (oversight.Request, error) {
	var r oversight.Request
	var tool, model, args, rules, spec, edited []byte
	if err := row.Scan(&r.ID, &r.Status, &r.Source, &r.AgentID, &r.AgentName, &r.AgentOwner, &r.SystemID, &r.SystemName,
		&r.SessionID, &tool, &model, &args, &rules, &r.Message, &r.Policy, &spec, &r.CreatedAt, &r.ExpiresAt, &r.DecidedAt,
		&r.DecidedBy, &r.Reason, &edited); err != nil {
		return r, err
	}
	r.CreatedAt, r.ExpiresAt, r.DecidedAt = utc(r.CreatedAt), utc(r.ExpiresAt), utcPtr(r.DecidedAt)
	if tool != nil {
		r.Tool = &vigil.Tool{}
	}
	if model != nil {
		r.Model = &vigil.Model{}
	}
	err := errors.Join(unmarshalJSON(tool, r.Tool), unmarshalJSON(model, r.Model), unmarshalJSON(args, &r.Args),
		unmarshalJSON(edited, &r.EditedArgs), json.Unmarshal(rules, &r.Rules), json.Unmarshal(spec, &r.Spec))
	if err != nil {
		return r, fmt.Errorf("approval request %s has corrupt JSON: %w", r.ID, err)
	}
	r.Votes = []oversight.Vote{}
	return r, nil
}

func (s *oversightStore) CreateRequest(ctx context.Context, r oversight.Request) error {
	tool, err1 := jsonParam(r.Tool, r.Tool == nil)
	model, err2 := jsonParam(r.Model, r.Model == nil)
	args, err3 := jsonParam(r.Args, r.Args == nil)
	edited, err4 := jsonParam(r.EditedArgs, r.EditedArgs == nil)
	rules := r.Rules
	if rules == nil {
		rules = []string{}
	}
	rulesJSON, err5 := jsonParam(rules, false)
	spec, err6 := jsonParam(r.Spec, false)
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		return fmt.Errorf("couldn't encode approval request: %w", err)
	}
	_, err := s.db.pool.Exec(ctx, `INSERT INTO approvals (`+approvalCols+`)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22)`,
		r.ID, r.Status, r.Source, r.AgentID, r.AgentName, r.AgentOwner, r.SystemID, r.SystemName, r.SessionID,
		tool, model, args, rulesJSON, r.Message, r.Policy, spec, r.CreatedAt, r.ExpiresAt, r.DecidedAt, r.DecidedBy, r.Reason, edited)
	if isUnique(err) {
		return vigil.Conflict("approval request %s already exists", r.ID)
	}
	if err != nil {
		return fmt.Errorf("couldn't create approval request: %w", err)
	}
	return nil
}

// querier is the pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *oversightStore) request(ctx context.Context, q querier, id string, lock bool) (oversight.Request, error) {
	sql := `SELECT ` + approvalCols + ` FROM approvals WHERE id=$1`
	if lock {
		sql += ` FOR UPDATE`
	}
	r, err := scanApproval(q.QueryRow(ctx, sql, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, vigil.NotFound("no approval request %q", id)
	}
	if err != nil {
		return r, fmt.Errorf("couldn't read approval request: %w", err)
	}
	list := []oversight.Request{r}
	if err := votes(ctx, q, list); err != nil {
		return r, err
	}
	return list[0], nil
}

// votes fills in the votes of reqs.
func votes(ctx context.Context, q querier, reqs []oversight.Request) error {
	if len(reqs) == 0 {
		return nil
	}
	idx := map[string]int{}
	ids := make([]string, len(reqs))
	for i, r := range reqs {
		idx[r.ID], ids[i] = i, r.ID
	}
	rows, err := q.Query(ctx, `SELECT approval_id, reviewer, verdict, reason, args, at FROM approval_votes
		WHERE approval_id = ANY($1) ORDER BY at, reviewer`, ids)
	if err != nil {
		return fmt.Errorf("couldn't read votes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var v oversight.Vote
		var args []byte
		if err := rows.Scan(&id, &v.Reviewer, &v.Verdict, &v.Reason, &args, &v.At); err != nil {
			return err
		}
		v.At = utc(v.At)
		if err := unmarshalJSON(args, &v.Args); err != nil {
			return fmt.Errorf("vote on %s has corrupt arguments: %w", id, err)
		}
		i := idx[id]
		reqs[i].Votes = append(reqs[i].Votes, v)
	}
	return rows.Err()
}

func (s *oversightStore) Request(ctx context.Context, id string) (oversight.Request, error) {
	return s.request(ctx, s.db.pool, id, false)
}

func (s *oversightStore) ListRequests(ctx context.Context, f oversight.Filter) ([]oversight.Request, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.pool.Query(ctx, `SELECT `+approvalCols+` FROM approvals
		WHERE ($1='' OR status=$1) AND ($2='' OR agent_id=$2) AND ($3='' OR system_id=$3)
		ORDER BY created_at DESC, id DESC LIMIT $4`, string(f.Status), f.AgentID, f.SystemID, limit)
	if err != nil {
		return nil, fmt.Errorf("couldn't list approval requests: %w", err)
	}
	out, err := collectApprovals(rows)
	if err != nil {
		return nil, err
	}
	return out, votes(ctx, s.db.pool, out)
}

func collectApprovals(rows pgx.Rows) ([]oversight.Request, error) {
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
	err := s.db.tx(ctx, func(tx pgx.Tx) error {
		// The row lock serialises every vote, expiry and cancellation of this request.
		r, err := s.request(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if r.Status != oversight.Pending {
			return vigil.Conflict("approval request %s is already %s", id, r.Status)
		}
		if !v.At.Before(r.ExpiresAt) {
			return vigil.Conflict("approval request %s has expired", id)
		}
		for _, x := range r.Votes {
			if x.Reviewer == v.Reviewer {
				return vigil.Conflict("%s has already decided on approval request %s", v.Reviewer, id)
			}
		}
		args, err := jsonParam(v.Args, v.Args == nil)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO approval_votes (approval_id, reviewer, verdict, reason, args, at) VALUES ($1,$2,$3,$4,$5,$6)`,
			id, v.Reviewer, v.Verdict, v.Reason, args, v.At); err != nil {
			if isUnique(err) {
				return vigil.Conflict("%s has already decided on approval request %s", v.Reviewer, id)
			}
			return fmt.Errorf("couldn't record vote: %w", err)
		}
		r = r.WithVote(v)
		edited, err := jsonParam(r.EditedArgs, r.EditedArgs == nil)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE approvals SET status=$1, decided_at=$2, decided_by=$3, reason=$4, edited_args=$5 WHERE id=$6 AND status='pending'`,
			r.Status, r.DecidedAt, r.DecidedBy, r.Reason, edited, id); err != nil {
			return fmt.Errorf("couldn't update approval request: %w", err)
		}
		out = r
		return nil
	})
	return out, err
}

// finish moves the pending requests the subquery condition where selects to status
// and returns them. The row locks serialise it with votes; the outer status check
// re-reads rows changed since the statement began. A sweep skips locked rows (the
// replica holding them is deciding them); a cancellation waits for them, so no
// request of a suspended agent stays pending behind a concurrent vote.
func (s *oversightStore) finish(ctx context.Context, where string, whereArgs []any, skipLocked bool, status oversight.Status, by, reason string, at time.Time) ([]oversight.Request, error) {
	var out []oversight.Request
	n := len(whereArgs)
	args := append(whereArgs, status, at, by, reason)
	lock := "FOR UPDATE"
	if skipLocked {
		lock = "FOR UPDATE SKIP LOCKED"
	}
	err := s.db.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, fmt.Sprintf(`UPDATE approvals SET status=$%d, decided_at=$%d, decided_by=$%d, reason=$%d
			WHERE status='pending' AND id IN (SELECT id FROM approvals WHERE status='pending' AND %s %s)
			RETURNING `+approvalCols, n+1, n+2, n+3, n+4, where, lock), args...)
		if err != nil {
			return err
		}
		if out, err = collectApprovals(rows); err != nil {
			return err
		}
		return votes(ctx, tx, out)
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
	return s.finish(ctx, `expires_at <= $1 ORDER BY expires_at LIMIT $2`, []any{now, limit}, true, oversight.Expired, by, reason, now)
}

func (s *oversightStore) Cancel(ctx context.Context, scope oversight.Scope, by, reason string, at time.Time) ([]oversight.Request, error) {
	switch {
	case scope.ID != "":
		return s.finish(ctx, `id=$1`, []any{scope.ID}, false, oversight.Cancelled, by, reason, at)
	case scope.AgentID != "":
		return s.finish(ctx, `agent_id=$1`, []any{scope.AgentID}, false, oversight.Cancelled, by, reason, at)
	case scope.SystemID != "":
		return s.finish(ctx, `system_id=$1`, []any{scope.SystemID}, false, oversight.Cancelled, by, reason, at)
	case scope.All:
		return s.finish(ctx, `true`, nil, false, oversight.Cancelled, by, reason, at)
	}
	return nil, errors.New("cancel: empty scope")
}

func (s *oversightStore) CountPending(ctx context.Context) (int, error) {
	var n int
	if err := s.db.pool.QueryRow(ctx, `SELECT count(*) FROM approvals WHERE status='pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("couldn't count pending approvals: %w", err)
	}
	return n, nil
}

func (s *oversightStore) Halt(ctx context.Context) (oversight.Halt, error) {
	var h oversight.Halt
	err := s.db.pool.QueryRow(ctx, `SELECT halted, reason, set_by, set_at FROM halt WHERE id=1`).Scan(&h.On, &h.Reason, &h.By, &h.At)
	if errors.Is(err, pgx.ErrNoRows) {
		return oversight.Halt{}, nil
	}
	if err != nil {
		return h, fmt.Errorf("couldn't read the halt flag: %w", err)
	}
	h.At = utc(h.At)
	return h, nil
}

func (s *oversightStore) SetHalt(ctx context.Context, h oversight.Halt) error {
	_, err := s.db.pool.Exec(ctx, `INSERT INTO halt (id, halted, reason, set_by, set_at) VALUES (1,$1,$2,$3,$4)
		ON CONFLICT (id) DO UPDATE SET halted=excluded.halted, reason=excluded.reason, set_by=excluded.set_by, set_at=excluded.set_at`,
		h.On, h.Reason, h.By, h.At)
	if err != nil {
		return fmt.Errorf("couldn't store the halt flag: %w", err)
	}
	return nil
}

func (s *oversightStore) RecordDelivery(ctx context.Context, d oversight.Delivery) error {
	_, err := s.db.pool.Exec(ctx, `INSERT INTO webhook_deliveries (id, webhook, event, approval_id, attempt, status, error, at, duration_us)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)`, d.ID, d.Webhook, d.Event, d.ApprovalID, d.Attempt, d.Status, d.Error, d.At, d.Duration.Microseconds())
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
	rows, err := s.db.pool.Query(ctx, `SELECT id, webhook, event, approval_id, attempt, status, error, at, duration_us
		FROM webhook_deliveries WHERE $1='' OR approval_id=$1 ORDER BY at DESC, id DESC LIMIT $2`, approvalID, limit)
	if err != nil {
		return nil, fmt.Errorf("couldn't list webhook deliveries: %w", err)
	}
	defer rows.Close()
	out := []oversight.Delivery{}
	for rows.Next() {
		var d oversight.Delivery
		var us int64
		if err := rows.Scan(&d.ID, &d.Webhook, &d.Event, &d.ApprovalID, &d.Attempt, &d.Status, &d.Error, &d.At, &us); err != nil {
			return nil, err
		}
		d.At, d.Duration = utc(d.At), time.Duration(us)*time.Microsecond
		out = append(out, d)
	}
	return out, rows.Err()
}
