package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/config"
)

// adminToken is the bootstrap token tests pass as VIGIL_ADMIN_TOKEN.
const adminToken = "test-admin-token-0123456789abcdef"

// testEnv is an Env with buffers and a fixed environment.
type testEnv struct {
	Env
	stdout, stderr *syncBuffer
	vars           map[string]string
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a running server.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestEnv(vars map[string]string) *testEnv {
	e := &testEnv{stdout: &syncBuffer{}, stderr: &syncBuffer{}, vars: vars}
	e.Env = Env{Stdin: strings.NewReader(""), Stdout: e.stdout, Stderr: e.stderr, Getenv: func(k string) string { return e.vars[k] }}
	return e
}

// runMain starts a gateway on 127.0.0.1:0 with a temp data dir (or cfg's) and closes it
// at the end of the test.
func runMain(t *testing.T, cfg *config.Config) (*Main, *testEnv) {
	t.Helper()
	env := newTestEnv(map[string]string{"VIGIL_ADMIN_TOKEN": adminToken})
	m := NewMain(&env.Env)
	if cfg != nil {
		m.Config = cfg
	}
	m.Config.Listen = "127.0.0.1:0"
	if m.Config.DataDir == config.DefaultDataDir {
		m.Config.DataDir = filepath.Join(t.TempDir(), "data")
	}
	m.Config.Ledger.CheckpointInterval = 100 * time.Millisecond
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, env.stderr.String())
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m, env
}

// call makes a request and decodes the JSON answer (if any) into a map.
func call(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	return callWith(t, method, url, token, nil, body)
}

// callWith is call with extra request headers.
func callWith(t *testing.T, method, url, token string, header http.Header, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %q", method, url, raw)
		}
	}
	return resp.StatusCode, out
}

// errMessage digs the message out of either error shape.
func errMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// getWithToken is http.Get with a bearer token.
func getWithToken(url, token string) (*http.Response, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return http.DefaultClient.Do(req)
}
