package oversight

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// NoticeKind says what changed.
type NoticeKind string

// The notice kinds.
const (
	NoticeCreated   NoticeKind = "created"   // a request was raised
	NoticeDecided   NoticeKind = "decided"   // a vote was cast (the request may still be pending)
	NoticeExpired   NoticeKind = "expired"   // a request timed out
	NoticeCancelled NoticeKind = "cancelled" // a request was cancelled
	NoticeSuspended NoticeKind = "suspended" // an agent or a system was suspended
	NoticeResumed   NoticeKind = "resumed"   // an agent or a system was resumed
	NoticeHalted    NoticeKind = "halted"    // the global kill switch went on
	NoticeUnhalted  NoticeKind = "unhalted"  // the global kill switch went off
	// NoticeResync says notices may have been missed (a replica's listener
	// reconnected): re-read everything.
	NoticeResync NoticeKind = "resync"
)

// Notice tells replicas that something changed. It carries ids, never content, and
// stays far below PostgreSQL's 8000-byte NOTIFY payload limit.
type Notice struct {
	Kind     NoticeKind `json:"k"`
	ID       string     `json:"id,omitempty"`
	AgentID  string     `json:"a,omitempty"`
	SystemID string     `json:"s,omitempty"`
	// Reason is why an agent, a system or everything was stopped, shown to the
	// sessions being closed. At most MaxNoticeReason bytes.
	Reason string `json:"r,omitempty"`
	// Origin is the replica that sent it, so a replica can skip its own echo.
	Origin string `json:"o,omitempty"`
}

// MaxNoticeReason caps Notice.Reason.
const MaxNoticeReason = 1000

// Encode is the wire form of n (JSON).
func (n Notice) Encode() string {
	if len(n.Reason) > MaxNoticeReason {
		r := n.Reason[:MaxNoticeReason]
		for !utf8.ValidString(r) {
			r = r[:len(r)-1]
		}
		n.Reason = r
	}
	b, _ := json.Marshal(n)
	return string(b)
}

// DecodeNotice parses Encode's output. The empty string decodes as NoticeResync.
func DecodeNotice(s string) (Notice, error) {
	if s == "" {
		return Notice{Kind: NoticeResync}, nil
	}
	var n Notice
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		return Notice{}, fmt.Errorf("couldn't decode oversight notice: %w", err)
	}
	if n.Kind == "" {
		return Notice{}, fmt.Errorf("couldn't decode oversight notice: no kind")
	}
	return n, nil
}
