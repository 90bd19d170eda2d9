package postgres

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// These tests need no server: fake tools are shell scripts that print a
// version (and count their runs).

func fakeTool(t *testing.T, dir, name, version string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	script := "#!/bin/sh\necho run >> \"$0.runs\"\necho '" + name + " (PostgreSQL) " + version + "'\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func runs(t *testing.T, tool string) int {
	b, _ := os.ReadFile(tool + ".runs")
	return strings.Count(string(b), "run")
}

func TestParseVersion(t *testing.T) {
	for _, c := range []struct {
		in    string
		num   int
		major string
	}{
		{"15.4", 150004, "15"}, {"16", 160000, "16"}, {"9.6.24", 90624, "9.6"}, {"9.6.0", 90600, "9.6"}, {"10.23", 100023, "10"},
	} {
		n, err := parseVersion(c.in)
		if err != nil || n != c.num || majorName(n) != c.major {
			t.Errorf("parseVersion(%q) = %d (%s), %v; want %d (%s)", c.in, n, majorName(n), err, c.num, c.major)
		}
	}
	if !(majorKey(90624) < majorKey(100000) && majorKey(150004) == majorKey(150020) && majorKey(160000) > majorKey(150020)) {
		t.Error("majorKey does not order majors")
	}
}

func TestFindToolInBinDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old := fakeTool(t, dir, "pg_dump", "9.6.0")
	d := &Driver{BinDir: dir}
	_, err := d.findTool(ctx, "pg_dump", 150004)
	if !errors.Is(err, ErrToolTooOld) {
		t.Fatalf("err = %v, want ErrToolTooOld", err)
	}
	for _, want := range []string{"pg_dump 9.6", "PostgreSQL 15", "postgresql-client-15", dir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// The same tool is fine for an old server.
	if tl, err := d.findTool(ctx, "pg_dump", 90605); err != nil || tl.path != old || tl.version != 90600 {
		t.Fatalf("tool for a 9.6 server: %+v, %v", tl, err)
	}

	// Upgrading the client takes effect at once (failures are not cached);
	// choices are cached, also under concurrent use.
	fakeTool(t, dir, "pg_dump", "16.1")
	before := runs(t, old)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if tl, err := d.findTool(ctx, "pg_dump", 150004); err != nil || tl.version != 160001 {
				t.Errorf("tool for a 15 server: %+v, %v", tl, err)
			}
		})
	}
	wg.Wait()
	if n := runs(t, old) - before; n != 1 {
		t.Errorf("pg_dump --version ran %d times for 8 concurrent look-ups, want 1", n)
	}

	// Missing and broken tools.
	if _, err := d.findTool(ctx, "pg_restore", 150004); !errors.Is(err, ErrToolNotFound) || !strings.Contains(err.Error(), "BinDir") {
		t.Errorf("missing pg_restore: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pg_restore"), []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := d.findTool(ctx, "pg_restore", 150004); !errors.Is(err, ErrToolNotFound) || !strings.Contains(err.Error(), "not a PostgreSQL version") {
		t.Errorf("broken pg_restore: %v", err)
	}
}

// Without BinDir: PATH first, then the versioned directories newest first,
// skipping those too old.
func TestFindToolSearchOrder(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	pathDir := filepath.Join(root, "path")
	fakeTool(t, pathDir, "pg_restore", "13.2")
	fakeTool(t, filepath.Join(root, "lib", "9.6", "bin"), "pg_restore", "9.6.24")
	fakeTool(t, filepath.Join(root, "lib", "14", "bin"), "pg_restore", "14.9")
	fakeTool(t, filepath.Join(root, "lib", "16", "bin"), "pg_restore", "16.3")
	fakeTool(t, filepath.Join(root, "lib", "15", "bin"), "pg_restore", "15.5")
	t.Setenv("PATH", pathDir)
	old := libDirs
	libDirs = filepath.Join(root, "lib", "*", "bin")
	t.Cleanup(func() { libDirs = old })

	d := New()
	want := []string{filepath.Join(pathDir, "pg_restore")}
	for _, v := range []string{"16", "15", "14", "9.6"} {
		want = append(want, filepath.Join(root, "lib", v, "bin", "pg_restore"))
	}
	if got := d.candidates("pg_restore"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("candidates\n got %q\nwant %q", got, want)
	}
	for server, wantVersion := range map[int]int{120008: 130002, 130010: 130002, 140005: 160003, 160001: 160003} {
		if tl, err := d.findTool(ctx, "pg_restore", server); err != nil || tl.version != wantVersion {
			t.Errorf("server %d: %+v, %v; want version %d", server, tl, err, wantVersion)
		}
	}
	_, err := d.findTool(ctx, "pg_restore", 170000)
	if !errors.Is(err, ErrToolTooOld) || !strings.Contains(err.Error(), "pg_restore 16") || !strings.Contains(err.Error(), "postgresql-client-17") {
		t.Errorf("server 17: %v", err)
	}
}

func TestToolLogAndRedaction(t *testing.T) {
	c := conf{password: `p'a"s$s;w&o|r d`}
	var got []string
	logf := c.toolLog(func(s string) { got = append(got, s) })
	logf("%s: %s", "pg_restore", "pg_restore: error: bad "+c.password)
	logf("%s: %s", "pg_dump", "warning: x")
	if len(got) != 2 || got[0] != "pg_restore: error: bad ********" || got[1] != "pg_dump: warning: x" {
		t.Fatalf("%q", got)
	}
	err := c.redactErr(errors.New("oops " + c.password))
	if strings.Contains(err.Error(), c.password) {
		t.Fatal(err)
	}
}

func TestConnArgs(t *testing.T) {
	c := conf{host: "db", port: 5433, user: "u", password: "secret"}
	args := strings.Join(c.connArgs("app"), " ")
	if args != "--host=db --port=5433 --username=u --dbname=app --no-password" {
		t.Errorf("%s", args)
	}
	if got := c.connArgs("a=b")[3]; got != `--dbname=dbname='a=b'` {
		t.Errorf("a database named like a conninfo: %s", got)
	}
	for _, kv := range c.toolEnv() {
		if strings.HasPrefix(kv, "PGPASSWORD=") && kv != "PGPASSWORD=secret" {
			t.Errorf("%s", kv)
		}
	}
}
