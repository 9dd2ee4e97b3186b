package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

type approvalsData struct {
	Pending []oversight.Request
	Recent  []oversight.Request
}

func (c *Console) approvalsPage(w http.ResponseWriter, r *http.Request) error {
	return c.renderApprovals(w, r, http.StatusOK, "")
}

func (c *Console) renderApprovals(w http.ResponseWriter, r *http.Request, status int, errMsg string) error {
	pending, err := c.opts.Approvals.List(r.Context(), oversight.Filter{Status: oversight.Pending, Limit: 200})
	if err != nil {
		return err
	}
	recent, err := c.opts.Approvals.List(r.Context(), oversight.Filter{Limit: 40})
	if err != nil {
		return err
	}
	decided := []oversight.Request{}
	for _, x := range recent {
		if x.Status != oversight.Pending && len(decided) < 20 {
			decided = append(decided, x)
		}
	}
	// Oldest first: the one that expires soonest is on top.
	for i, j := 0, len(pending)-1; i < j; i, j = i+1, j-1 {
		pending[i], pending[j] = pending[j], pending[i]
	}
	return c.render(w, r, status, "approvals", page{Title: "Approvals", Active: "approvals", Flash: flashes[r.URL.Query().Get("ok")], Error: errMsg,
		Data: approvalsData{Pending: pending, Recent: decided}})
}

func (c *Console) approvalPage(w http.ResponseWriter, r *http.Request) error {
	req, err := c.opts.Approvals.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return c.render(w, r, http.StatusOK, "approval", page{Title: "Approval " + req.ID, Active: "approvals", Flash: flashes[r.URL.Query().Get("ok")], Data: req})
}

// cardFragment renders one request's card alone, for the live page to swap in.
func (c *Console) cardFragment(w http.ResponseWriter, r *http.Request) error {
	req, err := c.opts.Approvals.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	s := current(r)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	return c.card.Execute(w, cardData{Request: req, CSRF: c.opts.Users.CSRFToken(s.secret), User: s.actor})
}

// cardData is what the card template gets.
type cardData struct {
	Request oversight.Request
	CSRF    string
	User    vigil.Actor
}

func (c *Console) decide(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	d := oversight.Decision{Reason: r.PostFormValue("reason")}
	switch r.PathValue("verdict") {
	case "approve":
		d.Verdict = oversight.Approve
		if edited := strings.TrimSpace(r.PostFormValue("args")); edited != "" && r.PostFormValue("edit") == "on" {
			if err := json.Unmarshal([]byte(edited), &d.Args); err != nil || d.Args == nil {
				return c.renderApprovals(w, r, http.StatusBadRequest, "The edited arguments are not a JSON object; nothing was decided.")
			}
		}
	case "deny":
		d.Verdict = oversight.Deny
	default:
		return vigil.NotFound("no such action")
	}
	after, err := c.opts.Approvals.Decide(r.Context(), current(r).actor, id, d)
	if err != nil {
		if vigil.ErrorCode(err) == vigil.EINTERNAL {
			return err
		}
		return c.renderApprovals(w, r, web.Status(err), vigil.ErrorMessage(err))
	}
	ok := map[oversight.Status]string{oversight.Approved: "approved", oversight.Denied: "denied", oversight.Pending: "voted"}[after.Status]
	http.Redirect(w, r, "/approvals?ok="+ok, http.StatusSeeOther)
	return nil
}

type killSwitchData struct {
	Halt    oversight.Halt
	Systems []inventory.System
	Agents  []agentRow
}

type agentRow struct {
	inventory.Agent
	System string
}

func (c *Console) killSwitchPage(w http.ResponseWriter, r *http.Request) error {
	return c.renderKillSwitch(w, r, http.StatusOK, "")
}

func (c *Console) renderKillSwitch(w http.ResponseWriter, r *http.Request, status int, errMsg string) error {
	h, err := c.opts.Approvals.HaltState(r.Context())
	if err != nil {
		return err
	}
	systems, err := c.opts.Inventory.Store.ListSystems(r.Context())
	if err != nil {
		return err
	}
	agents, err := c.opts.Inventory.Store.ListAgents(r.Context(), "")
	if err != nil {
		return err
	}
	names := map[string]string{}
	for _, s := range systems {
		names[s.ID] = s.Name
	}
	rows := make([]agentRow, len(agents))
	for i, a := range agents {
		rows[i] = agentRow{a, names[a.SystemID]}
	}
	return c.render(w, r, status, "killswitch", page{Title: "Kill switch", Active: "kill-switch", Flash: flashes[r.URL.Query().Get("ok")], Error: errMsg,
		Data: killSwitchData{Halt: h, Systems: systems, Agents: rows}})
}

