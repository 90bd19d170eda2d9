package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/engine/internal/storedb"
	"github.com/dataguardian/dataguardian/engine/queue"
	"github.com/dataguardian/dataguardian/notify"
)

// failingFixture is a fixture whose job retries and whose datasource file
// is gone, so every backup of it fails until restore puts it back.
func failingFixture(t *testing.T, e *Engine, attempts, delaySeconds int) *fixture {
	t.Helper()
	f := newFixture(t, e, BackupJob{RetryAttempts: attempts, RetryDelaySeconds: delaySeconds})
	mustNoErr(t, "remove datasource file", os.Remove(f.dbPath))
	return f
}

// restore puts back the datasource file of f.
func (f *fixture) restore(t *testing.T) { makeSQLite(t, f.dbPath, 50) }

// failBackup runs a backup of f's job that must fail.
func failBackup(t *testing.T, e *Engine, f *fixture) *Execution {
	t.Helper()
	exec, err := e.RunBackup(t.Context(), f.job.ID)
	if err == nil || exec.Status != ExecutionFailed {
		t.Fatalf("backup of a missing datasource file: err %v, status %s; want failed", err, exec.Status)
	}
	return exec
}

// retryTask is the queued task of execution id, read from the StoreQueue.
func retryTask(t *testing.T, e *Engine, id string) *queue.TaskRow {
	t.Helper()
	task := &queue.TaskRow{}
	mustNoErr(t, "read task "+id, e.store.DB(storedb.Key{}).NewSelect().Model(task).Where("id = ?", id).Scan(t.Context()))
	return task
}

// checkRetry checks that the retry of failed (retry n of m) is queued as
// execution retryRunID(failed.ID) with Attempt n+1 and metadata retry_of,
// due delay after a time in [from, to], with both log lines written.
func checkRetry(t *testing.T, e *Engine, failed *Execution, n, m int, delay time.Duration, from, to time.Time) *Execution {
	t.Helper()
	retry, err := e.store.GetExecution(t.Context(), retryRunID(failed.ID))
	mustNoErr(t, "get retry", err)
	if retry.Status != ExecutionQueued || retry.Attempt != n+1 || retry.JobID != failed.JobID || retry.Metadata["retry_of"] != failed.ID {
		t.Fatalf("retry: status %s, attempt %d, job %s, metadata %v; want queued attempt %d of job %s, retry_of %s",
			retry.Status, retry.Attempt, retry.JobID, retry.Metadata, n+1, failed.JobID, failed.ID)
	}
	task := retryTask(t, e, retry.ID)
	if task.Kind != TaskBackup || task.ExecutionID != retry.ID || task.Status != queue.StatusQueued ||
		task.RunAt.Before(from.Add(delay).Truncate(time.Microsecond)) || task.RunAt.After(to.Add(delay)) {
		t.Fatalf("task %+v; want a queued backup task due %s after [%s, %s]", task, delay, from, to)
	}
	if log, want := logText(t, e, failed.ID), fmt.Sprintf("[BACKUP] retry %d of %d queued for ", n, m); strings.Count(log, want) != 1 {
		t.Fatalf("log of the failed execution has %q %d times; want once:\n%s", want, strings.Count(log, want), log)
	}
	if log, want := logText(t, e, retry.ID), fmt.Sprintf("[BACKUP] retry %d of %d of execution %s", n, m, failed.ID); !strings.Contains(log, want) {
		t.Fatalf("log of the retry lacks %q:\n%s", want, log)
	}
	return retry
}

// failedNotification is the backup_failed notification of execution id.
func failedNotification(t *testing.T, e *Engine, id string) Notification {
	t.Helper()
	ns, err := e.store.ListNotifications(t.Context(), NotificationFilter{Type: notify.BackupFailed, Limit: -1})
	mustNoErr(t, "list notifications", err)
	var got []Notification
	for _, n := range ns {
		if n.EntityID == id {
			got = append(got, n)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d backup_failed notifications of execution %s; want 1", len(got), id)
	}
	return got[0]
}

func jobExecutions(t *testing.T, e *Engine, jobID string) []Execution {
	t.Helper()
	xs, err := e.store.ListExecutions(t.Context(), ExecutionFilter{JobID: jobID, Limit: -1})
	mustNoErr(t, "list executions", err)
	return xs
}

// A failed backup is retried after the job's delay, doubled for the second
// retry; the retry that runs once the datasource is back completes and
// keeps the link to the execution it retries.
func TestFailedBackupIsRetried(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := failingFixture(t, e, 2, 10)

		from := e.now()
		first := failBackup(t, e, f)
		retry1 := checkRetry(t, e, first, 1, 2, 10*time.Second, from, e.now())
		n := failedNotification(t, e, first.ID)
		if n.Severity != SeverityWarning || !strings.Contains(n.Message, "retry 1 of 2 queued for") || !strings.Contains(n.Message, first.ErrorMessage) {
			t.Fatalf("notification of a failure to be retried: %s %q; want a warning saying the retry is queued", n.Severity, n.Message)
		}

		// The first retry fails too: the second waits twice as long.
		from = e.now()
		if err := e.ExecuteBackup(ctx, retry1.ID); err == nil {
			t.Fatal("retry of a missing datasource file succeeded")
		}
		retry2 := checkRetry(t, e, mustGet(t, e, retry1.ID), 2, 2, 20*time.Second, from, e.now())

		f.restore(t)
		mustNoErr(t, "run the second retry", e.ExecuteBackup(ctx, retry2.ID))
		done := mustGet(t, e, retry2.ID)
		if done.Status != ExecutionCompleted || done.Metadata["retry_of"] != retry1.ID || done.Metadata["manifest"] == nil {
			t.Fatalf("second retry: status %s, metadata %v; want completed with retry_of %s and the manifest", done.Status, done.Metadata, retry1.ID)
		}
		if xs := jobExecutions(t, e, f.job.ID); len(xs) != 3 {
			t.Fatalf("%d executions; want the failure and two retries", len(xs))
		}
	})
}

