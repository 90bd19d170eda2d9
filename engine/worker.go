package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/dataguardian/dataguardian/engine/worker"
)

// NewWorker returns a Worker running the tasks of the given kinds queued on
// q; no kinds means every kind the engine runs. The worker (package worker)
// claims, leases and hands back the tasks; the engine runs them and
// records their executions.
func NewWorker(e *Engine, q Queue, opts WorkerOptions, kinds ...string) *Worker {
	return worker.New(q, worker.Host{DataDir: e.cfg.DataDir, Log: e.log, Prepare: e.prepareTask,
		LockDatasource: e.lockDatasource, Requeue: e.requeueExecution, Fail: e.failTask, Abandon: e.removeAbandonedRun},
		opts, kinds...)
}

// interrupted reports whether ctx was cancelled by a worker that handed the
// task back (lease lost, shutdown): its outcome must not be recorded.
func interrupted(ctx context.Context) bool { return worker.Interrupted(ctx) }

// prepareTask loads the execution of claimed task t for the worker: its
// status, the datasources it works on and how it runs (sync tasks, whose
// execution is a sync execution, run with executeSync).
func (e *Engine) prepareTask(ctx context.Context, t *Task) (worker.Prepared, error) {
	if t.Kind == TaskSync { // its execution is a database_sync_executions row
		status, datasources, err := e.syncTaskState(ctx, t.ExecutionID)
		return worker.Prepared{Finished: status.Terminal(), Datasources: datasources,
			Run: func(ctx context.Context) error { return e.executeSync(ctx, t.ExecutionID) }}, err
	}
	exec, err := e.store.GetExecution(ctx, t.ExecutionID)
	if err != nil {
		return worker.Prepared{}, err
	}
	return worker.Prepared{Finished: exec.Status.Terminal(), Datasources: []string{exec.DatasourceID},
		Run: func(ctx context.Context) error { return e.runTask(ctx, t.Kind, exec) }}, nil
}

// runTask runs the execution of a claimed task of the given kind (sync
// tasks, whose execution is a sync execution, go to executeSync).
func (e *Engine) runTask(ctx context.Context, kind string, exec *Execution) error {
	switch kind {
	case TaskBackup:
		return e.executeBackup(ctx, exec)
	case TaskRestore, TaskVerify:
		return e.executeRestore(ctx, exec)
	}
	return fmt.Errorf("%w: task kind %q", ErrInvalid, kind)
}

// requeueExecution records that the execution executionID of a task of
// kind, which stopped before it finished (reason), waits queued for its
// next attempt: status queued, Attempt one more, a log line saying so and
// an event. It returns the new attempt, or 0 when nothing changed (a
// finished execution, a sync execution, a store error: logged).
func (e *Engine) requeueExecution(ctx context.Context, kind, executionID, reason string) int {
	if kind == TaskSync {
		return 0
	}
	ctx = context.WithoutCancel(ctx)
	attempt, op, ok, err := e.store.RequeueExecution(ctx, executionID)
	if err == nil && !ok {
		return 0
	}
	if err != nil {
		e.log.Warn("record re-queued execution", "execution_id", executionID, "err", err)
		return 0
	}
	prefix := "[BACKUP]"
	if op != OperationBackup {
		prefix = "[RESTORE]"
	}
	execLog{e: e, id: executionID, prefix: prefix}.log(ctx, slog.LevelWarn, "%s: queued again as attempt %d", reason, attempt)
	if x, err := e.store.GetExecution(ctx, executionID); err == nil {
		e.publishExecution(x)
	}
	return attempt
}

// removeAbandonedRun removes, when t is a backup task, on every storage
// location of the job of its execution, the run folders its stopped
// attempt left: those reserved for it (manifest.Writer's .dataguardian-run
// names it) without a manifest. Call it only while no process can be
// writing them: with the task held (adopted from a dead process), before
// it is queued again. A committed backup (manifest.json) is never touched.
func (e *Engine) removeAbandonedRun(ctx context.Context, t *Task) {
	if t.Kind != TaskBackup {
		return
	}
	x, err := e.store.GetExecution(ctx, t.ExecutionID)
	if err != nil || x.Operation != OperationBackup || x.JobID == "" || x.Status.Terminal() {
		return
	}
	job, err := e.store.GetBackupJob(ctx, x.JobID)
	if err != nil {
		return
	}
	e.cleaner.RemoveAttempt(ctx, job, x.ID, execLog{e: e, id: x.ID, prefix: "[BACKUP]"}.log)
}

// failTask records the execution of a task that will not run again as
// failed (a sync task's with failOrphanedSync).
func (e *Engine) failTask(ctx context.Context, kind, executionID, reason string) error {
	if kind == TaskSync {
		return e.failOrphanedSync(ctx, executionID, reason)
	}
	return e.FailOrphaned(ctx, executionID, reason)
}

// FailOrphaned marks a queued or running execution whose worker died as
// failed with reason, so it never stays running. Finished executions are
// left as they are.
func (e *Engine) FailOrphaned(ctx context.Context, executionID, reason string) error {
	exec, err := e.store.GetExecution(ctx, executionID)
	if err != nil {
		return err
	}
	if exec.Status.Terminal() {
		return nil
	}
	prefix := "[BACKUP]"
	if exec.Operation != OperationBackup {
		prefix = "[RESTORE]"
	}
	e.finish(ctx, exec, execLog{e: e, id: exec.ID, prefix: prefix}, errors.New(reason))
	return nil
}
