package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FieldError is a problem with one field of the configuration.
type FieldError struct {
	// Path is the field's YAML path, e.g. "providers[1].base_url".
	Path string
	// Line is the 1-based line in the file, or 0 when unknown.
	Line int
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Path, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// FieldErrors collects every problem found, so one start reports them all.
type FieldErrors []*FieldError

func (es FieldErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

func (es *FieldErrors) add(path, format string, args ...any) {
	*es = append(*es, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (es FieldErrors) orNil() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// Load reads path, refusing unknown keys and values of the wrong type, applies
// defaults and validates. Errors name the file, the field and its line.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c.resolvePaths(filepath.Dir(path))
	return c, nil
}

// resolvePaths makes the files a configuration names relative to the file itself
// (the policy, the shadow candidate, MCP servers' working directories), so a config
// works from wherever vigil is started. data_dir stays relative to the working
// directory, as the --data flag is.
func (c *Config) resolvePaths(base string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	c.Policy = abs(c.Policy)
	c.PolicyOptions.Shadow = abs(c.PolicyOptions.Shadow)
	for i := range c.MCPServers {
		c.MCPServers[i].Dir = abs(c.MCPServers[i].Dir)
	}
}

// Parse is Load for bytes already read.
func Parse(b []byte) (*Config, error) {
	c := &Config{}
	lines := map[string]int{}
	if err := decodeStrict(b, c, lines); err != nil {
		return nil, err
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		var fes FieldErrors
		if errors.As(err, &fes) {
			for _, fe := range fes {
				if fe.Line == 0 {
					fe.Line = lineFor(lines, fe.Path)
				}
			}
			return nil, fes
		}
		return nil, err
	}
	return c, nil
}

// decodeStrict decodes one YAML document into c after checking it against c's type.
func decodeStrict(b []byte, c *Config, lines map[string]int) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil // only comments
	} else if err != nil {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return errors.New("more than one YAML document; vigil.yaml holds one")
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if errs := check(root, reflect.TypeOf(c).Elem(), "", lines); len(errs) > 0 {
		return errs
	}
	if err := root.Decode(c); err != nil {
		return fmt.Errorf("couldn't decode: %w", err)
	}
	return nil
}

// lineFor finds the line of path, or of its nearest ancestor that appears in the file.
func lineFor(lines map[string]int, path string) int {
	for p := path; p != ""; {
		if l, ok := lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

var durationType = reflect.TypeOf(time.Duration(0))

// check walks the YAML tree beside the Go type, reporting keys the type does not have
// and scalars that cannot be the field's kind. It records each path's line in lines.
func check(n *yaml.Node, t reflect.Type, path string, lines map[string]int) FieldErrors {
	var errs FieldErrors
	if path != "" {
		lines[path] = n.Line
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	bad := func(format string, args ...any) FieldErrors {
		p := path
		if p == "" {
			p = "(top level)"
		}
		return FieldErrors{{Path: p, Line: n.Line, Msg: fmt.Sprintf(format, args...)}}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			return bad("want a duration such as 30s or 10m")
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			return bad("%q is not a duration such as 30s or 10m", n.Value)
		}
		return nil
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return bad("want a mapping of fields, got %s", kindName(n))
		}
		fields := yamlFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := k.Value
			sub := join(path, key)
			if seen[key] {
				errs = append(errs, &FieldError{Path: sub, Line: k.Line, Msg: "appears twice"})
				continue
			}
			seen[key] = true
			f, ok := fields[key]
			if !ok {
				msg := "unknown field"
				if s := suggest(key, fields); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				errs = append(errs, &FieldError{Path: sub, Line: k.Line, Msg: msg})
				continue
			}
			errs = append(errs, check(v, f.Type, sub, lines)...)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return bad("want a list, got %s", kindName(n))
		}
		for i, v := range n.Content {
			errs = append(errs, check(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i), lines)...)
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			return bad("want a mapping, got %s", kindName(n))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			errs = append(errs, check(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), lines)...)
		}
	case t.Kind() == reflect.Interface:
		return nil
	default:
		if n.Kind != yaml.ScalarNode {
			return bad("want a %s, got %s", scalarName(t), kindName(n))
		}
		var probe = reflect.New(t)
		if err := n.Decode(probe.Interface()); err != nil {
			return bad("%q is not a %s", n.Value, scalarName(t))
		}
	}
	return errs
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func scalarName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "whole number"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	}
	return t.String()
}

// suggest returns the known field closest to key, if it is close enough to be a typo.
func suggest(key string, fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	best, bestD := "", 3
	for _, k := range names {
		if d := distance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
