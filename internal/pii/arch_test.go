package pii

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPure enforces that the package stays pure: no network, database, driver or
// file-system imports in non-test code.
func TestPure(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	banned := []string{"net/http", "database/sql", "os", "io/ioutil", "os/exec", "github.com/jackc/", "modernc.org/", "github.com/vigil-gateway/vigil/internal/store"}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pf, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range pf.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			for _, b := range banned {
				if p == b || strings.HasSuffix(b, "/") && strings.HasPrefix(p, b) || strings.HasPrefix(p, b+"/") {
					t.Errorf("%s imports %s; package pii must do no I/O", f, p)
				}
			}
		}
	}
}
