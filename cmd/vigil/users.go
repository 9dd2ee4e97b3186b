package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"golang.org/x/term"
)

func runUsers(ctx context.Context, env *Env, args []string) error {
	return dispatchVerbs(ctx, env, "users", "Manage the people who sign in to the console (needs an admin VIGIL_TOKEN).", []verb{
		{"add", "add a user with roles and a password", usersAdd},
		{"list", "list users", usersList},
		{"disable", "stop a user signing in and end their sessions", usersDisabled(true)},
		{"enable", "let a disabled user sign in again", usersDisabled(false)},
		{"passwd", "set a user's password (ends their sessions)", usersPasswd},
	}, args)
}

// roleFlag collects repeated --role flags.
type roleFlag []string

func (r *roleFlag) String() string { return strings.Join(*r, ",") }

func (r *roleFlag) Set(s string) error {
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*r = append(*r, x)
		}
	}
	return nil
}

// readPassword reads a password from stdin: the first line when fromStdin (for
// scripts: printf '%s\n' "$PW" | vigil users add …), else by prompting twice
// without echo on a terminal.
func readPassword(env *Env, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(env.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("couldn't read the password from stdin: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	f, ok := env.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("stdin is not a terminal: pass the password on stdin with --password-stdin")
	}
	fmt.Fprint(env.Stderr, "Password: ")
	p1, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(env.Stderr)
	if err != nil {
		return "", err
	}
	fmt.Fprint(env.Stderr, "Again: ")
	p2, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(env.Stderr)
	if err != nil {
		return "", err
	}
	if string(p1) != string(p2) {
		return "", errors.New("the passwords differ")
	}
	return string(p1), nil
}

type userOut struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Roles    []string `json:"roles"`
	Disabled bool     `json:"disabled"`
}

func usersAdd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "users add", "--role ROLE [--role ROLE]... [--password-stdin] NAME",
		"Add a person who signs in to the console. Roles: admin, reviewer (decide approvals, use the kill switch),\nauditor (read everything), viewer (read-only). The password is asked for twice, or read from stdin;\nit is stored as an argon2id hash.")
	var roles roleFlag
	fs.Var(&roles, "role", "a `ROLE` to grant (repeatable; required)")
	stdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	name, err := oneArg(fs, env, "user name")
	if err != nil {
		return err
	}
	if len(roles) == 0 {
		fmt.Fprintln(env.Stderr, "vigil users add: --role is required (e.g. --role reviewer)")
		return errUsage
	}
	c, err := client()
	if err != nil {
		return err
	}
	password, err := readPassword(env, *stdin)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, "POST", "/api/users", map[string]any{"name": name, "roles": roles, "password": password}, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, raw)
	}
	var u userOut
	if err := json.Unmarshal(raw, &u); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Added user %s (%s). They can sign in to the console now.\n", u.Name, strings.Join(u.Roles, ", "))
	return nil
}

func usersList(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "users list", "", "List the console's users and their roles.")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, "GET", "/api/users", nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, raw)
	}
	var out struct{ Users []userOut }
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := [][]string{}
	for _, u := range out.Users {
		state := "active"
		if u.Disabled {
			state = "disabled"
		}
		rows = append(rows, []string{u.Name, strings.Join(u.Roles, ","), state, u.ID})
	}
	table(env.Stdout, []string{"NAME", "ROLES", "STATE", "ID"}, rows)
	return nil
}

func usersDisabled(disable bool) func(ctx context.Context, env *Env, args []string) error {
	action, summary := "enable", "Let a disabled user sign in again."
	if disable {
		action, summary = "disable", "Stop a user signing in and end their sessions at once. Users are never deleted: the ledger names them."
	}
	return func(ctx context.Context, env *Env, args []string) error {
		fs := newFlags(env, "users "+action, "NAME|ID", summary)
		client, _ := clientFlags(fs, env)
		if err := parse(fs, env, args); err != nil {
			return err
		}
		name, err := oneArg(fs, env, "user name or id")
		if err != nil {
			return err
		}
		c, err := client()
		if err != nil {
			return err
		}
		var u userOut
		if err := c.do(ctx, "POST", "/api/users/"+url.PathEscape(name)+"/"+action, nil, &u); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "User %s is %sd.\n", u.Name, action)
		return nil
	}
}

func usersPasswd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "users passwd", "[--password-stdin] NAME|ID", "Set a user's password. Their sessions end at once.")
	stdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	client, _ := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	name, err := oneArg(fs, env, "user name or id")
	if err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	password, err := readPassword(env, *stdin)
	if err != nil {
		return err
	}
	var u userOut
	if err := c.do(ctx, "PATCH", "/api/users/"+url.PathEscape(name), map[string]any{"password": password}, &u); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Password of %s changed; their sessions have ended.\n", u.Name)
	return nil
}
