package aims

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/vigil-gateway/vigil/internal/vigil"
	"gopkg.in/yaml.v3"
)

// FieldError is a problem with one field of one record. Its message names the file
// and line (when known), the record and the field.
type FieldError struct {
	File string
	Line int
	// Kind and ID name the record, when known.
	Kind, ID string
	// Field is the field's path in the record, e.g. "treatments[1].controls[0]".
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Kind != "" {
		b.WriteString(e.Kind)
		if e.ID != "" {
			fmt.Fprintf(&b, " %q", e.ID)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// FieldErrors collects every problem found, so one import reports them all.
type FieldErrors []*FieldError

func (es FieldErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// asVigil wraps field errors as a caller-safe invalid-request error.
func (es FieldErrors) asVigil() error {
	if len(es) == 0 {
		return nil
	}
	return &vigil.Error{Code: vigil.EINVALID, Message: es.Error(), Err: es}
}

func (es *FieldErrors) add(field, format string, args ...any) {
	*es = append(*es, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Parsed is one record read from YAML, with where it came from.
type Parsed struct {
	Record Record
	File   string
	// Line is the line of the record's first key.
	Line int
	// lines maps field paths to lines, for validation errors.
	lines map[string]int
}

// Locate fills in File, Line, Kind and ID of errors about this record.
func (p Parsed) Locate(es FieldErrors) FieldErrors {
	for _, e := range es {
		e.File, e.Kind, e.ID = p.File, p.Record.Kind(), p.Record.Key()
		if e.Line == 0 {
			e.Line = lineFor(p.lines, e.Field)
			if e.Line == 0 {
				e.Line = p.Line
			}
		}
	}
	return es
}

// MaxRecordsFile is the largest YAML input ParseRecords accepts.
const MaxRecordsFile = 4 << 20

// ParseRecords reads the records in one YAML file: one or more documents separated
// by "---", each a mapping with a `kind` and an `id`. Unknown kinds and fields,
// values of the wrong type and missing ids are errors naming the file, line and field.
// Aliases are refused: records are data, and an alias bomb must not expand.
func ParseRecords(file string, data []byte) ([]Parsed, error) {
	if len(data) > MaxRecordsFile {
		return nil, FieldErrors{{File: file, Msg: fmt.Sprintf("file is larger than %d bytes", MaxRecordsFile)}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []Parsed
	var errs FieldErrors
	for doc := 1; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, &FieldError{File: file, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")})
			break
		}
		if len(n.Content) == 0 {
			continue // an empty document (a trailing "---")
		}
		root := n.Content[0]
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue
		}
		p, es := parseDoc(file, doc, root)
		if len(es) > 0 {
			errs = append(errs, es...)
			continue
		}
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func parseDoc(file string, doc int, root *yaml.Node) (Parsed, FieldErrors) {
	bad := func(line int, field, format string, args ...any) FieldErrors {
		return FieldErrors{{File: file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}}
	}
	if hasAlias(root, 0) {
		return Parsed{}, bad(root.Line, "", "document %d uses YAML anchors or aliases; records may not", doc)
	}
	if root.Kind != yaml.MappingNode {
		return Parsed{}, bad(root.Line, "", "document %d is %s; want a mapping with kind and id", doc, kindName(root))
	}
	var kind string
	kindLine := root.Line
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "kind" {
			kind, kindLine = root.Content[i+1].Value, root.Content[i+1].Line
		}
	}
	if kind == "" {
		return Parsed{}, bad(root.Line, "kind", "missing; want one of %s", strings.Join(RecordKinds, ", "))
	}
	rec := NewRecord(kind)
	if rec == nil {
		return Parsed{}, bad(kindLine, "kind", "%q is not one of %s", kind, strings.Join(RecordKinds, ", "))
	}
	// Check keys against the type first, so unknown fields are named with their line;
	// then decode without "kind" (it is not a field of the record types).
	body := &yaml.Node{Kind: yaml.MappingNode, Tag: root.Tag, Line: root.Line, Column: root.Column}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "kind" {
			body.Content = append(body.Content, root.Content[i], root.Content[i+1])
		}
	}
	lines := map[string]int{}
	if es := checkNode(body, reflect.TypeOf(rec).Elem(), "", lines); len(es) > 0 {
		for _, e := range es {
			e.File, e.Kind = file, kind
		}
		return Parsed{}, es
	}
	if err := body.Decode(rec); err != nil {
		var te *yaml.TypeError
		es := FieldErrors{}
		if errors.As(err, &te) {
			for _, m := range te.Errors {
				es = append(es, &FieldError{File: file, Kind: kind, Msg: strings.TrimPrefix(m, "line ")})
			}
		} else {
			es = append(es, &FieldError{File: file, Kind: kind, Msg: err.Error()})
		}
		for _, e := range es {
			// yaml.v3 says "line N: cannot unmarshal …"; keep its line as ours.
			var l int
			if _, err := fmt.Sscanf(e.Msg, "%d:", &l); err == nil {
				e.Line = l
				e.Msg = strings.TrimSpace(e.Msg[strings.Index(e.Msg, ":")+1:])
			}
		}
		return Parsed{}, es
	}
	if rec.Key() == "" {
		return Parsed{}, FieldErrors{{File: file, Line: root.Line, Kind: kind, Field: "id", Msg: "missing"}}
	}
	return Parsed{Record: rec, File: file, Line: root.Line, lines: lines}, nil
}

func hasAlias(n *yaml.Node, depth int) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" || depth > 64 {
		return true
	}
	for _, c := range n.Content {
		if hasAlias(c, depth+1) {
			return true
		}
	}
	return false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar"
	}
	return "something else"
}

var (
	timeType = reflect.TypeOf(time.Time{})
	dateType = reflect.TypeOf(Date{})
)

// checkNode walks n beside t, reporting keys t does not have and shapes that cannot
// be t (a list where a string belongs), and records each path's line.
func checkNode(n *yaml.Node, t reflect.Type, path string, lines map[string]int) FieldErrors {
	if path != "" {
		lines[path] = n.Line
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	bad := func(format string, args ...any) FieldErrors {
		return FieldErrors{{Line: n.Line, Field: path, Msg: fmt.Sprintf(format, args...)}}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	switch {
	case t == timeType:
		if n.Kind != yaml.ScalarNode {
			return bad("want a time such as 2026-11-02T09:30:00Z, got %s", kindName(n))
		}
		if _, err := time.Parse(time.RFC3339, n.Value); err != nil {
			if _, err2 := time.Parse(time.DateOnly, n.Value); err2 != nil {
				return bad("%q is not a time such as 2026-11-02T09:30:00Z", n.Value)
			}
		}
		return nil
	case t == dateType:
		if n.Kind != yaml.ScalarNode {
			return bad("want a date such as 2026-11-02, got %s", kindName(n))
		}
		if _, err := ParseDate(n.Value); err != nil {
			return bad("%q is not a date such as 2026-11-02", n.Value)
		}
		return nil
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return bad("want a mapping of fields, got %s", kindName(n))
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				fields[name] = f.Type
			}
		}
		var errs FieldErrors
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			sub := joinPath(path, k.Value)
			if seen[k.Value] {
				errs = append(errs, &FieldError{Line: k.Line, Field: sub, Msg: "appears twice"})
				continue
			}
			seen[k.Value] = true
			ft, ok := fields[k.Value]
			if !ok {
				names := make([]string, 0, len(fields))
				for f := range fields {
					names = append(names, f)
				}
				slices.Sort(names)
				errs = append(errs, &FieldError{Line: k.Line, Field: sub, Msg: "unknown field; known fields are " + strings.Join(names, ", ")})
				continue
			}
			errs = append(errs, checkNode(v, ft, sub, lines)...)
		}
		return errs
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return bad("want a list, got %s", kindName(n))
		}
		var errs FieldErrors
		for i, v := range n.Content {
			errs = append(errs, checkNode(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i), lines)...)
		}
		return errs
	default:
		if n.Kind != yaml.ScalarNode {
			return bad("want a %s, got %s", scalarName(t), kindName(n))
		}
	}
	return nil
}

