package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/engine/internal/workerslot"
	"github.com/dataguardian/dataguardian/engine/queue"
	"github.com/dataguardian/dataguardian/engine/worker"
)

// errShutdown is the cause with which a worker hands back the task it runs
// (shutdown deadline): the engine's tests cancel runs with it.
var errShutdown = worker.ErrShutdown

// A process that dies mid-backup (SIGKILL, a crash) leaves its task
// claimed, its execution running and its run folder half written. The
// next process on the same data directory takes them back at once, not a
// lease later: it removes that run folder, queues the execution again for
// its next attempt (the execution's attempt says so) and runs it. A task
// of another live process is left alone.
func TestRestartTakesBackThePredecessorsTasks(t *testing.T) {
	forEachStoreURL(t, func(t *testing.T, url string) {
		ctx := t.Context()
		dataDir := t.TempDir()
		// Leases of an hour: only taking the tasks back can run them again
		// within the test.
		e, err := newEngine(ctx, Config{DataDir: dataDir, DatabaseURL: url, Logger: discardLogger,
			Worker: WorkerOptions{Poll: 20 * time.Millisecond, Lease: time.Hour}, Health: HealthOptions{Interval: time.Hour}})
		mustNoErr(t, "new", err)
		t.Cleanup(func() { e.Close() })
		f := newFixture(t, e, BackupJob{})
		otherPath := filepath.Join(t.TempDir(), "other.db")
		makeSQLite(t, otherPath, 10)
		otherDS := &Datasource{Name: "other", Type: "sqlite", Path: otherPath}
		mustNoErr(t, "datasource", e.CreateDatasource(ctx, otherDS, ""))
		otherJob := &BackupJob{Name: "other", DatasourceID: otherDS.ID, StorageLocationIDs: f.job.StorageLocationIDs}
		mustNoErr(t, "job", e.CreateBackupJob(ctx, otherJob))

		// The previous process on this data directory: its identity, free
		// again since the process died.
		slot, err := workerslot.Take(filepath.Join(dataDir, workerslot.Dir))
		if errors.Is(err, errors.ErrUnsupported) {
			t.Skip("no file locks here: workers run without a stable identity")
		}
		mustNoErr(t, "take the slot", err)
		dead := slot.ID + "/host:1:dead"
		slot.Release()

		x, _, err := e.RunNow(ctx, f.job.ID)
		mustNoErr(t, "run now", err)
		task, err := e.Queue().Claim(ctx, nil, dead, time.Hour)
		mustNoErr(t, "claim", err)
		if task.ExecutionID != x.ID {
			t.Fatalf("claimed %s; want %s", task.ExecutionID, x.ID)
		}
		e.start(ctx, x)
		abandoned := f.job.ID + "/2025-01-02_030405"
		kept := f.job.ID + "/2025-01-02_030406"
		for dir, owner := range map[string]string{abandoned: x.ID, kept: "another-execution"} {
			path := filepath.Join(f.roots[0], filepath.FromSlash(dir))
			mustNoErr(t, "mkdir", os.MkdirAll(path, 0o700))
			mustNoErr(t, "reserve", os.WriteFile(filepath.Join(path, reservationKey), []byte(owner), 0o600))
			mustNoErr(t, "part", os.WriteFile(filepath.Join(path, ".incomplete-part-001"), []byte("half"), 0o600))
		}

		// Another process, alive, holds a task of its own.
		y, _, err := e.RunNow(ctx, otherJob.ID)
		mustNoErr(t, "run now", err)
		const live = "another-process/host:2:live"
		if tk, err := e.Queue().Claim(ctx, nil, live, time.Hour); err != nil || tk.ExecutionID != y.ID {
			t.Fatalf("claim by the live process: %+v, %v", tk, err)
		}

		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- e.Start(runCtx) }()
		waitFor(t, "the predecessor's backup to run again", func() bool {
			return mustGet(t, e, x.ID).Status.Terminal()
		})
		stop()
		mustNoErr(t, "Start", <-done)

		x = mustGet(t, e, x.ID)
		log := logText(t, e, x.ID)
		if x.Status != ExecutionCompleted || x.Attempt != 2 || !strings.Contains(log, OwnerStoppedReason+": queued again as attempt 2") {
			t.Fatalf("execution %s, attempt %d (%s); want completed at attempt 2, the log saying so:\n%s", x.Status, x.Attempt, x.ErrorMessage, log)
		}
		if tk := retryTask(t, e, task.ID); tk.Attempt != 2 || tk.Status != queue.StatusDone {
			t.Fatalf("task after the restart: attempt %d, %s; want done at attempt 2", tk.Attempt, tk.Status)
		}
		if _, err := os.Stat(filepath.Join(f.roots[0], filepath.FromSlash(abandoned))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the dead attempt's run folder %s: %v; want it removed", abandoned, err)
		}
		if _, err := os.Stat(filepath.Join(f.roots[0], filepath.FromSlash(kept), ".incomplete-part-001")); err != nil {
			t.Errorf("the run folder another execution reserved: %v; want it kept", err)
		}
		if b, err := os.ReadFile(filepath.Join(f.roots[0], filepath.FromSlash(CleanupLogKey))); err != nil || !strings.Contains(string(b), abandoned) {
			t.Errorf("cleanup log %q, %v; want the removal of %s", b, err, abandoned)
		}
		if tk := retryTask(t, e, y.ID); tk.Status != queue.StatusClaimed || tk.LeaseOwner != live || tk.Attempt != 1 {
			t.Errorf("the live process's task: %s by %s, attempt %d; want left claimed by it", tk.Status, tk.LeaseOwner, tk.Attempt)
		}
		if y = mustGet(t, e, y.ID); y.Status != ExecutionQueued || y.Attempt != 1 {
			t.Errorf("the live process's execution: %s, attempt %d; want left as it was", y.Status, y.Attempt)
		}
	})
}
