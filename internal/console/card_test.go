package console

import (
	"bytes"
	"html"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var (
	blockTag = regexp.MustCompile(`</?(?:article|header|h\d|p|div|dl|dt|dd|ul|li|details|summary|pre|form|label|button)\b[^>]*>`)
	anyTag   = regexp.MustCompile(`<[^>]*>`)
)

// text is roughly what a person reads of an HTML fragment: block tags become
// spaces, other tags vanish, spaces collapse.
func text(h string) string {
	h = anyTag.ReplaceAllString(blockTag.ReplaceAllString(h, " "), "")
	return strings.Join(strings.Fields(html.UnescapeString(h)), " ")
}

func renderCard(t *testing.T, r oversight.Request) string {
	t.Helper()
	_, card, err := parseTemplates(func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := card.Execute(&b, cardData{Request: r, CSRF: "token"}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func heldCall() oversight.Request {
	return oversight.Request{
		ID: "ap_1", Status: oversight.Pending, Source: oversight.SourceMCP,
		AgentName: "books-bot", AgentOwner: "alice", SystemName: "finance", SessionID: "Z43W2HZJDW2QAQ2PT7ZSILCHQJ",
		Tool: &vigil.Tool{Server: "everything", Name: "get-sum",
			Annotations: vigil.ToolAnnotations{Title: "Get Sum Tool", ReadOnlyHint: true, IdempotentHint: true}},
		Args: map[string]any{"a": 250, "b": 17}, Rules: []string{"ledger-tools-need-a-reviewer"},
		Spec:      vigil.ApprovalSpec{Roles: []vigil.Role{vigil.RoleReviewer}, Approvers: 1},
		CreatedAt: now.Add(-2*time.Minute - 5*time.Second), ExpiresAt: now.Add(119 * time.Second),
	}
}

// TestCardPendingTool: a held MCP call says, in words, which tool on which server,
// with its title and hints and whose claim those are; times are relative with the
// exact time beside them; the session id is labelled and shortened.
func TestCardPendingTool(t *testing.T) {
	h := renderCard(t, heldCall())
	got := text(h)
	for _, want := range []string{
		"books-bot wants to call “Get Sum Tool” (get-sum) on MCP server everything",
		"MCP server everything",
		"Tool Get Sum Tool get-sum via MCP tools/call",
		"Tool hints read-only closed world — declared by the MCP server, not verified",
		"expires in 1m 59s",
		"Raised 2 minutes ago · 14 Mar 2026, 09:24:48 UTC",
		"Session MCP session Z43W2HZJ…",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the card does not read %q:\n%s", want, got)
		}
	}
	for _, want := range []string{
		`data-subject="everything/get-sum"`,                                            // scripts and tests find the call by its policy name
		`title="Z43W2HZJDW2QAQ2PT7ZSILCHQJ" data-session="Z43W2HZJDW2QAQ2PT7ZSILCHQJ"`, // the full session id is there for audit
		`data-expires="2026-03-14T09:28:52Z"`,                                          // console.js keeps the countdown
		`datetime="2026-03-14T09:24:48Z" data-rel title="14 Mar 2026, 09:24:48 UTC"`,
		`<button type="submit" class="approve">Approve</button>`,
		`<button type="submit" class="deny">Deny</button>`,
		`name="csrf" value="token"`,
	} {
		if !strings.Contains(h, want) {
			t.Errorf("the card's HTML lacks %s", want)
		}
	}
	if strings.Contains(got, "everything/get-sum") {
		t.Errorf("the card mixes server and tool into one name:\n%s", got)
	}
	if strings.Contains(h, "style=") || strings.Contains(h, "<script") || regexp.MustCompile(`\son[a-z]+=`).MatchString(h) {
		t.Error("the card has inline style or script, which the CSP refuses")
	}
}

// TestCardModelCall: a held model call names the provider and the model.
func TestCardModelCall(t *testing.T) {
	r := heldCall()
	r.Source, r.Tool, r.Model, r.SessionID = oversight.SourceModelCall, nil, &vigil.Model{Provider: "openai", Name: "gpt-5"}, "conv-7"
	got := text(renderCard(t, r))
	for _, want := range []string{
		"books-bot wants to use model gpt-5 from openai",
		"Provider openai Model gpt-5 via a request to the model",
		"Session agent session conv-7",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the card does not read %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Tool hints") {
		t.Errorf("a model call shows tool hints:\n%s", got)
	}
}

// TestCardDecided: a decided card says who decided, by name, once; earlier votes of
// a four-eyes approval are listed apart; Vigil's own expiry names nobody.
func TestCardDecided(t *testing.T) {
	r := heldCall()
	r.Spec.Approvers = 2
	r = r.WithVote(oversight.Vote{Reviewer: "token:ops-bot", Verdict: oversight.Approve, Reason: "ticket OPS-12", At: now.Add(-90 * time.Second)})
	r = r.WithVote(oversight.Vote{Reviewer: "user:dana", Verdict: oversight.Approve, Reason: "checked against the invoice", At: now.Add(-time.Minute)})
	got := text(renderCard(t, r))
	for _, want := range []string{
		"books-bot wanted to call",
		"Earlier votes token ops-bot approved: “ticket OPS-12” 1 minute ago",
		"Approved by dana 1 minute ago: “checked against the invoice”",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the card does not read %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"user:dana", "token:ops-bot", "Approve Deny", "expires in"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("the decided card reads %q:\n%s", unwanted, got)
		}
	}
	if n := strings.Count(got, "checked against the invoice"); n != 1 {
		t.Errorf("the deciding vote appears %d times, want once:\n%s", n, got)
	}

	r = heldCall()
	at := now.Add(-3 * time.Hour)
	r.Status, r.DecidedAt, r.DecidedBy, r.Reason = oversight.Expired, &at, oversight.SystemActor.String(), "no decision in time: expiry counts as a denial"
	got = text(renderCard(t, r))
	if want := "Expired 3 hours ago: “no decision in time: expiry counts as a denial”"; !strings.Contains(got, want) {
		t.Errorf("the expired card does not read %q:\n%s", want, got)
	}
}

// TestLayoutFlashAndLive: confirmations differ in words and look (a denial is not
// dressed as a success); the live badge says it is connecting, and is hidden until
// the script runs (without it there are no live updates to announce).
func TestLayoutFlashAndLive(t *testing.T) {
	pages, _, err := parseTemplates(func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	user := &vigil.Actor{Kind: vigil.ActorUser, Name: "dana"}
	for key, want := range map[string]string{
		"approved":  `<p class="flash ok" role="status"><span class="icon" aria-hidden="true">✓</span> Approved.`,
		"denied":    `<p class="flash neutral" role="status"><span class="icon" aria-hidden="true">✕</span> Denied.`,
		"suspended": `<p class="flash warn" role="status"><span class="icon" aria-hidden="true">■</span> Suspended.`,
		"halted":    `<p class="flash warn" role="status"><span class="icon" aria-hidden="true">■</span> Vigil is halted`,
	} {
		var b bytes.Buffer
		if err := pages["notfound"].ExecuteTemplate(&b, "layout", page{Title: "t", User: user, Flash: flashes[key]}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), want) {
			t.Errorf("flash %s: the page lacks %s", key, want)
		}
		if want := `<span class="live" id="live" data-state="connecting" title="Live updates: connecting" hidden>connecting…</span>`; !strings.Contains(b.String(), want) {
			t.Errorf("the live badge is not %s", want)
		}
	}
	var b bytes.Buffer
	if err := pages["notfound"].ExecuteTemplate(&b, "layout", page{Title: "t", User: user}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), `class="flash`) {
		t.Error("a page without a flash shows one")
	}
}
