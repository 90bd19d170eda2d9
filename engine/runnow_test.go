package engine

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/notify"
)

// runNowConcurrently calls RunNow for job n times at once, the i-th call
// on engines[i%len(engines)], and returns the execution IDs answered and
// how many calls said they queued one.
func runNowConcurrently(t *testing.T, engines []*Engine, jobID string, n int) (ids map[string]int, queued int) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	ids = map[string]int{}
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			x, q, err := engines[i%len(engines)].RunNow(t.Context(), jobID)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("RunNow %d: %v", i, err)
				return
			}
			if x.Status != ExecutionQueued || x.JobID != jobID {
				t.Errorf("RunNow %d answered %s execution %s of job %s; want a queued backup of %s", i, x.Status, x.ID, x.JobID, jobID)
			}
			ids[x.ID]++
			if q {
				queued++
			}
		})
	}
	close(start)
	wg.Wait()
	return ids, queued
}

// checkOneQueued checks that job has exactly one execution, queued, whose
// task is the only live one in the queue, and that every answer named it.
func checkOneQueued(t *testing.T, e *Engine, jobID string, ids map[string]int, queued int) {
	t.Helper()
	xs := jobExecutions(t, e, jobID)
	if len(xs) != 1 || xs[0].Status != ExecutionQueued {
		t.Fatalf("%d executions of the job after concurrent run-nows (answers named %d); want one queued", len(xs), len(ids))
	}
	if len(ids) != 1 || ids[xs[0].ID] == 0 || queued != 1 {
		t.Fatalf("answers named %d executions, %d said queued; want every answer naming %s and one queuing it", len(ids), queued, xs[0].ID)
	}
	st, err := e.Queue().Stats(t.Context())
	mustNoErr(t, "stats", err)
	if st.Depth != 1 || st.Scheduled != 0 || st.Running != 0 {
		t.Fatalf("queue after concurrent run-nows: %+v; want one due task", st)
	}
}

// Many concurrent "run now" calls queue one backup: every call answers the
// same queued execution.
func TestRunNowCoalescesConcurrentCalls(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		f := newFixture(t, e, BackupJob{})
		ids, queued := runNowConcurrently(t, []*Engine{e}, f.job.ID, 100)
		checkOneQueued(t, e, f.job.ID, ids, queued)

		// Later calls still answer the queued one.
		x, q, err := e.RunNow(t.Context(), f.job.ID)
		mustNoErr(t, "run now again", err)
		if q || ids[x.ID] == 0 {
			t.Fatalf("run now with a backup queued: %s (queued %v); want the queued one", x.ID, q)
		}
		// EnqueueBackup, the library's older name of it, follows the rule.
		y, err := e.EnqueueBackup(t.Context(), e.Queue(), f.job.ID)
		mustNoErr(t, "EnqueueBackup", err)
		if y.ID != x.ID {
			t.Fatalf("EnqueueBackup with a backup queued queued %s; want %s", y.ID, x.ID)
		}
		if _, _, err := e.RunNow(t.Context(), "no-such-job"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("RunNow of an unknown job: %v; want ErrNotFound", err)
		}
	})
}

// Two processes sharing one PostgreSQL store queue one backup between
// them, however many calls each gets at once.
func TestRunNowCoalescesAcrossEngines(t *testing.T) {
	engines := enginesOnOnePostgres(t, 2)
	f := newFixture(t, engines[0], BackupJob{})
	ids, queued := runNowConcurrently(t, engines, f.job.ID, 100)
	checkOneQueued(t, engines[1], f.job.ID, ids, queued)
}

// Once the queued backup has run, run now queues a new one.
func TestRunNowAfterTheQueuedRan(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{})
		x, q, err := e.RunNow(ctx, f.job.ID)
		mustNoErr(t, "run now", err)
		if !q {
			t.Fatal("the first run now did not queue")
		}
		// What a worker does: claim, run, complete.
		task, err := e.Queue().Claim(ctx, nil, "w", time.Minute)
		mustNoErr(t, "claim", err)
		// Claimed but not started: still the queued one.
		if y, q, err := e.RunNow(ctx, f.job.ID); err != nil || q || y.ID != x.ID {
			t.Fatalf("run now while the queued backup is claimed: %v, queued %v; want %s", err, q, x.ID)
		}
		mustNoErr(t, "execute", e.ExecuteBackup(ctx, x.ID))
		mustNoErr(t, "complete", e.Queue().Complete(ctx, task.ID, "w"))
		y, q, err := e.RunNow(ctx, f.job.ID)
		mustNoErr(t, "run now after the run", err)
		if !q || y.ID == x.ID {
			t.Fatalf("run now after the queued backup ran answered %s (queued %v); want a new one", y.ID, q)
		}
	})
}

