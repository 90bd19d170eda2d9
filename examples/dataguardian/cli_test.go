package main

import (
	"crypto/sha256"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/manifest"
)

// TestSQLiteBackupVerifyRestore is the whole one-shot cycle on a 4 MiB
// SQLite database split into 1 MiB parts, then a corrupted part.
func TestSQLiteBackupVerifyRestore(t *testing.T) {
	dir := t.TempDir()
	db, storageDir := filepath.Join(dir, "App.db"), filepath.Join(dir, "backups")
	newSQLite(t, db, 4000)
	want := sqliteDigest(t, db)

	res := ok(t, "backup", "--type", "sqlite", "--dsn", db, "--storage", storageDir, "--compression", "zstd", "--max-file-size-mb", "1")
	run := strings.TrimSpace(res.stdout)
	if !filepath.IsAbs(run) || filepath.Dir(filepath.Dir(run)) != storageDir || filepath.Base(filepath.Dir(run)) != "sqlite-app" {
		t.Fatalf("backup printed %q, want the absolute path of %s/sqlite-app/RUN", run, storageDir)
	}
	if res.stderr != "" {
		t.Errorf("backup wrote to stderr while it is not a terminal: %q", res.stderr)
	}
	parts, _ := filepath.Glob(filepath.Join(run, "backup.db.zst.part-*"))
	if len(parts) < 4 {
		t.Fatalf("want at least 4 parts of 1 MiB, got %v", parts)
	}

	t.Run("ls", func(t *testing.T) {
		res := ok(t, "ls", storageDir)
		if !strings.Contains(res.stdout, "completed") || !strings.Contains(res.stdout, "zstd") || !strings.Contains(res.stdout, filepath.Join("sqlite-app", filepath.Base(run))) {
			t.Errorf("ls output lacks the backup:\n%s", res.stdout)
		}
		var entries []lsEntry
		decode(t, ok(t, "ls", storageDir, "--json"), &entries)
		if len(entries) != 1 || entries[0].Dir != run || entries[0].Status != manifest.StatusCompleted || entries[0].Parts != len(parts) ||
			entries[0].DatasourceType != "sqlite" || entries[0].Compression != manifest.Zstd || entries[0].SizeBytes < 3<<20 || entries[0].Size == "" {
			t.Errorf("ls --json = %+v", entries)
		}
	})

	t.Run("verify", func(t *testing.T) {
		res := ok(t, "verify", run)
		if !strings.Contains(res.stdout, "OK: every checksum matches") || strings.Count(res.stdout, " ok") < len(parts)+1 {
			t.Errorf("verify output:\n%s", res.stdout)
		}
		var out verifyOutput
		decode(t, ok(t, "verify", "--json", run), &out)
		if !out.OK || !out.WholeOK || len(out.Chunks) != len(parts) || out.Manifest == nil || out.Manifest.Parts != len(parts) {
			t.Errorf("verify --json = %+v", out)
		}
	})

	target := filepath.Join(dir, "restored.db")
	t.Run("restore", func(t *testing.T) {
		var out restoreOutput
		decode(t, ok(t, "restore", run, "--dsn", target, "--json"), &out)
		if !out.OK || out.SourceDir != run || out.Type != "sqlite" || out.Target != "sqlite:"+target {
			t.Errorf("restore --json = %+v", out)
		}
		if got := sqliteDigest(t, target); got != want {
			t.Fatalf("restored data differs:\n got %s\nwant %s", got, want)
		}
	})

	t.Run("verify-only without a Verifier", func(t *testing.T) {
		res := fails(t, 1, "restore", run, "--dsn", filepath.Join(dir, "v.db"), "--verify-only")
		if !strings.Contains(res.stderr, "cannot verify into a temporary database") {
			t.Errorf("stderr: %s", res.stderr)
		}
	})

	t.Run("corrupt part", func(t *testing.T) {
		part := parts[1]
		b, err := os.ReadFile(part)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(part, b, 0o644); err != nil {
			t.Fatal(err)
		}
		res := fails(t, 1, "verify", run)
		name := filepath.Base(part)
		if !strings.Contains(res.stderr, name) || !strings.Contains(res.stderr, "checksum mismatch") {
			t.Errorf("verify does not name the corrupt part %s:\n%v", name, res)
		}
		if !strings.Contains(res.stdout, "part 2/") || !strings.Contains(res.stdout, "FAILED") || strings.Count(res.stdout, "  ok") != len(parts)-1 {
			t.Errorf("verify summary should flag part 2 only:\n%s", res.stdout)
		}
		var out verifyOutput
		decode(t, fails(t, 1, "verify", run, "--json"), &out)
		if out.OK || out.Chunks[1].OK || !out.Chunks[0].OK || !strings.Contains(out.Error, name) {
			t.Errorf("verify --json = %+v", out)
		}

		before := fileSum(t, target)
		res = fails(t, 1, "restore", run, "--dsn", target, "--force")
		if !strings.Contains(res.stderr, name) || !strings.Contains(res.stderr, "target was not touched") {
			t.Errorf("restore does not refuse naming the part:\n%v", res)
		}
		if fileSum(t, target) != before {
			t.Error("the target changed although a part is corrupt")
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".restore-") {
				t.Errorf("restore left %s", e.Name())
			}
		}
	})
}

