package console

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var now = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

func TestRelative(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration // how long before now
		want string
	}{
		{0, "just now"},
		{9 * time.Second, "just now"},
		{10 * time.Second, "10 seconds ago"},
		{59*time.Second + 900*time.Millisecond, "59 seconds ago"},
		{time.Minute, "1 minute ago"},
		{2*time.Minute + 59*time.Second, "2 minutes ago"},
		{time.Hour, "1 hour ago"},
		{23 * time.Hour, "23 hours ago"},
		{24 * time.Hour, "1 day ago"},
		{6 * 24 * time.Hour, "6 days ago"},
		{7 * 24 * time.Hour, "on 7 Mar 2026"},
		{-5 * time.Second, "in a few seconds"},
		{-time.Minute, "in 1 minute"},
		{-3 * time.Hour, "in 3 hours"},
	} {
		if got := relative(now.Add(-c.d), now); got != c.want {
			t.Errorf("relative(now - %v) = %q, want %q", c.d, got, c.want)
		}
	}
	// The zone of t does not change the date written past a week.
	berlin := time.FixedZone("CET", 3600)
	if got := relative(time.Date(2026, 3, 1, 0, 30, 0, 0, berlin), now); got != "on 28 Feb 2026" {
		t.Errorf("relative of a CET time = %q, want the UTC date", got)
	}
}

func TestExpiresIn(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration // how long after now
		want string
	}{
		{2 * time.Minute, "expires in 2m 00s"},
		{119 * time.Second, "expires in 1m 59s"},
		{45*time.Second + 400*time.Millisecond, "expires in 45s"},
		{2*time.Hour + 5*time.Minute, "expires in 2h 05m"},
		{0, "expired"},
		{-time.Second, "expired"},
	} {
		if got := expiresIn(now.Add(c.d), now); got != c.want {
			t.Errorf("expiresIn(now + %v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestExact(t *testing.T) {
	if got, want := exact(time.Date(2026, 11, 27, 2, 54, 56, 0, time.FixedZone("CET", 3600))), "27 Nov 2026, 01:54:56 UTC"; got != want {
		t.Errorf("exact = %q, want %q", got, want)
	}
}

func TestWho(t *testing.T) {
	for _, c := range []struct{ actor, want string }{
		{"user:dana", "dana"},
		{"user:Dana Scully", "Dana Scully"},
		{"token:ci-deploy", "token ci-deploy"},
		{"agent:refund-bot", "agent refund-bot"},
		{"system:oversight", "Vigil"},
		{"anonymous", "anonymous"},
		{"user:", "user:"},
		{"robot:x", "robot:x"},
		{"", ""},
	} {
		if got := who(c.actor); got != c.want {
			t.Errorf("who(%q) = %q, want %q", c.actor, got, c.want)
		}
	}
	if !isSystem(oversight.SystemActor.String()) || isSystem("user:system") {
		t.Error("isSystem tells Vigil from people")
	}
}

func TestShortID(t *testing.T) {
	for _, c := range []struct{ id, want string }{
		{"Z43W2HZJDW2QAQ2PT7ZSILCHQJ", "Z43W2HZJ…"},
		{"mcp-session-1", "mcp-session-1"},
		{"0123456789abcdef", "0123456789abcdef"},
		{"ééééééééééééééééé", "éééééééé…"},
	} {
		if got := shortID(c.id); got != c.want {
			t.Errorf("shortID(%q) = %q, want %q", c.id, got, c.want)
		}
	}
}

func TestHints(t *testing.T) {
	labels := func(hs []hint) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.Label+"/"+h.Tone)
		}
		return out
	}
	for _, c := range []struct {
		name string
		a    vigil.ToolAnnotations
		want []string
	}{
		{"read-only", vigil.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, DestructiveHint: true},
			[]string{"read-only/ok", "closed world/neutral"}},
		{"MCP defaults", vigil.DefaultToolAnnotations(),
			[]string{"may modify/warn", "destructive/bad", "not idempotent/neutral", "open world/warn"}},
		{"additive, idempotent", vigil.ToolAnnotations{IdempotentHint: true},
			[]string{"may modify/warn", "not destructive/neutral", "idempotent/neutral", "closed world/neutral"}},
	} {
		if diff := cmp.Diff(c.want, labels(hints(c.a))); diff != "" {
			t.Errorf("%s: hints (-want +got):\n%s", c.name, diff)
		}
		for _, h := range hints(c.a) {
			if h.Explain == "" {
				t.Errorf("%s: hint %q has no explanation", c.name, h.Label)
			}
		}
	}
	declared := vigil.ToolAnnotations{ReadOnlyHint: true}
	for _, c := range []struct {
		src  oversight.Source
		a    vigil.ToolAnnotations
		want string
	}{
		{oversight.SourceMCP, declared, "declared by the MCP server, not verified"},
		{oversight.SourceDecisionAPI, declared, "declared by the agent, not verified"},
		{oversight.SourceModelToolCall, declared, "not verified"},
		{oversight.SourceMCP, vigil.DefaultToolAnnotations(), "none declared: MCP's cautious defaults apply"},
	} {
		if got := hintsFrom(c.src, c.a); got != c.want {
			t.Errorf("hintsFrom(%s, %+v) = %q, want %q", c.src, c.a, got, c.want)
		}
	}
}

