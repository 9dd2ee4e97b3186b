package mcpproxy

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestEncodeHeaderValue: the spec's encoding table for Mcp-Param-* and Mcp-Name.
func TestEncodeHeaderValue(t *testing.T) {
	for in, want := range map[string]string{
		"us-west1":           "us-west1",
		"Hello, 世界":          "=?base64?SGVsbG8sIOS4lueVjA==?=",
		" padded ":           "=?base64?IHBhZGRlZCA=?=",
		"line1\nline2":       "=?base64?bGluZTEKbGluZTI=?=",
		"=?base64?literal?=": "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=",
		"":                   "",
		"a b":                "a b",
	} {
		if got := encodeHeaderValue(in); got != want {
			t.Errorf("encodeHeaderValue(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestParamHeaderAnnotations: which x-mcp-header annotations bind which arguments,
// and which make a tool invalid (the spec has clients drop such a tool).
func TestParamHeaderAnnotations(t *testing.T) {
	tool := func(schema string) json.RawMessage {
		return json.RawMessage(`{"name":"t","inputSchema":` + schema + `}`)
	}
	good, err := paramHeaders(tool(`{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"A"},"o":{"type":"object","properties":{"b":{"type":"boolean","x-mcp-header":"B"}}},"x-mcp-header":{"type":"string"}}}`))
	if err != nil || len(good) != 2 {
		t.Fatalf("valid annotations: %v, %v", good, err)
	}
	h := paramHeaderValues(good, json.RawMessage(`{"a":"v","o":{"b":false}}`))
	if h.Get("Mcp-Param-A") != "v" || h.Get("Mcp-Param-B") != "false" {
		t.Errorf("headers = %v", h)
	}
	if h := paramHeaderValues(good, json.RawMessage(`{"a":null,"o":{"b":1.5}}`)); len(h) != 0 {
		t.Errorf("null and non-boolean values got headers: %v", h)
	}
	for name, schema := range map[string]string{
		"an object property":  `{"properties":{"a":{"type":"object","x-mcp-header":"A"}}}`,
		"a number property":   `{"properties":{"a":{"type":"number","x-mcp-header":"A"}}}`,
		"not a token":         `{"properties":{"a":{"type":"string","x-mcp-header":"A B"}}}`,
		"empty":               `{"properties":{"a":{"type":"string","x-mcp-header":""}}}`,
		"a duplicate":         `{"properties":{"a":{"type":"string","x-mcp-header":"A"},"b":{"type":"string","x-mcp-header":"a"}}}`,
		"under items":         `{"properties":{"a":{"type":"array","items":{"type":"string","x-mcp-header":"A"}}}}`,
		"under a composition": `{"properties":{"a":{"oneOf":[{"type":"string","x-mcp-header":"A"}]}}}`,
	} {
		if _, err := paramHeaders(tool(schema)); err == nil || !strings.Contains(err.Error(), "x-mcp-header") {
			t.Errorf("%s: err = %v, want the tool invalid", name, err)
		}
	}
}
