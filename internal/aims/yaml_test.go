package aims_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vigil-gateway/vigil/internal/aims"
)

func TestDemoRecordsAreValidAndCoverEveryKind(t *testing.T) {
	kinds := map[string]int{}
	for _, p := range demo(t) {
		kinds[p.Record.Kind()]++
		if errs := p.Locate(aims.Validate(p.Record, aims.DefaultRiskScale)); len(errs) > 0 {
			t.Errorf("demo record invalid: %v", errs)
		}
	}
	for _, k := range aims.RecordKinds {
		if kinds[k] == 0 {
			t.Errorf("the demo has no %s record", k)
		}
	}
	if kinds[aims.KindApplicability] != 38 {
		t.Errorf("the demo has %d applicability statements, want one per Annex A control (38)", kinds[aims.KindApplicability])
	}
}

func TestParseErrorsNameFileLineAndField(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string
	}{
		{"unknown kind", "kind: rissk\nid: R1\n", []string{"f.yaml:1", `kind: "rissk" is not one of`}},
		{"missing kind", "id: R1\n", []string{"f.yaml:1", "kind: missing"}},
		{"missing id", "kind: risk\ntitle: x\n", []string{"risk", "id: missing"}},
		{"unknown field", "kind: risk\nid: R1\nlikelyhood: 3\n", []string{"f.yaml:3", "likelyhood: unknown field"}},
		{"nested unknown field", "kind: risk\nid: R1\ntreatments:\n  - id: T1\n    controlz: []\n", []string{"f.yaml:5", "treatments[0].controlz: unknown field"}},
		{"wrong type", "kind: risk\nid: R1\nlikelihood: high\n", []string{"f.yaml:3", "cannot unmarshal"}},
		{"list for string", "kind: risk\nid: R1\ntitle: [a, b]\n", []string{"f.yaml:3", "title: want a string, got a list"}},
		{"bad date", "kind: risk\nid: R1\nnext_review: next year\n", []string{"f.yaml:3", `next_review: "next year" is not a date`}},
		{"alias", "kind: risk\nid: &a R1\ntitle: *a\n", []string{"anchors or aliases"}},
		{"duplicate key", "kind: risk\nid: R1\nid: R2\n", []string{"id: appears twice"}},
		{"not a mapping", "- a\n- b\n", []string{"want a mapping with kind and id"}},
		{"second document bad", "kind: document\nid: D1\n---\nkind: nope\nid: X\n", []string{"f.yaml:4", `"nope"`}},
		{"not yaml", "kind: [\n", []string{"not valid YAML"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := aims.ParseRecords("f.yaml", []byte(c.in))
			if err == nil {
				t.Fatalf("ParseRecords(%q) succeeded", c.in)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestValidateNamesTheField(t *testing.T) {
	valid := func() *aims.Risk {
		return &aims.Risk{ID: "R1", System: "s", Title: "t", Owner: "o", Likelihood: 3, Impact: 4, ResidualLikelihood: 2, ResidualImpact: 2,
			Option: "accept", Status: "open", AssessedAt: aims.DateOf(testNow), NextReview: aims.DateOf(testNow.AddDate(1, 0, 0))}
	}
	cases := []struct {
		name   string
		change func(r *aims.Risk)
		field  string
		msg    string
	}{
		{"likelihood above scale", func(r *aims.Risk) { r.Likelihood = 7 }, "likelihood", "outside the scale 1..5"},
		{"impact zero", func(r *aims.Risk) { r.Impact = 0 }, "impact", "outside the scale"},
		{"residual above inherent", func(r *aims.Risk) { r.ResidualLikelihood, r.ResidualImpact = 5, 5 }, "residual_impact", "above the inherent score"},
		{"bad option", func(r *aims.Risk) { r.Option = "ignore" }, "option", `"ignore" is not one of`},
		{"mitigate without treatment", func(r *aims.Risk) { r.Option = "mitigate" }, "treatments", "at least one treatment"},
		{"unprefixed control", func(r *aims.Risk) {
			r.Treatments = []aims.Treatment{{ID: "T1", Description: "d", Owner: "o", Status: "done", Controls: []string{"A.6.2.8"}}}
		}, "treatments[0].controls[0]", "prefixed Annex A control id"},
		{"unknown control", func(r *aims.Risk) {
			r.Treatments = []aims.Treatment{{ID: "T1", Description: "d", Owner: "o", Status: "done", Controls: []string{"iso42001:A.11.1"}}}
		}, "treatments[0].controls[0]", "not one of the 38"},
		{"bad technical control", func(r *aims.Risk) {
			r.Treatments = []aims.Treatment{{ID: "T1", Description: "d", Owner: "o", Status: "done", Technical: []string{"firewall"}}}
		}, "treatments[0].technical[0]", "KIND:REF"},
		{"missing next review", func(r *aims.Risk) { r.NextReview = aims.Date{} }, "next_review", "is required"},
	}
	if errs := aims.Validate(valid(), 5); len(errs) != 0 {
		t.Fatalf("valid risk: %v", errs)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := valid()
			c.change(r)
			errs := aims.Validate(r, 5)
			found := false
			for _, e := range errs {
				if e.Field == c.field && strings.Contains(e.Msg, c.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("Validate = %v; want field %q with %q", errs, c.field, c.msg)
			}
		})
	}
}

func TestIncidentRules(t *testing.T) {
	base := aims.Incident{ID: "I1", Type: "incident", Title: "t", Severity: "high", Status: "open", DetectedAt: testNow}
	cases := []struct {
		name   string
		change func(i *aims.Incident)
		field  string
	}{
		{"serious without category", func(i *aims.Incident) { i.Serious = true }, "category"},
		{"category without serious", func(i *aims.Incident) { i.Category = "death" }, "category"},
		{"closed without root cause", func(i *aims.Incident) { i.Status = "closed" }, "root_cause"},
		{"closed without effectiveness", func(i *aims.Incident) { i.Status, i.RootCause = "closed", "x" }, "effectiveness"},
		{"closed with open action", func(i *aims.Incident) {
			i.Status, i.RootCause = "closed", "x"
			i.Effectiveness = &aims.Effectiveness{CheckedAt: aims.DateOf(testNow), By: "a", Effective: true}
			i.Actions = []aims.Action{{ID: "A1", Description: "d", Owner: "o", Due: aims.DateOf(testNow), Status: "open"}}
		}, "actions[0].status"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			i := base
			c.change(&i)
			errs := aims.Validate(&i, 5)
			if !strings.Contains(errs.Error(), c.field+":") {
				t.Errorf("Validate = %v; want an error on %s", errs, c.field)
			}
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	var recs []aims.Record
	for _, p := range demo(t) {
		recs = append(recs, p.Record)
	}
	b, err := aims.MarshalRecords(recs)
	if err != nil {
		t.Fatal(err)
	}
	back, err := aims.ParseRecords("all.yaml", b)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, b)
	}
	var got []aims.Record
	for _, p := range back {
		got = append(got, p.Record)
	}
	if diff := cmp.Diff(recs, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func FuzzParseRecords(f *testing.F) {
	for _, p := range []string{
		"kind: risk\nid: R1\nlikelihood: 3\nimpact: 2\ntreatments:\n  - id: T1\n    controls: [\"iso42001:A.9.2\"]\n",
		"kind: incident\nid: I1\ndetected_at: 2026-11-01T10:00:00Z\nserious: true\ncategory: death\n",
		"kind: policy\nid: p\nnext_review: 2027-01-01\ntext: |\n  hello\n---\nkind: competence\nid: c\n",
		"kind: system\nid: s\nmodels: [a*, b]\n",
		"&a [*a]\n",
		"kind: review\nid: r\nactions: {}\n",
	} {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ps, err := aims.ParseRecords("fuzz.yaml", in)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		// Whatever parses marshals back to something that parses to the same records.
		var recs []aims.Record
		for _, p := range ps {
			recs = append(recs, p.Record)
			_ = aims.Validate(p.Record, aims.DefaultRiskScale) // must not panic
		}
		b, err := aims.MarshalRecords(recs)
		if err != nil {
			t.Fatalf("MarshalRecords: %v", err)
		}
		back, err := aims.ParseRecords("again.yaml", b)
		if err != nil {
			t.Fatalf("re-parse of marshalled records failed: %v\n%s", err, b)
		}
		if len(back) != len(ps) {
			t.Fatalf("re-parse found %d records, want %d", len(back), len(ps))
		}
		for i := range back {
			if diff := cmp.Diff(recs[i], back[i].Record, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("record %d changed in a round trip (-want +got):\n%s", i, diff)
			}
		}
	})
}