// treeListing describes every entry under root: path, type, mode and the
// sha256 of a file or the target of a link.
func treeListing(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := rel + " " + fi.Mode().String()
		switch {
		case fi.Mode().IsRegular():
			line += " " + fileSum(t, path)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			line += " -> " + target
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFilesBackupRestore(t *testing.T) {
	dir := t.TempDir()
	site, storageDir := filepath.Join(dir, "www"), filepath.Join(dir, "backups")
	for name, content := range map[string]string{
		"index.html":             "<h1>olá</h1>",
		"assets/app.js":          strings.Repeat("console.log(1);\n", 5000),
		"assets/img/logo.bin":    string(sha256.New().Sum(nil)),
		"empty":                  "",
		"deep/a/b/c/d/file.txt":  "deep",
		"name with spaces/ç.txt": "utf-8 names",
	} {
		p := filepath.Join(site, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("index.html", filepath.Join(site, "home.html")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(site, "empty-dir"), 0o700); err != nil {
		t.Fatal(err)
	}

	var b backupOutput
	decode(t, ok(t, "backup", "--type", "files", "--dsn", "file:"+site, "--storage", storageDir, "--job-id", "site", "--compression", "lz4", "--json"), &b)
	if b.Key != "site/"+filepath.Base(b.Dir) || b.Manifest == nil || b.Manifest.DatasourceType != "files" || b.Manifest.Compression != manifest.LZ4 || b.Manifest.Parts != 1 {
		t.Fatalf("backup --json = %+v", b)
	}
	if _, err := os.Stat(filepath.Join(b.Dir, "backup.tar.lz4")); err != nil {
		t.Fatal(err)
	}
	ok(t, "verify", b.Dir)
	restored := filepath.Join(dir, "restored")
	ok(t, "restore", b.Dir, "--dsn", restored)
	if got, want := treeListing(t, restored), treeListing(t, site); !slices.Equal(got, want) {
		t.Errorf("restored tree differs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"backup", "--bogus"}, "-bogus"},
		{[]string{"backup", "--type", "sqlite", "--dsn", "x.db", "--storage", dir, "--compression", "brotli"}, "--compression"},
		{[]string{"backup", "--type", "sqlite", "--dsn", "x.db", "--storage", dir, "--max-file-size-mb", "0"}, "--max-file-size-mb"},
		{[]string{"backup", "--type", "sqlite", "--dsn", "x.db", "--storage", dir, "--max-file-size-mb", "lots"}, "-max-file-size-mb"},
		{[]string{"backup", "--type", "oracle", "--dsn", "x", "--storage", dir}, "--type"},
		{[]string{"backup", "--type", "sqlite", "--storage", dir}, "--dsn"},
		{[]string{"backup", "--type", "postgres", "--dsn", "mysql://u@h/db", "--storage", dir}, "--dsn"},
		{[]string{"backup", "--type", "sqlite", "--dsn", "x.db", "--storage", dir, "extra"}, `"extra"`},
		{[]string{"verify"}, "RUN_DIR"},
		{[]string{"verify", dir, "--dsn", "x"}, "-dsn"},
		{[]string{"verify", dir, "other"}, `"other"`},
		{[]string{"restore", dir}, "--dsn"},
		{[]string{"restore", "--dsn", "x.db"}, "RUN_DIR"},
		{[]string{"restore", dir, "--dsn", "x.db", "--compression", "zstd"}, "-compression"},
		{[]string{"restore", dir, "--dsn", "x.db", "--keep-verification-database"}, "--verify-only"},
		{[]string{"ls", "--all", dir}, "-all"},
		{[]string{"ls"}, "DIR"},
		{[]string{"frobnicate"}, `"frobnicate"`},
		{nil, "Usage"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			res := fails(t, 2, tt.args...)
			if !strings.Contains(res.stderr, tt.want) {
				t.Errorf("stderr does not name %s:\n%s", tt.want, res.stderr)
			}
			if res.stdout != "" {
				t.Errorf("stdout: %q", res.stdout)
			}
		})
	}
	restoreDir := filepath.Join(dir, "job", "2025-02-13_060001")
	if err := os.MkdirAll(restoreDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Run("not a run folder", func(t *testing.T) {
		res := fails(t, 2, "verify", filepath.Join(dir, "job"))
		if !strings.Contains(res.stderr, "is not a run folder") {
			t.Error(res)
		}
	})
	t.Run("incomplete run folder", func(t *testing.T) {
		res := fails(t, 1, "restore", restoreDir, "--dsn", filepath.Join(dir, "t.db"))
		if !strings.Contains(res.stderr, "incomplete") {
			t.Error(res)
		}
	})
	for _, cmd := range []string{"backup", "verify", "restore", "ls"} {
		t.Run(cmd+" --help", func(t *testing.T) {
			res := ok(t, cmd, "--help")
			if !strings.Contains(res.stdout, "Example:\n") || !strings.Contains(res.stdout, "dataguardian "+cmd+" ") || !strings.Contains(res.stdout, "-json") {
				t.Errorf("help of %s:\n%s", cmd, res.stdout)
			}
		})
	}
}

// TestPasswordsNeverPrinted runs commands that fail at the server (a closed
// port) or succeed, with passwords from DG_PASSWORD, --password-file and the
// DSN, and checks that no output holds any of them.
func TestPasswordsNeverPrinted(t *testing.T) {
	const envPW, filePW, dsnPW = "Env-S3cret!pw", "File-S3cret$pw", "Dsn-S3cret&pw"
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(filePW+"\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "a.db")
	newSQLite(t, db, 10)
	env := []string{envPassword + "=" + envPW}
	run := strings.TrimSpace(dg(t, env, "backup", "--type", "sqlite", "--dsn", db, "--storage", dir).stdout)
	cases := []struct {
		warn bool // --dsn holds a password and parses
		args []string
	}{
		{false, []string{"backup", "--type", "postgres", "--dsn", "postgres://app@127.0.0.1:1/shop?sslmode=disable&connect_timeout=2", "--storage", dir}},
		{false, []string{"backup", "--type", "mysql", "--dsn", "app@tcp(127.0.0.1:1)/shop", "--storage", dir, "--json"}},
		{false, []string{"backup", "--type", "mariadb", "--dsn", "mysql://app@127.0.0.1:1/shop", "--storage", dir, "--password-file", pwFile}},
		{true, []string{"backup", "--type", "postgres", "--dsn", "postgres://app:" + pctEncode(dsnPW) + "@127.0.0.1:1/shop?connect_timeout=2", "--storage", dir}},
		{true, []string{"backup", "--type", "mysql", "--dsn", "app:" + dsnPW + "@tcp(127.0.0.1:1)/shop", "--storage", dir, "--json"}},
		{true, []string{"backup", "--type", "postgres", "--dsn", "postgres://app:" + dsnPW + "@127.0.0.1:1/shop", "--storage", dir}},    // "&" needs no escape there
		{false, []string{"backup", "--type", "postgres", "--dsn", "postgres://app:" + dsnPW + "/#@127.0.0.1:1/shop", "--storage", dir}}, // unescaped "/": not a URL
		{false, []string{"restore", run, "--type", "sqlite", "--dsn", filepath.Join(dir, "b.db"), "--json"}},
		{false, []string{"restore", run, "--dsn", "postgres://app:" + pctEncode(dsnPW) + "@127.0.0.1:1/shop", "--json"}}, // a URL for a sqlite backup
	}
	for _, tt := range cases {
		res := dg(t, env, tt.args...)
		for _, pw := range []string{envPW, filePW, dsnPW, pctEncode(dsnPW)} {
			if strings.Contains(res.stdout+res.stderr, pw) {
				t.Errorf("dataguardian %s printed a password:\n%v", strings.Join(tt.args, " "), res)
			}
		}
		if tt.warn != strings.Contains(res.stderr, "warning: the password in --dsn") {
			t.Errorf("dataguardian %s: want the ps warning %v:\n%v", strings.Join(tt.args, " "), tt.warn, res)
		}
	}
}

func pctEncode(s string) string {
	return strings.NewReplacer("!", "%21", "$", "%24", "&", "%26").Replace(s)
}

// TestInterruptedBackupLeavesNoManifest sends SIGINT to a backup of a
// 64 GiB sparse file (read at memory speed, compressed to almost nothing)
// while it runs.
func TestInterruptedBackupLeavesNoManifest(t *testing.T) {
	dir := t.TempDir()
	tree, storageDir := filepath.Join(dir, "big"), filepath.Join(dir, "backups")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(tree, "sparse.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 30); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
	f.Close()
	cmd := exec.Command(binary, "backup", "--type", "files", "--dsn", tree, "--storage", storageDir, "--compression", "lz4")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Wait until the first part is being written.
	deadline := time.Now().Add(20 * time.Second)
	for {
		parts, _ := filepath.Glob(filepath.Join(storageDir, "files-big", "*", ".incomplete-part-001*"))
		tmps, _ := filepath.Glob(filepath.Join(storageDir, "files-big", "*", "..incomplete-part-001*"))
		if len(parts)+len(tmps) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the backup wrote no part within 20 s; stderr: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the backup did not stop within 30 s of SIGINT")
	}
	if err == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("interrupted backup: %v (exit %d), want exit 1; stderr: %s", err, cmd.ProcessState.ExitCode(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupt") {
		t.Errorf("stderr does not say it was interrupted: %s", stderr.String())
	}
	noManifest(t, storageDir)
	filepath.WalkDir(storageDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("the interrupted backup left %s", path)
		}
		return nil
	})
	res := ok(t, "ls", storageDir)
	if strings.Contains(res.stdout, "completed") {
		t.Errorf("ls shows a completed backup:\n%s", res.stdout)
	}
}

func TestHelpers(t *testing.T) {
	for _, tt := range []struct {
		src  drivers.Source
		want string
	}{
		{drivers.Source{Type: "sqlite", Path: "/srv/App.db"}, "sqlite-app"},
		{drivers.Source{Type: "sqlite", Path: "data/my app.v2.sqlite3"}, "sqlite-my-app-v2"},
		{drivers.Source{Type: "files", Path: "/var/www"}, "files-www"},
		{drivers.Source{Type: "files", Path: "/"}, "files"},
		{drivers.Source{Type: "postgres", Database: "Shop_EU"}, "postgres-shop-eu"},
		{drivers.Source{Type: "mysql", Database: "ção"}, "mysql-o"},
		{drivers.Source{Type: "mysql", Database: "çã"}, "mysql"},
		{drivers.Source{Type: "mariadb", Database: strings.Repeat("a", 99)}, "mariadb-" + strings.Repeat("a", 48)},
	} {
		if got := defaultJobID(tt.src); got != tt.want {
			t.Errorf("defaultJobID(%v) = %q, want %q", tt.src, got, tt.want)
		}
	}
	for id, want := range map[string]string{
		"3F2A9C1E-7B00-4c4e-9d8a-000000000000": "dg_verify_3f2a9c1e",
		"a-b":                                  "dg_verify_a_b",
	} {
		if got := verifyDatabaseName(&manifest.Manifest{ExecutionID: id}); got != want {
			t.Errorf("verifyDatabaseName(%q) = %q, want %q", id, got, want)
		}
	}
	if got := verifyDatabaseName(&manifest.Manifest{CreatedAt: time.Date(2025, 2, 13, 6, 0, 1, 0, time.UTC)}); got != "dg_verify_20250213" {
		t.Errorf("verifyDatabaseName without ID = %q", got)
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 40: "3.0 TiB"} {
		if got := manifest.FormatBytes(n); got != want {
			t.Errorf("manifest.FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestProgress checks the status line a terminal gets: redrawn in place,
// ended with a newline, with bytes, rate and elapsed time.
func TestProgress(t *testing.T) {
	var out strings.Builder
	c := newCLI(&strings.Builder{}, &out, func(string) string { return "" }, true)
	p := c.startProgress("backup", 0)
	w := p.writer(&strings.Builder{})
	w.Write(make([]byte, 3<<20))
	time.Sleep(3 * progressInterval)
	c.logf("[RESTORE]")("a log line with %s", "x")
	p.stop()
	p.stop()
	s := out.String()
	if !strings.Contains(s, "\rbackup: 3.0 MiB, ") && !strings.Contains(s, "\r\x1b[Kbackup: 3.0 MiB, ") {
		t.Errorf("no status line redrawn in place: %q", s)
	}
	if !strings.Contains(s, "\r\x1b[K[RESTORE] a log line with x\n") || !strings.HasSuffix(s, "\n") || !strings.Contains(s, "MiB/s, ") {
		t.Errorf("progress output: %q", s)
	}
	var quiet strings.Builder
	c = newCLI(&strings.Builder{}, &quiet, func(string) string { return "" }, false)
	p = c.startProgress("backup", 0)
	p.writer(&strings.Builder{}).Write([]byte("x"))
	p.stop()
	if quiet.Len() != 0 {
		t.Errorf("progress printed without a terminal: %q", quiet.String())
	}
}

// An encrypted backup from the CLI (--age-recipient): its file ends in
// .age; restore without --age-identity is refused naming the public key
// and writes nothing; with the key file it restores the tree; a secret
// key given as a recipient is refused without being echoed.
func TestEncryptedBackupRestore(t *testing.T) {
	dir := t.TempDir()
	site, storageDir := filepath.Join(dir, "www"), filepath.Join(dir, "backups")
	if err := os.MkdirAll(site, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte(strings.Repeat("<p>olá</p>\n", 1000)), 0o640); err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "key.txt")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := dg(t, nil, "backup", "--type", "files", "--dsn", "file:"+site, "--storage", storageDir, "--age-recipient", id.String())
	if bad.code != exitUsage || strings.Contains(bad.stderr, id.String()[16:]) {
		t.Errorf("a secret key as recipient: %v", bad)
	}
	var b backupOutput
	decode(t, ok(t, "backup", "--type", "files", "--dsn", "file:"+site, "--storage", storageDir, "--job-id", "site",
		"--age-recipient", id.Recipient().String(), "--json"), &b)
	if _, err := os.Stat(filepath.Join(b.Dir, "backup.tar.gz.age")); err != nil {
		t.Fatal(err)
	}
	ok(t, "verify", b.Dir)
	restored := filepath.Join(dir, "restored")
	res := dg(t, nil, "restore", b.Dir, "--dsn", restored)
	if res.code == 0 || !strings.Contains(res.stderr, id.Recipient().String()) || !strings.Contains(res.stderr, "--age-identity") {
		t.Errorf("restore without the key: %v", res)
	}
	if _, err := os.Stat(restored); !os.IsNotExist(err) {
		t.Errorf("the refused restore wrote %s (%v)", restored, err)
	}
	ok(t, "restore", b.Dir, "--dsn", restored, "--age-identity", keyFile)
	if got, want := treeListing(t, restored), treeListing(t, site); !slices.Equal(got, want) {
		t.Errorf("restored tree differs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
