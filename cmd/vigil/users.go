package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

func runUsers(ctx context.Context, env *Env, args []string) error {
	return dispatchAPI(ctx, env, "users", "Manage the people who sign in to the console, through the admin API (needs an admin VIGIL_TOKEN).", args,
		usersAdd(), usersList(), usersDisable(), usersEnable(), usersPasswd())
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

func usersAdd() apiCommand {
	var roles roleFlag
	var stdin bool
	return apiCommand{
		name:  "users add",
		brief: "add a user with roles and a password",
		usage: "--role ROLE [--role ROLE]... [--password-stdin] NAME",
		help:  "Add a person who signs in to the console. Roles: admin, reviewer (decide approvals, use the kill switch),\nauditor (read everything), viewer (read-only). The password is asked for twice, or read from stdin;\nit is stored as an argon2id hash.",
		flags: func(fs *flag.FlagSet) {
			fs.Var(&roles, "role", "a `ROLE` to grant (repeatable; required)")
			fs.BoolVar(&stdin, "password-stdin", false, "read the password from the first line of stdin")
		},
		args: one("user name"),
		check: func(in *invocation) error {
			if len(roles) == 0 {
				return in.complain("--role is required (e.g. --role reviewer)")
			}
			return nil
		},
		request: func(in *invocation) (apiRequest, error) {
			password, err := readPassword(in.env, stdin)
			if err != nil {
				return apiRequest{}, err
			}
			return apiRequest{method: "POST", path: apiPath("users"), body: map[string]any{"name": in.args[0], "roles": roles, "password": password}}, nil
		},
		show: decoded(func(w io.Writer, _ []string, u userOut) {
			fmt.Fprintf(w, "Added user %s (%s). They can sign in to the console now.\n", u.Name, strings.Join(u.Roles, ", "))
		}),
	}
}

func usersList() apiCommand {
	return apiCommand{
		name:  "users list",
		brief: "list users",
		help:  "List the console's users and their roles.",
		request: func(*invocation) (apiRequest, error) {
			return apiRequest{method: "GET", path: apiPath("users")}, nil
		},
		show: decoded(func(w io.Writer, _ []string, out struct{ Users []userOut }) {
			rows := [][]string{}
			for _, u := range out.Users {
				state := "active"
				if u.Disabled {
					state = "disabled"
				}
				rows = append(rows, []string{u.Name, strings.Join(u.Roles, ","), state, u.ID})
			}
			table(w, []string{"NAME", "ROLES", "STATE", "ID"}, rows)
		}),
	}
}

func usersDisable() apiCommand {
	return apiCommand{
		name:  "users disable",
		brief: "stop a user signing in and end their sessions",
		usage: "NAME|ID",
		help:  "Stop a user signing in and end their sessions at once. Users are never deleted: the ledger names them.",
		args:  one("user name or id"),
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "POST", path: apiPath("users", in.args[0], "disable")}, nil
		},
		show: decoded(func(w io.Writer, _ []string, u userOut) {
			fmt.Fprintf(w, "User %s is disabled.\n", u.Name)
		}),
		showAlways: true,
	}
}

func usersEnable() apiCommand {
	return apiCommand{
		name:  "users enable",
		brief: "let a disabled user sign in again",
		usage: "NAME|ID",
		help:  "Let a disabled user sign in again.",
		args:  one("user name or id"),
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "POST", path: apiPath("users", in.args[0], "enable")}, nil
		},
		show: decoded(func(w io.Writer, _ []string, u userOut) {
			fmt.Fprintf(w, "User %s is enabled.\n", u.Name)
		}),
		showAlways: true,
	}
}

func usersPasswd() apiCommand {
	var stdin bool
	return apiCommand{
		name:  "users passwd",
		brief: "set a user's password (ends their sessions)",
		usage: "[--password-stdin] NAME|ID",
		help:  "Set a user's password. Their sessions end at once.",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&stdin, "password-stdin", false, "read the password from the first line of stdin")
		},
		args: one("user name or id"),
		request: func(in *invocation) (apiRequest, error) {
			password, err := readPassword(in.env, stdin)
			if err != nil {
				return apiRequest{}, err
			}
			return apiRequest{method: "PATCH", path: apiPath("users", in.args[0]), body: map[string]any{"password": password}}, nil
		},
		show: decoded(func(w io.Writer, _ []string, u userOut) {
			fmt.Fprintf(w, "Password of %s changed; their sessions have ended.\n", u.Name)
		}),
		showAlways: true,
	}
}