func scalarName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "whole number"
	}
	return "string"
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// lineFor finds the line of path, or of its nearest ancestor.
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

// MarshalRecords writes records as YAML documents separated by "---", each starting
// with its kind. ParseRecords reads the result back to equal records.
func MarshalRecords(recs []Record) ([]byte, error) {
	var buf bytes.Buffer
	for i, r := range recs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		var n yaml.Node
		if err := n.Encode(r); err != nil {
			return nil, fmt.Errorf("couldn't encode %s %q: %w", r.Kind(), r.Key(), err)
		}
		kind := []*yaml.Node{{Kind: yaml.ScalarNode, Value: "kind"}, {Kind: yaml.ScalarNode, Value: r.Kind()}}
		n.Content = append(kind, n.Content...)
		b, err := yaml.Marshal(&n)
		if err != nil {
			return nil, fmt.Errorf("couldn't encode %s %q: %w", r.Kind(), r.Key(), err)
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// FileNames are the files an export writes, one per kind.
var FileNames = map[string]string{
	KindSystem: "systems.yaml", KindPolicy: "policies.yaml", KindRisk: "risks.yaml", KindImpact: "impact-assessments.yaml",
	KindCompetence: "competence.yaml", KindDocument: "documents.yaml", KindCommunication: "communications.yaml",
	KindApplicability: "applicability.yaml", KindAudit: "audits.yaml", KindReview: "reviews.yaml", KindIncident: "incidents.yaml",
}

// MarshalFiles groups records by kind into the files of FileNames. Kinds with no
// records get no file.
func MarshalFiles(recs []Record) (map[string][]byte, error) {
	byKind := map[string][]Record{}
	for _, r := range recs {
		byKind[r.Kind()] = append(byKind[r.Kind()], r)
	}
	out := map[string][]byte{}
	for kind, list := range byKind {
		b, err := MarshalRecords(list)
		if err != nil {
			return nil, err
		}
		out[FileNames[kind]] = b
	}
	return out, nil
}
