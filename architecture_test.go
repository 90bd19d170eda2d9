package dataguardian_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/dataguardian/dataguardian"

// TestArchitecture checks the import rules of ARCHITECTURE.md on the
// packages' non-test imports, as `go list` reports them.
func TestArchitecture(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}|{{join .Deps \" \"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	imports, deps := map[string][]string{}, map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) != 3 {
			t.Fatalf("go list line %q", sc.Text())
		}
		imports[f[0]], deps[f[0]] = strings.Fields(f[1]), strings.Fields(f[2])
	}
	rel := func(p string) string { return strings.TrimPrefix(strings.TrimPrefix(p, module), "/") }
	under := func(p string, roots ...string) bool {
		for _, r := range roots {
			if p == r || strings.HasPrefix(p, r+"/") {
				return true
			}
		}
		return false
	}
	refuse := func(pkg, why string, list []string, bad func(string) bool) {
		for _, d := range list {
			if bad(d) {
				t.Errorf("%s imports %s: %s (see ARCHITECTURE.md)", rel(pkg), d, why)
			}
		}
	}
	for pkg := range deps {
		p := rel(pkg)
		switch {
		case under(p, "manifest", "storage", "drivers", "retention", "notify", "console"):
			refuse(pkg, "a leaf imports neither the root, engine nor httpapi", deps[pkg], func(d string) bool {
				return d == module || under(rel(d), "engine", "httpapi", "defaults") && strings.HasPrefix(d, module)
			})
		case strings.HasPrefix(p, "engine/"):
			refuse(pkg, "no package under engine imports engine", deps[pkg], func(d string) bool { return d == module+"/engine" })
		case p == "engine":
			refuse(pkg, "engine imports interfaces, not concrete drivers or storages (see package defaults)", deps[pkg], func(d string) bool {
				return strings.HasPrefix(d, module+"/drivers/") && !strings.HasPrefix(d, module+"/drivers/internal") || d == module+"/storage/local"
			})
		case p == "httpapi":
			refuse(pkg, "httpapi uses the store's methods, never bun", imports[pkg], func(d string) bool {
				return strings.HasPrefix(d, "github.com/uptrace/bun")
			})
		}
	}
	refuse(module+"/engine/store", "the store is below the queue and the workers", deps[module+"/engine/store"], func(d string) bool {
		return under(rel(d), "engine/queue", "engine/scheduler", "engine/worker", "engine/health", "engine/cleanup") && strings.HasPrefix(d, module)
	})
	if len(deps) < 20 {
		t.Fatalf("go list found %d packages; want the whole module", len(deps))
	}
}
