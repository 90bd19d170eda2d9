package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// binary is the dataguardian binary built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dataguardian-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "dataguardian")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build dataguardian: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// dg runs the binary with args and extra environment variables
// ("NAME=value"), with DG_PASSWORD unset unless given.
func dg(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(withoutPassword(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run dataguardian %v: %v", args, err)
	}
	return res
}

func withoutPassword() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPassword+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// ok runs the binary and fails t unless it exits 0.
func ok(t *testing.T, args ...string) result {
	t.Helper()
	res := dg(t, nil, args...)
	if res.code != 0 {
		t.Fatalf("dataguardian %s: %v", strings.Join(args, " "), res)
	}
	return res
}

// fails runs the binary and fails t unless it exits with code.
func fails(t *testing.T, code int, args ...string) result {
	t.Helper()
	res := dg(t, nil, args...)
	if res.code != code {
		t.Fatalf("dataguardian %s: want exit %d, got %v", strings.Join(args, " "), code, res)
	}
	return res
}

// decode parses the JSON output of res into v.
func decode(t *testing.T, res result, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(res.stdout), v); err != nil {
		t.Fatalf("stdout is not one JSON value: %v\n%s", err, res)
	}
}

// newSQLite creates a SQLite database of about rows KiB of random blobs.
func newSQLite(t *testing.T, path string, rows int) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, data BLOB)`,
		`CREATE INDEX items_name ON items(name)`,
		`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)`,
		fmt.Sprintf(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < %d)
			INSERT INTO items SELECT x, 'item ' || x || ' ✓', randomblob(1024) FROM c`, rows),
		`INSERT INTO notes(body) VALUES ('olá, mundo'), ('zażółć gęślą jaźń')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

// sqliteDigest is the row count and a sha256 of every row of every table.
func sqliteDigest(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []string
	for _, table := range []string{"items", "notes"} {
		rows, err := db.Query("SELECT * FROM " + table + " ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		h, n := sha256.New(), 0
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(h, "%q\n", vals)
			n++
		}
		rows.Close()
		out = append(out, fmt.Sprintf("%s: %d rows sha256 %s", table, n, hex.EncodeToString(h.Sum(nil))))
	}
	return strings.Join(out, "; ")
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// noManifest fails t if any manifest.json exists under root.
func noManifest(t *testing.T, root string) {
	t.Helper()
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "manifest.json" {
			t.Errorf("%s exists", path)
		}
		return nil
	})
}
