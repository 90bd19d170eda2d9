package engine

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/engine/internal/storedb"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// addDueJobs inserts n enabled backup jobs of ds due at due, in one
// statement (CreateBackupJob per job would dominate the tests' time).
func addDueJobs(t testing.TB, e *Engine, ds string, storages []string, n int, due time.Time) []string {
	t.Helper()
	jobs := make([]BackupJob, n)
	ids := make([]string, n)
	for i := range jobs {
		jobs[i] = BackupJob{Name: fmt.Sprintf("due %d", i), DatasourceID: ds, StorageLocationIDs: storages,
			Schedule: "* * * * *", Compression: "none", MaxFileSizeMB: DefaultMaxFileSizeMB, Enabled: true, NextExecutionAt: &due}
	}
	if err := e.Store().InsertBackupJobs(t.Context(), jobs); err != nil {
		t.Fatal(err)
	}
	for i := range jobs {
		ids[i] = jobs[i].ID
	}
	return ids
}

// checkOncePerJob fails unless each of ids has exactly one backup
// execution and one task, and its next_execution_at moved past due.
func checkOncePerJob(t *testing.T, e *Engine, ids []string, due time.Time) {
	t.Helper()
	ctx := t.Context()
	var perJob []struct {
		JobID string `bun:"job_id"`
		N     int    `bun:"n"`
	}
	err := e.Store().DB(storedb.Key{}).NewSelect().TableExpr("backup_executions").ColumnExpr("job_id, COUNT(*) AS n").
		Group("job_id").Scan(ctx, &perJob)
	mustNoErr(t, "count executions", err)
	if len(perJob) != len(ids) {
		t.Fatalf("%d jobs got runs; want %d", len(perJob), len(ids))
	}
	for _, r := range perJob {
		if r.N != 1 {
			t.Fatalf("job %s has %d runs; want 1", r.JobID, r.N)
		}
	}
	tasks, err := e.Store().DB(storedb.Key{}).NewSelect().TableExpr("queue_tasks").
		Where("execution_id IN (?)", e.Store().DB(storedb.Key{}).NewSelect().TableExpr("backup_executions").Column("id")).Count(ctx)
	mustNoErr(t, "count tasks", err)
	if tasks != int64(len(ids)) {
		t.Fatalf("%d tasks; want %d", tasks, len(ids))
	}
	stale, err := e.Store().DB(storedb.Key{}).NewSelect().Model((*BackupJob)(nil)).Where("next_execution_at <= ?", due).Count(ctx)
	mustNoErr(t, "count due", err)
	if stale != 0 {
		t.Fatalf("%d jobs still due at %s", stale, due)
	}
}

// Two engines on one PostgreSQL racing through 1,200 due jobs (more than
// two batches) enqueue each exactly once.
func TestEnqueueDueBatchesAcrossProcesses(t *testing.T) {
	url := testsvc.NewPostgresDatabase(t)
	ctx := t.Context()
	var engines []*Engine
	for range 2 {
		e, err := newEngine(ctx, Config{DataDir: t.TempDir(), DatabaseURL: url, SecretKey: testKey, Logger: discardLogger})
		mustNoErr(t, "new", err)
		defer e.Close()
		engines = append(engines, e)
	}
	f := newFixture(t, engines[0], BackupJob{})
	due := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	const jobs = 1200
	ids := addDueJobs(t, engines[0], f.ds.ID, f.job.StorageLocationIDs, jobs, due)

	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for _, e := range engines {
		for range 2 {
			wg.Go(func() {
				for idle := 0; idle < 3; {
					n, err := e.EnqueueDueBackups(ctx, e.Queue(), 500)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					total += n
					mu.Unlock()
					if n == 0 {
						idle++
						time.Sleep(10 * time.Millisecond)
					}
				}
			})
		}
	}
	wg.Wait()
	for _, e := range engines {
		n, err := e.EnqueueDueBackups(ctx, e.Queue(), jobs)
		mustNoErr(t, "enqueue", err)
		total += n
	}
	if total != jobs {
		t.Fatalf("the calls report %d runs enqueued; want %d", total, jobs)
	}
	checkOncePerJob(t, engines[1], ids, due)
}
