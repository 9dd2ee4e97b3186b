package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vigil-gateway/vigil/internal/config"
	"github.com/vigil-gateway/vigil/internal/pii"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// maxPIIInput caps what vigil pii reads from stdin (and one --lines line).
const maxPIIInput = 64 << 20

const piiUsage = `Usage: vigil pii <command> [flags]

Detect and mask personal data and secrets, as the gateway does on every call.

Commands:
  scan   print the findings in a document (text or JSON) read on stdin
  mask   print the document read on stdin with its findings masked
  eval   measure accuracy on labelled data: vigil pii eval DIR (for developers)

Run "vigil pii <command> --help" for a command's flags.
`

func runPII(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, piiUsage)
		return errUsage
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		fmt.Fprint(env.Stdout, piiUsage)
		return nil
	case "scan":
		return runPIIScan(ctx, env, args[1:])
	case "mask":
		return runPIIMask(ctx, env, args[1:])
	case "eval":
		return runPIIEval(ctx, env, args[1:])
	}
	fmt.Fprintf(env.Stderr, "vigil pii: unknown command %q\n\n%s", args[0], piiUsage)
	return errUsage
}

// scanOutput is the contract of vigil pii scan: one object per document.
type scanOutput struct {
	Findings []vigil.Finding `json:"findings"`
}

func runPIIScan(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "pii scan", "[--lines] [--config FILE] < INPUT", `
Read a document (text, or JSON whose string values are scanned) on stdin and write
its findings as JSON: {"findings":[{"type","value","start","end","score",...}]},
where value is the decoded text found and start/end are byte offsets into the input.

With --lines, stdin is JSON Lines: each line is a JSON string holding one document,
and stdout has one findings object per line, in the same order; offsets are into
the decoded document.`)
	lines := fs.Bool("lines", false, "read JSON Lines, one JSON string (a document) per line")
	cfgPath := fs.String("config", "", "use the pii: section of this vigil.yaml")
	if err := parse(fs, env, args); err != nil {
		return err
	}
	e, err := piiEngine(env, *cfgPath, "")
	if err != nil {
		return err
	}
	out := bufio.NewWriter(env.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	emit := func(doc []byte) error {
		fs := e.Scan(doc)
		if fs == nil {
			fs = []vigil.Finding{}
		}
		return enc.Encode(scanOutput{Findings: fs})
	}
	if !*lines {
		doc, err := readInput(env.Stdin)
		if err != nil {
			return err
		}
		return emit(doc)
	}
	sc := bufio.NewScanner(env.Stdin)
	sc.Buffer(make([]byte, 0, 64<<10), maxPIIInput)
	n := 0
	for sc.Scan() {
		n++
		var doc string
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			return fmt.Errorf("line %d: not a JSON string holding a document: %w", n, err)
		}
		if err := emit([]byte(doc)); err != nil {
			return fmt.Errorf("couldn't write the findings of line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: couldn't read: %w", n+1, err)
	}
	return nil
}

func runPIIMask(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "pii mask", "[--mode MODE] [--config FILE] < INPUT", `
Read a document (text or JSON) on stdin and write it with its personal data and
secrets masked. JSON keeps its structure; only the values found change.

Modes: redact (<EMAIL_ADDRESS>), mask (****1111), hash (<EMAIL_ADDRESS_3f9a1c0b>,
keyed by $VIGIL_PII_HASH_KEY, at least 16 bytes, or by a random key for this run),
tokenize (tokens that this run alone could restore: nothing is stored) and block
(exit status 3 when anything is found). Without --mode: the config's mode, else redact.`)
	mode := fs.String("mode", "", "redact, mask, hash, tokenize or block (default: the config's mode, else redact)")
	cfgPath := fs.String("config", "", "use the pii: section of this vigil.yaml")
	if err := parse(fs, env, args); err != nil {
		return err
	}
	e, err := piiEngine(env, *cfgPath, *mode)
	if err != nil {
		return err
	}
	doc, err := readInput(env.Stdin)
	if err != nil {
		return err
	}
	m, err := e.Mask(ctx, pii.Scope{AgentID: "cli", SessionID: "cli"}, doc)
	if errors.Is(err, pii.ErrBlocked) {
		return &exitError{code: 3, msg: "vigil pii mask: " + vigil.ErrorMessage(err)}
	}
	if err != nil {
		return err
	}
	_, err = env.Stdout.Write(m.Data)
	return err
}