// A job due while a backup of it is queued gets no second one: its
// schedule moves on, and a queued retry waiting for its delay runs now.
func TestScheduledRunJoinsQueuedBackup(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := failingFixture(t, e, 1, 3600)
		first := failBackup(t, e, f) // its retry waits an hour
		retry := mustGet(t, e, retryRunID(first.ID))
		if task := retryTask(t, e, retry.ID); !task.RunAt.After(e.now().Add(50 * time.Minute)) {
			t.Fatalf("retry due at %s; want an hour from now", task.RunAt)
		}
		past := e.now().Add(-time.Minute).Truncate(time.Second)
		f.job.Schedule, f.job.NextExecutionAt = "0 * * * *", &past
		mustNoErr(t, "make due", e.Store().UpdateBackupJob(ctx, f.job, "schedule", "next_execution_at"))

		n, err := e.EnqueueDueBackups(ctx, e.Queue(), 10)
		mustNoErr(t, "enqueue due", err)
		if n != 0 {
			t.Fatalf("EnqueueDueBackups queued %d runs with a retry queued; want none", n)
		}
		if xs := jobExecutions(t, e, f.job.ID); len(xs) != 2 {
			t.Fatalf("%d executions; want the failure and its retry, no scheduled run", len(xs))
		}
		if task := retryTask(t, e, retry.ID); task.RunAt.After(e.now()) {
			t.Fatalf("the queued retry is due at %s; the due schedule should have made it due now", task.RunAt)
		}
		job, err := e.Store().GetBackupJob(ctx, f.job.ID)
		mustNoErr(t, "get job", err)
		if job.NextExecutionAt == nil || !job.NextExecutionAt.After(e.now()) {
			t.Fatalf("next_execution_at %v; want the next hour", job.NextExecutionAt)
		}
	})
}

// On a Queue other than the engine's StoreQueue the scheduler follows the
// same rule (checked without a lock), and so does run now.
func TestScheduledRunJoinsQueuedBackupOnAnotherQueue(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		other := struct{ Queue }{e.Queue()} // not a *StoreQueue
		f := newFixture(t, e, BackupJob{})
		x, err := e.EnqueueBackup(ctx, other, f.job.ID)
		mustNoErr(t, "enqueue", err)
		if y, err := e.EnqueueBackup(ctx, other, f.job.ID); err != nil || y.ID != x.ID {
			t.Fatalf("second run now on another queue: %v; want %s", err, x.ID)
		}
		past := e.now().Add(-time.Minute).Truncate(time.Second)
		f.job.Schedule, f.job.NextExecutionAt = "0 * * * *", &past
		mustNoErr(t, "make due", e.Store().UpdateBackupJob(ctx, f.job, "schedule", "next_execution_at"))
		n, err := e.EnqueueDueBackups(ctx, other, 10)
		mustNoErr(t, "enqueue due", err)
		if xs := jobExecutions(t, e, f.job.ID); n != 0 || len(xs) != 1 {
			t.Fatalf("due with a backup queued: %d runs queued, %d executions; want none and the queued one", n, len(xs))
		}
		job, err := e.Store().GetBackupJob(ctx, f.job.ID)
		mustNoErr(t, "get job", err)
		if job.NextExecutionAt == nil || !job.NextExecutionAt.After(e.now()) {
			t.Fatalf("next_execution_at %v; want the next hour", job.NextExecutionAt)
		}
	})
}

// Run now with a retry waiting for its delay answers the retry, made due
// now; a backup that fails while another is queued queues no retry.
func TestRunNowTakesTheQueuedRetry(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := failingFixture(t, e, 2, 3600)
		first := failBackup(t, e, f)
		retry := mustGet(t, e, retryRunID(first.ID))
		x, q, err := e.RunNow(ctx, f.job.ID)
		mustNoErr(t, "run now", err)
		if q || x.ID != retry.ID {
			t.Fatalf("run now with a retry queued answered %s (queued %v); want the retry %s", x.ID, q, retry.ID)
		}
		if task := retryTask(t, e, retry.ID); task.RunAt.After(e.now()) {
			t.Fatalf("the retry is due at %s after run now; want now", task.RunAt)
		}

		// Another run (the CLI's RunBackup) fails meanwhile: the queued
		// retry backs the job up, no second retry is queued.
		second := failBackup(t, e, f)
		if xs := jobExecutions(t, e, f.job.ID); len(xs) != 3 {
			t.Fatalf("%d executions; want two failures and one retry", len(xs))
		}
		if l := logText(t, e, second.ID); !strings.Contains(l, "not queued: execution "+retry.ID) {
			t.Fatalf("log of a failure with a backup queued does not say why no retry was queued:\n%s", l)
		}
	})
}