// mayPull reports whether the actor may use the kill switch (as on the API).
func mayPull(a vigil.Actor) error {
	if !a.Has(vigil.RoleReviewer) {
		return vigil.Errorf(vigil.EFORBIDDEN, "%s may not use the kill switch: it needs the reviewer or admin role", a)
	}
	return nil
}

func (c *Console) switchAction(w http.ResponseWriter, r *http.Request) error {
	actor := current(r).actor
	if err := mayPull(actor); err != nil {
		return c.renderKillSwitch(w, r, http.StatusForbidden, vigil.ErrorMessage(err))
	}
	st := map[string]inventory.Status{"suspend": inventory.Suspended, "resume": inventory.Active}[r.PathValue("action")]
	if st == "" {
		return vigil.NotFound("no such action")
	}
	reason := r.PostFormValue("reason")
	var err error
	switch r.PathValue("scope") {
	case "agents":
		_, err = c.opts.Inventory.SetAgentStatus(r.Context(), actor, r.PathValue("id"), st, reason)
	case "systems":
		_, err = c.opts.Inventory.SetSystemStatus(r.Context(), actor, r.PathValue("id"), st, reason)
	default:
		return vigil.NotFound("no such kill switch")
	}
	if err != nil {
		if vigil.ErrorCode(err) == vigil.EINTERNAL {
			return err
		}
		return c.renderKillSwitch(w, r, web.Status(err), vigil.ErrorMessage(err))
	}
	http.Redirect(w, r, "/kill-switch?ok="+map[inventory.Status]string{inventory.Suspended: "suspended", inventory.Active: "resumed"}[st], http.StatusSeeOther)
	return nil
}

func (c *Console) haltAction(w http.ResponseWriter, r *http.Request) error {
	actor := current(r).actor
	if err := mayPull(actor); err != nil {
		return c.renderKillSwitch(w, r, http.StatusForbidden, vigil.ErrorMessage(err))
	}
	var on bool
	switch r.PathValue("action") {
	case "halt":
		on = true
	case "resume":
	default:
		return vigil.NotFound("no such action")
	}
	h, err := c.opts.Approvals.SetHalt(r.Context(), actor, on, r.PostFormValue("reason"))
	if err != nil && h.By == "" {
		if vigil.ErrorCode(err) == vigil.EINTERNAL {
			return err
		}
		return c.renderKillSwitch(w, r, web.Status(err), vigil.ErrorMessage(err))
	}
	if err != nil {
		c.opts.Log.Error("kill switch set but not fully recorded", "on", on, "err", err)
	}
	http.Redirect(w, r, "/kill-switch?ok="+map[bool]string{true: "halted", false: "unhalted"}[on], http.StatusSeeOther)
	return nil
}

// Template helpers.

func prettyJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(buf.String())
}

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func approvalsSoFar(r oversight.Request) string {
	return fmt.Sprintf("%d of %d", r.ApprovedVotes(), r.Approvals())
}

func urlEscape(s string) string { return url.QueryEscape(s) }

// limiter slows password guessing: after 5 failures for one name from one address
// within 15 minutes, sign-in is refused until the window passes. It is per replica.
type limiter struct {
	mu    sync.Mutex
	fails map[string][]time.Time
}

const (
	maxFailures   = 5
	failureWindow = 15 * time.Minute
)

func newLimiter() *limiter { return &limiter{fails: map[string][]time.Time{}} }

func (l *limiter) recent(key string, now time.Time) []time.Time {
	var keep []time.Time
	for _, t := range l.fails[key] {
		if now.Sub(t) < failureWindow {
			keep = append(keep, t)
		}
	}
	if len(keep) == 0 {
		delete(l.fails, key)
	} else {
		l.fails[key] = keep
	}
	return keep
}

func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recent(key, now)) < maxFailures
}

func (l *limiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fails) > 100_000 { // bounded memory under a spray of names
		l.fails = map[string][]time.Time{}
	}
	l.fails[key] = append(l.recent(key, now), now)
}

func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, key)
}
