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
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

// apiCommand describes one admin command (agents, systems, tokens, users, approvals,
// mcp, records, halt, resume-all): its help, flags and arguments, the one request it
// makes of the admin API and how it shows the answer. The admin commands act on a
// running gateway, so every replica sees a change at once and the ledger records it.
//
// run gives every one the same behaviour: --server (default from VIGIL_URL) and
// --json; a wrong command line says why on stderr and exits 2 before VIGIL_TOKEN is
// looked at; with --json the answer is printed as the API sent it, indented; API and
// network errors exit 1.
type apiCommand struct {
	// name is the command as typed after "vigil", e.g. "agents create".
	name string
	// brief is the line that lists the command in its noun's --help (top-level
	// commands have theirs in commands()).
	brief string
	// usage is the synopsis after the name; help is the text --help prints under it.
	usage, help string
	// flags registers the command's own flags; run adds --server and --json.
	flags func(fs *flag.FlagSet)
	// args, when set, is how many positional arguments the command takes.
	args *positional
	// check, when set, validates the command line before the token is read, so a
	// mistake is reported without one (in.complain says what is wrong). Returning
	// errDone ends the command successfully without calling the API.
	check func(in *invocation) error
	// request makes the API request. It runs once the token is known, so it may ask
	// for a password or ask the API something first.
	request func(in *invocation) (apiRequest, error)
	// show prints the answer for people; nil prints it as JSON. --json prints the
	// JSON instead, unless showAlways: the commands that set it have always printed
	// their line whatever --json says.
	show       func(w io.Writer, args []string, raw json.RawMessage) error
	showAlways bool
}

// apiRequest is one call of the admin API.
type apiRequest struct {
	method, path string
	// body is sent as JSON; nil sends none.
	body any
	// verbatim copies the answer to stdout as it comes (CSV): show and --json don't
	// apply, and an error answer is reported undecoded.
	verbatim bool
}

// invocation is one run of an apiCommand, as check and request see it.
type invocation struct {
	ctx  context.Context
	env  *Env
	fs   *flag.FlagSet
	args []string
	// client is nil in check.
	client *apiClient
}

// complain prints "vigil NOUN VERB: " and the message on stderr and returns errUsage.
func (in *invocation) complain(format string, a ...any) error {
	fmt.Fprintf(in.env.Stderr, "%s: %s\n", in.fs.Name(), fmt.Sprintf(format, a...))
	return errUsage
}

// apiHelp ends every admin command's --help: where it connects and with what.
const apiHelp = "Talks to the gateway's admin API at --server (env VIGIL_URL) with the token in VIGIL_TOKEN."

// errDone ends an apiCommand from its check without calling the API.
var errDone = errors.New("done without the API")

func (cmd apiCommand) run(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, cmd.name, cmd.usage, cmd.help+"\n"+apiHelp)
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	server := env.Getenv("VIGIL_URL")
	if server == "" {
		server = "http://127.0.0.1:8080"
	}
	fs.StringVar(&server, "server", server, "`URL` of the Vigil gateway (env VIGIL_URL)")
	asJSON := fs.Bool("json", false, "print the raw JSON response")
	if err := parse(fs, env, args); err != nil {
		return err
	}
	if cmd.args != nil {
		if err := cmd.args.check(fs, env); err != nil {
			return err
		}
	}
	in := &invocation{ctx: ctx, env: env, fs: fs, args: fs.Args()}
	if cmd.check != nil {
		err := cmd.check(in)
		if errors.Is(err, errDone) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	c, err := newAPIClient(env, server)
	if err != nil {
		return err
	}
	in.client = c
	req, err := cmd.request(in)
	if err != nil {
		return err
	}
	if req.verbatim {
		return c.doRaw(ctx, req.path, env.Stdout)
	}
	var raw json.RawMessage
	if err := c.do(ctx, req.method, req.path, req.body, &raw); err != nil {
		return err
	}
	if cmd.show == nil || *asJSON && !cmd.showAlways {
		return printJSON(env.Stdout, raw)
	}
	return cmd.show(env.Stdout, in.args, raw)
}

