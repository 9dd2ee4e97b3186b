package policy

import (
	"bytes"
	"cmp"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a policy or policy test file.
type Problem struct {
	File string `json:"file"`
	// Line and Column are 1-based; 0 when unknown.
	Line   int `json:"line"`
	Column int `json:"column"`
	// Section is "rule", "limit" or "test" when the problem is inside one, and Rule
	// is then its id (or its place, such as rules[3], when it has no valid id).
	Section string `json:"section,omitempty"`
	Rule    string `json:"rule,omitempty"`
	Message string `json:"message"`
}

// String formats the problem as "file:line:col: rule id: message".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
	}
	b.WriteString(": ")
	if p.Rule != "" {
		fmt.Fprintf(&b, "%s %s: ", cmp.Or(p.Section, "rule"), p.Rule)
	}
	b.WriteString(p.Message)
	return b.String()
}

// CompileError is returned when a policy (or policy test file) does not compile. It
// lists every problem found, not only the first; check with errors.As.
type CompileError struct {
	Problems []Problem
}

// Error lists the problems, one a line.
func (e *CompileError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// decoder walks a YAML document by hand, so that every problem carries its line and
// column, unknown keys are refused, and one pass reports all problems.
type decoder struct {
	file  string
	src   []byte
	lines []string // src split into lines, for positions inside block scalars
	// section and rule name the rule, limit or test being decoded, for problems.
	section, rule string
	probs         []Problem
}

func newDecoder(file string, src []byte) *decoder {
	return &decoder{file: file, src: src, lines: strings.Split(string(src), "\n")}
}

func (d *decoder) errorAt(line, col int, format string, args ...any) {
	d.probs = append(d.probs, Problem{File: d.file, Line: line, Column: col, Section: d.section, Rule: d.rule, Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errorAt(n.Line, n.Column, format, args...)
}

func (d *decoder) err() error {
	if len(d.probs) == 0 {
		return nil
	}
	return &CompileError{Problems: d.probs}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// document parses src as exactly one YAML document and returns its root, or nil after
// recording why not.
func (d *decoder) document() *yaml.Node {
	if len(bytes.TrimSpace(d.src)) == 0 {
		d.errorAt(1, 0, "the file is empty")
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(d.src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		msg := err.Error()
		line := 0
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = msg[len(m[0]):]
		}
		d.errorAt(line, 0, "not valid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errorAt(extra.Line, 0, "more than one YAML document; the file holds one")
		return nil
	}
	if len(doc.Content) == 0 {
		d.errorAt(1, 0, "the file is empty")
		return nil
	}
	return doc.Content[0]
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// fields checks that n is a mapping whose keys are among known and appear once, and
// returns the value node of each key present. what names n in messages.
func (d *decoder) fields(n *yaml.Node, what string, known ...string) map[string]*yaml.Node {
	n = resolve(n)
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping, got %s", cmp.Or(what, "it"), describe(n))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Kind != yaml.ScalarNode:
			d.errorf(k, "%s: keys must be plain names", what)
		case !contains(known, k.Value):
			d.errorf(k, "%sunknown field %q (known: %s)", prefix(what), k.Value, strings.Join(known, ", "))
		case out[k.Value] != nil:
			d.errorf(k, "%s%q appears twice", prefix(what), k.Value)
		default:
			out[k.Value] = v
		}
	}
	return out
}

// prefix returns "what: ", or "" for the top of a rule, limit or test, which the
// problem already names.
func prefix(what string) string {
	if what == "" {
		return ""
	}
	return what + ": "
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// scalar returns n's text when it is a scalar that is not a mapping or list.
func (d *decoder) scalar(n *yaml.Node, what string) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, "%s must be a single value, got %s", what, describe(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) str(n *yaml.Node, what string) string {
	if r := resolve(n); r.Kind == yaml.ScalarNode && r.Tag == "!!bool" {
		// A bare true or false where text is expected is almost always a mistake.
		d.errorf(r, "%s must be text; quote %s if you mean it", what, r.Value)
		return ""
	}
	s, _ := d.scalar(n, what)
	return s
}

func (d *decoder) int(n *yaml.Node, what string) (int64, bool) {
	s, ok := d.scalar(n, what)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		d.errorf(n, "%s must be a whole number, got %q", what, s)
		return 0, false
	}
	return v, true
}

func (d *decoder) float(n *yaml.Node, what string) (float64, bool) {
	s, ok := d.scalar(n, what)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		d.errorf(n, "%s must be a number, got %q", what, s)
		return 0, false
	}
	return v, true
}

func (d *decoder) duration(n *yaml.Node, what string) (time.Duration, bool) {
	s, ok := d.scalar(n, what)
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.errorf(n, "%s must be a duration such as 30s or 10m, got %q", what, s)
		return 0, false
	}
	return v, true
}

// strs decodes a list of strings; a single string is accepted as a list of one.
func (d *decoder) strs(n *yaml.Node, what string) []string {
	nodes := d.strNodes(n, what)
	out := make([]string, len(nodes))
	for i, e := range nodes {
		out[i] = e.Value
	}
	return out
}

// strNodes is strs returning the entries' nodes, for problems about single entries.
func (d *decoder) strNodes(n *yaml.Node, what string) []*yaml.Node {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []*yaml.Node{n}
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s must be a list, got %s", what, describe(n))
		return nil
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, e := range n.Content {
		if _, ok := d.scalar(e, what+" entries"); ok {
			out = append(out, resolve(e))
		}
	}
	return out
}

// peekID returns the id a rule or limit mapping declares, or "", so that problems
// found before the id is checked can already name it.
func peekID(n *yaml.Node) string {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], resolve(n.Content[i+1]); k.Value == "id" && v.Kind == yaml.ScalarNode && idPattern.MatchString(v.Value) {
			return v.Value
		}
	}
	return ""
}

