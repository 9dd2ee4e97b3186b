package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/vigil-gateway/vigil"

type pkg struct {
	ImportPath string
	Name       string
	Doc        string
	Imports    []string
	GoFiles    []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// domain packages hold the rules of the business and no technology: no HTTP, no SQL,
// no drivers. Adapters (api, llmproxy, mcpproxy, console, store/*) and cmd/vigil do.
var domain = []string{"vigil", "policy", "pii", "oversight", "ledger", "aims", "inventory", "auth", "enforce", "keyring"}

// drivers are the imports only storage drivers and cmd/vigil may have.
var drivers = []string{
	module + "/internal/store/sqlite", module + "/internal/store/postgres",
	"modernc.org/sqlite", "github.com/jackc/pgx", "github.com/lib/pq", "github.com/mattn/go-sqlite3",
}

func isDriver(imp string) bool {
	for _, d := range drivers {
		if imp == d || strings.HasPrefix(imp, d+"/") {
			return true
		}
	}
	return false
}

func TestDomainPackagesHaveNoTechnology(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(p.ImportPath, module+"/internal/")
		if !slices.Contains(domain, rel) {
			continue
		}
		for _, imp := range p.Imports {
			if imp == "net/http" || imp == "database/sql" || strings.HasPrefix(imp, "net/http/") || isDriver(imp) {
				t.Errorf("domain package %s imports %s; HTTP, SQL and drivers belong in adapters", rel, imp)
			}
		}
	}
}

func TestVocabularyIsStdlibOnly(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.ImportPath != module+"/internal/vigil" {
			continue
		}
		for _, imp := range p.Imports {
			if strings.Contains(strings.Split(imp, "/")[0], ".") {
				t.Errorf("internal/vigil imports %s; it must depend only on the standard library", imp)
			}
		}
		return
	}
	t.Fatal("internal/vigil not found")
}

func TestOnlyMainAndDriversImportDrivers(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.ImportPath == module+"/cmd/vigil" {
			continue
		}
		for _, imp := range p.Imports {
			if !isDriver(imp) {
				continue
			}
			// A driver package may import its own database library.
			own := strings.HasPrefix(p.ImportPath, module+"/internal/store/sqlite") && imp == "modernc.org/sqlite" ||
				strings.HasPrefix(p.ImportPath, module+"/internal/store/sqlite") && strings.HasPrefix(imp, "modernc.org/sqlite/") ||
				strings.HasPrefix(p.ImportPath, module+"/internal/store/postgres") && strings.HasPrefix(imp, "github.com/jackc/pgx")
			if !own {
				t.Errorf("%s imports driver %s; only cmd/vigil wires drivers", p.ImportPath, imp)
			}
		}
	}
}

func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.Doc == "" {
			t.Errorf("package %s has no doc comment", p.ImportPath)
			continue
		}
		want := "Package " + p.Name + " "
		if p.Name == "main" {
			want = "Command "
		}
		if !strings.HasPrefix(p.Doc, want) {
			t.Errorf("package %s doc starts %q, want %q", p.ImportPath, p.Doc, want)
		}
	}
}

func TestNoGrabBagPackages(t *testing.T) {
	for _, p := range listPackages(t) {
		switch path.Base(p.ImportPath) {
		case "util", "utils", "common", "models", "helpers", "misc", "shared":
			t.Errorf("package %s: name packages by what they are in the domain", p.ImportPath)
		}
	}
}
