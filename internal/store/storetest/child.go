package storetest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"golang.org/x/mod/sumdb/note"
)

// Appender processes: a driver's test binary re-executes itself with ChildEnv set
// (the TestMain trick) to get a second OS process appending to the same database,
// for the crash and multi-writer tests. The child prints one line per acknowledged
// event, "ack <id> <index> ok", only after Record returned it.

// ChildEnv names the environment variable that turns a test binary into an
// appender; its value is the child's configuration, made by ChildConfig.String.
const ChildEnv = "VIGIL_LEDGER_CHILD"

// ChildConfig configures an appender process.
type ChildConfig struct {
	SKey, VKey string // note signer and verifier keys
	BodyKey    []byte
	Mirror     string // checkpoint mirror file, optional
	Writers    int    // concurrent appenders
	Events     int    // per writer; 0 means until killed
	Name       string // distinguishes the children's events
}

// NewChildConfig returns a configuration with fresh keys.
func NewChildConfig(t testing.TB) ChildConfig {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	return ChildConfig{SKey: skey, VKey: vkey, BodyKey: key, Writers: 8}
}

func (c ChildConfig) String() string {
	return strings.Join([]string{c.SKey, c.VKey, base64.StdEncoding.EncodeToString(c.BodyKey), c.Mirror,
		strconv.Itoa(c.Writers), strconv.Itoa(c.Events), c.Name}, "\n")
}

func parseChildConfig(s string) (ChildConfig, error) {
	f := strings.Split(s, "\n")
	if len(f) != 7 {
		return ChildConfig{}, fmt.Errorf("bad %s", ChildEnv)
	}
	key, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil {
		return ChildConfig{}, err
	}
	w, err1 := strconv.Atoi(f[4])
	n, err2 := strconv.Atoi(f[5])
	if err1 != nil || err2 != nil {
		return ChildConfig{}, fmt.Errorf("bad %s", ChildEnv)
	}
	return ChildConfig{SKey: f[0], VKey: f[1], BodyKey: key, Mirror: f[3], Writers: w, Events: n, Name: f[6]}, nil
}

// Options are the ledger options of the configuration.
func (c ChildConfig) Options() (ledger.Options, error) {
	s, err := note.NewSigner(c.SKey)
	if err != nil {
		return ledger.Options{}, err
	}
	v, err := note.NewVerifier(c.VKey)
	if err != nil {
		return ledger.Options{}, err
	}
	o := ledger.Options{Origin: s.Name(), Signer: s, Verifier: v, BodyKey: c.BodyKey, CheckpointInterval: 20 * time.Millisecond}
	if c.Mirror != "" {
		o.Mirror = ledger.FileMirror{Path: c.Mirror}
	}
	return o, nil
}

// RunChild is the child's main: it appends through store with the configuration in
// ChildEnv, publishing checkpoints all along, and prints every acknowledgement.
// It returns when all events are appended (or never, when Events is 0).
func RunChild(store ledger.Store) error {
	c, err := parseChildConfig(os.Getenv(ChildEnv))
	if err != nil {
		return err
	}
	opts, err := c.Options()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := ledger.Open(ctx, store, opts)
	if err != nil {
		return fmt.Errorf("couldn't open the ledger: %w", err)
	}
	defer l.Close()
	runDone := make(chan error, 1)
	go func() { runDone <- l.Run(ctx) }()
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, c.Writers)
	for w := range c.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; c.Events == 0 || i < c.Events; i++ {
				r, err := l.Record(ctx, vigil.Event{Type: "test.append", Actor: "process:" + c.Name,
					Attrs: map[string]string{"w": strconv.Itoa(w), "i": strconv.Itoa(i)}, Body: []byte("body " + strconv.Itoa(i))})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %s %d ok\n", r.ID, r.Index)
				out.Flush() // the parent must see every ack before a kill
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := l.PublishCheckpoint(ctx); err != nil {
		return err
	}
	cancel()
	return <-runDone
}

// Child is a running appender process.
type Child struct {
	cmd  *exec.Cmd
	acks chan vigil.Receipt
	done chan error
}

// StartChild re-executes the test binary as an appender with extra environment.
func StartChild(t testing.TB, c ChildConfig, env ...string) *Child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), ChildEnv+"="+c.String()), env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := &Child{cmd: cmd, acks: make(chan vigil.Receipt, 1024), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 4 || f[0] != "ack" || f[3] != "ok" {
				continue // a line cut by the kill was not acknowledged
			}
			idx, err := strconv.ParseInt(f[2], 10, 64)
			if err == nil {
				ch.acks <- vigil.Receipt{ID: f[1], Index: idx}
			}
		}
		io.Copy(io.Discard, stdout)
		close(ch.acks)
		ch.done <- cmd.Wait()
	}()
	return ch
}

// Acks delivers acknowledgements as the child prints them; it is closed when the
// child's output ends.
func (c *Child) Acks() <-chan vigil.Receipt { return c.acks }

// Kill sends SIGKILL: no deferred function, no flush, no clean shutdown.
func (c *Child) Kill() { _ = c.cmd.Process.Kill() }

// Wait drains the acknowledgements and returns them with the process's exit error.
func (c *Child) Wait() ([]vigil.Receipt, error) {
	var out []vigil.Receipt
	for r := range c.acks {
		out = append(out, r)
	}
	return out, <-c.done
}
