package scheduler

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/engine/internal/storetest"
	"github.com/dataguardian/dataguardian/engine/queue"
	"github.com/dataguardian/dataguardian/engine/store"
)

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// A batch read before another process enqueued its jobs (or before their
// next_execution_at was moved) records nothing: the compare-and-set on the
// due time fails, so no run is enqueued twice and no stale due time runs.
func TestEnqueueBatchSkipsJobsMovedSinceRead(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := t.Context()
		ds := &store.Datasource{Name: "db", Type: "sqlite", Path: "/tmp/db.sqlite"}
		must(t, "datasource", st.CreateDatasource(ctx, ds))
		due := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
		jobs := make([]store.BackupJob, 20)
		for i := range jobs {
			jobs[i] = store.BackupJob{Name: fmt.Sprintf("due %d", i), DatasourceID: ds.ID, Schedule: "* * * * *",
				Compression: "none", MaxFileSizeMB: 1024, Enabled: true, NextExecutionAt: &due}
		}
		must(t, "jobs", st.InsertBackupJobs(ctx, jobs))
		q := queue.NewStoreQueue(st, nil)
		s := New(Config{Store: st, Queue: q, Publish: func(store.Run) {}})
		now := s.now()
		stale, err := store.DueJobs[store.BackupJob](ctx, st, now, 100, false)
		must(t, "read due jobs", err)
		if len(stale) != 20 {
			t.Fatalf("%d due jobs; want 20", len(stale))
		}

		// Meanwhile: another process enqueues the first 10, and the
		// schedule of the other 10 is moved (edited) without a run.
		n, err := s.EnqueueDueBackups(ctx, 10)
		must(t, "enqueue", err)
		if n != 10 {
			t.Fatalf("enqueued %d; want 10", n)
		}
		later := now.Add(time.Hour).Truncate(time.Second)
		for i := range jobs {
			job, err := st.GetBackupJob(ctx, jobs[i].ID)
			must(t, "get job", err)
			if job.NextExecutionAt.Equal(due) {
				job.NextExecutionAt = &later
				must(t, "move schedule", st.UpdateBackupJob(ctx, job, "next_execution_at"))
			}
		}

		var runs []store.Run
		err = st.InTx(ctx, func(ctx context.Context, tx *store.Tx) error {
			runs, err = enqueueBatch[store.BackupJob](ctx, s, tx, q, stale, now, queue.TaskBackup, "[BACKUP]")
			return err
		})
		must(t, "stale batch", err)
		if len(runs) != 0 {
			t.Fatalf("the stale batch enqueued %d runs; want 0", len(runs))
		}
		xs, err := st.ListExecutions(ctx, store.ExecutionFilter{Limit: -1})
		must(t, "list", err)
		if len(xs) != 10 {
			t.Fatalf("%d executions; want the 10 enqueued once", len(xs))
		}
		stats, err := q.Stats(ctx)
		must(t, "stats", err)
		if stats.Depth != 10 {
			t.Fatalf("queue depth %d; want 10", stats.Depth)
		}
		moved := 0
		for i := range jobs {
			job, err := st.GetBackupJob(ctx, jobs[i].ID)
			must(t, "get job", err)
			if job.NextExecutionAt.Equal(later) {
				moved++
			}
		}
		if moved != 10 {
			t.Fatalf("%d jobs keep the edited next_execution_at; want 10", moved)
		}
	})
}