// Every run of a job sets its last_execution_at: a manual run, a queued
// one run by a worker, a retry.
func TestLastExecutionAtSetByEveryRun(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{RetryAttempts: 1, RetryDelaySeconds: 10})
		last := func() *time.Time {
			job, err := e.Store().GetBackupJob(ctx, f.job.ID)
			mustNoErr(t, "get job", err)
			return job.LastExecutionAt
		}
		if at := last(); at != nil {
			t.Fatalf("last_execution_at of a new job = %v; want null", at)
		}
		x, err := e.RunBackup(ctx, f.job.ID)
		mustNoErr(t, "manual run", err)
		x = mustGet(t, e, x.ID)
		if at := last(); at == nil || !at.Equal(*x.StartedAt) {
			t.Fatalf("last_execution_at after a manual run = %v; want its start %v", at, x.StartedAt)
		}

		q, _, err := e.RunNow(ctx, f.job.ID)
		mustNoErr(t, "run now", err)
		mustNoErr(t, "run the queued backup", e.ExecuteBackup(ctx, q.ID))
		q = mustGet(t, e, q.ID)
		if at := last(); at == nil || !at.Equal(*q.StartedAt) {
			t.Fatalf("last_execution_at after a queued run = %v; want its start %v", at, q.StartedAt)
		}

		mustNoErr(t, "break the datasource", os.Remove(f.dbPath))
		failed := failBackup(t, e, f)
		f.restore(t)
		retryID := retryRunID(failed.ID)
		mustNoErr(t, "run the retry", e.ExecuteBackup(ctx, retryID))
		r := mustGet(t, e, retryID)
		if at := last(); at == nil || !at.Equal(*r.StartedAt) {
			t.Fatalf("last_execution_at after a retry = %v; want its start %v", at, r.StartedAt)
		}
	})
}

// A backup's notification names its job and datasource, with the size and
// duration when it completed and the error when it failed, in the title,
// the message and the template data.
func TestBackupNotificationsNameWhatRan(t *testing.T) {
	forEachStoreURL(t, func(t *testing.T, url string) {
		ctx := t.Context()
		rec := &recNotifier{}
		e, err := newEngine(ctx, Config{DataDir: t.TempDir(), DatabaseURL: url, Logger: discardLogger, Notifier: rec})
		mustNoErr(t, "new", err)
		t.Cleanup(func() { e.Close() })
		f := newFixture(t, e, BackupJob{})
		x, err := e.RunBackup(ctx, f.job.ID)
		mustNoErr(t, "backup", err)

		ok := inApp(t, e, notify.BackupCompleted, x.ID)
		for _, want := range []string{`"app nightly"`, `"app"`, "sqlite", manifest.FormatBytes(x.SizeBytes), manifest.FormatBytes(x.CompressedSizeBytes), " in ", x.BackupPath} {
			if !strings.Contains(ok.Message, want) {
				t.Errorf("completed: message %q lacks %q", ok.Message, want)
			}
		}
		if !strings.Contains(ok.Title, "app nightly") || !strings.Contains(ok.Title, "backup completed") {
			t.Errorf("completed: title %q; want the job's name and what happened", ok.Title)
		}
		sent := rec.last(t, notify.BackupCompleted)
		if sent.Title != ok.Title || sent.Message != ok.Message {
			t.Errorf("channel got %q / %q; in-app %q / %q", sent.Title, sent.Message, ok.Title, ok.Message)
		}
		for k, want := range map[string]any{"job_name": "app nightly", "datasource_name": "app", "size_bytes": x.SizeBytes,
			"storage": "disk1, disk2", "execution_id": x.ID} {
			if got := sent.Data[k]; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("completed: data[%s] = %v; want %v", k, got, want)
			}
		}
		if _, ok := sent.Data["duration_seconds"]; !ok {
			t.Errorf("completed: no duration_seconds in %v", sent.Data)
		}

		mustNoErr(t, "break the datasource", os.Remove(f.dbPath))
		failed := failBackup(t, e, f)
		bad := inApp(t, e, notify.BackupFailed, failed.ID)
		for _, want := range []string{`"app nightly"`, `"app"`, failed.ErrorMessage} {
			if !strings.Contains(bad.Message, want) {
				t.Errorf("failed: message %q lacks %q", bad.Message, want)
			}
		}
		if !strings.Contains(bad.Title, "app nightly") || !strings.Contains(bad.Title, "backup failed") {
			t.Errorf("failed: title %q; want the job's name and what happened", bad.Title)
		}
		if got := rec.last(t, notify.BackupFailed).Data["error"]; got != failed.ErrorMessage {
			t.Errorf("failed: data[error] = %v; want %q", got, failed.ErrorMessage)
		}
	})
}

// inApp is the one in-app notification of type typ about execution id.
func inApp(t *testing.T, e *Engine, typ, id string) Notification {
	t.Helper()
	ns, err := e.Store().ListNotifications(t.Context(), NotificationFilter{Type: typ, Limit: -1})
	mustNoErr(t, "list notifications", err)
	var got []Notification
	for _, n := range ns {
		if n.EntityID == id {
			got = append(got, n)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d %s notifications of execution %s; want 1", len(got), typ, id)
	}
	return got[0]
}

// last is the last notification of type typ the recorder got.
func (r *recNotifier) last(t *testing.T, typ string) notify.Notification {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.got) - 1; i >= 0; i-- {
		if r.got[i].Type == typ {
			return r.got[i]
		}
	}
	t.Fatalf("no %s notification reached the channel", typ)
	return notify.Notification{}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := manifest.FormatBytes(n); got != want {
			t.Errorf("manifest.FormatBytes(%d) = %q; want %q", n, got, want)
		}
	}
}
