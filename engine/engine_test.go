package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/engine/internal/storedb"
	"github.com/dataguardian/dataguardian/internal/testsvc"
	"github.com/dataguardian/dataguardian/manifest"
)

// discardLogger keeps test output to failures; execution logs are still
// stored and asserted on.
var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// forEachStoreURL runs fn in a parallel subtest per metadata store: a new
// SQLite file and a new PostgreSQL database.
func forEachStoreURL(t *testing.T, fn func(t *testing.T, url string)) {
	t.Helper()
	for name, url := range map[string]func(t *testing.T) string{
		"sqlite":   sqliteTestURL,
		"postgres": func(t *testing.T) string { return testsvc.NewPostgresDatabase(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, url(t))
		})
	}
}

// forEachEngine runs fn against an Engine on SQLite metadata and one on
// PostgreSQL metadata (a fresh database on the test server).
func forEachEngine(t *testing.T, fn func(t *testing.T, e *Engine)) {
	t.Helper()
	forEachStoreURL(t, func(t *testing.T, url string) {
		e, err := newEngine(t.Context(), Config{DataDir: t.TempDir(), DatabaseURL: url, Logger: discardLogger})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		fn(t, e)
	})
}

// fixture is a SQLite datasource and a job writing to two local storages.
type fixture struct {
	e      *Engine
	dbPath string
	roots  []string
	ds     *Datasource
	job    *BackupJob
}

func newFixture(t *testing.T, e *Engine, job BackupJob) *fixture {
	t.Helper()
	ctx := t.Context()
	f := &fixture{e: e, dbPath: filepath.Join(t.TempDir(), "app.db")}
	makeSQLite(t, f.dbPath, 3000)
	f.ds = &Datasource{Name: "app", Type: "sqlite", Path: f.dbPath}
	mustNoErr(t, "create datasource", e.CreateDatasource(ctx, f.ds, ""))
	for i := range 2 {
		root := t.TempDir()
		loc := &StorageLocation{Name: fmt.Sprintf("disk%d", i+1), Type: "local", Config: map[string]string{"path": root}}
		mustNoErr(t, "create storage", e.CreateStorageLocation(ctx, loc))
		f.roots = append(f.roots, root)
		job.StorageLocationIDs = append(job.StorageLocationIDs, loc.ID)
	}
	job.Name, job.DatasourceID = "app nightly", f.ds.ID
	f.job = &job
	mustNoErr(t, "create job", e.CreateBackupJob(ctx, f.job))
	return f
}

// makeSQLite creates a database with rows of incompressible blobs.
func makeSQLite(t *testing.T, path string, rows int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db, `CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, blob BLOB)`)
	mustExec(t, db, `CREATE INDEX items_name ON items(name)`)
	tx, _ := db.Begin()
	blob := make([]byte, 700)
	for i := range rows {
		rand.Read(blob)
		if _, err := tx.Exec(`INSERT INTO items (name, blob) VALUES (?, ?)`, fmt.Sprintf("item ção %d", i), blob); err != nil {
			t.Fatal(err)
		}
	}
	mustNoErr(t, "commit", tx.Commit())
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// digest is the row count and a sha256 over every row of items.
func digest(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, name, blob FROM items ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	h, n := sha256.New(), 0
	for rows.Next() {
		var id int
		var name string
		var blob []byte
		if err := rows.Scan(&id, &name, &blob); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%d|%s|%x\n", id, name, blob)
		n++
	}
	return fmt.Sprintf("%d rows %x", n, h.Sum(nil))
}

func logText(t *testing.T, e *Engine, id string) string {
	t.Helper()
	lines, err := e.ExecutionLogs(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Message + "\n")
	}
	return b.String()
}

var runFolder = regexp.MustCompile(`^[0-9a-f-]{36}/\d{4}-\d{2}-\d{2}_\d{6}$`)

