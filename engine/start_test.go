package engine

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/internal/testsvc"
)

var testKey = bytes.Repeat([]byte{7}, 32)

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// A started engine runs a "run now" backup and a due scheduled one through
// the queue, moves the schedule forward, runs nothing twice and stops
// promptly when its context ends.
func TestStartRunsQueuedAndScheduledBackups(t *testing.T) {
	forEachStoreURL(t, func(t *testing.T, url string) {
		ctx := t.Context()
		e, err := newEngine(ctx, Config{DataDir: t.TempDir(), DatabaseURL: url, Logger: discardLogger,
			Worker: WorkerOptions{Poll: 50 * time.Millisecond, Lease: 5 * time.Second}, Scheduler: SchedulerOptions{Tick: 50 * time.Millisecond},
			Health: HealthOptions{Interval: time.Hour}})
		mustNoErr(t, "new", err)
		defer e.Close()
		f := newFixture(t, e, BackupJob{Compression: "lz4"})

		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- e.Start(runCtx) }()

		manual, err := e.EnqueueBackup(ctx, e.Queue(), f.job.ID)
		mustNoErr(t, "enqueue", err)
		waitFor(t, "the manual backup", func() bool {
			x, err := e.Store().GetExecution(ctx, manual.ID)
			return err == nil && x.Status == ExecutionCompleted
		})

		// Make the job due ten minutes ago, as after downtime.
		past := e.now().Add(-10 * time.Minute).Truncate(time.Second)
		f.job.Schedule, f.job.NextExecutionAt = "*/5 * * * *", &past
		mustNoErr(t, "update job", e.Store().UpdateBackupJob(ctx, f.job, "schedule", "next_execution_at"))
		waitFor(t, "the scheduled backup", func() bool {
			xs, _ := e.Store().ListExecutions(ctx, ExecutionFilter{JobID: f.job.ID, Status: ExecutionCompleted})
			return len(xs) == 2
		})
		time.Sleep(300 * time.Millisecond) // a few more scheduler ticks
		xs, err := e.Store().ListExecutions(ctx, ExecutionFilter{JobID: f.job.ID, Limit: -1})
		mustNoErr(t, "list", err)
		if len(xs) != 2 {
			t.Fatalf("%d executions; want the manual one and one scheduled run (missed slots run once)", len(xs))
		}
		job, err := e.Store().GetBackupJob(ctx, f.job.ID)
		mustNoErr(t, "get job", err)
		if job.NextExecutionAt == nil || !job.NextExecutionAt.After(e.now()) || job.NextExecutionAt.Minute()%5 != 0 {
			t.Fatalf("next_execution_at = %v; want the next 5-minute mark after now", job.NextExecutionAt)
		}
		st, err := e.Queue().Stats(ctx)
		mustNoErr(t, "stats", err)
		if st.Depth != 0 || st.Running != 0 {
			t.Fatalf("queue stats after the runs: %+v", st)
		}

		stop()
		select {
		case err := <-done:
			mustNoErr(t, "Start", err)
		case <-time.After(10 * time.Second):
			t.Fatal("Start did not return after its context ended")
		}
	})
}

// enginesOnOnePostgres returns n engines sharing one new PostgreSQL
// metadata database, as n processes would.
func enginesOnOnePostgres(t *testing.T, n int) []*Engine {
	t.Helper()
	url := testsvc.NewPostgresDatabase(t)
	var engines []*Engine
	for range n {
		e, err := newEngine(t.Context(), Config{DataDir: t.TempDir(), DatabaseURL: url, SecretKey: testKey, Logger: discardLogger})
		mustNoErr(t, "new", err)
		t.Cleanup(func() { e.Close() })
		engines = append(engines, e)
	}
	return engines
}

// Several processes sharing one PostgreSQL enqueue each due time exactly once.
func TestScheduledRunsEnqueuedOnceAcrossProcesses(t *testing.T) {
	ctx := t.Context()
	engines := enginesOnOnePostgres(t, 3)
	f := newFixture(t, engines[0], BackupJob{})
	const jobs = 30
	past := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	for i := range jobs {
		j := &BackupJob{Name: "due", DatasourceID: f.ds.ID, StorageLocationIDs: f.job.StorageLocationIDs, Schedule: "0 * * * *"}
		mustNoErr(t, "job", engines[0].CreateBackupJob(ctx, j))
		j.NextExecutionAt = &past
		if i%2 == 0 {
			older := past.Add(-24 * time.Hour) // long overdue: still one run
			j.NextExecutionAt = &older
		}
		mustNoErr(t, "due", engines[0].Store().UpdateBackupJob(ctx, j, "next_execution_at"))
	}
	raceEnqueue(t, engines, jobs, (*Engine).EnqueueDueBackups)
	all, err := engines[1].Store().ListExecutions(ctx, ExecutionFilter{Operation: OperationBackup, Limit: -1})
	mustNoErr(t, "list", err)
	perJob := map[string]int{}
	for _, x := range all {
		perJob[x.JobID]++
	}
	if len(perJob) != jobs {
		t.Fatalf("%d jobs got a run; want %d", len(perJob), jobs)
	}
	for id, n := range perJob {
		if n != 1 {
			t.Fatalf("job %s enqueued %d times", id, n)
		}
	}
	st, err := engines[2].Queue().Stats(ctx)
	mustNoErr(t, "stats", err)
	if st.Depth != jobs {
		t.Fatalf("queue depth %d; want %d", st.Depth, jobs)
	}
}

// raceEnqueue has every engine call enqueue three times at once with a
// small batch, then once more with room for all jobs (whatever the racing
// calls left due), as processes sharing one database would.
func raceEnqueue(t *testing.T, engines []*Engine, jobs int, enqueue func(*Engine, context.Context, Queue, int) (int, error)) {
	t.Helper()
	ctx := t.Context()
	var wg sync.WaitGroup
	for _, e := range engines {
		for range 3 {
			wg.Go(func() {
				if _, err := enqueue(e, ctx, e.Queue(), 7); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	for _, e := range engines {
		_, err := enqueue(e, ctx, e.Queue(), jobs)
		mustNoErr(t, "enqueue", err)
	}
}
