package worker

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

	"github.com/dataguardian/dataguardian/engine/internal/workerslot"
	"github.com/dataguardian/dataguardian/engine/queue"
)

// Options configure a Worker. Zero values are the documented defaults.
type Options struct {
	// Owner names this worker in task leases and must be unique among the
	// live workers sharing the queue. "" means a stable identity of the
	// data directory: the first free slot of DataDir/workers (the engine's
	// Config.DataDir, Host.DataDir here: a file holding an ID, locked while
	// the worker runs), leasing as "{ID}/{host}:{pid}:{random}"; where files
	// cannot be locked (not Linux, macOS or a BSD), just
	// "{host}:{pid}:{random}".
	//
	// A worker with a stable identity (a set Owner is one) takes back, as it
	// starts, the tasks leased under it, which only its dead predecessor
	// can hold (see queue.Adopter): each runs again at once (or is failed
	// when it used its attempts) instead of waiting for its lease to expire.
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

func (o Options) withDefaults() Options {
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

// Host is what a Worker needs from its owner, the engine: where it keeps
// its identity, where it logs, and what the tasks it holds mean. Every
// function is required.
type Host struct {
	// DataDir holds the worker's identity slots (DataDir/workers; see
	// Options.Owner).
	DataDir string
	// Log receives the worker's logs; nil means slog.Default().
	Log *slog.Logger
	// Prepare loads the execution of the claimed task t. On an error the
	// task is completed without running (the error is logged).
	Prepare func(ctx context.Context, t *queue.Task) (Prepared, error)
	// LockDatasource waits until this process is the only one working on
	// datasource id, across the processes sharing the queue, or until ctx
	// is done; unlock releases it.
	LockDatasource func(ctx context.Context, id string) (unlock func(), err error)
	// Requeue records that the execution executionID of a task of kind,
	// which stopped before it finished (reason), waits queued for its next
	// attempt. It returns that attempt, or 0 when nothing changed.
	Requeue func(ctx context.Context, kind, executionID, reason string) int
	// Fail records the execution executionID of a task of kind, which will
	// not run again, as failed with reason.
	Fail func(ctx context.Context, kind, executionID, reason string) error
	// Abandon cleans up what the stopped attempt of t left (a backup's
	// half-written run folder) before t, adopted from a dead process, is
	// handed back: no process can be running it then.
	Abandon func(ctx context.Context, t *queue.Task)
}

// Prepared is the execution of a claimed task, as Host.Prepare loaded it.
type Prepared struct {
	// Finished reports an execution that already finished (a retry of a
	// finished task): the task is completed, nothing runs.
	Finished bool
	// Datasources are the datasources the run works on, sorted: the worker
	// locks them in that order, in this process and with
	// Host.LockDatasource, for as long as Run runs.
	Datasources []string
	// Run runs the execution. When the worker hands the task back it
	// cancels ctx with cause ErrShutdown or queue.ErrLeaseLost (see
	// Interrupted): the outcome of the run must then not be recorded.
	Run func(ctx context.Context) error
}

// Worker claims tasks from a Queue (backups, restores, verifications,
// syncs) and runs them with a bounded pond pool, one task at a time per
// datasource (within this process).
type Worker struct {
	host  Host
	q     queue.Queue
	opts  Options
	kinds []string
	locks sync.Map // datasource ID → *sync.Mutex

	// Set by Run (takeIdentity): the lease owner, and the stable identity
	// it belongs to ("" when there is none).
	owner, identity string
}

// New returns a Worker running, through host, the tasks of the given kinds
// queued on q; no kinds means every kind of package queue (backup,
// restore, verify, sync).
func New(q queue.Queue, host Host, opts Options, kinds ...string) *Worker {
	if len(kinds) == 0 {
		kinds = []string{queue.TaskBackup, queue.TaskRestore, queue.TaskVerify, queue.TaskSync}
	}
	if host.Log == nil {
		host.Log = slog.Default()
	}
	return &Worker{host: host, q: q, opts: opts.withDefaults(), kinds: kinds}
}

// Run claims and runs tasks until ctx is done; it first takes back the
// tasks its identity's previous process held (see Options.Owner).
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
				if !errors.Is(err, queue.ErrEmpty) && ctx.Err() == nil {
					w.host.Log.Error("claim task", "err", err)
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
				w.host.Log.Warn("shutdown deadline reached: cancelling running work", "running", len(slots))
				cancelWork(ErrShutdown)
				<-stopped
			}
			return nil
		case <-poll.C:
		}
	}
}

