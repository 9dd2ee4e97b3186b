package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestListenNotify(t *testing.T) {
	db, other := openTest(t), openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 16)
	heard := make(chan string, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		db.Listen(ctx, "test_channel", func(p string) { got <- p }, func(err error) { t.Logf("listen: %v", err) })
	}()
	go other.Listen(ctx, "test_channel", func(p string) { heard <- p }, nil)
	// The first call after connecting is the empty "you may have missed something".
	for _, ch := range []chan string{got, heard} {
		select {
		case p := <-ch:
			if p != "" {
				t.Fatalf("first payload after connecting = %q, want \"\"", p)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("listener never connected")
		}
	}
	for _, p := range []string{"one", "two"} {
		if err := db.Notify(ctx, "test_channel", p); err != nil {
			t.Fatal(err)
		}
	}
	var payloads []string
	for range 2 {
		select {
		case p := <-got:
			payloads = append(payloads, p)
		case <-time.After(10 * time.Second):
			t.Fatalf("notifications not delivered; got %v", payloads)
		}
	}
	if diff := cmp.Diff([]string{"one", "two"}, payloads); diff != "" {
		t.Errorf("payloads (-want +got):\n%s", diff)
	}
	// Another schema in the same database never hears them.
	if err := other.Notify(ctx, "test_channel", "for other"); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-heard:
		if p != "for other" {
			t.Errorf("the other schema's listener heard %q, meant for another schema", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("other schema's own notification not delivered")
	}
	select {
	case p := <-got:
		t.Errorf("listener heard %q from another schema", p)
	default:
	}
	cancel()
	<-done
}
