package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/alitto/pond/v2"
	"github.com/google/uuid"
)

// WorkerOptions configure a Worker. Zero values are the documented defaults.
type WorkerOptions struct {
	// Owner names this worker in task leases and must be unique among the
	// live workers sharing the queue. "" means a stable identity of the
	// data directory: the first free slot of Config.DataDir/workers (a file
	// holding an ID, locked while the worker runs), leasing as
	// "{ID}/{host}:{pid}:{random}"; where files cannot be locked (not Linux,
	// macOS or a BSD), just "{host}:{pid}:{random}".
	//
	// A worker with a stable identity (a set Owner is one) takes back, as it
	// starts, the tasks leased under it, which only its dead predecessor
	// can hold (see Adopter): each runs again at once (or is failed when it
	// used its attempts) instead of waiting for its lease to expire.
	Owner string
	// Concurrency bounds the backups run at once; 0 means 2.
	Concurrency int
	// Poll is how often the queue is polled when it was empty; 0 means 1 s.
	Poll time.Duration
	// Lease is how long a claimed task stays ours without a heartbeat;
	// heartbeats extend it every Lease/3. 0 means 2 min.
	Lease time.Duration
	// ShutdownTimeout is how long running backups may go on after Run's
	// context is done; then they are cancelled (recorded cancelled). 0 means 1 min.
	ShutdownTimeout time.Duration
}

func (o WorkerOptions) withDefaults() WorkerOptions {
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = time.Minute
	}
	return o
}

// Worker claims tasks from a Queue (backups, restores, verifications,
// syncs) and runs them with a bounded pond pool, one task at a time per
// datasource (within this process).
type Worker struct {
	e     *Engine
	q     Queue
	opts  WorkerOptions
	kinds []string
	locks sync.Map // datasource ID → *sync.Mutex

	// Set by Run (takeIdentity): the lease owner, and the stable identity
	// it belongs to ("" when there is none).
	owner, identity string
}