// run executes one claimed task, keeping its lease alive meanwhile.
func (w *Worker) run(ctx context.Context, t *queue.Task) {
	bg := context.WithoutCancel(ctx)
	p, err := w.host.Prepare(ctx, t)
	if err != nil {
		w.host.Log.Error("load claimed execution", "execution_id", t.ExecutionID, "err", err)
		_ = w.q.Complete(bg, t.ID, w.owner)
		return
	}
	if p.Finished { // already ran (a retry of a finished task): nothing to do
		_ = w.q.Complete(bg, t.ID, w.owner)
		return
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var hb sync.WaitGroup
	hb.Go(func() { w.heartbeat(runCtx, t, cancel) })
	for _, id := range p.Datasources {
		lock, _ := w.locks.LoadOrStore(id, &sync.Mutex{})
		lock.(*sync.Mutex).Lock()
		defer lock.(*sync.Mutex).Unlock()
		unlock, err := w.host.LockDatasource(runCtx, id) // and across processes
		if err != nil {
			w.host.Log.Warn("lock datasource", "datasource_id", id, "err", err)
			cancel(ErrShutdown) // hand the task back: it runs again later
			break
		}
		defer unlock()
	}
	if runCtx.Err() == nil { // else lost the lease or shutting down while waiting for a lock
		err = p.Run(runCtx)
	}
	cause := context.Cause(runCtx)
	cancel(nil)
	hb.Wait()
	switch {
	case errors.Is(cause, queue.ErrLeaseLost): // another process owns the task now
		return
	case errors.Is(cause, ErrShutdown):
		// Left for recovery: run again, here after a restart or elsewhere.
		w.handBack(bg, t, ErrShutdown.Error())
		return
	}
	if err != nil {
		w.host.Log.Warn("queued "+t.Kind+" failed", "execution_id", t.ExecutionID, "err", err)
	}
	if cerr := w.q.Complete(bg, t.ID, w.owner); cerr != nil {
		w.host.Log.Warn("complete task", "task_id", t.ID, "err", cerr)
	}
}

// heartbeat extends t's lease every Lease/3 until ctx ends; if the lease is
// lost (another process took the task over) it cancels the run.
func (w *Worker) heartbeat(ctx context.Context, t *queue.Task, cancel context.CancelCauseFunc) {
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
			case errors.Is(err, queue.ErrLeaseLost):
				w.host.Log.Error("lease lost: stopping the task, its result left to the new owner", "task_id", t.ID, "err", err)
				cancel(queue.ErrLeaseLost)
				return
			default: // the store hiccuped: the lease may still be ours, try again next tick
				w.host.Log.Warn("extend lease", "task_id", t.ID, "err", err)
			}
		}
	}
}

// recover asks the queue for tasks whose process died and fails the
// executions that will not be retried.
func (w *Worker) recover(ctx context.Context) {
	r, ok := w.q.(queue.Recoverer)
	if !ok {
		return
	}
	tasks, err := r.Recover(ctx)
	if err != nil {
		w.host.Log.Error("recover expired tasks", "err", err)
		return
	}
	for _, t := range tasks {
		if !t.Failed {
			attempt := w.host.Requeue(ctx, t.Kind, t.ExecutionID, queue.LeaseExpiredReason)
			w.host.Log.Warn("re-queued: the process running it stopped", "execution_id", t.ExecutionID, "attempt", attempt,
				"task_attempt", t.Attempt, "previous_owner", t.LeaseOwner)
			continue
		}
		w.fail(ctx, t.Kind, t.ExecutionID, queue.LeaseExpiredReason+" and no attempt is left")
	}
}