func TestBackupAndRestoreEndToEnd(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{Compression: "zstd", MaxFileSizeMB: 1})
		events, stop := e.Events().Subscribe(16)
		defer stop()
		exec, err := e.RunBackup(ctx, f.job.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Store().GetExecution(ctx, exec.ID)
		mustNoErr(t, "get execution", err)
		if got.Status != ExecutionCompleted || !runFolder.MatchString(got.BackupPath) || got.SizeBytes == 0 ||
			!strings.HasPrefix(got.Checksum, "sha256:") || got.StartedAt == nil || got.FinishedAt == nil {
			t.Fatalf("execution = %+v", got)
		}
		statuses, err := e.Store().ListExecutionStorages(ctx, exec.ID)
		mustNoErr(t, "storages", err)
		if len(statuses) != 2 || statuses[0].Status != StorageAvailable || statuses[1].Status != StorageAvailable {
			t.Fatalf("storage statuses = %+v", statuses)
		}
		for _, root := range f.roots {
			parts, _ := filepath.Glob(filepath.Join(root, got.BackupPath, "backup.db.zst.part-*"))
			if len(parts) < 2 {
				t.Fatalf("%s: want a split backup, parts %v", root, parts)
			}
		}
		if a, b, c := <-events, <-events, <-events; a.Status != "queued" || b.Status != "running" || c.Status != "completed" || c.EntityID != exec.ID {
			t.Fatalf("events %s, %s, %s; want queued, running, completed for %s", a.Status, b.Status, c.Status, exec.ID)
		}
		if l := logText(t, e, exec.ID); !strings.Contains(l, "[BACKUP] backing up sqlite") || !strings.Contains(l, "[BACKUP] backup completed") {
			t.Fatalf("backup log:\n%s", l)
		}

		target := filepath.Join(t.TempDir(), "restored.db")
		rexec, err := e.Restore(ctx, exec.ID, drivers.Source{Type: "sqlite", Path: target}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rexec.Operation != OperationRestore || rexec.Status != ExecutionCompleted || rexec.SourceExecutionID != exec.ID {
			t.Fatalf("restore execution = %+v", rexec)
		}
		if want, got := digest(t, f.dbPath), digest(t, target); want != got || !strings.HasPrefix(want, "3000 rows") {
			t.Fatalf("restored data %s, want %s", got, want)
		}
		if l := logText(t, e, rexec.ID); !strings.Contains(l, "[RESTORE] storage disk1: every checksum matches") {
			t.Fatalf("restore log:\n%s", l)
		}
		notes, err := e.Store().ListNotifications(ctx, NotificationFilter{})
		mustNoErr(t, "notifications", err)
		types := map[string]bool{}
		for _, n := range notes {
			types[n.Type] = true
		}
		if !types["backup_completed"] || !types["restore_completed"] {
			t.Fatalf("notifications = %v", types)
		}
	})
}

func corruptPart(t *testing.T, root, dir string) {
	t.Helper()
	parts, _ := filepath.Glob(filepath.Join(root, dir, "backup.*"))
	if len(parts) == 0 {
		t.Fatalf("no parts in %s", filepath.Join(root, dir))
	}
	b, err := os.ReadFile(parts[len(parts)-1])
	mustNoErr(t, "read part", err)
	b[len(b)/2] ^= 0x55
	mustNoErr(t, "corrupt part", os.WriteFile(parts[len(parts)-1], b, 0o644))
}

func TestRestoreSkipsCorruptCopyAndNeverTouchesTarget(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{Compression: "gzip"})
		exec, err := e.RunBackup(ctx, f.job.ID)
		mustNoErr(t, "backup", err)

		corruptPart(t, f.roots[0], exec.BackupPath)
		if err := e.VerifyBackup(ctx, exec.ID); !errors.Is(err, manifest.ErrChecksumMismatch) || !strings.Contains(err.Error(), "disk1") {
			t.Fatalf("VerifyBackup = %v; want a checksum mismatch on disk1", err)
		}
		st, _ := e.Store().ListExecutionStorages(ctx, exec.ID)
		if st[0].Status == st[1].Status {
			t.Fatalf("statuses after verify = %+v; want disk1 missing and disk2 available", st)
		}

		target := filepath.Join(t.TempDir(), "restored.db")
		rexec, err := e.Restore(ctx, exec.ID, drivers.Source{Type: "sqlite", Path: target}, nil)
		mustNoErr(t, "restore from the second copy", err)
		if l := logText(t, e, rexec.ID); !strings.Contains(l, "storage disk1: verify backup") || !strings.Contains(l, "storage disk2: every checksum matches") {
			t.Fatalf("restore log:\n%s", l)
		}
		if digest(t, target) != digest(t, f.dbPath) {
			t.Fatal("restored data differs")
		}

		// Both copies corrupt: the restore fails and the target stays as it was.
		corruptPart(t, f.roots[1], exec.BackupPath)
		before, _ := os.ReadFile(target)
		rexec, err = e.Restore(ctx, exec.ID, drivers.Source{Type: "sqlite", Path: target}, nil)
		if !errors.Is(err, manifest.ErrChecksumMismatch) || !strings.Contains(err.Error(), "target untouched") {
			t.Fatalf("restore of corrupt copies: %v", err)
		}
		if rexec.Status != ExecutionFailed || rexec.ErrorMessage == "" {
			t.Fatalf("restore execution = %+v", rexec)
		}
		if after, _ := os.ReadFile(target); !bytes.Equal(before, after) {
			t.Fatal("a refused restore changed the target")
		}
	})
}

