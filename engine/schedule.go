package engine

import (
	"context"
	"fmt"

	"github.com/dataguardian/dataguardian/engine/queue"
	"github.com/dataguardian/dataguardian/engine/scheduler"
	"github.com/dataguardian/dataguardian/engine/store"
)

// EnqueueDueBackups records and enqueues one run of every enabled backup job
// whose next_execution_at has come, then moves the job's next_execution_at
// to the schedule's next time after now. A job that was due several times
// while nothing ran (downtime) runs once, not once per missed time.
//
// Each due time is enqueued exactly once even when several processes share
// the metadata database (see enqueueDue). It returns how many runs this
// call enqueued.
//
// A job has at most one queued backup: a job due while one is queued (run
// now, a retry, an earlier run waiting for its datasource) gets no second
// one; its schedule moves on and the queued one, made due now if it was
// due later, is the run. On another Queue than the engine's StoreQueue
// this is checked without a lock.
func (e *Engine) EnqueueDueBackups(ctx context.Context, q Queue, limit int) (int, error) {
	return e.scheduler(q, SchedulerOptions{}).EnqueueDueBackups(ctx, limit)
}

// scheduler is a Scheduler of e's jobs on q.
func (e *Engine) scheduler(q Queue, opts SchedulerOptions) *scheduler.Scheduler {
	return scheduler.New(scheduler.Config{Store: e.store, Queue: q, Publish: e.publishRun, Now: e.cfg.Now, Log: e.log, Options: opts,
		CreateBackupRun: func(ctx context.Context, job *BackupJob, id string) error {
			_, err := e.newBackupExecution(ctx, job.ID, id)
			return err
		},
		CreateSyncRun: func(ctx context.Context, job *SyncJob, id string) error {
			_, err := e.newSyncExecution(ctx, job, id)
			return err
		}})
}

// NewScheduler returns a Scheduler that enqueues the due runs of e's jobs
// on q, every opts.Tick.
func NewScheduler(e *Engine, q Queue, opts SchedulerOptions) *Scheduler { return e.scheduler(q, opts) }

// EnqueueBackup queues a backup of job jobID on q, due now: the "run now"
// path, through the same queue and workers as scheduled runs; see RunNow.
func (e *Engine) EnqueueBackup(ctx context.Context, q Queue, jobID string) (*Execution, error) {
	x, _, err := e.enqueueBackupNow(ctx, q, jobID)
	return x, err
}

// RunNow queues a backup of job jobID on the engine's queue, due now, and
// returns its execution; queued reports whether this call queued it.
//
// A job has at most one queued backup (and, its datasource being locked
// while one runs, one running): when one is already queued, RunNow adds
// nothing and returns that execution, with queued false, after making it
// due now if it was due later (a retry waiting for its delay). On the
// engine's StoreQueue this holds across every process sharing the store:
// the check and the insert run in one transaction holding the job's row
// (on PostgreSQL SELECT … FOR UPDATE, which the scheduler takes too; on
// SQLite the database's write lock).
func (e *Engine) RunNow(ctx context.Context, jobID string) (x *Execution, queued bool, err error) {
	return e.enqueueBackupNow(ctx, e.cfg.Queue, jobID)
}

func (e *Engine) enqueueBackupNow(ctx context.Context, q Queue, jobID string) (*Execution, bool, error) {
	job, err := e.store.GetBackupJob(ctx, jobID)
	if err != nil {
		return nil, false, fmt.Errorf("run backup job %s: %w", jobID, err)
	}
	tq, ok := q.(queue.TxEnqueuer)
	if !ok || !tq.InStore(e.store) { // another queue: checked, not locked
		queued, err := store.QueuedBackups(ctx, e.store, []string{job.ID}, false)
		if err != nil {
			return nil, false, fmt.Errorf("run backup job %s: %w", job.Name, err)
		}
		if x := queued[job.ID]; x != nil {
			return x, false, nil
		}
		x, err := e.newBackupExecution(ctx, job.ID, "")
		if err != nil {
			return nil, false, err
		}
		if err := q.Enqueue(ctx, Task{ID: x.ID, Kind: TaskBackup, ExecutionID: x.ID, Attempt: 1, RunAt: e.now()}); err != nil {
			e.finish(ctx, x, execLog{e: e, id: x.ID, prefix: "[BACKUP]"}, fmt.Errorf("enqueue: %w", err))
			return x, false, err
		}
		return x, true, nil
	}
	var x *Execution
	queued := false
	err = e.store.InTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		x, queued = nil, false
		if err := store.LockBackupJob(ctx, tx, job.ID); err != nil {
			return err
		}
		found, err := store.QueuedBackups(ctx, tx, []string{job.ID}, true)
		if err != nil {
			return err
		}
		if x = found[job.ID]; x != nil {
			return tq.MakeDueTx(ctx, tx, x.ID)
		}
		x = &Execution{JobID: job.ID, DatasourceID: job.DatasourceID, Operation: OperationBackup, Status: ExecutionQueued,
			Compression: job.Compression, Attempt: 1}
		if err := store.InsertExecution(ctx, tx, x); err != nil {
			return err
		}
		queued = true
		return tq.EnqueueTx(ctx, tx, Task{ID: x.ID, Kind: TaskBackup, ExecutionID: x.ID, Attempt: 1})
	})
	if err != nil {
		return nil, false, fmt.Errorf("run backup job %s: %w", job.Name, err)
	}
	if queued {
		e.publishExecution(x)
	}
	return x, queued, nil
}

// publishRun publishes the status of a run the scheduler queued.
func (e *Engine) publishRun(r store.Run) {
	switch x := r.(type) {
	case *Execution:
		e.publishExecution(x)
	case *SyncExecution:
		e.publishSync(x)
	}
}
