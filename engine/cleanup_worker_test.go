package engine

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/retention"
)

// Periodic cleanup applies retention to every job with auto_delete.
func TestCleanupWorkerAppliesRetention(t *testing.T) {
	e := newSQLiteEngine(t, Config{})
	f := newFixture(t, e, BackupJob{})
	ctx := t.Context()
	job2 := &BackupJob{Name: "app hourly", DatasourceID: f.ds.ID, StorageLocationIDs: f.job.StorageLocationIDs}
	mustNoErr(t, "create job", e.CreateBackupJob(ctx, job2))
	jobs := []*BackupJob{f.job, job2}
	for _, job := range jobs {
		for range 3 {
			_, err := e.RunBackup(ctx, job.ID)
			mustNoErr(t, "backup", err)
		}
	}
	// Retention turned on after the backups: only a periodic pass applies it.
	for _, job := range jobs {
		job.Retention = Retention{MaxBackups: 1, AutoDelete: true}
		mustNoErr(t, "update job", e.store.UpdateBackupJob(ctx, job, "retention"))
	}
	wctx, stop := context.WithCancel(ctx)
	w := NewCleanupWorker(e, CleanupOptions{Interval: 20 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	waitFor(t, "two cleanup passes", func() bool { _, n := w.Last(); return n >= 2 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, job := range jobs {
		execs, err := e.store.ListExecutions(ctx, ExecutionFilter{JobID: job.ID, Operation: OperationBackup, Limit: -1})
		mustNoErr(t, "list", err)
		kept := 0
		for i, x := range execs {
			_, gone := x.Metadata[metaRetentionDeleted]
			if !gone {
				kept++
			}
			if i == 0 && gone {
				t.Fatalf("job %s: newest backup deleted", job.Name)
			}
			for _, root := range f.roots {
				_, err := os.Stat(filepath.Join(root, filepath.FromSlash(x.BackupPath), manifest.FileName))
				if gone != os.IsNotExist(err) {
					t.Fatalf("job %s backup %s: deleted=%v but manifest stat err %v", job.Name, x.BackupPath, gone, err)
				}
			}
		}
		if kept != 1 {
			t.Fatalf("job %s keeps %d backups, want 1", job.Name, kept)
		}
	}
	log, err := os.ReadFile(filepath.Join(f.roots[0], filepath.FromSlash(CleanupLogKey)))
	mustNoErr(t, "read cleanup log", err)
	if n := strings.Count(string(log), "beyond max_backups=1"); n != 4 {
		t.Fatalf("cleanup log has %d retention lines, want 4:\n%s", n, log)
	}
}

func ageFolder(t *testing.T, root, dir string, mod time.Time) {
	t.Helper()
	base := filepath.Join(root, filepath.FromSlash(dir))
	entries, err := os.ReadDir(base)
	mustNoErr(t, "read dir", err)
	for _, en := range entries {
		mustNoErr(t, "chtimes", os.Chtimes(filepath.Join(base, en.Name()), mod, mod))
	}
}

func exists(root, dir string) bool {
	_, err := os.Stat(filepath.Join(root, filepath.FromSlash(dir)))
	return err == nil
}

// Cleanup removes the leftovers of a killed backup once they are a day
// old, and keeps younger ones, completed backups and running backups.
func TestCleanupRemovesAbandonedRunFolders(t *testing.T) {
	e := newSQLiteEngine(t, Config{})
	f := newFixture(t, e, BackupJob{})
	ctx := t.Context()
	done, err := e.RunBackup(ctx, f.job.ID)
	mustNoErr(t, "backup", err)
	root, now := f.roots[0], time.Now()
	old := now.Add(-48 * time.Hour)
	ageFolder(t, root, done.BackupPath, old) // completed and old: kept

	running := &Execution{JobID: f.job.ID, DatasourceID: f.ds.ID, Operation: OperationBackup, Status: ExecutionRunning}
	mustNoErr(t, "create execution", e.store.CreateExecution(ctx, running))
	killed := &Execution{JobID: f.job.ID, DatasourceID: f.ds.ID, Operation: OperationBackup, Status: ExecutionFailed}
	mustNoErr(t, "create execution", e.store.CreateExecution(ctx, killed))

	job := f.job.ID
	stale := job + "/" + manifest.RunFolder(old)
	writeRunFolder(t, root, stale, old, map[string]string{".dataguardian-run": killed.ID + "\n", ".incomplete-part-001": "partial", ".incomplete-part-002": "partial"})
	fresh := job + "/" + manifest.RunFolder(now.Add(-time.Hour))
	writeRunFolder(t, root, fresh, now.Add(-time.Hour), map[string]string{".dataguardian-run": killed.ID + "\n", ".incomplete-part-001": "partial"})
	// An old folder name written to recently (a retry in progress) is young.
	rewritten := job + "/" + manifest.RunFolder(old.Add(-time.Hour))
	writeRunFolder(t, root, rewritten, now, map[string]string{".retry-0a0b0c0d-part-001": "copying"})
	live := job + "/" + manifest.RunFolder(old.Add(time.Hour))
	writeRunFolder(t, root, live, old, map[string]string{".dataguardian-run": running.ID + "\n", ".incomplete-part-001": "slow dump"})

	rep, err := e.RunCleanup(ctx)
	mustNoErr(t, "cleanup", err)
	if want := []string{"disk1: " + stale}; !slices.Equal(rep.Incomplete, want) {
		t.Fatalf("removed %q, want %q", rep.Incomplete, want)
	}
	if exists(root, stale) {
		t.Fatal("stale folder still there")
	}
	for _, dir := range []string{done.BackupPath, fresh, rewritten, live} {
		if !exists(root, dir) {
			t.Fatalf("%s removed", dir)
		}
	}
	mustNoErr(t, "verify completed backup", e.VerifyBackup(ctx, done.ID))
	log, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(CleanupLogKey)))
	mustNoErr(t, "read cleanup log", err)
	entry, err := retention.ParseCleanupLine(strings.TrimSpace(string(log)))
	mustNoErr(t, "parse cleanup log", err)
	if entry.Path != stale || entry.JobID != job || entry.ExecutionID != killed.ID || !strings.HasPrefix(entry.Reason, "incomplete: no manifest.json") {
		t.Fatalf("cleanup log entry %+v", entry)
	}
}

// Cleanup prunes finished queue tasks older than TaskRetention.
func TestCleanupPrunesQueueTasks(t *testing.T) {
	e := newSQLiteEngine(t, Config{Cleanup: CleanupOptions{TaskRetention: time.Nanosecond}})
	ctx := t.Context()
	q := e.Queue().(*StoreQueue)
	mustNoErr(t, "enqueue", q.Enqueue(ctx, Task{Kind: TaskBackup, ExecutionID: "x-1"}))
	task, err := q.Claim(ctx, []string{TaskBackup}, "test", time.Minute)
	mustNoErr(t, "claim", err)
	mustNoErr(t, "complete", q.Complete(ctx, task.ID, "test"))
	time.Sleep(5 * time.Millisecond)
	rep, err := e.RunCleanup(ctx)
	mustNoErr(t, "cleanup", err)
	if rep.TasksPruned != 1 {
		t.Fatalf("pruned %d tasks, want 1", rep.TasksPruned)
	}
}
