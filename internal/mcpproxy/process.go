package mcpproxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// conn is one live connection to an upstream MCP server: a process's stdio, or an
// MCP session over streamable HTTP. Implementations are safe for concurrent use.
type conn interface {
	// send writes msg upstream. ctx bounds the write and, for a call over HTTP, the
	// reading of the call's response stream: cancel it once the call is over.
	send(ctx context.Context, msg jsonrpc.Message) error
	// done is closed when the connection is gone for good (the process exited, the
	// server forgot the HTTP session); cause says why.
	done() <-chan struct{}
	cause() error
	// close ends the connection: it stops the process (gracefully, then not) or
	// ends the HTTP session. It returns once that is done.
	close()
	// pid is the process id, or 0 for HTTP.
	pid() int
}

// receiver gets every message an upstream sends. related is the id of the call whose
// HTTP response stream carried the message; it is invalid when the transport cannot
// tell (stdio, the standalone SSE stream).
type receiver func(msg jsonrpc.Message, related jsonrpc.ID)

var errConnClosed = errors.New("the connection to the MCP server is closed")

// Limits on what a server may send.
const (
	maxLineBytes   = 16 << 20 // one JSON-RPC message on stdout, or one SSE event
	maxStderrLine  = 512      // bytes of one stderr line that reach the log
	stderrBurst    = 50       // stderr lines logged per stderrWindow, then suppressed
	stderrWindow   = 10 * time.Second
	stopGrace      = time.Second // after closing stdin, before SIGTERM
	stopTermGrace  = 2 * time.Second
	writeQueueSize = 64
)

// processSpec is how to start one server process.
type processSpec struct {
	server  string
	command []string
	dir     string
	env     []string
	// secrets are removed from logged stderr lines.
	secrets []string
	log     *slog.Logger
}

// processConn is a server process spoken to over stdio: newline-delimited JSON-RPC on
// stdin and stdout, diagnostics on stderr.
type processConn struct {
	spec   processSpec
	cmd    *exec.Cmd
	recv   receiver
	writes chan []byte
	stop   chan struct{} // closed by close: the writer closes stdin
	doneCh chan struct{} // closed when the process has exited and its output is read

	stopOnce sync.Once
	exitErr  error // set before doneCh closes
}

