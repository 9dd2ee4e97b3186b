package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-gateway/vigil/internal/auth"
	"github.com/vigil-gateway/vigil/internal/config"
)

const benchUsage = `Load-test the LLM gateway: start the fake provider and a Vigil (vigil serve) as
separate processes on loopback, then for each concurrency level drive chat
completions at the fake provider directly and through Vigil, and report throughput
and the latency Vigil adds at p50, p90 and p99, and Vigil's memory (RSS) over the run.

Vigil runs with the configuration it would serve with (--config, else a generated one
on a temporary data directory), plus a provider pointing at the fake: every request is
authenticated, masked, decided, recorded in the ledger (SQLite, fsync per commit) and
its response recorded, exactly as in production. After the load Vigil is stopped and
'vigil verify' checks the whole ledger it wrote.

The prompt carries an email address so the PII step has work to do; with
--unique-pii every request carries a different one, so every call also writes a new
tokenized value to the PII vault.`

// benchResult is one measured phase.
type benchResult struct {
	Target      string  `json:"target"`
	Concurrency int     `json:"concurrency"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	Seconds     float64 `json:"seconds"`
	RPS         float64 `json:"rps"`
	P50         float64 `json:"p50_ms"`
	P90         float64 `json:"p90_ms"`
	P99         float64 `json:"p99_ms"`
	// CPUPerCall is the CPU time (user + system) the Vigil process spent per call in
	// the measured phase, in microseconds: less disturbed by other work on the machine
	// than the latencies.
	CPUPerCall float64 `json:"vigil_cpu_us_per_call,omitempty"`
}

func runBench(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "bench", "[--concurrency 1,32] [--duration 10s] [--stream] [--config FILE]", benchUsage)
	levels := fs.String("concurrency", "1,32", "comma-separated `LIST` of concurrency levels")
	duration := fs.Duration("duration", 10*time.Second, "how long each phase runs")
	warmup := fs.Duration("warmup", 2*time.Second, "warm-up before each measured phase")
	skipDirect := fs.Bool("skip-direct", false, "don't measure the fake provider directly (soak runs)")
	stream := fs.Bool("stream", false, "request streamed answers (SSE)")
	cfgPath := fs.String("config", "", "Vigil configuration `FILE` to serve with (its providers are replaced by the fake)")
	dataDir := fs.String("data", "", "data `DIR` for Vigil (default: a temporary directory, removed afterwards)")
	jsonOut := fs.Bool("json", false, "print the results as JSON")
	rssEvery := fs.Duration("rss-every", time.Second, "how often Vigil's RSS is sampled")
	uniquePII := fs.Bool("unique-pii", false, "give every request a different email address (a new PII vault entry per call)")
	peer := fs.String("peer", "", "`NAME=URL` of another gateway to measure the same way (e.g. portkey=http://127.0.0.1:8788)")
	var peerHeaders headerFlags
	fs.Var(&peerHeaders, "peer-header", "`HEADER: VALUE` to send to the peer (repeatable); {fake} is replaced by the fake provider's URL")
	if err := parse(fs, env, args); err != nil {
		return err
	}
	peerName, peerURL, _ := strings.Cut(*peer, "=")
	if *peer != "" && (peerName == "" || !strings.HasPrefix(peerURL, "http")) {
		return errors.New("--peer must be NAME=http://HOST:PORT")
	}
	var conc []int
	for _, s := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 1024 {
			return fmt.Errorf("--concurrency: %q is not a number between 1 and 1024", s)
		}
		conc = append(conc, n)
	}
	if *duration <= 0 || *duration > time.Hour {
		return errors.New("--duration must be between 0 and 1h")
	}

	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("couldn't find the vigil binary: %w", err)
	}
	tmp, err := os.MkdirTemp("", "vigil-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	fake, fakeURL, err := startChild(ctx, self, []string{"fake-provider", "--listen", "127.0.0.1:0", "--keep", "-1"}, nil, "fake provider listening on ")
	if err != nil {
		return fmt.Errorf("couldn't start the fake provider: %w", err)
	}
	defer stopChild(fake)
	fakeURL = strings.TrimSuffix(fakeURL, "/v1")

	data := *dataDir
	if data == "" {
		data = filepath.Join(tmp, "data")
	}
	cfg := ""
	if *cfgPath != "" {
		b, err := os.ReadFile(*cfgPath)
		if err != nil {
			return fmt.Errorf("couldn't read config: %w", err)
		}
		cfg = stripProviders(string(b))
	}
	cfg += fmt.Sprintf("\nproviders:\n  - name: fake\n    type: openai\n    base_url: %s/v1\n    models: [\"*\"]\n", fakeURL)
	if !strings.Contains(cfg, "\nprices:") {
		cfg += "prices:\n  - {model: \"*\", input: 2.5, output: 10}\n"
	}
	cfgFile := filepath.Join(tmp, "vigil.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return err
	}
	admin := auth.NewSecret(auth.TokenPrefix)
	vigilProc, banner, err := startChild(ctx, self, []string{"serve", "--config", cfgFile, "--listen", "127.0.0.1:0", "--data", data},
		[]string{"VIGIL_ADMIN_TOKEN=" + admin}, "OpenAI-compatible:")
	if err != nil {
		return fmt.Errorf("couldn't start vigil: %w", err)
	}
	defer stopChild(vigilProc)
	vigilURL := strings.TrimSuffix(strings.TrimSpace(banner), "/v1")

	key, err := benchAgent(ctx, vigilURL, admin)
	if err != nil {
		return err
	}
	body := benchBody(*stream, *uniquePII)

	out := env.Stdout
	startLoad := loadAvg()
	if !*jsonOut {
		fmt.Fprintf(out, "vigil bench: %s, %d CPU, %s; %s per phase; stream=%v; unique PII=%v; load average %s\n", cpuModel(), runtime.NumCPU(), runtime.Version(), *duration, *stream, *uniquePII, startLoad)
		fmt.Fprintf(out, "%-7s %5s %9s %8s %8s %8s %8s %7s\n", "target", "conc", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors")
	}
	rss := &rssSampler{pid: vigilProc.Process.Pid}
	go rss.run(ctx, *rssEvery)
	measuring := func(on bool) { rss.mu.Lock(); rss.on = on; rss.mu.Unlock() }

	var results []benchResult
	for _, c := range conc {
		client := &http.Client{Transport: &http.Transport{MaxIdleConns: c, MaxIdleConnsPerHost: c, DisableCompression: true, IdleConnTimeout: time.Minute}}
		direct := benchResult{Target: "direct", Concurrency: c}
		if !*skipDirect {
			direct = load(ctx, client, fakeURL+"/v1/chat/completions", "Bearer x", body, c, *warmup, *duration)
			direct.Target = "direct"
		}
		var peerRes *benchResult
		if *peer != "" {
			h := http.Header{"Authorization": {"Bearer x"}}
			for _, ph := range peerHeaders {
				k, v, _ := strings.Cut(ph, ":")
				h.Set(strings.TrimSpace(k), strings.ReplaceAll(strings.TrimSpace(v), "{fake}", fakeURL))
			}
			pr := loadWith(ctx, client, strings.TrimSuffix(peerURL, "/")+"/v1/chat/completions", h, body, c, *warmup, *duration, nil)
			pr.Target = peerName
			peerRes = &pr
		}
		measuring(true)
		var cpuStart, cpuUsed time.Duration
		through := loadWith(ctx, client, vigilURL+"/v1/chat/completions", http.Header{"Authorization": {"Bearer " + key}}, body, c, *warmup, *duration,
			func(start bool) {
				t, ok := cpuTime(vigilProc.Process.Pid)
				switch {
				case !ok:
				case start:
					cpuStart = t
				default:
					cpuUsed = t - cpuStart
				}
			})
		measuring(false)
		if through.Requests > 0 && cpuUsed > 0 {
			through.CPUPerCall = float64(cpuUsed.Microseconds()) / float64(through.Requests)
		}
		through.Target = "vigil"
		rows := []benchResult{direct, through}
		if peerRes != nil {
			rows = []benchResult{direct, *peerRes, through}
		}
		for _, r := range rows {
			if r.Requests == 0 && r.Target == "direct" && *skipDirect {
				continue
			}
			results = append(results, r)
			if !*jsonOut {
				fmt.Fprintf(out, "%-7s %5d %9d %8.0f %8.3f %8.3f %8.3f %7d", r.Target, r.Concurrency, r.Requests, r.RPS, r.P50, r.P90, r.P99, r.Errors)
				if r.CPUPerCall > 0 {
					fmt.Fprintf(out, "   vigil CPU %.0f µs/call", r.CPUPerCall)
				}
				fmt.Fprintln(out)
			}
		}
		if !*jsonOut && !*skipDirect {
			for _, r := range rows[1:] {
				fmt.Fprintf(out, "  added by %s at concurrency %d: p50 %+.3f ms, p90 %+.3f ms, p99 %+.3f ms\n", r.Target, c, r.P50-direct.P50, r.P90-direct.P90, r.P99-direct.P99)
			}
		}
		client.CloseIdleConnections()
	}
	samples := rss.all()
	endLoad := loadAvg()
	// The ledger the load wrote must verify (issue 6: "vigil verify passes after the
	// load test"). Stop Vigil first: a clean shutdown publishes the last checkpoint.
	stopChild(vigilProc)
	verified, verifyOut := benchVerify(ctx, self, data, cfgFile)
	if !*jsonOut {
		fmt.Fprintf(out, "load average at the end: %s (other processes on this machine compete for its CPUs)\n", endLoad)
		fmt.Fprintf(out, "vigil verify after the load: %s\n", verifyOut)
	}
	if *jsonOut {
		if err := json.NewEncoder(out).Encode(map[string]any{"results": results, "rss_mib": samples, "cpu": cpuModel(), "cpus": runtime.NumCPU(), "go": runtime.Version(),
			"load_average_start": startLoad, "load_average_end": endLoad, "verified": verified, "verify": verifyOut}); err != nil {
			return err
		}
		if !verified {
			return errors.New("vigil verify failed after the load")
		}
		return nil
	}
	if len(samples) > 0 {
		n := len(samples)
		q := max(1, n/4)
		fmt.Fprintf(out, "vigil RSS under load: start %.1f MiB, max %.1f MiB, end %.1f MiB; mean of first quarter %.1f, last quarter %.1f (%d samples every %s)\n",
			samples[0], slices.Max(samples), samples[n-1], mean(samples[:q]), mean(samples[n-q:]), n, *rssEvery)
		if n <= 120 {
			fmt.Fprintf(out, "  samples (MiB):")
			for _, x := range samples {
				fmt.Fprintf(out, " %.0f", x)
			}
			fmt.Fprintln(out)
		}
	}
	if !verified {
		return errors.New("vigil verify failed after the load")
	}
	return nil
}

// benchBody is the chat completion the bench sends: a system and a user message with
// an email address. With unique, each call gets a body with a different address.
func benchBody(stream, unique bool) func() []byte {
	tail := map[bool]string{true: `,"stream":true}`, false: `}`}[stream]
	fixed := []byte(`{"model":"fake-gpt","messages":[{"role":"system","content":"You are a support agent."},{"role":"user","content":"Please email jane.doe@acme.example about order 1234 and confirm the refund."}]` + tail)
	if !unique {
		return func() []byte { return fixed }
	}
	var n atomic.Int64
	return func() []byte {
		return []byte(`{"model":"fake-gpt","messages":[{"role":"system","content":"You are a support agent."},{"role":"user","content":"Please email customer` +
			strconv.FormatInt(n.Add(1), 10) + `@acme.example about order 1234 and confirm the refund."}]` + tail)
	}
}

// benchVerify runs 'vigil verify' on the data directory Vigil used (and its database,
// when the configuration names PostgreSQL) and reports whether it passed, with its
// summary or failure.
func benchVerify(ctx context.Context, self, data, cfgFile string) (bool, string) {
	args := []string{"verify", "--data", data}
	if c, err := config.Load(cfgFile); err == nil {
		if dsn, err := c.DatabaseDSN(); err == nil && dsn != "" {
			args = append(args, "--database", dsn)
		}
	}
	outb, err := exec.CommandContext(ctx, self, args...).CombinedOutput()
	msg := strings.TrimSpace(string(outb))
	if err != nil {
		return false, "FAILED: " + msg + " (" + err.Error() + ")"
	}
	return true, "passed: " + msg
}

// stripProviders removes a providers: section from a YAML file (the bench supplies its
// own). It is line-based: the section runs until the next top-level key.
func stripProviders(cfg string) string {
	var b strings.Builder
	skip := false
	for _, line := range strings.SplitAfter(cfg, "\n") {
		top := len(line) > 0 && line[0] != ' ' && line[0] != '\t' && line[0] != '#' && strings.TrimSpace(line) != ""
		if top {
			skip = strings.HasPrefix(line, "providers:")
		}
		if !skip {
			b.WriteString(line)
		}
	}
	return b.String()
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// load sends body to url from c workers, first for warmup (not measured) and then for
// d, and returns the measured phase.
func load(ctx context.Context, client *http.Client, url, authz string, body func() []byte, c int, warmup, d time.Duration) benchResult {
	return loadWith(ctx, client, url, http.Header{"Authorization": {authz}}, body, c, warmup, d, nil)
}

// headerFlags collects repeated --peer-header flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

// loadWith is load with arbitrary request headers. measured, if set, is called just
// before the measured phase starts (true) and just after it ends (false).
func loadWith(ctx context.Context, client *http.Client, url string, header http.Header, body func() []byte, c int, warmup, d time.Duration, measured func(start bool)) benchResult {
	run := func(d time.Duration, record bool) ([]time.Duration, int, time.Duration) {
		var mu sync.Mutex
		var all []time.Duration
		var errs atomic.Int64
		start := time.Now()
		deadline := start.Add(d)
		var wg sync.WaitGroup
		for range c {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lat := make([]time.Duration, 0, 4096)
				for time.Now().Before(deadline) && ctx.Err() == nil {
					t0 := time.Now()
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body()))
					for k, v := range header {
						req.Header[k] = v
					}
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err == nil {
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							err = fmt.Errorf("status %d", resp.StatusCode)
						}
					}
					if err != nil {
						errs.Add(1)
						continue
					}
					if record {
						lat = append(lat, time.Since(t0))
					}
				}
				mu.Lock()
				all = append(all, lat...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		return all, int(errs.Load()), time.Since(start)
	}
	if warmup > 0 {
		run(warmup, false)
	}
	if measured != nil {
		measured(true)
	}
	lat, errs, took := run(d, true)
	if measured != nil {
		measured(false)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	return benchResult{Concurrency: c, Requests: len(lat), Errors: errs, Seconds: took.Seconds(),
		RPS: float64(len(lat)) / took.Seconds(), P50: pct(0.50), P90: pct(0.90), P99: pct(0.99)}
}

// startChild starts the vigil binary with args and waits for a stdout line holding
// marker; it returns the process and the rest of that line.
func startChild(ctx context.Context, self string, args, env []string, marker string) (*exec.Cmd, string, error) {
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = io.Discard
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), marker); ok {
				found <- strings.TrimSpace(rest)
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case s := <-found:
		return cmd, s, nil
	case <-time.After(30 * time.Second):
		stopChild(cmd)
		return nil, "", fmt.Errorf("%s did not start within 30s", args[0])
	}
}

