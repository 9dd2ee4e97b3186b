package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-gateway/vigil/internal/oversight"
)

// Payload is the JSON format's body.
type Payload struct {
	Event    string   `json:"event"`
	Delivery string   `json:"delivery"`
	Approval Approval `json:"approval"`
	// URL opens the request in the console.
	URL string `json:"url"`
}

// Approval is a request as webhooks see it: its context and outcome, not its
// arguments.
type Approval struct {
	ID        string     `json:"id"`
	Status    string     `json:"status"`
	Source    string     `json:"source"`
	Agent     string     `json:"agent"`
	AgentID   string     `json:"agent_id"`
	System    string     `json:"system"`
	Tool      string     `json:"tool,omitempty"`
	Model     string     `json:"model,omitempty"`
	Rules     []string   `json:"rules"`
	Message   string     `json:"message,omitempty"`
	Policy    string     `json:"policy,omitempty"`
	Approvals string     `json:"approvals"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	DecidedBy string     `json:"decided_by,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	Edited    bool       `json:"edited,omitempty"`
}

func view(r oversight.Request) Approval {
	a := Approval{
		ID: r.ID, Status: string(r.Status), Source: string(r.Source), Agent: r.AgentName, AgentID: r.AgentID, System: r.SystemName,
		Rules: r.Rules, Message: r.Message, Policy: r.Policy, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt,
		DecidedAt: r.DecidedAt, DecidedBy: r.DecidedBy, Reason: r.Reason, Edited: r.EditedArgs != nil,
	}
	if r.Tool != nil {
		a.Tool = r.Subject()
	}
	if r.Model != nil {
		a.Model = r.Model.Name
	}
	a.Approvals = fmt.Sprintf("%d/%d", r.ApprovedVotes(), r.Approvals())
	return a
}

func (s *Sender) link(r oversight.Request) string {
	return s.opts.ConsoleURL + "/approvals/" + r.ID
}

func (s *Sender) payload(format, delivery string, j job) ([]byte, error) {
	if format == "slack" {
		return json.Marshal(s.slack(j))
	}
	return json.Marshal(Payload{Event: j.event, Delivery: delivery, Approval: view(j.req), URL: s.link(j.req)})
}

// slackEscape escapes the three characters Slack's mrkdwn treats as control.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slack builds a Slack message (incoming-webhook compatible): a headline, the
// context as fields, and a button that opens the request in the console.
func (s *Sender) slack(j job) map[string]any {
	r := j.req
	var head string
	switch r.Status {
	case oversight.Pending:
		head = fmt.Sprintf("Approval needed: %s wants %s", r.AgentName, r.Subject())
	case oversight.Approved:
		head = fmt.Sprintf("Approved: %s may %s (by %s)", r.AgentName, r.Subject(), r.DecidedBy)
	case oversight.Denied:
		head = fmt.Sprintf("Denied: %s may not %s (by %s)", r.AgentName, r.Subject(), r.DecidedBy)
	case oversight.Expired:
		head = fmt.Sprintf("Expired (denied): nobody decided on %s's %s in time", r.AgentName, r.Subject())
	default:
		head = fmt.Sprintf("Cancelled: %s's %s", r.AgentName, r.Subject())
	}
	field := func(k, v string) map[string]any {
		return map[string]any{"type": "mrkdwn", "text": "*" + k + "*\n" + slackEscape.Replace(v)}
	}
	fields := []any{
		field("Agent", r.AgentName+" ("+r.SystemName+")"),
		field("Action", r.Subject()),
		field("Rule", strings.Join(r.Rules, ", ")),
		field("Expires", r.ExpiresAt.UTC().Format(time.RFC1123)),
	}
	blocks := []any{
		map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "*" + slackEscape.Replace(head) + "*"}},
		map[string]any{"type": "section", "fields": fields},
	}
	if r.Message != "" {
		blocks = append(blocks, map[string]any{"type": "context", "elements": []any{map[string]any{"type": "mrkdwn", "text": slackEscape.Replace(r.Message)}}})
	}
	if r.Reason != "" && r.Status != oversight.Pending {
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "*Reason*\n" + slackEscape.Replace(r.Reason)}})
	}
	blocks = append(blocks, map[string]any{"type": "actions", "elements": []any{map[string]any{
		"type": "button", "text": map[string]any{"type": "plain_text", "text": "Review in Vigil"}, "url": s.link(r),
	}}})
	return map[string]any{"text": head, "blocks": blocks}
}