// NewWorker returns a Worker running the tasks of the given kinds queued on
// q; no kinds means every kind the engine runs.
func NewWorker(e *Engine, q Queue, opts WorkerOptions, kinds ...string) *Worker {
	if len(kinds) == 0 {
		kinds = []string{TaskBackup, TaskRestore, TaskVerify, TaskSync}
	}
	return &Worker{e: e, q: q, opts: opts.withDefaults(), kinds: kinds}
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

// Run claims and runs tasks until ctx is done; it first takes back the
// tasks its identity's previous process held (see WorkerOptions.Owner).
// When ctx is done it claims nothing more and waits up to ShutdownTimeout
// for running backups, cancelling those still running after that; it
// returns once every one has stopped.
func (w *Worker) Run(ctx context.Context) error {
	release := w.takeIdentity()
	defer release()
	w.adoptOrphans(ctx)
	pool := pond.NewPool(w.opts.Concurrency)
	workCtx, cancelWork := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelWork(nil)
	slots := make(chan struct{}, w.opts.Concurrency)
	poll := time.NewTicker(w.opts.Poll)
	defer poll.Stop()
	lastRecover := time.Time{}
	for {
		if time.Since(lastRecover) >= w.opts.Lease/2 {
			w.recover(ctx)
			lastRecover = time.Now()
		}
		for len(slots) < cap(slots) && ctx.Err() == nil {
			task, err := w.q.Claim(ctx, w.kinds, w.owner, w.opts.Lease)
			if err != nil {
				if !errors.Is(err, ErrQueueEmpty) && ctx.Err() == nil {
					w.e.log.Error("claim task", "err", err)
				}
				break
			}
			slots <- struct{}{}
			pool.Go(func() {
				defer func() { <-slots }()
				w.run(workCtx, task)
			})
		}
		select {
		case <-ctx.Done():
			stopped := make(chan struct{})
			go func() { pool.StopAndWait(); close(stopped) }()
			select {
			case <-stopped:
			case <-time.After(w.opts.ShutdownTimeout):
				w.e.log.Warn("shutdown deadline reached: cancelling running work", "running", len(slots))
				cancelWork(errShutdown)
				<-stopped
			}
			return nil
		case <-poll.C:
		}
	}
}

// run executes one claimed task, keeping its lease alive meanwhile.
func (w *Worker) run(ctx context.Context, t *Task) {
	bg := context.WithoutCancel(ctx)
	var exec *Execution
	var status ExecutionStatus
	var datasources []string // sorted: locked in order
	var err error
	if t.Kind == TaskSync { // its execution is a database_sync_executions row
		status, datasources, err = w.e.syncTaskState(ctx, t.ExecutionID)
	} else if exec, err = w.e.store.GetExecution(ctx, t.ExecutionID); err == nil {
		status, datasources = exec.Status, []string{exec.DatasourceID}
	}
	if err != nil {
		w.e.log.Error("load claimed execution", "execution_id", t.ExecutionID, "err", err)
		_ = w.q.Complete(bg, t.ID, w.owner)
		return
	}
	if status.Terminal() { // already ran (a retry of a finished task): nothing to do
		_ = w.q.Complete(bg, t.ID, w.owner)
		return
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var hb sync.WaitGroup
	hb.Go(func() { w.heartbeat(runCtx, t, cancel) })
	for _, id := range datasources {
		lock, _ := w.locks.LoadOrStore(id, &sync.Mutex{})
		lock.(*sync.Mutex).Lock()
		defer lock.(*sync.Mutex).Unlock()
		unlock, err := w.e.lockDatasource(runCtx, id) // and across processes
		if err != nil {
			w.e.log.Warn("lock datasource", "datasource_id", id, "err", err)
			cancel(errShutdown) // hand the task back: it runs again later
			break
		}
		defer unlock()
	}
	switch {
	case runCtx.Err() != nil: // lost the lease or shutting down while waiting for a lock
	case t.Kind == TaskSync:
		err = w.e.executeSync(runCtx, t.ExecutionID)
	default:
		err = w.e.runTask(runCtx, t.Kind, exec)
	}
	cause := context.Cause(runCtx)
	cancel(nil)
	hb.Wait()
	switch {
	case errors.Is(cause, ErrLeaseLost): // another process owns the task now
		return
	case errors.Is(cause, errShutdown):
		// Left for recovery: run again, here after a restart or elsewhere.
		w.handBack(bg, t, errShutdown.Error())
		return
	}
	if err != nil {
		w.e.log.Warn("queued "+t.Kind+" failed", "execution_id", t.ExecutionID, "err", err)
	}
	if cerr := w.q.Complete(bg, t.ID, w.owner); cerr != nil {
		w.e.log.Warn("complete task", "task_id", t.ID, "err", cerr)
	}
}

// heartbeat extends t's lease every Lease/3 until ctx ends; if the lease is
// lost (another process took the task over) it cancels the run.
func (w *Worker) heartbeat(ctx context.Context, t *Task, cancel context.CancelCauseFunc) {
	tick := time.NewTicker(w.opts.Lease / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			err := w.q.Extend(ctx, t.ID, w.owner, w.opts.Lease)
			switch {
			case err == nil || ctx.Err() != nil:
			case errors.Is(err, ErrLeaseLost):
				w.e.log.Error("lease lost: stopping the task, its result left to the new owner", "task_id", t.ID, "err", err)
				cancel(ErrLeaseLost)
				return
			default: // the store hiccuped: the lease may still be ours, try again next tick
				w.e.log.Warn("extend lease", "task_id", t.ID, "err", err)
			}
		}
	}
}

// recover asks the queue for tasks whose process died and fails the
// executions that will not be retried.
func (w *Worker) recover(ctx context.Context) {
	r, ok := w.q.(Recoverer)
	if !ok {
		return
	}
	tasks, err := r.Recover(ctx)
	if err != nil {
		w.e.log.Error("recover expired tasks", "err", err)
		return
	}
	for _, t := range tasks {
		if !t.Failed {
			attempt := w.e.requeueExecution(ctx, t.Kind, t.ExecutionID, LeaseExpiredReason)
			w.e.log.Warn("re-queued: the process running it stopped", "execution_id", t.ExecutionID, "attempt", attempt,
				"task_attempt", t.Attempt, "previous_owner", t.LeaseOwner)
			continue
		}
		w.fail(ctx, t.Kind, t.ExecutionID, LeaseExpiredReason+" and no attempt is left")
	}
}

// takeIdentity sets the worker's lease owner and stable identity (see
// WorkerOptions.Owner); release gives the identity's slot back.
func (w *Worker) takeIdentity() (release func()) {
	host, _ := os.Hostname()
	incarnation := fmt.Sprintf("%s:%d:%s", host, os.Getpid(), uuid.NewString()[:8])
	if w.opts.Owner != "" {
		w.owner, w.identity = w.opts.Owner, w.opts.Owner
		return func() {}
	}
	w.owner = incarnation
	slot, err := takeWorkerSlot(filepath.Join(w.e.cfg.DataDir, workerSlotDir))
	if err != nil {
		w.e.log.Warn("worker without a stable identity: the tasks of a process that stopped wait for their leases to expire", "err", err)
		return func() {}
	}
	w.owner, w.identity = slot.id+"/"+incarnation, slot.id
	return slot.release
}

// adoptOrphans takes back the tasks leased under the worker's identity,
// which only its previous incarnation, now dead, can hold (a process
// killed or crashed mid-run); removes the run folder each backup was
// writing; and hands each back (handBack): due again at once, or failed
// when it used its attempts.
func (w *Worker) adoptOrphans(ctx context.Context) {
	a, ok := w.q.(Adopter)
	if !ok || w.identity == "" {
		return
	}
	tasks, err := a.Adopt(ctx, w.identity, w.owner, w.opts.Lease)
	if err != nil {
		if ctx.Err() == nil {
			w.e.log.Error("take back the tasks of this worker's previous process", "err", err)
		}
		return
	}
	for i := range tasks {
		t := &tasks[i]
		w.e.log.Warn("taking back a task of this worker's previous process, which stopped", "task_id", t.ID,
			"execution_id", t.ExecutionID, "kind", t.Kind, "task_attempt", t.Attempt)
		if t.Kind == TaskBackup {
			w.e.removeAbandonedRun(ctx, t.ExecutionID)
		}
		w.handBack(ctx, t, OwnerStoppedReason)
	}
}

// OwnerStoppedReason is why a worker hands back a task that its previous
// process held when it stopped (the queue's last_error, the execution's
// log).
const OwnerStoppedReason = "the worker process stopped before the task finished"

// handBack ends this worker's hold on t without a result: t is queued
// again for its next attempt, due now, and its execution waits queued for
// it (requeueExecution); or, when t used its attempts, its execution is
// failed with reason.
func (w *Worker) handBack(ctx context.Context, t *Task, reason string) {
	err := w.q.Retry(ctx, t.ID, w.owner, time.Now(), reason)
	switch {
	case errors.Is(err, ErrAttemptsExhausted):
		w.fail(ctx, t.Kind, t.ExecutionID, reason+" and no attempt is left")
	case err != nil:
		w.e.log.Warn("re-queue task", "task_id", t.ID, "execution_id", t.ExecutionID, "err", err)
	default:
		attempt := w.e.requeueExecution(ctx, t.Kind, t.ExecutionID, reason)
		w.e.log.Warn("re-queued", "execution_id", t.ExecutionID, "attempt", attempt, "task_attempt", t.Attempt+1, "reason", reason)
	}
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

// removeAbandonedRun removes, on every storage location of the job of
// backup execution executionID, the run folders its stopped attempt left:
// those reserved for it (manifest.Writer's .dataguardian-run names it)
// without a manifest. Call it only while no process can be writing them:
// with the execution's task held (adopted from a dead process), before it
// is queued again. A committed backup (manifest.json) is never touched.
func (e *Engine) removeAbandonedRun(ctx context.Context, executionID string) {
	x, err := e.store.GetExecution(ctx, executionID)
	if err != nil || x.Operation != OperationBackup || x.JobID == "" || x.Status.Terminal() {
		return
	}
	job, err := e.store.GetBackupJob(ctx, x.JobID)
	if err != nil {
		return
	}
	e.cleaner.RemoveAttempt(ctx, job, x.ID, execLog{e: e, id: x.ID, prefix: "[BACKUP]"}.log)
}

// fail records the execution of a task that will not run again as failed.
func (w *Worker) fail(ctx context.Context, kind, executionID, reason string) {
	fail := w.e.FailOrphaned
	if kind == TaskSync {
		fail = w.e.failOrphanedSync
	}
	if err := fail(ctx, executionID, reason); err != nil {
		w.e.log.Warn("fail orphaned execution", "execution_id", executionID, "err", err)
	}
}

// errShutdown is the cause of cancelling running work at the shutdown
// deadline: the work is left for recovery rather than recorded as done.
var errShutdown = errors.New("the worker shut down before the task finished")

// interrupted reports whether ctx was cancelled by a worker that handed the
// task back (lease lost, shutdown): its outcome must not be recorded.
func interrupted(ctx context.Context) bool {
	cause := context.Cause(ctx)
	return errors.Is(cause, ErrLeaseLost) || errors.Is(cause, errShutdown)
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