// list returns the entries of a sequence node.
func (d *decoder) list(n *yaml.Node, what string) []*yaml.Node {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s must be a list, got %s", what, describe(n))
		return nil
	}
	return n.Content
}

// position maps a 1-based line and 0-based column inside the scalar n's value (as CEL
// reports them) to the file. It is exact for one-line plain scalars, quoted ones
// without escapes, and literal blocks (|); for folded or multi-line plain scalars,
// whose line breaks YAML rewrites, it points at the scalar and the caller adds the
// position inside the condition to the message.
func (d *decoder) position(n *yaml.Node, line, col int) (fileLine, fileCol int, exact bool) {
	switch {
	case n.Style&yaml.LiteralStyle != 0:
		// The block's indentation is that of its first non-blank line; YAML strips it
		// from every line of the value.
		l := n.Line + line
		for i := n.Line; i < len(d.lines) && l-1 < len(d.lines); i++ {
			if text := d.lines[i]; strings.TrimSpace(text) != "" {
				indent := len(text) - len(strings.TrimLeft(text, " "))
				return l, indent + col + 1, true
			}
		}
	case strings.Contains(n.Value, "\n") || n.Style&yaml.FoldedStyle != 0:
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		if line == 1 {
			return n.Line, n.Column + 1 + col, true
		}
	default:
		if line == 1 && !d.multiLinePlain(n) {
			return n.Line, n.Column + col, true
		}
	}
	return n.Line, n.Column, false
}

// multiLinePlain reports whether a plain scalar spans several source lines (YAML joins
// them with spaces, so columns no longer map).
func (d *decoder) multiLinePlain(n *yaml.Node) bool {
	if n.Line-1 >= len(d.lines) {
		return true
	}
	rest := d.lines[n.Line-1]
	if n.Column-1 <= len(rest) {
		rest = rest[n.Column-1:]
	}
	return !strings.Contains(rest, n.Value)
}
