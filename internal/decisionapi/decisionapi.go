// Package decisionapi is the decision API for agents that run tools in-process
// (LangChain, the OpenAI Agents SDK, custom code): the agent describes the action it is
// about to take, Vigil masks, decides, records, and answers allow or deny with reasons
// — or pending with an approval the agent can wait on — and later records what the
// tool returned.
//
//	POST /v1/decisions                  {"action":"tool_call","tool":{"server","name"},"args":{…}}
//	GET  /v1/decisions/{id}?wait=30s    the decision, waiting for a pending approval
//	POST /v1/decisions/{id}/outcome     {"status":"ok"|"error","result":…}
//
// A decision's id is the ledger id of its request entry, so every answer can be proved.
package decisionapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/enforce"
	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// MaxWait caps ?wait=.
const MaxWait = 5 * time.Minute

// AgentAuthenticator resolves an agent API key to its actor.
type AgentAuthenticator interface {
	AuthenticateAgent(ctx context.Context, secret string) (vigil.Actor, error)
}

// Waiter waits for an approval's outcome. It returns the current state with Status
// "pending" if ctx ends first.
type Waiter interface {
	Wait(ctx context.Context, approvalID string) (enforce.HoldResult, error)
}

// Entries finds a ledger entry by event id.
type Entries interface {
	EntryByID(ctx context.Context, eventID string) (ledger.Entry, error)
}

// Server serves the decision API.
type Server struct {
	Log       *slog.Logger
	Auth      AgentAuthenticator
	Pipeline  *enforce.Pipeline
	Approvals Waiter
	Ledger    Entries
}

// Register adds the routes to mux.
func (s *Server) Register(mux *web.Mux) {
	mux.HandleFunc("POST /v1/decisions", s.agent(s.handleDecide))
	mux.HandleFunc("GET /v1/decisions/{id}", s.agent(s.handleGet))
	mux.HandleFunc("POST /v1/decisions/{id}/outcome", s.agent(s.handleOutcome))
}

type ctxKey int

const actorKey ctxKey = 0

func (s *Server) agent(h web.HandlerFunc) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		secret := auth.FromHeader(r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"))
		if secret == "" {
			return vigil.Errorf(vigil.EUNAUTHORIZED, "missing API key: send your Vigil agent key as Authorization: Bearer vk_…")
		}
		a, err := s.Auth.AuthenticateAgent(r.Context(), secret)
		if err != nil {
			return err
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), actorKey, a)))
	}
}

func actor(ctx context.Context) vigil.Actor {
	a, _ := ctx.Value(actorKey).(vigil.Actor)
	return a
}

// Request is the body of POST /v1/decisions.
type Request struct {
	// Action is tool_call, model_call, resource_read or prompt_get.
	Action vigil.ActionKind `json:"action"`
	Tool   *struct {
		Server      string                 `json:"server"`
		Name        string                 `json:"name"`
		Annotations *vigil.ToolAnnotations `json:"annotations"`
	} `json:"tool"`
	Model    *vigil.Model   `json:"model"`
	Resource string         `json:"resource"`
	Args     map[string]any `json:"args"`
	// Session groups the agent's decisions (a conversation, a run).
	Session string `json:"session"`
}

// Answer is a decision as the API returns it.
type Answer struct {
	ID       string   `json:"id"`
	Decision string   `json:"decision"` // allow | deny | pending
	Message  string   `json:"message,omitempty"`
	Rules    []string `json:"rules"`
	Policy   string   `json:"policy"`
	Approval string   `json:"approval,omitempty"`
	// Args are reviewer-edited arguments, when a reviewer changed them before approving:
	// run the tool with these.
	Args map[string]any `json:"args,omitempty"`
	// Limit names the limit reached, for a limit denial.
	Limit string `json:"limit,omitempty"`
}

func (s *Server) handleDecide(w http.ResponseWriter, r *http.Request) error {
	var in Request
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	a := actor(r.Context())
	c := enforce.Call{Actor: a, Kind: in.Action, Source: enforce.SourceDecision, SessionID: in.Session, NoWait: true}
	switch in.Action {
	case vigil.ToolCall:
		if in.Tool == nil || in.Tool.Name == "" {
			return vigil.Errorf(vigil.EINVALID, `a tool_call needs "tool": {"name": …}`)
		}
		ann := vigil.DefaultToolAnnotations()
		if in.Tool.Annotations != nil {
			ann = *in.Tool.Annotations
		}
		c.Tool = &vigil.Tool{Server: in.Tool.Server, Name: in.Tool.Name, Annotations: ann}
		args := in.Args
		if args == nil {
			args = map[string]any{}
		}
		payload, err := json.Marshal(args)
		if err != nil {
			return vigil.Errorf(vigil.EINVALID, "args cannot be encoded: %v", err)
		}
		c.Payload, c.ArgsFromPayload = payload, true
	case vigil.ModelCall:
		if in.Model == nil || in.Model.Name == "" {
			return vigil.Errorf(vigil.EINVALID, `a model_call needs "model": {"name": …}`)
		}
		c.Model, c.Args = in.Model, in.Args
		if len(in.Args) > 0 {
			payload, _ := json.Marshal(in.Args)
			c.Payload, c.ArgsFromPayload = payload, true
		}
	case vigil.ResourceRead, vigil.PromptGet:
		if in.Resource == "" {
			return vigil.Errorf(vigil.EINVALID, `a %s needs "resource"`, in.Action)
		}
		c.Resource, c.Args = in.Resource, in.Args
	default:
		return vigil.Errorf(vigil.EINVALID, `action must be tool_call, model_call, resource_read or prompt_get, not %q`, in.Action)
	}
	f, err := s.Pipeline.Begin(r.Context(), c)
	var pend *enforce.Pending
	var ref *enforce.Refusal
	switch {
	case err == nil:
		// Nothing is forwarded by Vigil: the agent runs the tool. End is recorded by the outcome call.
		return web.WriteJSON(w, http.StatusOK, answer(f.EventID, "allow", f.Decision, f.Approval))
	case errors.As(err, &pend):
		ans := answer(pend.Flight.EventID, "pending", pend.Flight.Decision, nil)
		ans.Approval = pend.ApprovalID
		ans.Message = "waiting for a human to approve: GET /v1/decisions/" + pend.Flight.EventID + "?wait=30s"
		return web.WriteJSON(w, http.StatusAccepted, ans)
	case errors.As(err, &ref) && ref.Decision.Effect == vigil.Deny && vigil.ErrorCode(err) != vigil.EUNAVAILABLE:
		ans := answer(ref.EventID, "deny", ref.Decision, nil)
		ans.Message = vigil.ErrorMessage(err)
		return web.WriteJSON(w, http.StatusOK, ans)
	}
	return err
}

