package pii

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// caseFinding is what a regression case expects of a finding.
type caseFinding struct {
	Type  string `json:"type"`
	Value string `json:"value"`
	Rule  string `json:"rule,omitempty"`
}

// TestAccuracyRegression runs the committed cases in testdata/cases.json, each as
// plain text and inside a chat request, so that CI catches accuracy regressions
// without the licensed datasets. make pii-eval measures the full data.
func TestAccuracyRegression(t *testing.T) {
	b, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name string        `json:"name"`
		Text string        `json:"text"`
		Want []caseFinding `json:"want"`
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	e := newTestEngine(t, Options{})
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			var got []caseFinding
			for _, f := range e.ScanText([]byte(tc.Text)) {
				if tc.Text[f.Start:f.End] != f.Value {
					t.Errorf("finding %s: text[%d:%d] = %q, value %q", f.Type, f.Start, f.End, tc.Text[f.Start:f.End], f.Value)
				}
				got = append(got, caseFinding{Type: f.Type, Value: f.Value, Rule: f.Rule})
			}
			if diff := cmp.Diff(tc.Want, got, cmp.Comparer(func(a, b []caseFinding) bool {
				return len(a) == 0 && len(b) == 0 || cmp.Equal([]caseFinding(a), []caseFinding(b))
			})); len(tc.Want)+len(got) > 0 && diff != "" {
				t.Errorf("ScanText(%q) mismatch (-want +got):\n%s", tc.Text, diff)
			}
			doc, _ := json.Marshal(map[string]any{"messages": []map[string]string{{"role": "user", "content": tc.Text}}})
			fs, err := e.ScanJSON(doc)
			if err != nil {
				t.Fatal(err)
			}
			got = got[:0]
			for _, f := range fs {
				got = append(got, caseFinding{Type: f.Type, Value: f.Value, Rule: f.Rule})
			}
			if len(tc.Want)+len(got) > 0 {
				if diff := cmp.Diff(tc.Want, got); diff != "" {
					t.Errorf("ScanJSON mismatch (-want +got):\n%s", diff)
				}
			}
		})
	}
}
