package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
)

// apiClient is the CLI's client for the admin API: the admin commands act on a running
// gateway (so every replica sees the change at once and it is recorded in the ledger).
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// clientFlags adds --server and --json to fs and returns a function that builds the
// client after parsing.
func clientFlags(fs *flag.FlagSet, env *Env) (func() (*apiClient, error), *bool) {
	def := env.Getenv("VIGIL_URL")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	server := fs.String("server", def, "`URL` of the Vigil gateway (env VIGIL_URL)")
	asJSON := fs.Bool("json", false, "print the raw JSON response")
	return func() (*apiClient, error) {
		tok := env.Getenv("VIGIL_TOKEN")
		if tok == "" {
			return nil, errors.New("set VIGIL_TOKEN to an admin or role token (the one `vigil serve` printed at first start, or one from `vigil tokens create`)")
		}
		return &apiClient{base: strings.TrimRight(*server, "/"), token: tok, http: &http.Client{Timeout: 60 * time.Second}}, nil
	}, asJSON
}

// apiError is an error answer from the API.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.Status, e.Code) }

// do sends a request with an optional JSON body and decodes a JSON answer into out.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("couldn't reach Vigil at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("couldn't read the answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Message != "" {
			return &apiError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return &apiError{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(raw))}
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if p, ok := out.(*json.RawMessage); ok {
		*p = raw
		return nil
	}
	return json.Unmarshal(raw, out)
}

// printJSON pretty-prints raw JSON.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		_, err = w.Write(raw)
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// table prints rows under a header, aligned.
func table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// subcommand dispatches "vigil NOUN VERB args" to verbs.
type verb struct {
	name, summary string
	run           func(ctx context.Context, env *Env, args []string) error
}

func dispatchVerbs(ctx context.Context, env *Env, noun, summary string, verbs []verb, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		w := env.Stdout
		if len(args) == 0 {
			w = env.Stderr
		}
		fmt.Fprintf(w, "Usage: vigil %s <command> [flags]\n\n%s\n\nCommands:\n", noun, summary)
		for _, v := range verbs {
			fmt.Fprintf(w, "  %-12s %s\n", v.name, v.summary)
		}
		fmt.Fprintf(w, "\nRun \"vigil %s <command> --help\" for its flags.\n", noun)
		if len(args) == 0 {
			return errUsage
		}
		return flag.ErrHelp
	}
	for _, v := range verbs {
		if v.name == args[0] {
			return v.run(ctx, env, args[1:])
		}
	}
	fmt.Fprintf(env.Stderr, "vigil %s: unknown command %q (see vigil %s --help)\n", noun, args[0], noun)
	return errUsage
}

// oneArg checks that exactly one positional argument was given.
func oneArg(fs *flag.FlagSet, env *Env, what string) (string, error) {
	if fs.NArg() != 1 {
		fmt.Fprintf(env.Stderr, "%s: want exactly one %s\n", fs.Name(), what)
		fs.Usage()
		return "", errUsage
	}
	return fs.Arg(0), nil
}
