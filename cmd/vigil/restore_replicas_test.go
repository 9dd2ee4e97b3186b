package main

import (
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vigil-gateway/vigil/internal/store/postgres/pgtest"
)

// TestTokenRestoredOnAnotherReplica: two Vigils on one PostgreSQL schema. A request
// through replica A tokenizes an email address; the token the provider saw is
// restored on replica B, which never saw the address, in the same agent session and
// only there. The vault entry A writes is visible to B before A forwards the request
// (docs/adr/0010-hot-path.md): nothing but the shared database could restore it on B.
func TestTokenRestoredOnAnotherReplica(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	fake, fakeURL, policyFile := llmUpstream(t, dir)
	replica := func() *Main {
		env := newTestEnv(map[string]string{"VIGIL_ADMIN_TOKEN": adminToken, "FAKE_PROVIDER_KEY": fakeKey})
		m := NewMain(&env.Env)
		m.Config = llmConfig(fakeURL, policyFile)
		m.Config.Database, m.Config.DataDir, m.Config.Listen = dsn, filepath.Join(dir, "data"), "127.0.0.1:0"
		if err := m.Run(context.Background()); err != nil {
			t.Fatalf("Run: %v\nstderr:\n%s", err, env.stderr.String())
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	a, b := replica(), replica()
	key, err := benchAgent(context.Background(), a.URL(), adminToken)
	if err != nil {
		t.Fatal(err)
	}
	chat := func(m *Main, session, content string) string {
		t.Helper()
		st, out := callWith(t, "POST", m.URL()+"/v1/chat/completions", key, http.Header{"X-Vigil-Session": {session}},
			map[string]any{"model": "fake-gpt", "messages": []map[string]string{{"role": "user", "content": content}}})
		if st != 200 {
			t.Fatalf("chat through %s = %d %v", m.URL(), st, out)
		}
		return str(out, "choices", 0, "message", "content")
	}

	const email = "jane.doe@example.com"
	if got := chat(a, "conv-1", "mail "+email); got != "You said: mail "+email {
		t.Fatalf("answer through A = %q", got)
	}
	reqs := fake.Requests()
	tok := regexp.MustCompile(`<EMAIL_ADDRESS_[a-z2-7]{12}>`).FindString(string(reqs[len(reqs)-1].Body))
	if tok == "" || strings.Contains(string(reqs[len(reqs)-1].Body), email) {
		t.Fatalf("the provider received %s; want the address tokenized", reqs[len(reqs)-1].Body)
	}

	if got, want := chat(b, "conv-1", "what about "+tok+"?"), "You said: what about "+email+"?"; got != want {
		t.Errorf("answer through B carrying A's token = %q, want %q (restored from the shared vault)", got, want)
	}
	if got, want := chat(b, "conv-2", "what about "+tok+"?"), "You said: what about "+tok+"?"; got != want {
		t.Errorf("answer in another session = %q, want %q (tokens are scoped to their session)", got, want)
	}
}
