package policy

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// A policy test file pins a policy's behaviour with example actions:
//
//	policy: policy.yaml              # relative to the test file
//	tests:
//	  - name: big refund is denied
//	    input:
//	      action: {kind: tool_call}  # inferred from tool, model or resource when left out
//	      agent: {name: support-bot, system: helpdesk, labels: {tier: "1"}}
//	      tool: {server: pay, name: refund, annotations: {readOnlyHint: true}}
//	      args: {amount: 500}
//	      pii: {counts: {EMAIL_ADDRESS: 1}}
//	      usage: {calls: {minute: 12}, cost: {day: 4.5}, system: {tokens: {day: 90000}}}
//	      now: 2026-11-26T14:00:00Z
//	    want: deny                   # or {effect: deny, rules: [refunds-over-100],
//	                                 #     message: finance, limit: budget/cost_per_day}
//
// Tool annotations start from MCP's defaults, as a tool that declares none gets them.

// TestFile is a parsed policy test file with its compiled policy.
type TestFile struct {
	Path   string
	Policy *Policy
	Cases  []TestCase
}

// TestCase is one test of a TestFile.
type TestCase struct {
	Name   string
	Line   int
	Action vigil.Action
	Usage  Usage
	Want   Want
}

// Want is what a test expects. Only Effect is always checked.
type Want struct {
	Effect vigil.Effect
	// Rules, when not nil, must equal Decision.Rules (in policy order).
	Rules []string
	// Message, when set, must be contained in Decision.Message.
	Message string
	// Limit, when set, must equal Decision.Limit.
	Limit string
}

// TestResult is the outcome of one TestCase: it passed when Failures is empty.
type TestResult struct {
	Case     *TestCase
	Got      vigil.Decision
	Failures []string
}

// LoadTests reads the test file at path and compiles the policy it names. The error is
// a *CompileError when either file has problems.
func LoadTests(path string) (*TestFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read policy tests: %w", err)
	}
	d := newDecoder(path, Canonical(b))
	root := d.document()
	if root == nil {
		return nil, d.err()
	}
	f := d.fields(root, "the test file", "policy", "tests")
	tf := &TestFile{Path: path}
	if n := f["policy"]; n == nil {
		d.errorAt(root.Line, root.Column, "policy is required: the policy file these tests are for")
	} else if name := d.str(n, "policy"); name != "" {
		if !filepath.IsAbs(name) {
			name = filepath.Join(filepath.Dir(path), name)
		}
		tf.Policy, err = LoadFile(name)
		if err != nil {
			return nil, err
		}
	}
	if n := f["tests"]; n == nil {
		d.errorAt(root.Line, root.Column, "tests is required")
	} else {
		for i, tn := range d.list(n, "tests") {
			tf.Cases = append(tf.Cases, d.testCase(tn, i))
		}
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	return tf, nil
}

// Run evaluates every case against the policy.
func (f *TestFile) Run() []TestResult {
	out := make([]TestResult, len(f.Cases))
	for i := range f.Cases {
		c := &f.Cases[i]
		a := c.Action
		got := f.Policy.Evaluate(&a, &c.Usage)
		out[i] = TestResult{Case: c, Got: got, Failures: c.Want.check(got)}
	}
	return out
}

func (w Want) check(d vigil.Decision) []string {
	var fails []string
	if d.Effect != w.Effect {
		fails = append(fails, fmt.Sprintf("effect: got %s, want %s", d.Effect, w.Effect))
	}
	if w.Rules != nil && !slices.Equal(d.Rules, w.Rules) {
		fails = append(fails, fmt.Sprintf("rules: got [%s], want [%s]", strings.Join(d.Rules, " "), strings.Join(w.Rules, " ")))
	}
	if w.Message != "" && !strings.Contains(d.Message, w.Message) {
		fails = append(fails, fmt.Sprintf("message: got %q, want it to contain %q", d.Message, w.Message))
	}
	if w.Limit != "" && d.Limit != w.Limit {
		fails = append(fails, fmt.Sprintf("limit: got %q, want %q", d.Limit, w.Limit))
	}
	return fails
}

