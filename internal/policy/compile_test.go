package policy_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-gateway/vigil/internal/policy"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// problem is what a test expects of one policy.Problem: its position and rule exactly,
// and a substring of its message.
type problem struct {
	Line, Column int
	Rule         string
	Msg          string
}

func compileProblems(t *testing.T, src string) []policy.Problem {
	t.Helper()
	p, err := policy.Compile("p.yaml", []byte(src))
	if err == nil {
		t.Fatalf("Compile succeeded (%s), want problems", p)
	}
	var ce *policy.CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("Compile error %v is a %T, want *policy.CompileError", err, err)
	}
	for _, pr := range ce.Problems {
		if pr.File != "p.yaml" {
			t.Errorf("problem %v names file %q, want p.yaml", pr, pr.File)
		}
	}
	return ce.Problems
}

func TestCompileProblems(t *testing.T) {
	const head = "version: 1\ndefault: allow\nrules:\n"
	tests := []struct {
		name string
		src  string
		want []problem
	}{
		{"empty file", "", []problem{{1, 0, "", "empty"}}},
		{"not YAML", head + "  - id: x\n   effect: deny\n", []problem{{3, 0, "", "not valid YAML"}}},
		{"two documents", head + "---\nversion: 1\n", []problem{{4, 0, "", "more than one YAML document"}}},
		{"unknown top-level key", "version: 1\ndefault: allow\nrulez: []\n", []problem{{3, 1, "", `unknown field "rulez"`}}},
		{"version and default required", "rules: []\n", []problem{
			{1, 1, "", "version is required"},
			{1, 1, "", "default is required"},
		}},
		{"unsupported version", "version: 2\ndefault: deny\n", []problem{{1, 10, "", "version 2 is not supported"}}},
		{"bad default", "version: 1\ndefault: maybe\n", []problem{{2, 10, "", `default "maybe" is not one of allow, deny, require_approval`}}},
		{"rule needs id and effect", head + "  - when: true\n", []problem{
			{4, 5, "rules[0]", "id is required"},
			{4, 5, "rules[0]", "effect is required"},
		}},
		{"bad id", head + "  - id: 'no spaces'\n    effect: deny\n", []problem{{4, 9, "rules[0]", "must be letters, digits"}}},
		{"duplicate id", head + "  - id: a\n    effect: deny\n  - id: a\n    effect: allow\n", []problem{{6, 9, "", `id "a" is already used on line 4`}}},
		{"unknown rule key", head + "  - id: a\n    efect: deny\n", []problem{
			{5, 5, "a", `unknown field "efect"`},
			{4, 5, "a", "effect is required"},
		}},
		{"unknown variable", head + "  - id: a\n    when: foo == 1\n    effect: deny\n", []problem{{5, 11, "a", "undeclared reference to 'foo'"}}},
		{"misspelled annotation", head + "  - id: a\n    when: tool.annotations.destructivehint\n    effect: deny\n", []problem{{5, 27, "a", "undefined field 'destructivehint'"}}},
		{"misspelled field in a quoted condition", head + "  - id: a\n    when: \"agent.nme == 'x'\"\n    effect: deny\n", []problem{{5, 17, "a", "undefined field 'nme'"}}},
		{"type error", head + "  - id: a\n    when: tool.name > 3\n    effect: deny\n", []problem{{5, 21, "a", "no matching overload"}}},
		{"position inside a literal block", head + "  - id: a\n    when: |\n      action.kind == \"tool_call\" &&\n        usage.calls.minit > 3\n    effect: deny\n", []problem{{7, 20, "a", "undefined field 'minit'"}}},
		{"condition must be boolean", head + "  - id: a\n    when: tool.name\n    effect: deny\n", []problem{{5, 11, "a", "when must be true or false"}}},
		{"unknown action kind", head + "  - id: a\n    when: action.kind == \"toolcall\"\n    effect: deny\n", []problem{{5, 26, "a", `"toolcall" is not an action kind`}}},
		{"unknown action kind in a list", head + "  - id: a\n    when: action.kind in [\"tool_call\", \"prompt\"]\n    effect: deny\n", []problem{{5, 40, "a", `"prompt" is not an action kind`}}},
		{"kinds that exclude each other", head + "  - id: a\n    match: {kinds: [model_call]}\n    when: action.kind == \"tool_call\"\n    effect: deny\n", []problem{{6, 11, "a", "can never match"}}},
		{"empty condition", head + "  - id: a\n    when: ''\n    effect: deny\n", []problem{{5, 11, "a", "when is empty"}}},
		{"approval on a deny rule", head + "  - id: a\n    effect: deny\n    approval: {approvers: 1}\n", []problem{{6, 15, "a", "approval is only for rules whose effect is require_approval"}}},
		{"bad approval", head + "  - id: a\n    effect: require_approval\n    approval: {roles: [boss], approvers: 0, timeout: soon}\n", []problem{
			{6, 24, "a", `"boss" is not a role`},
			{6, 23, "a", "approval.roles must name at least one role"},
			{6, 42, "a", "approvers must be between 1 and 10"},
			{6, 54, "a", "must be a duration"},
		}},
		{"approval timeout too long", head + "  - id: a\n    effect: require_approval\n    approval: {timeout: 200h}\n", []problem{{6, 25, "a", "at most 168h0m0s"}}},
		{"bad on_error", head + "  - id: a\n    effect: deny\n    on_error: ignore\n", []problem{{6, 15, "a", `on_error "ignore" is not skip or deny`}}},
		{"bad scope", head + "  - id: a\n    match: {kinds: [tool], tools: ['pay/', ''], teams: [x]}\n    effect: deny\n", []problem{
			{5, 49, "a", `unknown field "teams"`},
			{5, 36, "a", `"pay/" must be server/tool or tool`},
			{5, 44, "a", "an empty pattern matches nothing"},
			{5, 21, "a", `"tool" is not an action kind`},
		}},
		{"text where text is expected", head + "  - id: a\n    effect: deny\n    message: true\n", []problem{{6, 14, "a", "must be text"}}},
		{"limit problems", "version: 1\ndefault: allow\nlimits:\n" +
			"  - id: l1\n    match: {tools: [x]}\n    per: team\n    calls_per_minute: -1\n    cost_per_day: lots\n" +
			"  - id: l2\n    calls_per_fortnight: 3\n" +
			"  - id: l3\n", []problem{
			{5, 13, "l1", `unknown field "tools"`},
			{6, 10, "l1", `per "team" is not agent or system`},
			{7, 23, "l1", "must not be negative"},
			{8, 19, "l1", "must be a number"},
			{10, 5, "l2", `unknown field "calls_per_fortnight"`},
			{9, 5, "l2", "needs at least one maximum"},
			{11, 5, "l3", "needs at least one maximum"},
		}},
		{"limit and rule ids share one space", head + "  - id: a\n    effect: deny\nlimits:\n  - id: a\n    calls_per_minute: 1\n", []problem{{7, 9, "", `id "a" is already used on line 4`}}},
		{"every problem is reported", head +
			"  - id: a\n    when: nope\n    effect: deny\n" +
			"  - id: b\n    when: tool.nam == 'x'\n    effect: never\n", []problem{
			{5, 11, "a", "undeclared reference to 'nope'"},
			{9, 13, "b", `effect "never" is not one of`},
			{8, 15, "b", "undefined field 'nam'"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := compileProblems(t, tt.src)
			var gotPos, wantPos []problem
			for _, p := range got {
				gotPos = append(gotPos, problem{p.Line, p.Column, p.Rule, ""})
			}
			for _, w := range tt.want {
				wantPos = append(wantPos, problem{w.Line, w.Column, w.Rule, ""})
			}
			if diff := cmp.Diff(wantPos, gotPos); diff != "" {
				t.Errorf("problem positions (-want +got):\n%s\nproblems:\n%v", diff, got)
				return
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i].Message, w.Msg) {
					t.Errorf("problem %d: got %q, want it to contain %q", i, got[i].Message, w.Msg)
				}
			}
		})
	}
}

