package main

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/fakeprovider"
	"github.com/vigil-gateway/vigil/internal/policy"
)

// runCLI runs one command line in-process against a gateway.
func runCLI(t *testing.T, base string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	env := newTestEnv(map[string]string{"VIGIL_URL": base, "VIGIL_TOKEN": adminToken})
	code = Run(context.Background(), &env.Env, args)
	return code, env.stdout.String(), env.stderr.String()
}

func TestAdminCLI(t *testing.T) {
	m, _ := runMain(t, nil)
	base := m.URL()

	code, out, errOut := runCLI(t, base, "systems", "create", "--purpose", "triage mail", "--owner", "ops", "mailroom")
	if code != 0 || !strings.Contains(out, "record complete") {
		t.Fatalf("systems create: %d %q %q", code, out, errOut)
	}
	code, out, errOut = runCLI(t, base, "agents", "create", "--system", "mailroom", "--label", "env=prod", "sorter")
	if code != 0 {
		t.Fatalf("agents create: %d %q %q", code, out, errOut)
	}
	key := regexp.MustCompile(`vk_[a-z2-7]+`).FindString(out)
	if key == "" {
		t.Fatalf("agents create printed no key: %q", out)
	}
	if st, _ := call(t, "GET", base+"/v1/models", key, nil); st != 200 {
		t.Fatalf("key printed by the CLI doesn't authenticate: %d", st)
	}
	code, out, _ = runCLI(t, base, "agents", "list")
	if code != 0 || !strings.Contains(out, "sorter") || !strings.Contains(out, "env=prod") {
		t.Errorf("agents list: %d %q", code, out)
	}
	// Flags after the positional argument work.
	code, out, errOut = runCLI(t, base, "agents", "suspend", "sorter", "--reason", "spam burst")
	if code != 0 || !strings.Contains(out, "suspended") {
		t.Fatalf("agents suspend: %d %q %q", code, out, errOut)
	}
	if st, body := call(t, "GET", base+"/v1/models", key, nil); st != 403 || !strings.Contains(errMessage(body), "spam burst") {
		t.Errorf("after CLI suspend: %d %v", st, body)
	}
	code, _, errOut = runCLI(t, base, "agents", "suspend", "sorter")
	if code == 0 || !strings.Contains(errOut, "reason is required") {
		t.Errorf("suspend without reason: %d %q", code, errOut)
	}
	if code, _, _ = runCLI(t, base, "agents", "resume", "sorter"); code != 0 {
		t.Fatalf("agents resume: %d", code)
	}
	code, out, _ = runCLI(t, base, "agents", "rotate", "--grace", "1h", "sorter")
	if code != 0 || regexp.MustCompile(`vk_[a-z2-7]+`).FindString(out) == "" {
		t.Fatalf("agents rotate: %d %q", code, out)
	}
	code, out, _ = runCLI(t, base, "agents", "keys", "sorter")
	if code != 0 || !strings.Contains(out, "expires") || !strings.Contains(out, "active") {
		t.Errorf("agents keys after rotate with grace: %d %q", code, out)
	}
	code, out, errOut = runCLI(t, base, "tokens", "create", "--role", "reviewer", "oncall")
	if code != 0 || regexp.MustCompile(`vt_[a-z2-7]+`).FindString(out) == "" {
		t.Fatalf("tokens create: %d %q %q", code, out, errOut)
	}
	code, out, _ = runCLI(t, base, "systems", "list")
	if code != 0 || !strings.Contains(out, "mailroom") {
		t.Errorf("systems list: %d %q", code, out)
	}

	// Errors: clear, on stderr, non-zero.
	code, _, errOut = runCLI(t, base, "agents", "get", "nobody")
	if code == 0 || !strings.Contains(errOut, "no agent named") {
		t.Errorf("agents get unknown: %d %q", code, errOut)
	}
	env := newTestEnv(map[string]string{"VIGIL_URL": base})
	if code := Run(context.Background(), &env.Env, []string{"agents", "list"}); code == 0 || !strings.Contains(env.stderr.String(), "VIGIL_TOKEN") {
		t.Errorf("without VIGIL_TOKEN: %d %q", code, env.stderr.String())
	}
	code, _, errOut = runCLI(t, "http://127.0.0.1:1", "agents", "list")
	if code == 0 || !strings.Contains(errOut, "couldn't reach Vigil") {
		t.Errorf("unreachable server: %d %q", code, errOut)
	}
}