func (d *decoder) testCase(n *yaml.Node, i int) TestCase {
	defer func() { d.section, d.rule = "", "" }()
	c := TestCase{Line: resolve(n).Line}
	d.section, d.rule = "test", fmt.Sprintf("tests[%d]", i)
	f := d.fields(n, "", "name", "input", "want")
	if x := f["name"]; x != nil {
		c.Name = d.str(x, "name")
	}
	if c.Name == "" {
		c.Name = d.rule
	}
	d.rule = fmt.Sprintf("%q", c.Name)
	if x := f["input"]; x == nil {
		d.errorf(resolve(n), "input is required")
	} else {
		c.Action, c.Usage = d.input(x)
	}
	if x := f["want"]; x == nil {
		d.errorf(resolve(n), "want is required")
	} else {
		c.Want = d.want(x)
	}
	return c
}

func (d *decoder) want(n *yaml.Node) Want {
	var w Want
	if r := resolve(n); r.Kind == yaml.ScalarNode {
		w.Effect = d.effect(r, "want")
		return w
	}
	f := d.fields(n, "want", "effect", "rules", "message", "limit")
	if x := f["effect"]; x == nil {
		d.errorf(resolve(n), "want.effect is required")
	} else {
		w.Effect = d.effect(x, "want.effect")
	}
	if x := f["rules"]; x != nil {
		w.Rules = d.strs(x, "want.rules")
		if w.Rules == nil {
			w.Rules = []string{}
		}
	}
	if x := f["message"]; x != nil {
		w.Message = d.str(x, "want.message")
	}
	if x := f["limit"]; x != nil {
		w.Limit = d.str(x, "want.limit")
	}
	return w
}

func (d *decoder) input(n *yaml.Node) (vigil.Action, Usage) {
	var a vigil.Action
	var u Usage
	const in = "input"
	f := d.fields(n, in, "action", "agent", "model", "tool", "args", "resource", "pii", "usage", "now")
	if x := f["action"]; x != nil {
		af := d.fields(x, in+".action", "kind", "id")
		if k := af["kind"]; k != nil {
			s := d.str(k, in+".action.kind")
			if kindBit(vigil.ActionKind(s)) == unknownKind {
				d.errorf(k, "%s.action.kind %q is not an action kind (%s)", in, s, kindNames)
			}
			a.Kind = vigil.ActionKind(s)
		}
		if id := af["id"]; id != nil {
			a.ID = d.str(id, in+".action.id")
		}
	}
	if x := f["agent"]; x != nil {
		af := d.fields(x, in+".agent", "id", "name", "system", "labels")
		a.Actor.Kind = vigil.ActorAgent
		for _, kv := range []struct {
			key string
			dst *string
		}{{"id", &a.Actor.ID}, {"name", &a.Actor.Name}, {"system", &a.Actor.SystemName}} {
			if v := af[kv.key]; v != nil {
				*kv.dst = d.str(v, in+".agent."+kv.key)
			}
		}
		a.Actor.SystemID = a.Actor.SystemName
		if a.Actor.ID == "" {
			a.Actor.ID = a.Actor.Name
		}
		if l := af["labels"]; l != nil {
			if err := l.Decode(&a.Actor.Labels); err != nil {
				d.errorf(l, "%s.agent.labels must map names to text", in)
			}
		}
	}
	if x := f["model"]; x != nil {
		mf := d.fields(x, in+".model", "provider", "name")
		a.Model = &vigil.Model{}
		if v := mf["provider"]; v != nil {
			a.Model.Provider = d.str(v, in+".model.provider")
		}
		if v := mf["name"]; v != nil {
			a.Model.Name = d.str(v, in+".model.name")
		}
	}
	if x := f["tool"]; x != nil {
		a.Tool = d.tool(x, in+".tool")
	}
	if x := f["args"]; x != nil && !isNull(x) {
		if resolve(x).Kind != yaml.MappingNode {
			d.errorf(x, "%s.args must be a mapping", in)
		} else if err := x.Decode(&a.Args); err != nil {
			d.errorf(x, "%s.args: %v", in, err)
		}
	}
	if x := f["resource"]; x != nil {
		rf := d.fields(x, in+".resource", "uri", "name")
		switch {
		case rf["uri"] != nil && rf["name"] != nil:
			d.errorf(x, "%s.resource has uri (a resource read) or name (a prompt), not both", in)
		case rf["uri"] != nil:
			a.Resource = d.str(rf["uri"], in+".resource.uri")
			if a.Kind == "" {
				a.Kind = vigil.ResourceRead
			}
		case rf["name"] != nil:
			a.Resource = d.str(rf["name"], in+".resource.name")
			if a.Kind == "" {
				a.Kind = vigil.PromptGet
			}
		}
	}
	if x := f["pii"]; x != nil {
		pf := d.fields(x, in+".pii", "types", "counts")
		a.PII.Counts = map[string]int{}
		if v := pf["types"]; v != nil {
			for _, t := range d.strs(v, in+".pii.types") {
				a.PII.Counts[t] = max(a.PII.Counts[t], 1)
			}
		}
		if v := pf["counts"]; v != nil {
			var counts map[string]int
			if err := v.Decode(&counts); err != nil {
				d.errorf(v, "%s.pii.counts must map entity types to whole numbers", in)
			}
			for t, k := range counts {
				a.PII.Counts[t] = k
			}
		}
	}
	if x := f["usage"]; x != nil {
		uf := d.fields(x, in+".usage", "calls", "tool_calls", "tokens", "cost", "system")
		d.counters(uf, in+".usage", &u.Agent)
		if s := uf["system"]; s != nil {
			d.counters(d.fields(s, in+".usage.system", "calls", "tool_calls", "tokens", "cost"), in+".usage.system", &u.System)
		}
	}
	if x := f["now"]; x != nil {
		s := d.str(x, in+".now")
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			d.errorf(x, "%s.now must be an RFC 3339 time such as 2026-11-26T14:00:00Z, got %q", in, s)
		}
		a.Time = t
	}
	if a.Time.IsZero() {
		// Tests must not depend on when they run.
		a.Time = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	}
	if a.Kind == "" {
		switch {
		case a.Tool != nil:
			a.Kind = vigil.ToolCall
		case a.Model != nil:
			a.Kind = vigil.ModelCall
		default:
			d.errorf(n, "%s.action.kind is required when the input has no tool, model or resource", in)
		}
	}
	return a, u
}