func mustGet(t *testing.T, e *Engine, id string) *Execution {
	t.Helper()
	x, err := e.store.GetExecution(t.Context(), id)
	mustNoErr(t, "get execution "+id, err)
	return x
}

// When the retries are used up nothing more is queued and the last
// failure is notified as critical.
func TestRetriesExhausted(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		f := failingFixture(t, e, 1, 10)
		first := failBackup(t, e, f)
		retry := checkRetry(t, e, first, 1, 1, 10*time.Second, e.now().Add(-time.Minute), e.now())
		if err := e.ExecuteBackup(t.Context(), retry.ID); err == nil {
			t.Fatal("retry of a missing datasource file succeeded")
		}
		if xs := jobExecutions(t, e, f.job.ID); len(xs) != 2 {
			t.Fatalf("%d executions; want the failure and its one retry", len(xs))
		}
		if _, err := e.store.GetExecution(t.Context(), retryRunID(retry.ID)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a third attempt exists (err %v)", err)
		}
		if n := failedNotification(t, e, first.ID); n.Severity != SeverityWarning {
			t.Fatalf("first failure notified %s; want warning", n.Severity)
		}
		if n := failedNotification(t, e, retry.ID); n.Severity != SeverityCritical || strings.Contains(n.Message, "retry") {
			t.Fatalf("last failure notified %s %q; want critical without a retry", n.Severity, n.Message)
		}
		if log := logText(t, e, retry.ID); strings.Contains(log, "queued for") {
			t.Fatalf("the last attempt's log announces a retry:\n%s", log)
		}
	})
}

// A cancelled backup, a backup handed back by its worker (shutdown) and a
// failure of a job without retries (the engine's zero value) queue nothing.
func TestNoRetry(t *testing.T) {
	e := newSQLiteEngine(t, Config{})
	ctx := t.Context()
	f := failingFixture(t, e, 2, 10)
	for _, c := range []struct {
		name  string
		cause error
		want  ExecutionStatus
	}{
		{"cancelled", nil, ExecutionCancelled},
		{"handed back", errShutdown, ExecutionQueued}, // left to run again, nothing recorded
	} {
		exec, err := e.newBackupExecution(ctx, f.job.ID, "")
		mustNoErr(t, "new execution", err)
		runCtx, cancel := context.WithCancelCause(ctx)
		cancel(c.cause)
		if err := e.executeBackup(runCtx, exec); err == nil {
			t.Fatalf("%s: backup succeeded", c.name)
		}
		if got := mustGet(t, e, exec.ID); got.Status != c.want {
			t.Fatalf("%s: recorded %s (%s); want %s", c.name, got.Status, got.ErrorMessage, c.want)
		}
		if _, err := e.store.GetExecution(ctx, retryRunID(exec.ID)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: a retry was queued (err %v)", c.name, err)
		}
	}

	f.job.RetryAttempts = 0
	mustNoErr(t, "turn retries off", e.UpdateBackupJob(ctx, f.job))
	first := failBackup(t, e, f)
	if _, err := e.store.GetExecution(ctx, retryRunID(first.ID)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("job with retry_attempts 0: a retry was queued (err %v)", err)
	}
	if n := failedNotification(t, e, first.ID); n.Severity != SeverityCritical {
		t.Fatalf("failure without retries notified %s; want critical", n.Severity)
	}
	if got := len(jobExecutions(t, e, f.job.ID)); got != 3 {
		t.Fatalf("%d executions; want the cancelled one, the handed back one and the failure", got)
	}
}

