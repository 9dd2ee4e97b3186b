package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vigil-gateway/vigil/internal/aims"
	"github.com/vigil-gateway/vigil/internal/config"
)

// TestExamplesDescribeOneOrganisation keeps the runtime half of the demo
// (examples/vigil.yaml, examples/policy.yaml) and its ISO/IEC 42001 records
// (examples/records) about the same systems: a name used on one side only would show
// as traffic from a system with no record, and evidence that points nowhere.
func TestExamplesDescribeOneOrganisation(t *testing.T) {
	dir := filepath.Join("..", "..", "examples")
	cfg, err := config.Load(filepath.Join(dir, "vigil.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pol struct {
		Rules []struct {
			ID     string
			Effect string
			Match  struct{ Systems []string }
		}
		Limits []struct {
			ID    string
			Match struct{ Systems []string }
		}
	}
	src, err := os.ReadFile(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(src, &pol); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "records", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no records in %s/records: %v", dir, err)
	}
	systems := map[string]*aims.System{}
	var risks []*aims.Risk
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := aims.ParseRecords(filepath.Base(f), b)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			switch r := p.Record.(type) {
			case *aims.System:
				systems[r.ID] = r
			case *aims.Risk:
				risks = append(risks, r)
			}
		}
	}

	// Every system the policy names has a record.
	var named []string
	for _, r := range pol.Rules {
		named = append(named, r.Match.Systems...)
	}
	for _, l := range pol.Limits {
		named = append(named, l.Match.Systems...)
	}
	if len(named) == 0 {
		t.Error("the policy names no system; this test would check nothing")
	}
	for _, s := range named {
		if systems[s] == nil {
			t.Errorf("policy.yaml names system %q, which has no record in examples/records", s)
		}
	}

	// Every provider a system record approves is one vigil.yaml configures.
	var providers []string
	for _, p := range cfg.Providers {
		providers = append(providers, p.Name)
	}
	for id, s := range systems {
		for _, p := range s.Providers {
			if !slices.Contains(providers, p) {
				t.Errorf("system %s approves provider %q, which examples/vigil.yaml does not configure (%v)", id, p, providers)
			}
		}
	}

	// Every policy rule a risk treatment cites exists; an approval: one holds for a human.
	effect := map[string]string{}
	for _, r := range pol.Rules {
		effect[r.ID] = r.Effect
	}
	for _, r := range risks {
		for _, tr := range r.Treatments {
			for _, ref := range tr.Technical {
				kind, id, _ := strings.Cut(ref, ":")
				if kind != "policy-rule" && kind != "approval" {
					continue
				}
				switch e, ok := effect[id]; {
				case !ok:
					t.Errorf("risk %s %s cites %q, which is not a rule in examples/policy.yaml", r.ID, tr.ID, ref)
				case kind == "approval" && e != "require_approval":
					t.Errorf("risk %s %s cites %q, but that rule's effect is %s", r.ID, tr.ID, ref, e)
				}
			}
		}
	}
}