func TestDescribe(t *testing.T) {
	for _, c := range []struct {
		name string
		r    oversight.Request
		want subject
	}{
		{"MCP tool with a title", oversight.Request{Source: oversight.SourceMCP,
			Tool: &vigil.Tool{Server: "everything", Name: "get-sum", Annotations: vigil.ToolAnnotations{Title: " Get Sum Tool ", ReadOnlyHint: true}}},
			subject{Kind: "tool", Name: "get-sum", Title: "Get Sum Tool", Server: "everything",
				Hints: hints(vigil.ToolAnnotations{ReadOnlyHint: true}), HintsFrom: "declared by the MCP server, not verified"}},
		{"a title that only repeats the name", oversight.Request{Source: oversight.SourceDecisionAPI,
			Tool: &vigil.Tool{Name: "refund", Annotations: vigil.ToolAnnotations{Title: "refund"}}},
			subject{Kind: "tool", Name: "refund", Hints: hints(vigil.ToolAnnotations{}), HintsFrom: "declared by the agent, not verified"}},
		{"model", oversight.Request{Source: oversight.SourceModelCall, Model: &vigil.Model{Provider: "openai", Name: "gpt-5"}},
			subject{Kind: "model", Name: "gpt-5", Provider: "openai"}},
		{"neither", oversight.Request{}, subject{Kind: "unknown", Name: "?"}},
	} {
		if diff := cmp.Diff(c.want, describe(c.r)); diff != "" {
			t.Errorf("%s: describe (-want +got):\n%s", c.name, diff)
		}
	}
}

func TestViaAndSessionKind(t *testing.T) {
	for _, src := range []oversight.Source{oversight.SourceMCP, oversight.SourceModelToolCall, oversight.SourceDecisionAPI, oversight.SourceModelCall} {
		if got := via(src); got == string(src) || got == "" {
			t.Errorf("via(%s) = %q, want words", src, got)
		}
	}
	if sessionKind(oversight.SourceMCP) != "MCP session" || sessionKind(oversight.SourceModelCall) != "agent session" {
		t.Error("sessionKind labels MCP sessions and agents' own")
	}
}

func TestEarlierVotes(t *testing.T) {
	at := now
	dana := oversight.Vote{Reviewer: "user:dana", Verdict: oversight.Approve, Reason: "fine", At: at}
	erik := oversight.Vote{Reviewer: "user:erik", Verdict: oversight.Approve, Reason: "checked", At: at.Add(time.Minute)}
	no := oversight.Vote{Reviewer: "user:erik", Verdict: oversight.Deny, Reason: "no", At: at.Add(time.Minute)}
	pending := oversight.Request{Status: oversight.Pending, Spec: vigil.ApprovalSpec{Approvers: 2}}
	for _, c := range []struct {
		name string
		r    oversight.Request
		want []oversight.Vote
	}{
		{"pending shows every vote", pending.WithVote(dana), []oversight.Vote{dana}},
		{"the deciding approval is the outcome", pending.WithVote(dana).WithVote(erik), []oversight.Vote{dana}},
		{"a lone approval is only the outcome", oversight.Request{Status: oversight.Pending}.WithVote(dana), []oversight.Vote{}},
		{"the deciding denial is the outcome", pending.WithVote(dana).WithVote(no), []oversight.Vote{dana}},
		{"an expiry lists the votes before it", oversight.Request{Status: oversight.Expired, DecidedBy: "system:oversight", Votes: []oversight.Vote{dana}},
			[]oversight.Vote{dana}},
	} {
		if diff := cmp.Diff(c.want, earlierVotes(c.r), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: earlierVotes (-want +got):\n%s", c.name, diff)
		}
	}
}
