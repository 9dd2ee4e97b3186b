// Package notify tells people that an approval is waiting or was decided: it
// delivers approval events to configured webhooks, in Vigil's JSON or as a
// Slack-compatible message that links to the console. Each POST is signed with
// HMAC-SHA256 over the timestamp and body, failed deliveries are retried with
// exponential backoff, and every attempt is recorded.
//
// Payloads carry the request's context (agent, system, tool or model, rules,
// message, times, outcome) but never its arguments: receivers such as chat tools
// are outside the deployment. Reviewers read the arguments in the console.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Headers on every delivery.
const (
	HeaderEvent     = "Vigil-Event"
	HeaderDelivery  = "Vigil-Delivery"
	HeaderTimestamp = "Vigil-Timestamp"
	HeaderSignature = "Vigil-Signature"
)

// Defaults for Options.
const (
	DefaultAttempts = 6
	DefaultBackoff  = time.Second
	MaxBackoff      = 5 * time.Minute
	DefaultTimeout  = 10 * time.Second
)

// Hook is one webhook receiver.
type Hook struct {
	// Name identifies it in records and logs; the URL never appears there.
	Name   string
	URL    string
	Secret []byte
	// Events are the event names it wants (oversight ledger event names).
	Events []string
	// Format is "json" or "slack".
	Format string
}

// Options configure a Sender.
type Options struct {
	Hooks []Hook
	Store oversight.DeliveryStore
	// Client sends the requests; default one with a 10s timeout.
	Client *http.Client
	Log    *slog.Logger
	// ConsoleURL is the console's base URL (public_url) for links.
	ConsoleURL string
	// Attempts caps the tries per delivery (default 6); Backoff is the first wait
	// between tries, doubling each time up to MaxBackoff (default 1s).
	Attempts int
	Backoff  time.Duration
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// Sender delivers events to hooks. Its deliveries run until the context given to
// Run ends.
type Sender struct {
	opts Options
	jobs chan job
}

type job struct {
	event string
	req   oversight.Request
}

// New returns a Sender; call Run to deliver.
func New(opts Options) *Sender {
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: DefaultTimeout}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Attempts <= 0 {
		opts.Attempts = DefaultAttempts
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.ConsoleURL = strings.TrimRight(opts.ConsoleURL, "/")
	return &Sender{opts: opts, jobs: make(chan job, 1024)}
}

// EventName maps a notice kind to the ledger event name webhooks subscribe to.
func EventName(kind oversight.NoticeKind) string {
	switch kind {
	case oversight.NoticeCreated:
		return vigil.EventApprovalRequest
	case oversight.NoticeDecided:
		return vigil.EventApprovalDecision
	case oversight.NoticeExpired:
		return oversight.EventApprovalExpired
	case oversight.NoticeCancelled:
		return oversight.EventApprovalCancelled
	}
	return ""
}

// Notify queues deliveries of what happened to r; it never blocks the caller (it is
// the oversight service's OnEvent hook). When the queue is full the event is
// dropped and logged: notifications are a convenience, the console is the truth.
func (s *Sender) Notify(kind oversight.NoticeKind, r oversight.Request) {
	ev := EventName(kind)
	if ev == "" || len(s.opts.Hooks) == 0 {
		return
	}
	select {
	case s.jobs <- job{event: ev, req: r}:
	default:
		s.opts.Log.Warn("webhook queue is full; dropping a notification", "event", ev, "approval", r.ID)
	}
}

// Run delivers queued events until ctx ends, then waits for deliveries in flight
// (which stop retrying when ctx ends).
func (s *Sender) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-s.jobs:
			for _, h := range s.opts.Hooks {
				if slices.Contains(h.Events, j.event) {
					wg.Go(func() { s.deliver(ctx, h, j) })
				}
			}
		}
	}
}

// deliver sends one event to one hook, retrying with backoff, recording each try.
func (s *Sender) deliver(ctx context.Context, h Hook, j job) {
	id := uuid.Must(uuid.NewV7()).String()
	body, err := s.payload(h.Format, id, j)
	if err != nil {
		s.opts.Log.Error("couldn't build a webhook payload", "webhook", h.Name, "err", err)
		return
	}
	wait := s.opts.Backoff
	for attempt := 1; attempt <= s.opts.Attempts; attempt++ {
		status, err := s.post(ctx, h, j, id, body, attempt)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !retryable(status) {
			s.opts.Log.Warn("webhook refused the delivery; not retrying", "webhook", h.Name, "event", j.event, "status", status)
			return
		}
		if attempt == s.opts.Attempts {
			s.opts.Log.Warn("webhook delivery failed; giving up", "webhook", h.Name, "event", j.event, "attempts", attempt, "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, MaxBackoff)
	}
}

// retryable reports whether a failed attempt with this HTTP status (0: no answer)
// may succeed later.
func retryable(status int) bool {
	return status == 0 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// post makes one attempt and records it. It returns the status and an error unless
// the receiver answered 2xx.
func (s *Sender) post(ctx context.Context, h Hook, j job, id string, body []byte, attempt int) (int, error) {
	start := s.opts.Now()
	ts := strconv.FormatInt(start.Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Vigil-Webhook/1")
	req.Header.Set(HeaderEvent, j.event)
	req.Header.Set(HeaderDelivery, id)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(h.Secret, ts, body))
	status, failure := 0, ""
	resp, err := s.opts.Client.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		status = resp.StatusCode
		if status < 200 || status > 299 {
			err = fmt.Errorf("receiver answered %d", status)
		}
	}
	if err != nil {
		failure = safeError(err)
	}
	d := oversight.Delivery{ID: uuid.Must(uuid.NewV7()).String(), Webhook: h.Name, Event: j.event, ApprovalID: j.req.ID,
		Attempt: attempt, Status: status, Error: failure, At: start.UTC().Truncate(time.Microsecond), Duration: s.opts.Now().Sub(start)}
	if s.opts.Store != nil {
		if rerr := s.opts.Store.RecordDelivery(context.WithoutCancel(ctx), d); rerr != nil {
			s.opts.Log.Error("couldn't record a webhook delivery", "webhook", h.Name, "err", rerr)
		}
	}
	return status, err
}

// safeError describes a failed attempt without the URL (which may hold a token).
func safeError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return msg
}

// Sign is the Vigil-Signature header value for body sent at timestamp ts (Unix
// seconds, as in Vigil-Timestamp): "v1=" + hex(HMAC-SHA256(secret, ts + "." + body)).
func Sign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery as a receiver should: the signature matches (in constant
// time) and the timestamp is within tolerance of now, so a captured request cannot
// be replayed later.
func Verify(secret []byte, ts string, body []byte, signature string, now time.Time, tolerance time.Duration) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("bad timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("timestamp outside the tolerance")
	}
	if !hmac.Equal([]byte(Sign(secret, ts, body)), []byte(signature)) {
		return errors.New("signature mismatch")
	}
	return nil
}
