package apiclient_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/internal/apiclient/specgen"
)

const regenerate = "run `go generate ./internal/apiclient` and commit the result"

// TestOpenAPIDocumentFresh checks that openapi.json, from which the client
// was generated, and openapi-3.1.json, which the linters read, are the
// documents the current httpapi serves, so the committed client cannot
// drift from the API.
func TestOpenAPIDocumentFresh(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for file, path := range map[string]string{"openapi.json": specgen.Path, "openapi-3.1.json": specgen.Path31} {
		want, err := specgen.Document(ctx, path)
		if err != nil {
			t.Fatalf("build the served document: %v", err)
		}
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("read the committed document: %v (%s)", err, regenerate)
		}
		if d := firstDiff(got, want); d != "" {
			t.Errorf("internal/apiclient/%s differs from the document httpapi serves at %s: %s; %s", file, path, d, regenerate)
		}
	}
}

// TestClientFresh checks that client.gen.go is what the pinned generator
// makes of openapi.json with cfg.yaml, so neither was edited by hand.
func TestClientFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the generator run")
	}
	// `go tool -n` builds the pinned generator (go.mod's tool directive)
	// and prints its path; it runs in a temporary directory so cfg.yaml's
	// relative output lands there.
	out, err := exec.CommandContext(t.Context(), "go", "tool", "-n", "oapi-codegen").Output()
	if err != nil {
		t.Fatalf("build the pinned oapi-codegen: go tool -n oapi-codegen: %v", err)
	}
	bin := strings.TrimSpace(string(out))
	dir := t.TempDir()
	for _, name := range []string{"cfg.yaml", "openapi.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(t.Context(), bin, "-config", "cfg.yaml", "openapi.json")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oapi-codegen: %v\n%s", err, out)
	}
	want, err := os.ReadFile(filepath.Join(dir, "client.gen.go"))
	if err != nil {
		t.Fatalf("read the generated client: %v", err)
	}
	got, err := os.ReadFile("client.gen.go")
	if err != nil {
		t.Fatalf("read the committed client: %v (%s)", err, regenerate)
	}
	if d := firstDiff(got, want); d != "" {
		t.Fatalf("internal/apiclient/client.gen.go is not what oapi-codegen generates from openapi.json: %s; %s", d, regenerate)
	}
}

// firstDiff describes the first line where got and want differ, or
// returns "" when they are equal.
func firstDiff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl || i >= len(g) || i >= len(w) {
			return fmt.Sprintf("line %d is %q, want %q", i+1, gl, wl)
		}
	}
	return "they differ" // unreachable: unequal inputs differ on some line
}
