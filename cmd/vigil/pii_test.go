package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func runStdin(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code = Run(context.Background(), env, args)
	return code, out.String(), errb.String()
}

type cliFinding struct {
	Type       string `json:"type"`
	Value      string `json:"value"`
	Start, End int
}

func TestPIIScan(t *testing.T) {
	in := `{"messages":[{"role":"user","content":"mail a\u0040b.com"}]}`
	code, out, errs := runStdin(t, in, "pii", "scan")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got struct{ Findings []cliFinding }
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	want := []cliFinding{{Type: "EMAIL_ADDRESS", Value: "a@b.com", Start: 44, End: 56}}
	if diff := cmp.Diff(want, got.Findings); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if in[44:56] != `a\u0040b.com` {
		t.Errorf("offsets don't point at the raw value: %q", in[44:56])
	}
	if _, out, _ := runStdin(t, "nothing here", "pii", "scan"); strings.TrimSpace(out) != `{"findings":[]}` {
		t.Errorf("empty scan = %q", out)
	}
}

func TestPIIScanLines(t *testing.T) {
	in := `"call +44 20 7946 0958"` + "\n" + `"nothing"` + "\n" + `"{\"email\":\"x@y.org\"}"` + "\n"
	code, out, errs := runStdin(t, in, "pii", "scan", "--lines")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var types [][]string
	for _, l := range lines {
		var o struct{ Findings []cliFinding }
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		var ts []string
		for _, f := range o.Findings {
			ts = append(ts, f.Type+":"+f.Value)
		}
		types = append(types, ts)
	}
	want := [][]string{{"PHONE_NUMBER:+44 20 7946 0958"}, nil, {"EMAIL_ADDRESS:x@y.org"}}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("per-line findings (-want +got):\n%s", diff)
	}
	code, _, errs = runStdin(t, "\"ok\"\nnot json\n", "pii", "scan", "--lines")
	if code == 0 || !strings.Contains(errs, "line 2") {
		t.Errorf("bad line: exit %d, stderr %q; want an error naming line 2", code, errs)
	}
}

func TestPIIMask(t *testing.T) {
	for _, tc := range []struct {
		mode, in, want string
		code           int
	}{
		{"", "card 4111 1111 1111 1111", "card <CREDIT_CARD>", 0},
		{"mask", `{"to":"jane@ex.com"}`, `{"to":"****@ex.com"}`, 0},
		{"block", "card 4111 1111 1111 1111", "", 3},
		{"shred", "x", "", 1},
	} {
		args := []string{"pii", "mask"}
		if tc.mode != "" {
			args = append(args, "--mode", tc.mode)
		}
		code, out, errs := runStdin(t, tc.in, args...)
		if code != tc.code || out != tc.want {
			t.Errorf("mask --mode %q: exit %d, out %q (stderr %q); want %d, %q", tc.mode, code, out, errs, tc.code, tc.want)
		}
		if strings.Contains(errs, "4111") {
			t.Errorf("stderr leaks the value: %q", errs)
		}
	}
}

func TestPIIHelp(t *testing.T) {
	for _, args := range [][]string{{"pii", "--help"}, {"pii", "scan", "--help"}, {"pii", "mask", "--help"}, {"pii", "eval", "--help"}} {
		code, out, _ := runStdin(t, "", args...)
		if code != 0 || !strings.Contains(out, "Usage: vigil pii") {
			t.Errorf("%v: exit %d, output %q", args, code, out)
		}
	}
}