func readInput(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxPIIInput+1))
	if err != nil {
		return nil, fmt.Errorf("couldn't read stdin: %w", err)
	}
	if len(b) > maxPIIInput {
		return nil, fmt.Errorf("stdin is over %d MiB", maxPIIInput>>20)
	}
	return b, nil
}

// piiEngine builds the engine for the CLI from a config file's pii: section (or the
// defaults) and an optional --mode.
func piiEngine(env *Env, cfgPath, mode string) (*pii.Engine, error) {
	cfg := config.Default()
	if cfgPath != "" {
		var err error
		if cfg, err = config.Load(cfgPath); err != nil {
			return nil, err
		}
	}
	if mode != "" {
		if _, err := pii.ParseOperator(mode); err != nil {
			return nil, fmt.Errorf("--mode: %w", err)
		}
		cfg.PII.Mode = mode
	}
	opts := piiOptions(cfg.PII)
	if key := env.Getenv("VIGIL_PII_HASH_KEY"); key != "" {
		opts.HashKey = []byte(key)
	} else {
		opts.HashKey = randomKey()
	}
	opts.VaultKey = randomKey()
	opts.Vault = &memVault{}
	e, err := pii.New(opts)
	if err != nil {
		return nil, fmt.Errorf("couldn't set up PII masking: %w", err)
	}
	return e, nil
}

// piiOptions copies the pii: section into the engine's options. Keys (HashKey,
// VaultKey) and the Vault are the caller's to add. Mode off maps to redact here:
// the caller decides not to scan at all.
func piiOptions(c config.PIIConfig) pii.Options {
	o := pii.Options{
		Threshold:    c.Threshold,
		AllowValues:  c.Allow.Values,
		PhoneRegions: c.PhoneRegions,
		VaultTTL:     c.VaultTTL,
		MaxNesting:   c.JSONDepth,
	}
	if c.Allow.Patterns != nil {
		o.AllowPatterns = c.Allow.Patterns
	}
	if c.Mode != "" && c.Mode != "off" {
		o.Operator = pii.Operator(c.Mode)
	}
	for _, cr := range c.Custom {
		o.Custom = append(o.Custom, pii.CustomRecognizer{Name: cr.Name, Pattern: cr.Pattern, Validator: cr.Validator, Context: cr.Context, Score: cr.Score})
		if cr.Operator != "" {
			if o.Operators == nil {
				o.Operators = map[string]pii.Operator{}
			}
			o.Operators[cr.Name] = pii.Operator(cr.Operator)
		}
	}
	for name, ec := range c.Entities {
		if ec.Enabled != nil {
			if o.Entities == nil {
				o.Entities = map[string]bool{}
			}
			o.Entities[name] = *ec.Enabled
		}
		if ec.Operator != "" {
			if o.Operators == nil {
				o.Operators = map[string]pii.Operator{}
			}
			o.Operators[name] = pii.Operator(ec.Operator)
		}
		if ec.Threshold != 0 {
			if o.Thresholds == nil {
				o.Thresholds = map[string]float64{}
			}
			o.Thresholds[name] = ec.Threshold
		}
	}
	return o
}

func randomKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("crypto/rand failed: " + err.Error()) // unreachable on supported platforms
	}
	return k
}

// memVault is an in-memory pii.Vault for the CLI, whose tokens live as long as the
// process.
type memVault struct {
	mu sync.Mutex
	m  map[string]pii.VaultEntry
}

var _ pii.Vault = (*memVault)(nil)

func (v *memVault) Put(_ context.Context, entries ...pii.VaultEntry) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = map[string]pii.VaultEntry{}
	}
	for _, e := range entries {
		k := e.AgentID + "\x00" + e.SessionID + "\x00" + e.ID
		if old, ok := v.m[k]; ok && old.ExpiresAt.After(e.ExpiresAt) {
			e.ExpiresAt = old.ExpiresAt
		}
		e.Ciphertext = bytes.Clone(e.Ciphertext)
		v.m[k] = e
	}
	return nil
}

func (v *memVault) Get(_ context.Context, agentID, sessionID, id string, now time.Time) (pii.VaultEntry, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.m[agentID+"\x00"+sessionID+"\x00"+id]
	if !ok || !e.ExpiresAt.After(now) {
		return pii.VaultEntry{}, vigil.NotFound("no PII vault entry %q", id)
	}
	return e, nil
}

func (v *memVault) Purge(_ context.Context, now time.Time) (int64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var n int64
	for k, e := range v.m {
		if !e.ExpiresAt.After(now) {
			delete(v.m, k)
			n++
		}
	}
	return n, nil
}