func answer(id, decision string, d vigil.Decision, approval *enforce.HoldResult) Answer {
	a := Answer{ID: id, Decision: decision, Message: d.Message, Rules: d.Rules, Policy: d.Policy, Limit: d.Limit}
	if a.Rules == nil {
		a.Rules = []string{}
	}
	if approval != nil {
		a.Approval, a.Args = approval.ApprovalID, approval.Args
	}
	return a
}

// own loads the request entry of a decision and checks it belongs to the caller.
func (s *Server) own(ctx context.Context, id string) (ledger.Envelope, error) {
	e, err := s.Ledger.EntryByID(ctx, id)
	if err != nil {
		return ledger.Envelope{}, err
	}
	env, err := ledger.ParseEnvelope(e.Data)
	if err != nil {
		return ledger.Envelope{}, err
	}
	if env.Agent != actor(ctx).ID || env.Attrs["source"] != enforce.SourceDecision {
		// Someone else's decision is as good as absent.
		return ledger.Envelope{}, vigil.NotFound("no decision %q", id)
	}
	return env, nil
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) error {
	var wait time.Duration
	if q := r.URL.Query().Get("wait"); q != "" {
		var err error
		if wait, err = time.ParseDuration(q); err != nil || wait < 0 {
			return vigil.Errorf(vigil.EINVALID, "wait %q is not a duration such as 30s", q)
		}
		wait = min(wait, MaxWait)
	}
	id := r.PathValue("id")
	env, err := s.own(r.Context(), id)
	if err != nil {
		return err
	}
	d := vigil.Decision{Effect: vigil.Effect(env.Decision), Rules: env.Rules, Policy: env.Policy, Message: env.Attrs["message"], Limit: env.Attrs["limit"]}
	approvalID := env.Attrs["approval"]
	if approvalID == "" || env.Attrs["approval_status"] != "pending" {
		return web.WriteJSON(w, http.StatusOK, answer(id, string(d.Effect), d, nil))
	}
	if s.Approvals == nil {
		return vigil.Errorf(vigil.EUNAVAILABLE, "approval %s cannot be looked up: human oversight is not configured", approvalID)
	}
	ctx := r.Context()
	if wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		cancel() // no wait: report the current state
	}
	res, err := s.Approvals.Wait(ctx, approvalID)
	if err != nil && r.Context().Err() == nil && res.Status == "" {
		return err
	}
	ans := answer(id, "pending", d, &res)
	ans.Approval = approvalID
	switch res.Status {
	case "approved":
		ans.Decision, ans.Message = "allow", "approved"
		if len(res.Reviewers) > 0 {
			ans.Message += " by " + joinNames(res.Reviewers)
		}
	case "denied":
		ans.Decision, ans.Message = "deny", "a reviewer denied this action"
		if res.Reason != "" {
			ans.Message += ": " + res.Reason
		}
	case "expired":
		ans.Decision, ans.Message = "deny", "no reviewer decided before the approval expired, so it was denied"
	case "cancelled":
		ans.Decision, ans.Message = "deny", "the approval was cancelled (the agent was suspended)"
	default:
		ans.Message = "still waiting for a human to approve"
	}
	return web.WriteJSON(w, http.StatusOK, ans)
}

func joinNames(n []string) string {
	out := ""
	for i, s := range n {
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}

func (s *Server) handleOutcome(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		// Status is ok or error.
		Status string          `json:"status"`
		Result json.RawMessage `json:"result"`
	}
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	if in.Status != "ok" && in.Status != "error" {
		return vigil.Errorf(vigil.EINVALID, `status must be "ok" or "error"`)
	}
	id := r.PathValue("id")
	env, err := s.own(r.Context(), id)
	if err != nil {
		return err
	}
	kind := vigil.ToolCall
	switch env.Type {
	case vigil.EventModelRequest:
		kind = vigil.ModelCall
	case vigil.EventResourceRead:
		kind = vigil.ResourceRead
	case vigil.EventPromptGet:
		kind = vigil.PromptGet
	}
	payload := []byte(in.Result)
	if len(payload) > 0 && payload[0] != '{' {
		// Wrap scalars and arrays so the masker always sees an object.
		payload, _ = json.Marshal(map[string]json.RawMessage{"result": in.Result})
	}
	rec, err := s.Pipeline.RecordOutcome(r.Context(), actor(r.Context()), id, kind, payload, map[string]string{"status": in.Status})
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusCreated, map[string]any{"id": rec.ID, "index": rec.Index, "decision": id})
}
