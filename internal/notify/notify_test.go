package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/notify"
	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/store/sqlite"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var secret = []byte("0123456789abcdef-test-secret")

// receiver records verified deliveries and answers with the statuses given, then 200.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	got      []http.Header
	bodies   [][]byte
	bad      int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := notify.Verify(secret, r.Header.Get(notify.HeaderTimestamp), body, r.Header.Get(notify.HeaderSignature), time.Now(), 5*time.Minute); err != nil {
		rc.bad++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	rc.got = append(rc.got, r.Header.Clone())
	rc.bodies = append(rc.bodies, body)
	if len(rc.statuses) > 0 {
		st := rc.statuses[0]
		rc.statuses = rc.statuses[1:]
		w.WriteHeader(st)
		return
	}
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

func request() oversight.Request {
	return oversight.Request{
		ID: "0193a6c0-0000-7000-8000-00000000beef", Status: oversight.Pending, Source: oversight.SourceMCP,
		AgentID: "a1", AgentName: "refund-bot", SystemName: "payments", Tool: &vigil.Tool{Server: "pay", Name: "refund"},
		Args: map[string]any{"iban": "DE89370400440532013000"}, Rules: []string{"refunds <big> & risky"}, Message: "Refunds need a person.",
		Spec: vigil.ApprovalSpec{Approvers: 2}, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Minute),
	}
}

