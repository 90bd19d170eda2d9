package engine

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireTools fails (with DG_REQUIRE_SERVICES=1) or skips when a command
// line tool a person would use is missing.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s is not installed (apt-get install %s)", tool, tool)
			if os.Getenv("DG_REQUIRE_SERVICES") == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// A backup made by the engine is recovered by hand, as spec §4 describes:
// cat the parts, compare sha256sum with the manifest, decompress with the
// standard tool, then open the result with the database's own tool.
func TestRecoverByHandWithStandardTools(t *testing.T) {
	requireTools(t, "sh", "cat", "sha256sum", "gunzip", "zstd", "lz4", "sqlite3", "grep")
	for comp, decompress := range map[string]string{"gzip": "gunzip -c", "zstd": "zstd -d -c", "lz4": "lz4 -d -c"} {
		t.Run(comp, func(t *testing.T) {
			e, err := newEngine(t.Context(), Config{DataDir: t.TempDir(), Logger: discardLogger})
			mustNoErr(t, "new", err)
			defer e.Close()
			f := newFixture(t, e, BackupJob{Compression: comp, MaxFileSizeMB: 1})
			exec1, err := e.RunBackup(t.Context(), f.job.ID)
			mustNoErr(t, "backup", err)
			dir := filepath.Join(f.roots[0], exec1.BackupPath)
			script := `set -e
cd "$1"
cat backup.db.*.part-* > "$2/backup.compressed"
echo "sha256:$(sha256sum "$2/backup.compressed" | cut -d' ' -f1)"
grep -o '"checksum": "sha256:[0-9a-f]*"' manifest.json | head -n1 | cut -d'"' -f4
` + decompress + ` "$2/backup.compressed" > "$2/recovered.db"
sqlite3 "$2/recovered.db" 'PRAGMA integrity_check; SELECT count(*) FROM items;'`
			out, err := exec.Command("sh", "-c", script, "sh", dir, t.TempDir()).CombinedOutput()
			if err != nil {
				t.Fatalf("hand recovery: %v\n%s", err, out)
			}
			lines := strings.Fields(string(out))
			if len(lines) != 4 || lines[0] != lines[1] || lines[0] != exec1.Checksum || lines[2] != "ok" || lines[3] != "3000" {
				t.Fatalf("hand recovery printed %q; want checksum %s twice, ok, 3000", lines, exec1.Checksum)
			}
		})
	}
}

// A directory backup is a plain tar: gunzip and tar bring the tree back.
func TestRecoverFilesByHand(t *testing.T) {
	requireTools(t, "sh", "cat", "gunzip", "tar", "diff")
	ctx := t.Context()
	e, err := newEngine(ctx, Config{DataDir: t.TempDir(), Logger: discardLogger})
	mustNoErr(t, "new", err)
	defer e.Close()
	src := t.TempDir()
	mustNoErr(t, "mkdir", os.MkdirAll(filepath.Join(src, "docs", "2025"), 0o755))
	mustNoErr(t, "write", os.WriteFile(filepath.Join(src, "docs", "2025", "relatório.txt"), []byte(strings.Repeat("dados ", 50000)), 0o640))
	mustNoErr(t, "write", os.WriteFile(filepath.Join(src, "README"), []byte("olá"), 0o644))
	ds := &Datasource{Name: "docs", Type: "files", Path: src}
	mustNoErr(t, "datasource", e.CreateDatasource(ctx, ds, ""))
	root := t.TempDir()
	loc := &StorageLocation{Name: "disk", Type: "local", Config: map[string]string{"path": root}}
	mustNoErr(t, "storage", e.CreateStorageLocation(ctx, loc))
	job := &BackupJob{Name: "docs", DatasourceID: ds.ID, StorageLocationIDs: []string{loc.ID}, Compression: "gzip"}
	mustNoErr(t, "job", e.CreateBackupJob(ctx, job))
	x, err := e.RunBackup(ctx, job.ID)
	mustNoErr(t, "backup", err)
	out := t.TempDir()
	script := `set -e; cat "$1"/backup.tar.gz | gunzip -c | tar -x -C "$2"; diff -r "$3" "$2"`
	if b, err := exec.Command("sh", "-c", script, "sh", filepath.Join(root, x.BackupPath), out, src).CombinedOutput(); err != nil {
		t.Fatalf("hand recovery of a files backup: %v\n%s", err, b)
	}
}

// What a driver reports while dumping reaches the execution's stored log.
func TestDumpNotesReachExecutionLog(t *testing.T) {
	ctx := t.Context()
	e, err := newEngine(ctx, Config{DataDir: t.TempDir(), Logger: discardLogger})
	mustNoErr(t, "new", err)
	defer e.Close()
	src := t.TempDir()
	mustNoErr(t, "write", os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644))
	sock, err := net.Listen("unix", filepath.Join(src, "app.sock"))
	mustNoErr(t, "listen", err)
	defer sock.Close()
	ds := &Datasource{Name: "tree", Type: "files", Path: src}
	mustNoErr(t, "datasource", e.CreateDatasource(ctx, ds, ""))
	loc := &StorageLocation{Name: "disk", Type: "local", Config: map[string]string{"path": t.TempDir()}}
	mustNoErr(t, "storage", e.CreateStorageLocation(ctx, loc))
	job := &BackupJob{Name: "tree", DatasourceID: ds.ID, StorageLocationIDs: []string{loc.ID}}
	mustNoErr(t, "job", e.CreateBackupJob(ctx, job))
	x, err := e.RunBackup(ctx, job.ID)
	mustNoErr(t, "backup", err)
	if l := logText(t, e, x.ID); !strings.Contains(l, "[BACKUP] skipping special file app.sock") {
		t.Fatalf("execution log lacks the driver's note:\n%s", l)
	}
}