// startProcess starts the server. The process gets only the environment in spec.env
// (never Vigil's own, which holds Vigil's secrets).
func startProcess(spec processSpec, recv receiver) (*processConn, error) {
	cmd := exec.Command(spec.command[0], spec.command[1:]...)
	cmd.Dir = spec.dir
	cmd.Env = spec.env
	isolate(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("couldn't start MCP server %s: %w", spec.server, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("couldn't start MCP server %s: %w", spec.server, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("couldn't start MCP server %s: %w", spec.server, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("couldn't start MCP server %s (%s): %w", spec.server, spec.command[0], err)
	}
	c := &processConn{
		spec: spec, cmd: cmd, recv: recv,
		writes: make(chan []byte, writeQueueSize), stop: make(chan struct{}), doneCh: make(chan struct{}),
	}
	var reads sync.WaitGroup
	reads.Add(2)
	go func() { defer reads.Done(); c.readStdout(stdout) }()
	go func() { defer reads.Done(); c.readStderr(stderr) }()
	go c.writeLoop(stdin)
	go func() {
		reads.Wait() // Wait closes the pipes: read them to the end first
		err := cmd.Wait()
		if err == nil {
			err = errors.New("exit status 0")
		}
		c.exitErr = fmt.Errorf("MCP server %s (pid %d) exited: %w", spec.server, cmd.Process.Pid, err)
		close(c.doneCh)
	}()
	return c, nil
}

func (c *processConn) send(ctx context.Context, msg jsonrpc.Message) error {
	b := encode(msg)
	select {
	case c.writes <- b:
		return nil
	case <-c.doneCh:
		return errConnClosed
	case <-c.stop:
		return errConnClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *processConn) writeLoop(stdin io.WriteCloser) {
	defer stdin.Close()
	w := bufio.NewWriter(stdin)
	for {
		select {
		case b := <-c.writes:
			w.Write(b)
			w.WriteByte('\n')
			// Write everything queued before flushing, so bursts cost one syscall.
			for more := true; more; {
				select {
				case b := <-c.writes:
					w.Write(b)
					w.WriteByte('\n')
				default:
					more = false
				}
			}
			if err := w.Flush(); err != nil {
				return // the process is gone; doneCh will say why
			}
		case <-c.stop:
			return
		case <-c.doneCh:
			return
		}
	}
}

func (c *processConn) readStdout(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	junk := 0
	for {
		line, err := readLine(br, maxLineBytes)
		if len(bytes.TrimSpace(line)) > 0 {
			msg, derr := decodeMessage(line)
			if derr != nil {
				// Servers sometimes print diagnostics on stdout. Say so, without the
				// content (it may be anything, including data).
				if junk++; junk <= 3 {
					c.spec.log.Warn("MCP server wrote a line on stdout that is not a JSON-RPC message; ignored",
						"server", c.spec.server, "bytes", len(line))
				}
			} else {
				c.recv(msg, jsonrpc.ID{})
			}
		}
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				c.spec.log.Warn("MCP server wrote a message larger than the limit; stopping it", "server", c.spec.server, "limit", maxLineBytes)
				signalGroup(c.cmd, sigKill)
				io.Copy(io.Discard, r)
			}
			return
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine reads one newline-terminated line of at most max bytes.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > max {
			return nil, errLineTooLong
		}
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		return line, err
	}
}

// readStderr logs the server's stderr: each line cut to maxStderrLine bytes, with
// configured secret values removed, at most stderrBurst lines per stderrWindow.
func (c *processConn) readStderr(r io.Reader) {
	br := bufio.NewReaderSize(r, 4096)
	var windowStart time.Time
	logged, suppressed := 0, 0
	for {
		line, tooLong, err := br.ReadLine()
		if len(line) > 0 || tooLong {
			text := scrub(string(line), c.spec.secrets)
			if len(text) > maxStderrLine {
				text = text[:maxStderrLine] + "…"
			}
			for tooLong { // drop the rest of an overlong line
				_, tooLong, err = br.ReadLine()
				if err != nil {
					break
				}
			}
			now := time.Now()
			if now.Sub(windowStart) > stderrWindow {
				if suppressed > 0 {
					c.spec.log.Warn("MCP server stderr lines suppressed", "server", c.spec.server, "lines", suppressed)
				}
				windowStart, logged, suppressed = now, 0, 0
			}
			if logged < stderrBurst {
				logged++
				c.spec.log.Info("MCP server stderr", "server", c.spec.server, "pid", c.pid(), "line", text)
			} else {
				suppressed++
			}
		}
		if err != nil {
			return
		}
	}
}

// scrub removes every secret value from s.
func scrub(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "[secret]")
		}
	}
	return s
}

func (c *processConn) done() <-chan struct{} { return c.doneCh }

func (c *processConn) cause() error {
	select {
	case <-c.doneCh:
		return c.exitErr
	default:
		return nil
	}
}

func (c *processConn) pid() int {
	if c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// close stops the server: stdin is closed (a well-behaved stdio server exits), then
// the process group gets SIGTERM, then SIGKILL.
func (c *processConn) close() {
	c.stopOnce.Do(func() { close(c.stop) })
	for _, step := range []struct {
		wait time.Duration
		sig  func()
	}{
		{stopGrace, func() { signalGroup(c.cmd, sigTerm) }},
		{stopTermGrace, func() { signalGroup(c.cmd, sigKill) }},
		{stopTermGrace, nil},
	} {
		t := time.NewTimer(step.wait)
		select {
		case <-c.doneCh:
			t.Stop()
			return
		case <-t.C:
		}
		select {
		case <-c.doneCh: // exited meanwhile: its process group id may not be ours any more
			return
		default:
		}
		if step.sig != nil {
			step.sig()
		}
	}
	c.spec.log.Error("MCP server process did not exit after SIGKILL", "server", c.spec.server, "pid", c.pid())
}
