package mcpproxy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// The 2026-07-28 revision mirrors parts of a request's body into HTTP headers so that
// intermediaries can route without parsing it: Mcp-Method, Mcp-Name (params.name or
// params.uri), and, for tools/call, Mcp-Param-{Name} for each argument whose property
// in the tool's inputSchema carries "x-mcp-header": Name. A server validates them
// against the body and refuses a mismatch (HeaderMismatch, -32020). Vigil is the
// client of the upstream server, and it may change the arguments (masking, a
// reviewer's edit), so it derives these headers from the arguments it actually
// forwards — never copying the client's.

// hdrParamPrefix starts the header of an argument a tool mirrors (x-mcp-header).
const hdrParamPrefix = "Mcp-Param-"

// paramHeader binds an argument, by its path of property names from the arguments'
// root, to the header that mirrors it.
type paramHeader struct {
	path []string
	name string // the x-mcp-header value: the header is Mcp-Param-{name}
}

// paramHeaders reads a tool's x-mcp-header annotations. A definition that breaks the
// annotation's rules (a non-primitive property, a name that is not an HTTP token, a
// duplicate, an annotation not reachable from the root through "properties" alone)
// is an error: the spec has clients exclude such a tool from tools/list.
func paramHeaders(tool json.RawMessage) ([]paramHeader, error) {
	var t struct {
		InputSchema json.RawMessage `json:"inputSchema"`
	}
	if json.Unmarshal(tool, &t) != nil || len(t.InputSchema) == 0 {
		return nil, nil
	}
	var schema any
	if err := json.Unmarshal(t.InputSchema, &schema); err != nil {
		return nil, nil
	}
	var out []paramHeader
	seen := map[string]bool{}
	var walk func(node map[string]any, path []string) error
	walk = func(node map[string]any, path []string) error {
		props, _ := node["properties"].(map[string]any)
		for name, raw := range props {
			prop, ok := raw.(map[string]any)
			if !ok {
				continue
			}
			p := append(append([]string(nil), path...), name)
			if h, ok := prop["x-mcp-header"]; ok {
				hn, _ := h.(string)
				if err := checkHeaderName(hn); err != nil {
					return fmt.Errorf("property %s: %w", strings.Join(p, "."), err)
				}
				switch prop["type"] {
				case "string", "integer", "boolean":
				default:
					return fmt.Errorf("property %s: x-mcp-header is only for string, integer and boolean properties", strings.Join(p, "."))
				}
				if seen[strings.ToLower(hn)] {
					return fmt.Errorf("property %s: x-mcp-header %q is used twice", strings.Join(p, "."), hn)
				}
				seen[strings.ToLower(hn)] = true
				out = append(out, paramHeader{path: p, name: hn})
			}
			if err := walk(prop, p); err != nil {
				return err
			}
		}
		return nil
	}
	root, _ := schema.(map[string]any)
	if root == nil {
		return nil, nil
	}
	if err := walk(root, nil); err != nil {
		return nil, err
	}
	if n := countAnnotations(schema, false); n != len(out) {
		return nil, errors.New("an x-mcp-header annotation is not reachable from the schema's root through properties alone")
	}
	return out, nil
}

// countAnnotations counts every x-mcp-header keyword in a schema. Inside a
// "properties" map the keys are property names, not keywords.
func countAnnotations(node any, names bool) int {
	n := 0
	switch v := node.(type) {
	case map[string]any:
		for k, c := range v {
			if !names && k == "x-mcp-header" {
				n++
				continue
			}
			n += countAnnotations(c, !names && k == "properties")
		}
	case []any:
		for _, c := range v {
			n += countAnnotations(c, false)
		}
	}
	return n
}

// checkHeaderName checks an x-mcp-header value: a non-empty HTTP token (RFC 9110).
func checkHeaderName(name string) error {
	if name == "" {
		return errors.New("x-mcp-header must be a non-empty string")
	}
	for _, c := range name {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", c):
		default:
			return fmt.Errorf("x-mcp-header %q is not an HTTP token", name)
		}
	}
	return nil
}

// paramHeaderValues derives the Mcp-Param-* headers of a tools/call from the
// arguments it forwards: a binding whose argument is absent, null, or not a string,
// boolean or safe integer gets no header.
func paramHeaderValues(bindings []paramHeader, arguments json.RawMessage) http.Header {
	if len(bindings) == 0 || len(arguments) == 0 {
		return nil
	}
	h := http.Header{}
	for _, b := range bindings {
		raw := lookupArgument(arguments, b.path)
		if raw == nil {
			continue
		}
		if v, ok := headerArgument(raw); ok {
			h.Set(hdrParamPrefix+b.name, encodeHeaderValue(v))
		}
	}
	return h
}

// lookupArgument returns the raw value at path in an arguments object, or nil.
func lookupArgument(arguments json.RawMessage, path []string) json.RawMessage {
	cur := arguments
	for _, name := range path {
		var obj map[string]json.RawMessage
		if json.Unmarshal(cur, &obj) != nil {
			return nil
		}
		var ok bool
		if cur, ok = obj[name]; !ok {
			return nil
		}
	}
	return cur
}

// headerArgument renders an argument as the header carries it: a string as it is,
// a boolean as true or false, an integer (within JavaScript's safe range) in decimal.
func headerArgument(raw json.RawMessage) (string, bool) {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		const safe = 1<<53 - 1
		if v != math.Trunc(v) || v > safe || v < -safe {
			return "", false
		}
		return strconv.FormatInt(int64(v), 10), true
	}
	return "", false
}

// encodeHeaderValue makes a value safe for an HTTP header: as it is when it is
// printable ASCII without leading or trailing blanks, else as =?base64?…?= of its
// UTF-8 — also a plain value of that very form, so it is not mistaken for one.
func encodeHeaderValue(v string) string {
	plain := v == "" || v[0] != ' ' && v[len(v)-1] != ' '
	for i := 0; plain && i < len(v); i++ {
		plain = v[i] >= 0x20 && v[i] <= 0x7e
	}
	if plain && !(strings.HasPrefix(v, "=?base64?") && strings.HasSuffix(v, "?=")) {
		return v
	}
	return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(v)) + "?="
}

type paramHeadersKey struct{}

// withParamHeaders attaches the Mcp-Param-* headers of one tools/call to the context
// it is sent with; the HTTP transport sets them on that request (stateless revision).
func withParamHeaders(ctx context.Context, h http.Header) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return context.WithValue(ctx, paramHeadersKey{}, h)
}

func paramHeadersFrom(ctx context.Context) http.Header {
	h, _ := ctx.Value(paramHeadersKey{}).(http.Header)
	return h
}
