package console

import (
	"fmt"
	"strings"
	"time"

	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// What the templates show a reviewer. A held call must be understood at a glance
// (EU AI Act Art. 14(4)(a)–(d)): what the agent wants to do and where, in words;
// times relative to now with the exact time beside or under them; people by name.
// console.js keeps relative times and countdowns current with the same rules.

// exactLayout is how an exact time is written out: always UTC, always with the
// zone, so two reviewers in different places read the same instant.
const exactLayout = "2 Jan 2006, 15:04:05 UTC"

// exact is t written out in full, for a tooltip or secondary text.
func exact(t time.Time) string { return t.UTC().Format(exactLayout) }

// relative says when t is as seen from now: "just now", "2 minutes ago", "in 3
// hours", and past a week the date ("on 2 Jan 2006").
func relative(t, now time.Time) string {
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var n int
	var unit string
	switch {
	case d < 10*time.Second:
		if future {
			return "in a few seconds"
		}
		return "just now"
	case d < time.Minute:
		n, unit = int(d/time.Second), "second"
	case d < time.Hour:
		n, unit = int(d/time.Minute), "minute"
	case d < 24*time.Hour:
		n, unit = int(d/time.Hour), "hour"
	case d < 7*24*time.Hour:
		n, unit = int(d/(24*time.Hour)), "day"
	default:
		return "on " + t.UTC().Format("2 Jan 2006")
	}
	s := fmt.Sprintf("%d %s", n, unit)
	if n != 1 {
		s += "s"
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// expiresIn is a pending request's countdown, to the second: "expires in 1m 59s".
func expiresIn(t, now time.Time) string {
	d := t.Sub(now)
	if d <= 0 {
		return "expired"
	}
	return "expires in " + roughDuration(d)
}

// roughDuration writes d with its two largest units: "45s", "1m 59s", "2h 05m".
func roughDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

// who names an actor recorded as vigil.Actor.String() ("user:dana") for people to
// read: a user by name ("dana"), Vigil itself as "Vigil", and anything else with
// its kind, which says how far to trust the name ("token ci-deploy", "agent
// refund-bot"). The recorded identity goes in the tooltip.
func who(actor string) string {
	kind, name, ok := strings.Cut(actor, ":")
	if !ok || name == "" {
		return actor
	}
	switch vigil.ActorKind(kind) {
	case vigil.ActorUser:
		return name
	case vigil.ActorSystem:
		return "Vigil"
	case vigil.ActorToken:
		return "token " + name
	case vigil.ActorAgent:
		return "agent " + name
	}
	return actor
}

// isSystem reports whether actor is Vigil itself (an expiry, a failed record).
func isSystem(actor string) bool { return strings.HasPrefix(actor, string(vigil.ActorSystem)+":") }

// subject is what a held call is about, taken apart so that nothing reads as one
// opaque string: the MCP server and the tool (with its title and hints), or the
// provider and the model.
type subject struct {
	Kind     string // "tool" or "model"
	Name     string // the tool's or the model's name
	Title    string // the tool's human title, when it declares one
	Server   string // the MCP server, for tools reached through one
	Provider string // the model provider, for model calls
	Hints    []hint // the tool's MCP annotations, in words
	// HintsFrom says who declared the hints, which Vigil does not verify.
	HintsFrom string
}

// hint is one of a tool's MCP annotations in words. Tone is how much care it asks
// for ("ok", "neutral", "warn" or "bad"); Explain is the tooltip.
type hint struct {
	Label   string
	Tone    string
	Explain string
}

func describe(r oversight.Request) subject {
	switch {
	case r.Tool != nil:
		s := subject{Kind: "tool", Name: r.Tool.Name, Server: r.Tool.Server, Title: strings.TrimSpace(r.Tool.Annotations.Title)}
		if s.Title == s.Name {
			s.Title = ""
		}
		s.Hints, s.HintsFrom = hints(r.Tool.Annotations), hintsFrom(r.Source, r.Tool.Annotations)
		return s
	case r.Model != nil:
		return subject{Kind: "model", Name: r.Model.Name, Provider: r.Model.Provider}
	}
	return subject{Kind: "unknown", Name: "?"}
}

// hints reads a tool's MCP annotations as the specification means them: a read-only
// tool changes nothing, so whether it is destructive or idempotent does not arise.
func hints(a vigil.ToolAnnotations) []hint {
	var out []hint
	if a.ReadOnlyHint {
		out = append(out, hint{"read-only", "ok", "readOnlyHint: the tool says it does not modify its environment"})
	} else {
		out = append(out, hint{"may modify", "warn", "readOnlyHint is false: the tool may change things"})
		if a.DestructiveHint {
			out = append(out, hint{"destructive", "bad", "destructiveHint: the tool may delete or overwrite things"})
		} else {
			out = append(out, hint{"not destructive", "neutral", "destructiveHint is false: the tool only adds, never deletes or overwrites"})
		}
		if a.IdempotentHint {
			out = append(out, hint{"idempotent", "neutral", "idempotentHint: calling it again with the same arguments has no further effect"})
		} else {
			out = append(out, hint{"not idempotent", "neutral", "idempotentHint is false: calling it again may have a further effect"})
		}
	}
	if a.OpenWorldHint {
		out = append(out, hint{"open world", "warn", "openWorldHint: the tool reaches outside systems (the web, other services)"})
	} else {
		out = append(out, hint{"closed world", "neutral", "openWorldHint is false: the tool works only within its own domain"})
	}
	return out
}

// hintsFrom says where a tool's hints came from. They are claims, not checked
// facts: the reviewer must know whose.
func hintsFrom(src oversight.Source, a vigil.ToolAnnotations) string {
	if a == vigil.DefaultToolAnnotations() {
		return "none declared: MCP's cautious defaults apply"
	}
	switch src {
	case oversight.SourceMCP:
		return "declared by the MCP server, not verified"
	case oversight.SourceDecisionAPI:
		return "declared by the agent, not verified"
	}
	return "not verified"
}

// via says in words which way a held call came in.
func via(src oversight.Source) string {
	switch src {
	case oversight.SourceMCP:
		return "MCP tools/call"
	case oversight.SourceModelToolCall:
		return "a tool call proposed in a model's response"
	case oversight.SourceDecisionAPI:
		return "the decision API (the agent runs the tool itself)"
	case oversight.SourceModelCall:
		return "a request to the model"
	}
	return string(src)
}

// sessionKind labels a session id so it does not read as data: MCP sessions are
// the protocol's; other ingresses carry the agent's own conversation id.
func sessionKind(src oversight.Source) string {
	if src == oversight.SourceMCP {
		return "MCP session"
	}
	return "agent session"
}

// shortID shortens a long opaque id for display ("Z43W2HZJ…"); the full id goes in
// a tooltip and the page's data.
func shortID(id string) string {
	const keep = 8
	if r := []rune(id); len(r) > 16 {
		return string(r[:keep]) + "…"
	}
	return id
}

// earlierVotes are the votes a decided card lists besides its outcome: the vote
// that decided an approved or denied request is the outcome line itself, so it is
// not repeated. Pending, expired and cancelled requests list every vote.
func earlierVotes(r oversight.Request) []oversight.Vote {
	v := r.Votes
	if (r.Status == oversight.Approved || r.Status == oversight.Denied) && len(v) > 0 && v[len(v)-1].Reviewer == r.DecidedBy {
		return v[:len(v)-1]
	}
	return v
}

// flash is a confirmation shown after a redirect. Kind sets its look: "ok" for
// what goes ahead, "neutral" for a call refused, "warn" for agents stopped; the
// text says which in words, so the colour is never the only cue.
type flash struct {
	Text string
	Kind string
}

// flashes are the fixed confirmations a redirect may ask the next page to show (the
// query names one; nothing from the URL is echoed).
var flashes = map[string]flash{
	"approved":  {"Approved. The agent's call goes ahead.", "ok"},
	"voted":     {"Your approval is recorded; the request needs more approvals.", "ok"},
	"denied":    {"Denied. The agent's call is refused and it is told your reason.", "neutral"},
	"suspended": {"Suspended. Its calls are refused and its pending approvals cancelled.", "warn"},
	"resumed":   {"Resumed. Its calls are governed by policy again.", "ok"},
	"halted":    {"Vigil is halted: every agent is stopped.", "warn"},
	"unhalted":  {"The global halt is lifted.", "ok"},
}