func stopChild(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
	}
}

// benchAgent registers the bench's agent and returns its key.
func benchAgent(ctx context.Context, base, admin string) (string, error) {
	body := strings.NewReader(`{"name":"bench-agent","system":"bench"}`)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/agents", body)
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("couldn't create the bench agent: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		APIKey string `json:"api_key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.APIKey == "" {
		return "", fmt.Errorf("couldn't create the bench agent: status %d", resp.StatusCode)
	}
	return out.APIKey, nil
}

// rssSampler samples a process's resident set size from /proc while on is set (the
// phases that load Vigil).
type rssSampler struct {
	pid     int
	mu      sync.Mutex
	on      bool
	samples []float64
}

func (s *rssSampler) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if mib, ok := rssMiB(s.pid); ok {
			s.mu.Lock()
			if s.on {
				s.samples = append(s.samples, mib)
			}
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *rssSampler) all() []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.samples)
}

func rssMiB(pid int) (float64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024, err == nil
		}
	}
	return 0, false
}

// cpuTime is the CPU time (user + system) process pid has used so far.
func cpuTime(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces; fields after it follow ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond, true
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return runtime.GOARCH
}

// loadAvg is the 1-, 5- and 15-minute load average, to judge whether other work on
// the machine disturbed a run.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
