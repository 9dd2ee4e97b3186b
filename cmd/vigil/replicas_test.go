package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/oversight"
	"github.com/vigil-gateway/vigil/internal/store/postgres/pgtest"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// replicaArgsEnv carries the command line of a replica started by startReplica.
const replicaArgsEnv = "VIGIL_TEST_REPLICA_ARGS"

// TestReplicaProcess is not a test: it is `vigil serve` in a child process, which
// startReplica runs by re-executing the test binary.
func TestReplicaProcess(t *testing.T) {
	args := os.Getenv(replicaArgsEnv)
	if args == "" {
		t.Skip("runs only as a child process of TestTwoReplicas")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	os.Exit(Run(ctx, env, strings.Split(args, "\n")))
}

// startReplica runs `vigil serve --config path` in another process and returns its
// base URL once it listens. It is stopped (SIGINT, as an operator would) at cleanup.
func startReplica(t *testing.T, path string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplicaProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), replicaArgsEnv+"=serve\n--config\n"+path, "VIGIL_ADMIN_TOKEN="+adminToken)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs, err := os.Create(filepath.Join(t.TempDir(), "replica.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("replica B's log:\n%s", b)
		}
	})
	url := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		re := regexp.MustCompile(`Admin API:\s+(http://[^ ]+)/api/`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				url <- m[1]
			}
		}
	}()
	select {
	case u := <-url:
		return u
	case <-time.After(90 * time.Second):
		t.Fatal("replica B did not start")
	}
	return ""
}

// TestTwoReplicas is two Vigil processes on one PostgreSQL: a caller waiting on
// replica A is released by a decision made through replica B's API, and an agent
// suspended through B is refused on A and its open work on A closed. Replica A's
// waiters poll only hourly here, so only LISTEN/NOTIFY can release them in time.
func TestTwoReplicas(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Database, cfg.DataDir, cfg.Listen = dsn, dir, "127.0.0.1:0"
	cfg.Ledger.CheckpointInterval = 100 * time.Millisecond

	envA := newTestEnv(map[string]string{"VIGIL_ADMIN_TOKEN": adminToken})
	a := NewMain(&envA.Env)
	a.Config = cfg
	a.oversight = &oversightWiring{pollInterval: time.Hour, password: cheapPassword}
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("replica A: %v\n%s", err, envA.stderr.String())
	}
	t.Cleanup(func() { a.Close() })

	path := filepath.Join(t.TempDir(), "vigil.yaml")
	yaml := "listen: 127.0.0.1:0\ndata_dir: " + dir + "\ndatabase: \"" + dsn + "\"\nlog:\n  level: warn\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	b := startReplica(t, path)

	agent, key := newAgent(t, a, "refund-bot", "payments", "")
	reviewer := newToken(t, a, "bob", vigil.RoleReviewer)
	if st, body := call(t, "GET", b+"/api/whoami", reviewer, nil); st != 200 {
		t.Fatalf("replica B doesn't know replica A's token: %d %v", st, body)
	}

	// A decision through B releases the caller waiting on A.
	ch := holding(t, a, held(agent, nil))
	id := pendingID(t, a)
	st, body := call(t, "POST", b+"/api/approvals/"+id+"/approve", reviewer, map[string]string{"reason": "checked on replica B"})
	decided := time.Now()
	if st != 200 || body["status"] != "approved" {
		t.Fatalf("approve through B = %d %v", st, body)
	}
	got := outcome(t, ch)
	if got.err != nil || got.req.Status != oversight.Approved || got.req.DecidedBy != "token:bob" {
		t.Fatalf("caller on A released with %+v, %v; want approved by token:bob", got.req, got.err)
	}
	t.Logf("decision on B reached the caller on A after %v", time.Since(decided))

	// A suspension through B: refused on A at once, pending approvals cancelled,
	// open work on A closed.
	ch = holding(t, a, held(agent, nil))
	stream, done := a.oversight.sessions.Track(context.Background(), agent)
	defer done()
	if st, _ := call(t, "GET", a.URL()+"/v1/models", key, nil); st != 200 {
		t.Fatalf("agent call on A before the suspension = %d", st)
	}
	st, body = call(t, "POST", b+"/api/agents/refund-bot/suspend", reviewer, map[string]string{"reason": "runaway refunds"})
	suspended := time.Now()
	if st != 200 {
		t.Fatalf("suspend through B = %d %v", st, body)
	}
	if st, body := call(t, "GET", a.URL()+"/v1/models", key, nil); st != 403 || !strings.Contains(errMessage(body), "runaway refunds") {
		t.Errorf("agent call on A after a suspension on B = %d %v, want 403 with the reason", st, body)
	}
	if got := outcome(t, ch); got.req.Status != oversight.Cancelled {
		t.Errorf("call waiting on A after the suspension on B: %s, want cancelled", got.req.Status)
	}
	select {
	case <-stream.Done():
		t.Logf("suspension on B closed the open stream on A after %v", time.Since(suspended))
		if c := context.Cause(stream); vigil.ErrorCode(c) != vigil.ESUSPENDED {
			t.Errorf("stream on A closed with %v, want ESUSPENDED", c)
		}
	case <-time.After(20 * time.Second):
		t.Error("the suspension on B never closed the agent's open stream on A")
	}

	// The global halt through B stops agents on A.
	if st, _ := call(t, "POST", b+"/api/agents/refund-bot/resume", reviewer, nil); st != 200 {
		t.Fatal("resume through B failed")
	}
	if st, _ := call(t, "POST", b+"/api/halt", reviewer, map[string]string{"reason": "drill"}); st != 200 {
		t.Fatal("halt through B failed")
	}
	if st, body := call(t, "GET", a.URL()+"/v1/models", key, nil); st != 403 || !strings.Contains(errMessage(body), "halted") {
		t.Errorf("agent call on A while halted through B = %d %v", st, body)
	}
	call(t, "DELETE", b+"/api/halt", reviewer, nil)
	if st, _ := call(t, "GET", a.URL()+"/v1/models", key, nil); st != 200 {
		t.Errorf("agent call on A after resume-all through B = %d", st)
	}
}
