package apiclient_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/internal/servertest"
)

// lintDir holds the pinned Node.js tools (package-lock.json), their
// configuration and paging.ts.
const lintDir = "lint"

// lintTool returns a command running the Node.js tool name installed in
// lintDir, from lintDir, with the tools' telemetry and update checks off
// (nothing may leave this machine). Without the tools the test skips, or
// fails with DG_REQUIRE_SERVICES=1.
func lintTool(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join(lintDir, "node_modules", ".bin", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		msg := "the OpenAPI linters are not installed: run `npm ci --ignore-scripts` in internal/apiclient/lint (.ci/run does)"
		if os.Getenv("DG_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = lintDir
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true",
		"NO_UPDATE_NOTIFIER=1", "SCARF_ANALYTICS=false", "DO_NOT_TRACK=1")
	return cmd
}

// TestOpenAPILint: the committed documents (OpenAPI 3.1, and the 3.0 one
// the Go client is generated from) pass Redocly's recommended rules and
// Spectral's OpenAPI rules without an error or a warning (the findings
// kept on purpose are listed, with why, in lint/.redocly.lint-ignore.yaml);
// and a TypeScript client typed from the 3.1 document by openapi-typescript
// type-checks (strict) and pages through GET /api/datasources of a real
// server by the documented Link header.
func TestOpenAPILint(t *testing.T) {
	docs := []string{"../openapi-3.1.json", "../openapi.json"}

	out, err := lintTool(t, "redocly", append([]string{"lint", "--format=json"}, docs...)...).Output()
	var found []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var r struct {
			Totals   struct{ Errors, Warnings, Ignored int }
			Problems []struct {
				RuleID   string `json:"ruleId"`
				Message  string
				Location []struct {
					Pointer string
				}
			}
		}
		if derr := dec.Decode(&r); errors.Is(derr, io.EOF) {
			break
		} else if derr != nil {
			t.Fatalf("redocly lint: %v (%v): %s", derr, err, out)
		}
		for _, p := range r.Problems {
			where := ""
			if len(p.Location) > 0 {
				where = p.Location[0].Pointer
			}
			found = append(found, p.RuleID+" at "+where+": "+p.Message)
		}
		if r.Totals.Errors+r.Totals.Warnings != len(r.Problems) {
			t.Errorf("redocly totals %+v for %d problems", r.Totals, len(r.Problems))
		}
	}
	if len(found) > 0 || err != nil {
		t.Errorf("redocly lint (%v):\n%s", err, strings.Join(found, "\n"))
	}

	if out, err := lintTool(t, "spectral", append([]string{"lint", "--ruleset", ".spectral.yaml", "--fail-severity=warn"}, docs...)...).CombinedOutput(); err != nil {
		t.Errorf("spectral lint: %v\n%s", err, out)
	}

	// The TypeScript client: types from the document, checked and built.
	dir := t.TempDir()
	for _, name := range []string{"paging.ts", "tsconfig.json"} {
		b, err := os.ReadFile(filepath.Join(lintDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := lintTool(t, "openapi-typescript", docs[0], "-o", filepath.Join(dir, "schema.d.ts")).CombinedOutput(); err != nil {
		t.Fatalf("openapi-typescript: %v\n%s", err, out)
	}
	js := filepath.Join(dir, "out")
	if out, err := lintTool(t, "tsc", "-p", filepath.Join(dir, "tsconfig.json"), "--outDir", js).CombinedOutput(); err != nil {
		t.Fatalf("tsc: the TypeScript client does not type-check against the document: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(js, "package.json"), []byte(`{"type":"module"}`), 0o644); err != nil {
		t.Fatal(err)
	}

	srv := servertest.Start(t, nil)
	var want []string
	for i := range 5 {
		name := "src-" + strconv.Itoa(i)
		body := map[string]any{"name": name, "type": "files", "path": t.TempDir()}
		if code, body := srv.Do(t, http.MethodPost, "/api/datasources", srv.Token, body); code != http.StatusCreated {
			t.Fatalf("create %s: %d %s", name, code, body)
		}
		want = append(want, name)
	}
	run := func(token string) ([]byte, error) {
		cmd := exec.CommandContext(t.Context(), "node", filepath.Join(js, "paging.js"))
		cmd.Env = append(os.Environ(), "DG_URL="+srv.URL, "DG_TOKEN="+token, "DG_LIMIT=2")
		return cmd.CombinedOutput()
	}
	out, err = run(srv.Token)
	var got struct {
		Names []string
		Pages int
	}
	if err != nil || json.Unmarshal(out, &got) != nil || !slices.Equal(got.Names, want) || got.Pages != 3 {
		t.Errorf("paging by Link, 2 a page: %s (%v), want %v in 3 pages", out, err, want)
	}
	if out, err := run("dgt_not-a-token"); err == nil || !strings.Contains(string(out), "401") {
		t.Errorf("a refused token: %s (%v), want the 401 problem", out, err)
	}
}
