package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/internal/testsvc"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/google/uuid"
	"github.com/uptrace/bun/driver/pgdriver"
)

// fakeDriver is a driver whose restore target is inspected (or not).
type fakeDriver struct{ drivers.Driver }

func (fakeDriver) Type() string { return "fake" }

type inspectingDriver struct {
	fakeDriver
	empty bool
	err   error
}

func (d inspectingDriver) Empty(context.Context, drivers.Source) (bool, error) { return d.empty, d.err }

func TestRefuseNonEmpty(t *testing.T) {
	target := drivers.Source{Type: "fake", Path: "/srv/target"}
	errBroken := errors.New("server gone")
	for _, tt := range []struct {
		name  string
		drv   drivers.Driver
		usage bool     // refused as a usage error (exit 2)
		want  []string // in the message
	}{
		{"empty", inspectingDriver{empty: true}, false, nil},
		{"not empty", inspectingDriver{}, true, []string{"/srv/target is not empty", "--force", "--recreate"}},
		{"cannot tell", fakeDriver{}, true, []string{"cannot tell whether", "--force"}},
		{"inspection fails", inspectingDriver{err: errBroken}, false, []string{"check whether", "server gone"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := refuseNonEmpty(t.Context(), tt.drv, target)
			var ue *usageError
			if errors.As(err, &ue) != tt.usage || (tt.want == nil) != (err == nil) {
				t.Fatalf("refuseNonEmpty = %v (usage error %v), want usage %v", err, errors.As(err, &ue), tt.usage)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
	if err := refuseNonEmpty(t.Context(), inspectingDriver{err: errBroken}, target); !errors.Is(err, errBroken) {
		t.Errorf("inspection error not wrapped: %v", err)
	}
}

// A restore into a directory that holds files is refused, and the files
// stay; --force replaces them; an empty directory needs nothing.
func TestRestoreRefusesNonEmptyDirectory(t *testing.T) {
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	if err := os.MkdirAll(filepath.Join(site, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"index.html": "<h1>oi</h1>", "sub/app.js": "x()"} {
		if err := os.WriteFile(filepath.Join(site, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var b backupOutput
	decode(t, ok(t, "backup", "--type", "files", "--dsn", site, "--storage", filepath.Join(dir, "backups"), "--json"), &b)

	target := filepath.Join(dir, "target")
	if err := os.MkdirAll(target, 0o755); err != nil {
		t.Fatal(err)
	}
	unrelated := filepath.Join(target, "unrelated.txt")
	if err := os.WriteFile(unrelated, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := fails(t, exitUsage, "restore", b.Dir, "--dsn", target)
	if !strings.Contains(res.stderr, "is not empty") || !strings.Contains(res.stderr, "--force") || !strings.Contains(res.stderr, "--recreate") {
		t.Errorf("refusal does not say what to do:\n%v", res)
	}
	if got, err := os.ReadFile(unrelated); err != nil || string(got) != "keep me" {
		t.Fatalf("the refused restore touched %s: %q, %v", unrelated, got, err)
	}
	var out restoreOutput
	decode(t, fails(t, exitUsage, "restore", b.Dir, "--dsn", target, "--json"), &out)
	if out.OK || !strings.Contains(out.Error, "is not empty") {
		t.Errorf("restore --json = %+v", out)
	}

	ok(t, "restore", b.Dir, "--dsn", target, "--force")
	if got, want := treeListing(t, target), treeListing(t, site); !slices.Equal(got, want) {
		t.Errorf("--force restored tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	empty := filepath.Join(dir, "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	ok(t, "restore", b.Dir, "--dsn", empty)
	if got, want := treeListing(t, empty), treeListing(t, site); !slices.Equal(got, want) {
		t.Errorf("restored tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// pgDatabaseDSN returns the DSN of database name on the server of dsn.
func pgDatabaseDSN(t *testing.T, dsn, name string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func pgExec(t *testing.T, dsn string, queries ...string) {
	t.Helper()
	db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn)))
	defer db.Close()
	for _, q := range queries {
		if _, err := db.ExecContext(context.WithoutCancel(t.Context()), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// pgTables lists the tables of the public schema with their row counts.
func pgTables(t *testing.T, dsn string) []string {
	t.Helper()
	db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn)))
	defer db.Close()
	rows, err := db.Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	var out []string
	for _, n := range names {
		var count int64
		if err := db.QueryRow(`SELECT count(*) FROM "` + n + `"`).Scan(&count); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s:%d", n, count))
	}
	return out
}

// missingPostgresDatabase returns the DSN of a database that does not
// exist yet; it is dropped when t ends.
func missingPostgresDatabase(t *testing.T) string {
	t.Helper()
	admin := testsvc.PostgresDSN(t)
	name := "dgtest_missing_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	t.Cleanup(func() { pgExec(t, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	return pgDatabaseDSN(t, admin, name)
}

// A restore into a PostgreSQL database that has a table is refused and
// leaves it alone; --recreate replaces it; a missing database is created.
func TestRestoreRefusesNonEmptyPostgres(t *testing.T) {
	source := testsvc.NewPostgresDatabase(t)
	pgExec(t, source,
		`CREATE TABLE customers (id serial PRIMARY KEY, name text)`,
		`INSERT INTO customers(name) SELECT 'c' || g FROM generate_series(1, 250) g`)
	var b backupOutput
	decode(t, ok(t, "backup", "--type", "postgres", "--dsn", source, "--storage", t.TempDir(), "--json"), &b)
	want := pgTables(t, source)

	busy := testsvc.NewPostgresDatabase(t)
	pgExec(t, busy, `CREATE TABLE keepme (id int)`, `INSERT INTO keepme VALUES (1), (2)`)
	res := fails(t, exitUsage, "restore", b.Dir, "--dsn", busy)
	if !strings.Contains(res.stderr, "is not empty") || !strings.Contains(res.stderr, "--force") || !strings.Contains(res.stderr, "--recreate") {
		t.Errorf("refusal does not say what to do:\n%v", res)
	}
	if got := pgTables(t, busy); !slices.Equal(got, []string{"keepme:2"}) {
		t.Fatalf("the refused restore changed the database: %v", got)
	}

	ok(t, "restore", b.Dir, "--dsn", busy, "--recreate")
	if got := pgTables(t, busy); !slices.Equal(got, want) {
		t.Errorf("after --recreate: %v, want %v", got, want)
	}

	missing := missingPostgresDatabase(t)
	ok(t, "restore", b.Dir, "--dsn", missing)
	if got := pgTables(t, missing); !slices.Equal(got, want) {
		t.Errorf("restored into a missing database: %v, want %v", got, want)
	}

	// --verify-only never needs --force: it restores into a new database.
	if res := dg(t, nil, "restore", b.Dir, "--dsn", busy, "--verify-only"); res.code != 0 {
		t.Errorf("--verify-only next to a non-empty database: %v", res)
	}
}

// recoveryCommands returns the "  $ " commands of RECOVERY.txt in order.
func recoveryCommands(t *testing.T, folder string) []string {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(folder, manifest.RecoveryFileName))
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, l := range strings.Split(string(text), "\n") {
		if c, ok := strings.CutPrefix(l, "  $ "); ok {
			cmds = append(cmds, c)
		}
	}
	return cmds
}

// runRecovery runs every command of RECOVERY.txt in a copy of folder, the
// placeholders replaced, with env added.
func runRecovery(t *testing.T, folder string, placeholders *strings.Replacer, env ...string) string {
	t.Helper()
	for _, tool := range []string{"sh", "cp", "cat", "sha256sum", "gunzip", "zstd"} {
		if _, err := exec.LookPath(tool); err != nil {
			testsvc.Require(t, tool, err)
		}
	}
	work := filepath.Join(t.TempDir(), "work")
	copyTree(t, folder, work)
	for _, c := range recoveryCommands(t, folder) {
		line := placeholders.Replace(c)
		cmd := exec.Command("sh", "-c", line)
		cmd.Dir, cmd.Env, cmd.Stdin = work, append(os.Environ(), env...), strings.NewReader("")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
	}
	return work
}

// Every command of RECOVERY.txt, the database tool's included, recovers a
// backup made by the CLI with nothing but standard tools.
func TestRecoverByHandFromRecoveryText(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		db, _, run := sqliteRun(t, t.TempDir(), 2500)
		work := runRecovery(t, run, strings.NewReplacer())
		if got, want := sqliteDigest(t, filepath.Join(work, "app.db")), sqliteDigest(t, db); got != want {
			t.Errorf("recovered by hand:\n got %s\nwant %s", got, want)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		for _, tool := range []string{"createdb", "pg_restore"} {
			if _, err := exec.LookPath(tool); err != nil {
				testsvc.Require(t, tool, err)
			}
		}
		source := testsvc.NewPostgresDatabase(t)
		pgExec(t, source,
			`CREATE TABLE orders (id bigserial PRIMARY KEY, note text)`,
			`INSERT INTO orders(note) SELECT md5(g::text) FROM generate_series(1, 80000) g`,
			`CREATE VIEW recent AS SELECT * FROM orders WHERE id > 79000`)
		var b backupOutput
		decode(t, ok(t, "backup", "--type", "postgres", "--dsn", source, "--storage", t.TempDir(), "--compression", "zstd", "--max-file-size-mb", "1", "--json"), &b)
		if b.Manifest.Parts < 2 {
			t.Fatalf("want a split backup, got %d part of %d bytes", b.Manifest.Parts, b.Manifest.CompressedSizeBytes)
		}
		target := missingPostgresDatabase(t)
		u, _ := url.Parse(target)
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = "5432"
		}
		env := []string{"PGHOST=" + host, "PGPORT=" + port, "PGUSER=" + u.User.Username()}
		if pw, ok := u.User.Password(); ok {
			env = append(env, "PGPASSWORD="+pw)
		}
		runRecovery(t, b.Dir, strings.NewReplacer("DB", strings.TrimPrefix(u.Path, "/")), env...)
		if got, want := pgTables(t, target), pgTables(t, source); !slices.Equal(got, want) {
			t.Errorf("recovered by hand: %v, want %v", got, want)
		}
	})
}

// The README's by-hand recovery, run verbatim with sh on a split backup
// made by the CLI, in clear (gzip) and encrypted with age (zstd): every
// step but the load runs from RECOVERY.txt and leaves the archive, which
// tar extracts into the original tree.
func TestREADMERecoverByHand(t *testing.T) {
	for _, tool := range []string{"sh", "awk", "cp", "cat", "sha256sum", "gunzip", "zstd", "age", "tar"} {
		_, err := exec.LookPath(tool)
		testsvc.Require(t, tool+" (the README's recovery runs it)", err)
	}
	block := readmeBlock(t, "recover-by-hand")
	site := filepath.Join(t.TempDir(), "site")
	if err := os.MkdirAll(site, 0o755); err != nil {
		t.Fatal(err)
	}
	noise := make([]byte, 3<<20) // incompressible: three 1 MiB parts and more
	rand.Read(noise)
	if err := os.WriteFile(filepath.Join(site, "blob.bin"), noise, 0o644); err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "my-key.txt")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		key  string
	}{
		{"gzip", []string{"--compression", "gzip"}, ""},
		{"zstd+age", []string{"--compression", "zstd", "--age-recipient", id.Recipient().String()}, keyFile},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b backupOutput
			decode(t, ok(t, append([]string{"backup", "--type", "files", "--dsn", "file:" + site, "--storage", t.TempDir(),
				"--max-file-size-mb", "1", "--json"}, c.args...)...), &b)
			if b.Manifest.Parts < 3 {
				t.Fatalf("want a split backup: %+v", b.Manifest)
			}
			dest := filepath.Join(t.TempDir(), "restore")
			cmd := exec.CommandContext(t.Context(), "sh", "-e", "-c", block)
			cmd.Env = append(os.Environ(), "RUN="+b.Dir, "KEY="+c.key, "DEST="+dest)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("the README's recovery: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "Load it with tar") {
				t.Errorf("the last step was not shown:\n%s", out)
			}
			tree := filepath.Join(t.TempDir(), "tree")
			if err := os.MkdirAll(tree, 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("tar", "-xf", filepath.Join(dest, "backup.tar"), "-C", tree).CombinedOutput(); err != nil {
				t.Fatalf("tar: %v\n%s", err, out)
			}
			if got, err := os.ReadFile(filepath.Join(tree, "blob.bin")); err != nil || !bytes.Equal(got, noise) {
				t.Fatalf("recovered blob.bin: %d bytes, %v", len(got), err)
			}
		})
	}
}