func TestDeliveryRetriesSignsAndRecords(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "v.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	flaky := &receiver{statuses: []int{503, 500}}
	srv := httptest.NewServer(flaky)
	defer srv.Close()
	refusing := &receiver{statuses: []int{400}}
	srv2 := httptest.NewServer(refusing)
	defer srv2.Close()

	s := notify.New(notify.Options{
		Hooks: []notify.Hook{
			{Name: "ops", URL: srv.URL + "/hook?token=sekrit", Secret: secret, Events: []string{vigil.EventApprovalRequest}, Format: "json"},
			{Name: "strict", URL: srv2.URL, Secret: secret, Events: []string{vigil.EventApprovalRequest}, Format: "json"},
			{Name: "quiet", URL: srv2.URL, Secret: secret, Events: []string{oversight.EventApprovalExpired}, Format: "json"},
		},
		Store: db.Deliveries(), ConsoleURL: "https://vigil.example.test/", Backoff: 10 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	s.Notify(oversight.NoticeCreated, request())
	// Wait until every attempt is recorded (three to ops, one to strict), not just
	// received: stopping earlier would cut the last attempt off mid-answer.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if list, _ := db.Deliveries().ListDeliveries(context.Background(), "", 0); len(list) >= 4 {
			break
		}
	}
	cancel()
	<-done

	if flaky.count() != 3 || flaky.bad != 0 {
		t.Fatalf("flaky receiver got %d verified deliveries (%d bad signatures), want 3 (two failures, then success)", flaky.count(), flaky.bad)
	}
	if refusing.count() != 1 {
		t.Errorf("a receiver answering 400 got %d tries, want 1 (no retry on a client error)", refusing.count())
	}
	h := flaky.got[2]
	if h.Get(notify.HeaderEvent) != "approval.requested" || h.Get(notify.HeaderDelivery) != flaky.got[0].Get(notify.HeaderDelivery) {
		t.Errorf("headers = %v; want the event and one delivery id across retries", h)
	}
	var p notify.Payload
	if err := json.Unmarshal(flaky.bodies[2], &p); err != nil {
		t.Fatal(err)
	}
	if p.URL != "https://vigil.example.test/approvals/"+request().ID || p.Approval.Agent != "refund-bot" || p.Approval.Tool != "pay/refund" || p.Approval.Approvals != "0/2" {
		t.Errorf("payload = %+v", p)
	}
	if strings.Contains(string(flaky.bodies[0]), "DE89") {
		t.Error("the payload carries the call's arguments")
	}

	list, err := db.Deliveries().ListDeliveries(context.Background(), request().ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	byHook := map[string][]oversight.Delivery{}
	for _, d := range list {
		byHook[d.Webhook] = append(byHook[d.Webhook], d)
	}
	ops := byHook["ops"]
	if len(ops) != 3 || ops[0].Attempt != 3 || ops[0].Status != 200 || ops[1].Status != 500 || ops[2].Status != 503 || ops[2].Error == "" {
		t.Errorf("recorded attempts for ops = %+v; want 503, 500, 200 with attempts 1..3", ops)
	}
	if len(byHook["strict"]) != 1 || len(byHook["quiet"]) != 0 {
		t.Errorf("recorded = %v; want one attempt for strict, none for quiet (not subscribed)", byHook)
	}
	for _, d := range list {
		if strings.Contains(d.Error, "sekrit") {
			t.Errorf("a delivery record holds the URL's token: %q", d.Error)
		}
	}
}

func TestUnreachableReceiverRecordsError(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "v.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/?token=sekrit"
	srv.Close() // nothing listens there now
	s := notify.New(notify.Options{Hooks: []notify.Hook{{Name: "gone", URL: url, Secret: secret, Events: []string{vigil.EventApprovalRequest}}},
		Store: db.Deliveries(), Attempts: 2, Backoff: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	s.Notify(oversight.NoticeCreated, request())
	var list []oversight.Delivery
	for deadline := time.Now().Add(10 * time.Second); len(list) < 2 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		list, _ = db.Deliveries().ListDeliveries(context.Background(), "", 0)
	}
	cancel()
	<-done
	if len(list) != 2 || list[0].Status != 0 || list[0].Error == "" || strings.Contains(list[0].Error, "sekrit") {
		t.Errorf("deliveries to an unreachable receiver = %+v; want 2 attempts with status 0, an error, and no URL", list)
	}
}

func TestSlackFormat(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := notify.New(notify.Options{Hooks: []notify.Hook{{Name: "slack", URL: srv.URL, Secret: secret, Events: []string{vigil.EventApprovalRequest}, Format: "slack"}},
		ConsoleURL: "https://vigil.example.test"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	s.Notify(oversight.NoticeCreated, request())
	for deadline := time.Now().Add(10 * time.Second); rc.count() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if rc.count() != 1 {
		t.Fatal("no Slack delivery")
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type     string `json:"type"`
			Elements []struct {
				Type string `json:"type"`
				URL  string `json:"url"`
			} `json:"elements"`
			Fields []struct{ Text string } `json:"fields"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(rc.bodies[0], &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Text != "Approval needed: refund-bot wants pay/refund" {
		t.Errorf("text = %q", msg.Text)
	}
	last := msg.Blocks[len(msg.Blocks)-1]
	if last.Type != "actions" || last.Elements[0].URL != "https://vigil.example.test/approvals/"+request().ID {
		t.Errorf("last block = %+v; want a button linking to the console", last)
	}
	if got := msg.Blocks[1].Fields[2].Text; got != "*Rule*\nrefunds &lt;big&gt; &amp; risky" {
		t.Errorf("rule field = %q; want Slack's control characters escaped", got)
	}
}

func TestVerifyRefusesReplaysAndForgeries(t *testing.T) {
	body := []byte(`{"event":"approval.requested"}`)
	now := time.Unix(1_800_000_000, 0)
	ts := "1800000000"
	sig := notify.Sign(secret, ts, body)
	if err := notify.Verify(secret, ts, body, sig, now, time.Minute); err != nil {
		t.Errorf("a good signature failed: %v", err)
	}
	for name, check := range map[string]error{
		"old":           notify.Verify(secret, ts, body, sig, now.Add(time.Hour), time.Minute),
		"other body":    notify.Verify(secret, ts, []byte(`{}`), sig, now, time.Minute),
		"other secret":  notify.Verify([]byte("nope"), ts, body, sig, now, time.Minute),
		"bad timestamp": notify.Verify(secret, "soon", body, sig, now, time.Minute),
	} {
		if check == nil {
			t.Errorf("%s: verified", name)
		}
	}
}