// decoded makes a show function of a printer of the answer decoded as T.
func decoded[T any](printAnswer func(w io.Writer, args []string, answer T)) func(io.Writer, []string, json.RawMessage) error {
	return func(w io.Writer, args []string, raw json.RawMessage) error {
		var answer T
		if err := json.Unmarshal(raw, &answer); err != nil {
			return err
		}
		printAnswer(w, args, answer)
		return nil
	}
}

// dispatchAPI runs "vigil NOUN VERB args" with the command of cmds named "NOUN VERB".
func dispatchAPI(ctx context.Context, env *Env, noun, summary string, args []string, cmds ...apiCommand) error {
	verbs := make([]verb, len(cmds))
	for i, c := range cmds {
		verbs[i] = verb{strings.TrimPrefix(c.name, noun+" "), c.brief, c.run}
	}
	return dispatchVerbs(ctx, env, noun, summary, verbs, args)
}

// positional is how many positional arguments a command takes and what it says when
// given another number: "vigil NOUN VERB: want <want>" and the usage, or the usage
// alone when want is empty.
type positional struct {
	n    int
	want string
}

// one is the rule for commands that act on exactly one thing.
func one(what string) *positional { return &positional{1, "exactly one " + what} }

// check returns errUsage, having said why on stderr, unless fs has p.n arguments.
func (p positional) check(fs *flag.FlagSet, env *Env) error {
	if fs.NArg() == p.n {
		return nil
	}
	if p.want != "" {
		fmt.Fprintf(env.Stderr, "%s: want %s\n", fs.Name(), p.want)
	}
	fs.Usage()
	return errUsage
}

// oneArg checks that exactly one positional argument was given.
func oneArg(fs *flag.FlagSet, env *Env, what string) (string, error) {
	if err := one(what).check(fs, env); err != nil {
		return "", err
	}
	return fs.Arg(0), nil
}

// apiClient is the CLI's client for the admin API.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// newAPIClient returns a client of the gateway at server with the token in
// VIGIL_TOKEN, or an error saying where to get one.
func newAPIClient(env *Env, server string) (*apiClient, error) {
	tok := env.Getenv("VIGIL_TOKEN")
	if tok == "" {
		return nil, errors.New("set VIGIL_TOKEN to an admin or role token (the one `vigil serve` printed at first start, or one from `vigil tokens create`)")
	}
	return &apiClient{base: strings.TrimRight(server, "/"), token: tok, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// apiError is an error answer from the API.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.Status, e.Code) }

// apiPath joins segments under /api/, escaping each: apiPath("agents", name, "keys").
func apiPath(segments ...string) string {
	escaped := make([]string, len(segments))
	for i, s := range segments {
		escaped[i] = url.PathEscape(s)
	}
	return "/api/" + strings.Join(escaped, "/")
}

// send sends a request with an optional JSON body and returns the answer, whatever
// its status; the caller closes its body.
func (c *apiClient) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("couldn't reach Vigil at %s: %w", c.base, err)
	}
	return resp, nil
}

// do sends a request with an optional JSON body and decodes a JSON answer into out
// (a *json.RawMessage takes it undecoded). An error answer becomes an *apiError.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
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

// doRaw GETs path and copies the answer body to w (for non-JSON answers such as CSV).
// An error answer is reported as its text, undecoded.
func (c *apiClient) doRaw(ctx context.Context, path string, w io.Writer) error {
	resp, err := c.send(ctx, "GET", path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return &apiError{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(b))}
	}
	_, err = io.Copy(w, resp.Body)
	return err
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

// verb is one subcommand of "vigil NOUN".
type verb struct {
	name, summary string
	run           func(ctx context.Context, env *Env, args []string) error
}

// dispatchVerbs runs "vigil NOUN VERB args" with verbs, and answers "vigil NOUN",
// "--help" and unknown verbs with the list of verbs.
func dispatchVerbs(ctx context.Context, env *Env, noun, summary string, verbs []verb, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help" {
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