func TestRetentionKeepsMaxBackups(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{Compression: "lz4", Retention: Retention{MaxBackups: 3, AutoDelete: true}})
		var execs []*Execution
		for range 4 {
			x, err := e.RunBackup(ctx, f.job.ID)
			mustNoErr(t, "backup", err)
			execs = append(execs, x)
		}
		for _, root := range f.roots {
			for i, x := range execs {
				_, err := os.Stat(filepath.Join(root, x.BackupPath, manifest.FileName))
				if gone := errors.Is(err, os.ErrNotExist); gone != (i == 0) {
					t.Fatalf("%s backup %d (%s): gone=%v", root, i, x.BackupPath, gone)
				}
			}
			if _, err := os.Stat(filepath.Join(root, execs[0].BackupPath)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("run folder of the deleted backup still exists: %v", err)
			}
			log, err := os.ReadFile(filepath.Join(root, "_system", "cleanup.log"))
			mustNoErr(t, "cleanup.log", err)
			if lines := strings.Split(strings.TrimSpace(string(log)), "\n"); len(lines) != 1 ||
				!strings.Contains(lines[0], "deleted="+execs[0].BackupPath) || !strings.Contains(lines[0], "max_backups=3") {
				t.Fatalf("cleanup.log = %q", log)
			}
		}
		if _, err := e.Restore(ctx, execs[0].ID, drivers.Source{}, nil); !errors.Is(err, ErrNotRestorable) {
			t.Fatalf("restore of a deleted backup: %v", err)
		}
		if l := logText(t, e, execs[3].ID); !strings.Contains(l, "retention deleted "+execs[0].BackupPath) {
			t.Fatalf("log of the 4th backup:\n%s", l)
		}
	})
}

func TestFailedBackupLeavesEarlierBackupsAlone(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{Compression: "gzip", Retention: Retention{MaxBackups: 1, AutoDelete: true}})
		good, err := e.RunBackup(ctx, f.job.ID)
		mustNoErr(t, "first backup", err)
		mustNoErr(t, "remove source", os.Rename(f.dbPath, f.dbPath+".moved"))
		bad, err := e.RunBackup(ctx, f.job.ID)
		if err == nil || bad.Status != ExecutionFailed || !strings.Contains(bad.ErrorMessage, f.dbPath) {
			t.Fatalf("backup of a missing database: err %v, execution %+v", err, bad)
		}
		for _, root := range f.roots {
			entries, _ := os.ReadDir(filepath.Join(root, f.job.ID))
			if len(entries) != 1 || entries[0].Name() != filepath.Base(good.BackupPath) {
				t.Fatalf("%s holds %v; want only the good backup", root, entries)
			}
		}
		mustNoErr(t, "verify the good backup", e.VerifyBackup(ctx, good.ID))
		notes, _ := e.Store().ListNotifications(ctx, NotificationFilter{})
		found := false
		for _, n := range notes {
			found = found || (n.Type == "backup_failed" && n.EntityID == bad.ID && n.Severity == SeverityCritical)
		}
		if !found {
			t.Fatalf("no backup_failed notification in %+v", notes)
		}
	})
}

func TestDatasourcePasswordIsSealed(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		const pw = `s3cr'et "$;&| pass`
		ds := &Datasource{Name: "pg", Type: "sqlite", Path: "/nonexistent.db"}
		mustNoErr(t, "create", e.CreateDatasource(ctx, ds, pw))
		var raw []byte
		mustNoErr(t, "raw select", e.Store().DB(storedb.Key{}).NewSelect().Table("datasources").Column("password_encrypted").
			Where("id = ?", ds.ID).Scan(ctx, &raw))
		if len(raw) == 0 || bytes.Contains(raw, []byte("s3cr")) {
			t.Fatalf("stored password column = %q", raw)
		}
		back, err := e.Store().GetDatasource(ctx, ds.ID)
		mustNoErr(t, "get", err)
		src, err := e.Source(back)
		if err != nil || src.Password != pw {
			t.Fatalf("Source password = %q, %v", src.Password, err)
		}
		if strings.Contains(src.String(), "s3cr") {
			t.Fatalf("Source.String leaks the password: %s", src)
		}
	})
}

func TestBadJobInputNamesTheField(t *testing.T) {
	e, err := newEngine(t.Context(), Config{DataDir: t.TempDir()})
	mustNoErr(t, "new", err)
	defer e.Close()
	ctx := context.Background()
	ds := &Datasource{Name: "app", Type: "sqlite", Path: "/x.db"}
	mustNoErr(t, "datasource", e.CreateDatasource(ctx, ds, ""))
	loc := &StorageLocation{Name: "disk", Type: "local", Config: map[string]string{"path": t.TempDir()}}
	mustNoErr(t, "storage", e.CreateStorageLocation(ctx, loc))
	cases := map[string]BackupJob{
		"compression":          {Compression: "rar"},
		"max_file_size_mb":     {MaxFileSizeMB: -1},
		"storage_location_ids": {StorageLocationIDs: []string{}},
		"datasource_id":        {DatasourceID: "nope"},
		"retention":            {Retention: Retention{MaxBackups: -2}},
	}
	for field, job := range cases {
		job.Name = "j"
		if job.DatasourceID == "" {
			job.DatasourceID = ds.ID
		}
		if job.StorageLocationIDs == nil {
			job.StorageLocationIDs = []string{loc.ID}
		}
		err := e.CreateBackupJob(ctx, &job)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: err = %v; want ErrInvalid naming the field", field, err)
		}
	}
	if err := e.CreateDatasource(ctx, &Datasource{Name: "x", Type: "oracle"}, ""); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "oracle") {
		t.Errorf("unknown type: %v", err)
	}
	if err := e.CreateStorageLocation(ctx, &StorageLocation{Name: "y", Type: "local"}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "path") {
		t.Errorf("local storage without path: %v", err)
	}
}