func TestCompileErrorLists(t *testing.T) {
	_, err := policy.Compile("dir/p.yaml", []byte("version: 1\ndefault: allow\nrules:\n  - id: a\n    when: foo\n    effect: deny\n  - id: b\n    when: bar\n    effect: deny\n"))
	want := "dir/p.yaml:5:11: rule a: when: undeclared reference to 'foo'\n" +
		"dir/p.yaml:8:11: rule b: when: undeclared reference to 'bar'"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
	_, err = policy.Compile("p.yaml", []byte("version: 1\ndefault: allow\nlimits:\n  - id: l\n    per: team\n    calls_per_minute: 1\n"))
	if want := `p.yaml:5:10: limit l: per "team" is not agent or system`; err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

func TestCompileTooBig(t *testing.T) {
	src := "version: 1\ndefault: allow\n#" + strings.Repeat("x", policy.MaxPolicyBytes)
	_, err := policy.Compile("p.yaml", []byte(src))
	var ce *policy.CompileError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "the most is") {
		t.Errorf("Compile of an oversized policy: %v", err)
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := policy.LoadFile("testdata/does-not-exist.yaml")
	if err == nil || !strings.Contains(err.Error(), "couldn't read policy") {
		t.Errorf("LoadFile(missing) = %v", err)
	}
}

func TestVersionIsTheHashOfCanonicalText(t *testing.T) {
	src := "version: 1\ndefault: allow\nrules:\n  - id: a\n    effect: deny\n"
	p := mustCompile(t, src)
	if got, want := p.Version(), policy.Version([]byte(src)); got != want {
		t.Errorf("Version() = %s, policy.Version(src) = %s", got, want)
	}
	if len(p.Version()) != 64 || strings.Trim(p.Version(), "0123456789abcdef") != "" {
		t.Errorf("Version() = %q, want 64 lowercase hex digits", p.Version())
	}
	same := []string{
		strings.ReplaceAll(src, "\n", "\r\n"),
		"\xef\xbb\xbf" + src,
	}
	for _, s := range same {
		if v := mustCompile(t, s).Version(); v != p.Version() {
			t.Errorf("version of %q = %s, want %s (same canonical text)", s, v, p.Version())
		}
	}
	if v := mustCompile(t, src+"# a comment\n").Version(); v == p.Version() {
		t.Errorf("a changed text kept version %s", v)
	}
	d := p.Evaluate(&vigil.Action{Kind: vigil.ModelCall}, nil)
	if d.Policy != p.Version() {
		t.Errorf("Decision.Policy = %q, want %q", d.Policy, p.Version())
	}
	if got := string(p.Bytes()); got != src {
		t.Errorf("Bytes() = %q, want %q", got, src)
	}
}

func mustCompile(t testing.TB, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Compile("p.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Compile:\n%v\nsource:\n%s", err, src)
	}
	return p
}

func ExampleCompile() {
	_, err := policy.Compile("policy.yaml", []byte(`version: 1
default: allow
rules:
  - id: destructive-tools-need-a-human
    when: action.kind == "tool_call" && tool.annotations.destructivehint
    effect: require_approval
`))
	fmt.Println(err)
	// Output: policy.yaml:5:57: rule destructive-tools-need-a-human: when: undefined field 'destructivehint'
}

func TestBuiltinAllowsEverything(t *testing.T) {
	p := policy.Builtin()
	if p.Name() != "(built-in)" || p.Version() != policy.Version([]byte(policy.BuiltinSource)) {
		t.Errorf("Builtin() = %s", p)
	}
	for _, a := range fuzzActions {
		if d := p.Evaluate(a, nil); d.Effect != vigil.Allow {
			t.Errorf("built-in policy: %s on %s", d.Effect, a.Kind)
		}
	}
}
