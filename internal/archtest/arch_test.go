// Package archtest enforces the package layout and import rules of
// ARCHITECTURE.md §7 (extended in docs/architecture.md): which project
// packages each package may import. It checks non-test Go files only; tests
// may import anything (the client's examples start a real node).
package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/parley-dev/parley"

// allowed maps a package (a path relative to the module root; a trailing
// "/..." covers sub-packages) to the project packages it may import.
var allowed = map[string][]string{
	"proto/...":     {"proto/..."},
	"keys":          {},
	"certs":         {},
	"agreement":     {"keys", "certs"},
	"agreement/...": {"agreement", "keys", "certs"},
	"envelope":      {"keys", "proto/..."},
	"verifier/...":  {"verifier/...", "agreement", "envelope", "keys", "proto/..."},
	"server/...":    {"server/...", "verifier/...", "agreement", "certs", "envelope", "keys", "proto/..."},
	"client/...":    {"client/...", "certs", "verifier/...", "envelope", "keys", "proto/..."},
	"mediator/...":  {"mediator/...", "verifier/...", "agreement", "certs", "client/...", "envelope", "keys", "proto/..."},
	"certs/...":     {"certs"},
	"keys/...":      {"keys"},
	"envelope/...":  {"envelope", "keys", "proto/..."},
	"internal/...":  {"*"},
	"cmd/...":       {"*"},
	"tools/...":     {},
}

func match(pattern, pkg string) bool {
	if p, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == p || strings.HasPrefix(pkg, p+"/")
	}
	return pattern == "*" || pattern == pkg
}

// rule returns the most specific rule for pkg.
func rule(pkg string) (string, []string, bool) {
	best := ""
	for pattern := range allowed {
		if match(pattern, pkg) && len(pattern) > len(best) {
			best = pattern
		}
	}
	if best == "" {
		return "", nil, false
	}
	return best, allowed[best], true
}

func TestImportRules(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	imports := map[string]map[string]bool{} // pkg -> project imports
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			if path != root {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir // another module (tools)
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		if imports[rel] == nil {
			imports[rel] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == module || strings.HasPrefix(p, module+"/") {
				imports[rel][strings.TrimPrefix(strings.TrimPrefix(p, module), "/")] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports) < 3 {
		t.Fatalf("found %d packages, want the whole tree; is the walk rooted right?", len(imports))
	}
	pkgs := make([]string, 0, len(imports))
	for p := range imports {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	for _, pkg := range pkgs {
		if pkg == "." || pkg == "" {
			t.Errorf("Go files at the module root: put them in a package folder")
			continue
		}
		pattern, may, ok := rule(pkg)
		if !ok {
			t.Errorf("package %s is not in the layout table; add it to internal/archtest and docs/architecture.md with a reason", pkg)
			continue
		}
		for imp := range imports[pkg] {
			if strings.HasPrefix(imp, "cmd") {
				t.Errorf("%s imports %s: nothing may import cmd", pkg, imp)
				continue
			}
			okImp := false
			for _, m := range may {
				if match(m, imp) {
					okImp = true
					break
				}
			}
			if !okImp {
				t.Errorf("%s (rule %q) imports %s; allowed: %v", pkg, pattern, imp, may)
			}
		}
	}
}

// TestRuleTable checks the matcher itself, so the enforcement cannot pass
// vacuously.
func TestRuleTable(t *testing.T) {
	tests := []struct {
		pkg, imp string
		want     bool
	}{
		{"server", "verifier", true},
		{"server/tlog", "server/state", true},
		{"server", "client", false},
		{"client", "server", false},
		{"verifier", "server", false},
		{"verifier/rules", "agreement", true},
		{"agreement", "verifier", false},
		{"certs", "proto/parley/v1", false},
		{"mediator", "client", true},
		{"mediator", "server", false},
		{"cmd/parley", "server", true},
	}
	for _, tt := range tests {
		t.Run(tt.pkg+"->"+tt.imp, func(t *testing.T) {
			_, may, ok := rule(tt.pkg)
			if !ok {
				t.Fatalf("no rule for %s", tt.pkg)
			}
			got := false
			for _, m := range may {
				if match(m, tt.imp) {
					got = true
				}
			}
			if got != tt.want {
				t.Errorf("got allowed=%v, want %v", got, tt.want)
			}
		})
	}
}
