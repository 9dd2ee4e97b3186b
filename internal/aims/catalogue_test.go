package aims_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-gateway/vigil/internal/aims"
)

func TestCatalogueHas38PrefixedControls(t *testing.T) {
	cs := aims.Controls()
	if len(cs) != 38 {
		t.Fatalf("%d controls, want 38", len(cs))
	}
	perObjective := map[string]int{}
	seen := map[string]bool{}
	for _, c := range cs {
		if !strings.HasPrefix(c.ID, aims.IDPrefix+"A.") {
			t.Errorf("control %q is not prefixed %q", c.ID, aims.IDPrefix)
		}
		if seen[c.ID] {
			t.Errorf("control %s appears twice", c.ID)
		}
		seen[c.ID] = true
		perObjective[strings.Fields(c.Objective)[0]]++
		if c.Title == "" || len(c.NIST) == 0 || !slices.Contains([]string{"R", "H", "D"}, c.EvidenceKind) {
			t.Errorf("control %s is incomplete: %+v", c.ID, c)
		}
	}
	want := map[string]int{"A.2": 3, "A.3": 2, "A.4": 5, "A.5": 4, "A.6": 9, "A.7": 5, "A.8": 4, "A.9": 3, "A.10": 3}
	if diff := cmp.Diff(want, perObjective); diff != "" {
		t.Errorf("controls per objective (-want +got):\n%s", diff)
	}
}

// TestCatalogueMatchesTheCrosswalk checks the generated NIST AI RMF column against
// the crosswalk JSON in ../shared/reference (Annex B ids map to Annex A ids).
func TestCatalogueMatchesTheCrosswalk(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "reference", "nist-ai-rmf-to-iso42001-crosswalk.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("crosswalk not beside the repository: %v", err)
	}
	var cw map[string][][2]string
	if err := json.Unmarshal(b, &cw); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for sub, items := range cw {
		for _, it := range items {
			if id, ok := strings.CutPrefix(it[0], "B."); ok {
				k := aims.IDPrefix + "A." + id
				if !slices.Contains(want[k], sub) {
					want[k] = append(want[k], sub)
				}
			}
		}
	}
	for _, c := range aims.Controls() {
		got := slices.Clone(c.NIST)
		w := want[c.ID]
		sort.Strings(got)
		sort.Strings(w)
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("%s NIST subcategories (-crosswalk +catalogue):\n%s", c.ID, diff)
		}
	}
}
