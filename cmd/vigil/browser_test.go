package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// chromiumPath is Debian's chromium, which scripts/test-deps.sh installs.
const chromiumPath = "/usr/bin/chromium"

// needBrowser skips the test when Chromium or the Node packages are missing, except
// in CI, where they must be there.
func needBrowser(t *testing.T, dir string) {
	t.Helper()
	var missing []string
	if _, err := os.Stat(chromiumPath); err != nil {
		missing = append(missing, chromiumPath)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		missing = append(missing, "playwright-core (npm ci in test/browser)")
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI must run the browser test, but %s is missing (scripts/test-deps.sh installs it)", strings.Join(missing, ", "))
	}
	t.Skipf("skipping the browser test: %s missing", strings.Join(missing, ", "))
}

// browserScript is a Node script driving Chromium, which reports milestones one per
// line on stdout and may be told what to do next on stdin.
type browserScript struct {
	t      *testing.T
	ctx    context.Context
	cancel context.CancelFunc
	stdin  io.WriteCloser
	lines  chan string
	stderr *syncBuffer
	exited chan struct{} // closed when the script has exited; then err is set
	err    error
}

// runBrowser starts node script in dir with env added to the test's environment
// (and CHROMIUM). At the end of the test a script still running is asked to stop
// (its stdin is closed, so it closes Chromium) and killed if it does not.
func runBrowser(t *testing.T, dir, script string, env ...string) *browserScript {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CHROMIUM="+chromiumPath), env...)
	b := &browserScript{t: t, ctx: ctx, cancel: cancel, lines: make(chan string, 64), stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = b.stderr
	// Through an io.Pipe, Wait returns only once all output was copied, so the lines
	// channel is complete when it closes.
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	var err error
	if b.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		b.err = cmd.Wait()
		pw.Close()
		close(b.exited)
	}()
	go func() {
		defer close(b.lines)
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			select {
			case b.lines <- sc.Text():
			case <-ctx.Done():
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	t.Cleanup(b.stop)
	return b
}

// stop closes the script's stdin, gives it a few seconds to close Chromium and exit,
// then kills it.
func (b *browserScript) stop() {
	_ = b.stdin.Close()
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
	}
	b.cancel()
	<-b.exited
}

// next waits for the script's next line, which must start with prefix, and returns
// the rest of it.
func (b *browserScript) next(prefix string) string {
	b.t.Helper()
	select {
	case l, ok := <-b.lines:
		if !ok || !strings.HasPrefix(l, prefix) {
			b.stop()
			b.t.Fatalf("browser said %q, want %s…\nstderr:\n%s", l, prefix, b.stderr.String())
		}
		return strings.TrimSpace(strings.TrimPrefix(l, prefix))
	case <-b.ctx.Done():
		b.t.Fatalf("browser timed out waiting for %s\nstderr:\n%s", prefix, b.stderr.String())
	}
	return ""
}

// say writes one line to the script's stdin.
func (b *browserScript) say(line string) {
	b.t.Helper()
	if _, err := io.WriteString(b.stdin, line+"\n"); err != nil {
		b.t.Fatalf("telling the browser %q: %v\nstderr:\n%s", line, err, b.stderr.String())
	}
}

// wait closes the script's stdin, waits for it to exit and fails the test unless it
// succeeded.
func (b *browserScript) wait() {
	b.t.Helper()
	_ = b.stdin.Close()
	select {
	case <-b.exited:
	case <-b.ctx.Done():
		<-b.exited
	}
	if b.err != nil {
		b.t.Fatalf("browser script: %v\nstderr:\n%s", b.err, b.stderr.String())
	}
}

// TestConsoleInChromium is the reviewer's path end to end in a real browser: sign
// in, watch a held call appear live, approve it (the waiting caller completes with
// approved), deny the next with a reason, and suspend the agent from the kill
// switch page. Screenshots go to t.TempDir(), or to VIGIL_TEST_ARTIFACTS if set.
func TestConsoleInChromium(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("..", "..", "test", "browser"))
	if err != nil {
		t.Fatal(err)
	}
	needBrowser(t, dir)
	shots := os.Getenv("VIGIL_TEST_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	}

	m, _ := startOversight(t, nil)
	base := m.URL()
	const password = "correct horse battery staple"
	if st, body := call(t, "POST", base+"/api/users", adminToken, map[string]any{"name": "dana", "roles": []string{"reviewer"}, "password": password}); st != 201 {
		t.Fatalf("create user = %d %v", st, body)
	}
	agent, key := newAgent(t, m, "refund-bot", "payments", "alice")

	b := runBrowser(t, dir, "console.mjs", "VIGIL_URL="+base, "VIGIL_USER=dana", "VIGIL_PASSWORD="+password, "SHOTS="+shots)
	next := b.next

	next("SIGNED_IN")
	// The first call's tool declares a title and MCP's hints, which the card shows.
	first := held(agent, nil)
	first.Tool.Annotations = vigil.ToolAnnotations{Title: "Refund an order", DestructiveHint: true, OpenWorldHint: true}
	ch := holding(t, m, first)
	id := pendingID(t, m)
	if seen := next("SEEN"); seen != id {
		t.Errorf("the page showed request %q, want %q", seen, id)
	}
	next("APPROVED")
	got := outcome(t, ch)
	if got.err != nil || got.req.Status != oversight.Approved || got.req.DecidedBy != "user:dana" || got.req.Votes[0].Reason != "customer verified by phone" {
		t.Fatalf("the waiting caller got %+v, %v; want approved by user:dana with her note", got.req, got.err)
	}

	ch = holding(t, m, held(agent, nil))
	id = pendingID(t, m)
	if denied := next("DENIED"); denied != id {
		t.Errorf("the page denied %q, want %q", denied, id)
	}
	got = outcome(t, ch)
	if got.req.Status != oversight.Denied || got.req.Reason != "amount too high for this customer" {
		t.Errorf("the second caller got %s %q, want denied with the reviewer's reason", got.req.Status, got.req.Reason)
	}

	next("SUSPENDED")
	if st, body := call(t, "GET", base+"/v1/models", key, nil); st != 403 || !strings.Contains(errMessage(body), "stopped from the console") {
		t.Errorf("agent call after suspension in the console = %d %v", st, body)
	}
	next("DONE")
	b.wait()
	for _, f := range []string{"pending.png", "decided.png", "kill-switch.png"} {
		if fi, err := os.Stat(filepath.Join(shots, f)); err != nil || fi.Size() == 0 {
			t.Errorf("screenshot %s missing: %v", f, err)
		}
	}
	t.Logf("screenshots in %s", shots)
}