// takeIdentity sets the worker's lease owner and stable identity (see
// Options.Owner); release gives the identity's slot back.
func (w *Worker) takeIdentity() (release func()) {
	host, _ := os.Hostname()
	incarnation := fmt.Sprintf("%s:%d:%s", host, os.Getpid(), uuid.NewString()[:8])
	if w.opts.Owner != "" {
		w.owner, w.identity = w.opts.Owner, w.opts.Owner
		return func() {}
	}
	w.owner = incarnation
	slot, err := workerslot.Take(filepath.Join(w.host.DataDir, workerslot.Dir))
	if err != nil {
		w.host.Log.Warn("worker without a stable identity: the tasks of a process that stopped wait for their leases to expire", "err", err)
		return func() {}
	}
	w.owner, w.identity = slot.ID+"/"+incarnation, slot.ID
	return slot.Release
}

// adoptOrphans takes back the tasks leased under the worker's identity,
// which only its previous incarnation, now dead, can hold (a process
// killed or crashed mid-run); lets the host clean up after each
// (Host.Abandon: the run folder a backup was writing); and hands each back
// (handBack): due again at once, or failed when it used its attempts.
func (w *Worker) adoptOrphans(ctx context.Context) {
	a, ok := w.q.(queue.Adopter)
	if !ok || w.identity == "" {
		return
	}
	tasks, err := a.Adopt(ctx, w.identity, w.owner, w.opts.Lease)
	if err != nil {
		if ctx.Err() == nil {
			w.host.Log.Error("take back the tasks of this worker's previous process", "err", err)
		}
		return
	}
	for i := range tasks {
		t := &tasks[i]
		w.host.Log.Warn("taking back a task of this worker's previous process, which stopped", "task_id", t.ID,
			"execution_id", t.ExecutionID, "kind", t.Kind, "task_attempt", t.Attempt)
		w.host.Abandon(ctx, t)
		w.handBack(ctx, t, OwnerStoppedReason)
	}
}

// OwnerStoppedReason is why a worker hands back a task that its previous
// process held when it stopped (the queue's last_error, the execution's
// log).
const OwnerStoppedReason = "the worker process stopped before the task finished"

// handBack ends this worker's hold on t without a result: t is queued
// again for its next attempt, due now, and its execution waits queued for
// it (Host.Requeue); or, when t used its attempts, its execution is
// failed with reason.
func (w *Worker) handBack(ctx context.Context, t *queue.Task, reason string) {
	err := w.q.Retry(ctx, t.ID, w.owner, time.Now(), reason)
	switch {
	case errors.Is(err, queue.ErrAttemptsExhausted):
		w.fail(ctx, t.Kind, t.ExecutionID, reason+" and no attempt is left")
	case err != nil:
		w.host.Log.Warn("re-queue task", "task_id", t.ID, "execution_id", t.ExecutionID, "err", err)
	default:
		attempt := w.host.Requeue(ctx, t.Kind, t.ExecutionID, reason)
		w.host.Log.Warn("re-queued", "execution_id", t.ExecutionID, "attempt", attempt, "task_attempt", t.Attempt+1, "reason", reason)
	}
}

// fail records the execution of a task that will not run again as failed.
func (w *Worker) fail(ctx context.Context, kind, executionID, reason string) {
	if err := w.host.Fail(ctx, kind, executionID, reason); err != nil {
		w.host.Log.Warn("fail orphaned execution", "execution_id", executionID, "err", err)
	}
}

// ErrShutdown is the cause with which a Worker cancels the run of a task it
// hands back: at the shutdown deadline, or when it cannot lock the task's
// datasources. The task is left for recovery rather than recorded as done.
var ErrShutdown = errors.New("the worker shut down before the task finished")

// Interrupted reports whether ctx was cancelled by a worker that handed the
// task back (lease lost, shutdown): its outcome must not be recorded.
func Interrupted(ctx context.Context) bool {
	cause := context.Cause(ctx)
	return errors.Is(cause, queue.ErrLeaseLost) || errors.Is(cause, ErrShutdown)
}
