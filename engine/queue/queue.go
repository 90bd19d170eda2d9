package queue

import (
	"context"
	"errors"
	"time"

	"github.com/dataguardian/dataguardian/engine/store"
)

// ErrEmpty is returned by Queue.Claim when no task is due.
var ErrEmpty = errors.New("no task due")

// Task kinds.
const (
	TaskBackup  = "backup"
	TaskRestore = "restore"
	TaskVerify  = "verify"
	TaskSync    = "sync"
)

// Task is one unit of queued work: an execution waiting for a worker.
type Task struct {
	ID             string
	Kind           string // TaskBackup, TaskRestore, TaskVerify, TaskSync
	ExecutionID    string
	Attempt        int       // 1 for the first run
	RunAt          time.Time // not claimed before this time
	LeaseOwner     string    // the process holding it, while claimed
	LeaseExpiresAt time.Time
}

// Stats make the queue observable.
type Stats struct {
	Depth     int           // due tasks not claimed
	Running   int           // claimed tasks with a live lease
	OldestAge time.Duration // age of the oldest due task: how long past its RunAt it has waited
	Scheduled int           // queued tasks whose RunAt is still ahead
	Expired   int           // claimed tasks whose lease expired, not yet recovered
	Failed    int           // tasks that used all their attempts
}

// Queue hands tasks to workers, durably and at most once at a time.
//
// The contract every implementation must honour:
//   - Enqueue must persist the task before returning.
//   - Claim must give each due task to exactly one caller, with a lease of
//     the given length, and return ErrEmpty when none is due.
//   - A task whose lease expired without Extend or Complete becomes due
//     again (or is failed by the engine's recovery), so a crashed process
//     never leaves work claimed forever.
//   - Extend, Complete and Retry must fail when owner no longer holds the lease.
//
// And, as engine/queuetest checks (StoreQueue is the reference):
//   - Enqueue of an ID that exists must fail with an error matching
//     ErrAlreadyExists (so a scheduler can enqueue a due time exactly once);
//     an empty ID gets a fresh one, a zero RunAt means now, Attempt 0 means 1.
//   - Claim with no kinds must consider every kind; due tasks are claimed in
//     RunAt order.
//   - A lease has ended once its expiry time is reached: from then on Extend,
//     Complete and Retry must fail with an error matching ErrLeaseLost.
//   - Retry must queue the task again for Attempt+1 at the given time (a zero
//     time means a backoff delay from now), or, when the task has used its
//     attempts, mark it failed and return an error matching
//     ErrAttemptsExhausted.
//   - A queue that moves expired leases with an explicit sweep implements
//     Recoverer (package worker); the engine must then call Recover periodically.
//   - All methods must be safe for concurrent use by several processes
//     sharing the same metadata database.
type Queue interface {
	Enqueue(ctx context.Context, t Task) error
	Claim(ctx context.Context, kinds []string, owner string, lease time.Duration) (*Task, error)
	Extend(ctx context.Context, taskID, owner string, lease time.Duration) error
	Complete(ctx context.Context, taskID, owner string) error
	Retry(ctx context.Context, taskID, owner string, at time.Time, reason string) error
	Stats(ctx context.Context) (Stats, error)
}

// Recoverer is an optional capability of a Queue: hand back the tasks whose
// lease expired (their process died), after re-queueing them or, when their
// attempts are exhausted, failing them. Workers call it periodically and
// mark the executions of the failed ones failed, so no execution stays
// running forever.
type Recoverer interface {
	Recover(ctx context.Context) ([]RecoveredTask, error)
}

// Adopter is an optional capability of a Queue: take over, without
// waiting for their leases to expire, the tasks a dead process held. Adopt
// moves to newOwner, with a lease of the given length, every claimed task
// leased to owner or to an owner named owner+"/…" (the form a Worker
// gives its leases, see worker.Options.Owner), and returns them. A worker
// calls it when it starts, for the identity its previous incarnation had,
// cleans up after each task and hands it back with Retry (or fails it):
// so its tasks run again at once instead of a lease later. The caller must
// be sure that no live process leases under owner.
type Adopter interface {
	Adopt(ctx context.Context, owner, newOwner string, lease time.Duration) ([]Task, error)
}

// RecoveredTask is a task Recoverer.Recover moved.
type RecoveredTask struct {
	// Task as Recover left it: queued again with Attempt+1 and a new RunAt,
	// or failed (Attempt is the last one). LeaseOwner and LeaseExpiresAt
	// keep the expired lease: the process that stopped and when.
	Task
	// Failed reports that the task used its attempts and will not run
	// again: the engine marks its execution failed with
	// LeaseExpiredReason. Otherwise the task runs again.
	Failed bool
}

// TxEnqueuer is a Queue that keeps its tasks in the metadata store and can
// enqueue inside a store transaction, so that an execution and its task
// are recorded together or not at all: the scheduler records a batch of
// due runs and their tasks in one transaction, and run-now checks for a
// queued backup and queues one atomically. On any other Queue these steps
// run one after the other, and two processes may both queue a run now.
type TxEnqueuer interface {
	Queue
	// InStore reports whether the queue keeps its tasks in s: only then
	// may EnqueueTx and MakeDueTx be given a transaction of s.
	InStore(s *store.Store) bool
	// EnqueueTx stores ts as queued inside tx, skipping tasks whose ID
	// exists.
	EnqueueTx(ctx context.Context, tx *store.Tx, ts ...Task) error
	// MakeDueTx makes the queued tasks of executionIDs due now when they
	// were due later.
	MakeDueTx(ctx context.Context, tx *store.Tx, executionIDs ...string) error
}