func (d *decoder) tool(n *yaml.Node, what string) *vigil.Tool {
	f := d.fields(n, what, "server", "name", "annotations")
	t := &vigil.Tool{Annotations: vigil.DefaultToolAnnotations()}
	if v := f["server"]; v != nil {
		t.Server = d.str(v, what+".server")
	}
	if v := f["name"]; v != nil {
		t.Name = d.str(v, what+".name")
	}
	if v := f["annotations"]; v != nil {
		af := d.fields(v, what+".annotations", "title", "readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")
		if x := af["title"]; x != nil {
			t.Annotations.Title = d.str(x, what+".annotations.title")
		}
		for _, kv := range []struct {
			key string
			dst *bool
		}{
			{"readOnlyHint", &t.Annotations.ReadOnlyHint}, {"destructiveHint", &t.Annotations.DestructiveHint},
			{"idempotentHint", &t.Annotations.IdempotentHint}, {"openWorldHint", &t.Annotations.OpenWorldHint},
		} {
			if x := af[kv.key]; x != nil {
				if err := x.Decode(kv.dst); err != nil {
					d.errorf(x, "%s.annotations.%s must be true or false", what, kv.key)
				}
			}
		}
	}
	return t
}

func (d *decoder) counters(f map[string]*yaml.Node, what string, c *Counters) {
	for m := range nMetrics {
		n := f[metricNames[m]]
		if n == nil {
			continue
		}
		wf := d.fields(n, what+"."+metricNames[m], windowNames[:]...)
		for w := range nWindows {
			x := wf[windowNames[w]]
			if x == nil {
				continue
			}
			key := what + "." + metricNames[m] + "." + windowNames[w]
			if m == mCost {
				if v, ok := d.float(x, key); ok && v >= 0 && v <= math.MaxInt64/MicrosPerUnit {
					*c.window(m).at(w) = int64(math.Round(v * MicrosPerUnit))
				} else if ok {
					d.errorf(x, "%s must be a positive amount", key)
				}
			} else if v, ok := d.int(x, key); ok {
				*c.window(m).at(w) = v
			}
		}
	}
}
