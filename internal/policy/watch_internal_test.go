package policy

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestWatchWaitsForAFileToSettle: a file caught half-written is not acted on. Here
// the half is a policy that compiles and allows everything — what a truncated file
// can be — and the watcher must activate only the whole file that follows it.
func TestWatchWaitsForAFileToSettle(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	const (
		start = "version: 1\ndefault: deny\n"
		half  = "version: 1\ndefault: allow\n"
		whole = "version: 1\ndefault: allow\nrules:\n  - id: no-refunds\n    match: {tools: [refund]}\n    effect: deny\n"
	)
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(start)
	e := New(Options{})
	if _, err := e.Reload(ctx, path, "system:startup"); err != nil {
		t.Fatal(err)
	}
	var activated []string
	var failed []error
	w := watcher{e: e, o: WatchOptions{Path: path, By: "test",
		OnActivate: func(p *Policy) { activated = append(activated, p.Version()) },
		OnError:    func(err error) { failed = append(failed, err) }}, size: -1, seen: e.Policy().version}

	w.poll(ctx) // the live file: nothing to do
	write(half)
	w.poll(ctx) // the half: seen changed, waits
	write("")
	w.poll(ctx) // emptied (the editor truncating again): waits, no error
	write(whole)
	w.poll(ctx) // the whole: waits once more
	if len(activated) != 0 || len(failed) != 0 || e.Policy().Version() != Version([]byte(start)) {
		t.Fatalf("acted before the file settled: activated %v, failed %v", activated, failed)
	}
	w.poll(ctx) // unchanged for one interval: activated
	if len(activated) != 1 || activated[0] != Version([]byte(whole)) || e.Policy().Version() != activated[0] {
		t.Errorf("activated %v, live %s; want only the whole file", activated, e.Policy().Version())
	}
	w.poll(ctx)
	if len(activated) != 1 || len(failed) != 0 {
		t.Errorf("a settled file was acted on again: %v %v", activated, failed)
	}
}
