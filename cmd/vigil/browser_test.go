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

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "console.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "VIGIL_URL="+base, "VIGIL_USER=dana", "VIGIL_PASSWORD="+password, "SHOTS="+shots, "CHROMIUM="+chromiumPath)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	next := func(prefix string) string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok || !strings.HasPrefix(l, prefix) {
				_ = cmd.Wait()
				t.Fatalf("browser said %q, want %s…\nstderr:\n%s", l, prefix, stderr.String())
			}
			return strings.TrimSpace(strings.TrimPrefix(l, prefix))
		case <-ctx.Done():
			t.Fatalf("browser timed out waiting for %s\nstderr:\n%s", prefix, stderr.String())
		}
		return ""
	}

	next("SIGNED_IN")
	ch := holding(t, m, held(agent, nil))
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
	if err := cmd.Wait(); err != nil {
		t.Fatalf("browser script: %v\nstderr:\n%s", err, stderr.String())
	}
	for _, f := range []string{"pending.png", "decided.png", "kill-switch.png"} {
		if fi, err := os.Stat(filepath.Join(shots, f)); err != nil || fi.Size() == 0 {
			t.Errorf("screenshot %s missing: %v", f, err)
		}
	}
	t.Logf("screenshots in %s", shots)
}
