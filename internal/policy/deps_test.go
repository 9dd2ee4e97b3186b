package policy_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies enforces DESIGN.md: a domain package imports neither net/http nor
// database/sql nor a storage driver; it reaches storage and the ledger through the
// interfaces it declares.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"net/http", "database/sql", "modernc.org/sqlite", "github.com/jackc/pgx", "github.com/vigil-gateway/vigil/internal/store"} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") {
				t.Errorf("package policy depends on %s", dep)
			}
		}
	}
}
