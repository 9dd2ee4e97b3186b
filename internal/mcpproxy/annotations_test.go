package mcpproxy

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

func TestAnnotationsOf(t *testing.T) {
	cases := []struct {
		tool string
		want vigil.ToolAnnotations
	}{
		{`{"name":"x"}`, vigil.ToolAnnotations{DestructiveHint: true, OpenWorldHint: true}},
		{`{"name":"x","title":"Top","annotations":{"title":"Old","readOnlyHint":true,"openWorldHint":false}}`,
			vigil.ToolAnnotations{Title: "Top", ReadOnlyHint: true, DestructiveHint: true}},
		{`{"name":"x","annotations":{"title":"Old","destructiveHint":false,"idempotentHint":true}}`,
			vigil.ToolAnnotations{Title: "Old", IdempotentHint: true, OpenWorldHint: true}},
		{`{"name":"x","title":"Only top"}`, vigil.ToolAnnotations{Title: "Only top", DestructiveHint: true, OpenWorldHint: true}},
		{`not json`, vigil.DefaultToolAnnotations()},
	}
	for _, c := range cases {
		if diff := cmp.Diff(c.want, annotationsOf(json.RawMessage(c.tool))); diff != "" {
			t.Errorf("annotationsOf(%s) (-want +got):\n%s", c.tool, diff)
		}
	}
}