// TestHelp checks that every command and subcommand answers --help with its usage on
// stdout and exit 0, and that unknown commands fail with usage on stderr.
func TestHelp(t *testing.T) {
	var lines [][]string
	lines = append(lines, []string{"--help"}, []string{"help", "serve"})
	for _, c := range commands() {
		lines = append(lines, []string{c.name, "--help"})
	}
	for _, noun := range []string{"agents", "systems", "tokens"} {
		env := newTestEnv(nil)
		Run(context.Background(), &env.Env, []string{noun, "--help"})
		for _, m := range regexp.MustCompile(`(?m)^  ([a-z-]+) `).FindAllStringSubmatch(env.stdout.String(), -1) {
			lines = append(lines, []string{noun, m[1], "--help"})
		}
	}
	if len(lines) < 20 {
		t.Fatalf("found only %d help lines; the subcommand listing changed?", len(lines))
	}
	for _, args := range lines {
		env := newTestEnv(nil)
		code := Run(context.Background(), &env.Env, args)
		if code != 0 || !strings.Contains(env.stdout.String(), "Usage") {
			t.Errorf("vigil %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, env.stdout.String(), env.stderr.String())
		}
	}
	env := newTestEnv(nil)
	if code := Run(context.Background(), &env.Env, []string{"frobnicate"}); code != 2 || !strings.Contains(env.stderr.String(), "unknown command") {
		t.Errorf("unknown command: exit %d, stderr %q", code, env.stderr.String())
	}
	env = newTestEnv(nil)
	if code := Run(context.Background(), &env.Env, []string{"version"}); code != 0 || !strings.HasPrefix(env.stdout.String(), "vigil ") {
		t.Errorf("version: exit %d, %q", code, env.stdout.String())
	}
}

// TestExampleConfig loads the shipped example, so it never drifts from the Config type.
func TestExampleConfig(t *testing.T) {
	c, err := config.Load(filepath.Join("..", "..", "examples", "vigil.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Ledger.Origin == "" {
		t.Error("example sets ledger.origin but it was not read")
	}
	// And it actually starts.
	dir := t.TempDir()
	c.DataDir, c.Listen = filepath.Join(dir, "data"), "127.0.0.1:0"
	m, _ := runMain(t, c)
	if st, _ := call(t, "GET", m.URL()+"/healthz", "", nil); st != 200 {
		t.Errorf("example config: healthz = %d", st)
	}
	// Its policy (named relative to the config file) is the live one.
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, got := call(t, "GET", m.URL()+"/api/policy", adminToken, nil); got["version"] != policy.Version(src) {
		t.Errorf("live policy = %v, want examples/policy.yaml (%s)", got["version"], policy.Version(src))
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "vigil.db")); err != nil {
		t.Error(err)
	}
}

// TestExampleConfigMasksAndRestores is issue 6's scenario on the shipped example,
// as the README tour runs it: a support agent's request holding an email and a card
// number reaches the (fake) provider tokenized, the client reads the values restored,
// and the example's blocked types are refused before anything leaves.
func TestExampleConfigMasksAndRestores(t *testing.T) {
	c, err := config.Load(filepath.Join("..", "..", "examples", "vigil.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fake := fakeprovider.New(fakeprovider.Options{})
	fs := httptest.NewServer(fake)
	t.Cleanup(fs.Close)
	for i := range c.Providers {
		c.Providers[i].BaseURL = fs.URL + "/v1" // the example's 127.0.0.1:8787, on a free port
	}
	c.DataDir = filepath.Join(t.TempDir(), "data")
	m, _ := runMain(t, c)
	base := m.URL()
	st, agent := call(t, "POST", base+"/api/agents", adminToken, map[string]any{"name": "support-bot", "system": "support-assistant"})
	if st != 201 {
		t.Fatalf("create agent = %d %v", st, agent)
	}
	key, _ := agent["api_key"].(string)

	const email, card = "jane.doe@example.org", "4111 1111 1111 1111"
	chat := func(content string) (int, map[string]any) {
		t.Helper()
		return call(t, "POST", base+"/v1/chat/completions", key, map[string]any{
			"model": "fake-gpt", "messages": []map[string]string{{"role": "user", "content": content}}})
	}
	st, resp := chat("Email " + email + " about card " + card)
	if st != 200 {
		t.Fatalf("chat with an email and a card = %d %v", st, resp)
	}
	answer := resp["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"].(string)
	if !strings.Contains(answer, email) || !strings.Contains(answer, card) {
		t.Errorf("the client read %q; want the email and the card restored", answer)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("the provider got %d requests, want 1", len(reqs))
	}
	sent := string(reqs[0].Body)
	if strings.Contains(sent, email) || strings.Contains(sent, "4111") || !strings.Contains(sent, "<EMAIL_ADDRESS_") || !strings.Contains(sent, "<CREDIT_CARD_") {
		t.Errorf("the provider saw %s; want the email and the card tokenized", sent)
	}

	// The example blocks social security numbers and secrets: refused, never sent.
	for _, content := range []string{"my SSN is 536-22-1234", "use key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"} {
		if st, resp := chat(content); st != 403 {
			t.Errorf("chat %q = %d %v, want 403", content, st, resp)
		}
	}
	if n := len(fake.Requests()); n != 1 {
		t.Errorf("the provider got %d requests after the blocked ones, want still 1", n)
	}
}