// Deciding the retry of one failure twice, in one process or in two
// sharing the metadata database, queues one retry.
func TestRetryQueuedOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		e2, err := newEngine(ctx, Config{DataDir: e.cfg.DataDir, DatabaseURL: e.cfg.DatabaseURL, Logger: discardLogger})
		mustNoErr(t, "second engine", err)
		defer e2.Close()
		f := failingFixture(t, e, 2, 10)
		first := failBackup(t, e, f)

		var wg sync.WaitGroup
		var got [4]*queuedRetry
		for i := range got {
			eng := []*Engine{e, e2}[i%2]
			wg.Go(func() { got[i] = eng.queueRetry(ctx, first, execLog{e: eng, id: first.ID, prefix: "[BACKUP]"}) })
		}
		wg.Wait()
		for i, r := range got {
			if r == nil || r.id != retryRunID(first.ID) || r.n != 1 || r.of != 2 {
				t.Fatalf("decision %d: %+v; want retry 1 of 2 as %s", i, r, retryRunID(first.ID))
			}
		}
		if xs := jobExecutions(t, e, f.job.ID); len(xs) != 2 {
			t.Fatalf("%d executions; want the failure and one retry", len(xs))
		}
		n, err := e.store.DB(storedb.Key{}).NewSelect().Model((*queue.TaskRow)(nil)).Where("execution_id = ?", got[0].id).Count(ctx)
		mustNoErr(t, "count tasks", err)
		if n != 1 {
			t.Fatalf("%d tasks for the retry; want 1", n)
		}
		checkRetry(t, e, first, 1, 2, 10*time.Second, e.now().Add(-time.Minute), e.now()) // logged once
	})
}

// The worker leaves a retry alone until it is due, then runs it.
func TestWorkerRunsRetryWhenDue(t *testing.T) {
	var clock atomic.Pointer[time.Time]
	now := time.Now().UTC()
	clock.Store(&now)
	e := newSQLiteEngine(t, Config{Now: func() time.Time { return *clock.Load() },
		Worker: WorkerOptions{Poll: 20 * time.Millisecond}, Health: HealthOptions{Interval: time.Hour}})
	f := failingFixture(t, e, 1, 60)
	first := failBackup(t, e, f)
	id := retryRunID(first.ID)
	startEngine(t, e)

	time.Sleep(300 * time.Millisecond) // many polls
	if x := mustGet(t, e, id); x.Status != ExecutionQueued {
		t.Fatalf("retry due in a minute is %s already", x.Status)
	}
	f.restore(t)
	later := now.Add(61 * time.Second)
	clock.Store(&later)
	waitFor(t, "the retry to complete", func() bool { return mustGet(t, e, id).Status == ExecutionCompleted })
}

func TestRetryDelay(t *testing.T) {
	for _, c := range []struct {
		first, n int
		want     time.Duration
	}{
		{300, 1, 5 * time.Minute},
		{300, 2, 10 * time.Minute},
		{300, 4, 40 * time.Minute},
		{300, 5, time.Hour}, // 80 min, capped
		{300, 10, time.Hour},
		{10, 9, 2560 * time.Second},
		{10, 10, time.Hour},
		{7200, 1, 2 * time.Hour}, // above the cap: kept, not doubled
		{7200, 3, 2 * time.Hour},
	} {
		if got := retryDelay(&BackupJob{RetryDelaySeconds: c.first}, c.n); got != c.want {
			t.Errorf("retryDelay(%d s, retry %d) = %s; want %s", c.first, c.n, got, c.want)
		}
	}
}

// Retry settings are validated, defaulted and updated; a job stored before
// the retry columns existed gets the defaults from the migration.
func TestRetrySettings(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{})
		if f.job.RetryAttempts != 0 || f.job.RetryDelaySeconds != DefaultRetryDelaySeconds {
			t.Fatalf("zero job: retries %d, delay %d; want 0 and %d", f.job.RetryAttempts, f.job.RetryDelaySeconds, DefaultRetryDelaySeconds)
		}
		for _, c := range []struct {
			field string
			job   BackupJob
		}{
			{"retry_attempts", BackupJob{RetryAttempts: MaxRetryAttempts + 1}},
			{"retry_attempts", BackupJob{RetryAttempts: -1}},
			{"retry_delay_seconds", BackupJob{RetryDelaySeconds: MinRetryDelaySeconds - 1}},
			{"retry_delay_seconds", BackupJob{RetryDelaySeconds: MaxRetryDelaySeconds + 1}},
		} {
			c.job.ID, c.job.Name, c.job.DatasourceID, c.job.StorageLocationIDs = f.job.ID, "bad", f.ds.ID, f.job.StorageLocationIDs
			for op, fn := range map[string]func(context.Context, *BackupJob) error{"create": e.CreateBackupJob, "update": e.UpdateBackupJob} {
				j := c.job
				if err := fn(ctx, &j); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.field) {
					t.Errorf("%s with retries %d, delay %d: %v; want ErrInvalid naming %s", op, c.job.RetryAttempts, c.job.RetryDelaySeconds, err, c.field)
				}
			}
		}
		f.job.RetryAttempts, f.job.RetryDelaySeconds = 3, 45
		mustNoErr(t, "update", e.UpdateBackupJob(ctx, f.job))
		got, err := e.store.GetBackupJob(ctx, f.job.ID)
		mustNoErr(t, "get", err)
		if got.RetryAttempts != 3 || got.RetryDelaySeconds != 45 {
			t.Fatalf("after update: %d/%d; want 3/45", got.RetryAttempts, got.RetryDelaySeconds)
		}

	})
}
