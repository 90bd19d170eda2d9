package engine

import (
	"context"
	"errors"
	"time"
)

// ErrQueueEmpty is returned by Queue.Claim when no task is due.
var ErrQueueEmpty = errors.New("no task due")

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

// QueueStats make the queue observable.
type QueueStats struct {
	Depth     int           // due tasks not claimed
	Running   int           // claimed tasks with a live lease
	OldestAge time.Duration // age of the oldest due task
}

// Queue hands tasks to workers, durably and at most once at a time.
//
// The contract every implementation must honour:
//   - Enqueue must persist the task before returning.
//   - Claim must give each due task to exactly one caller, with a lease of
//     the given length, and return ErrQueueEmpty when none is due.
//   - A task whose lease expired without Extend or Complete becomes due
//     again (or is failed by the engine's recovery), so a crashed process
//     never leaves work claimed forever.
//   - Extend, Complete and Retry must fail when owner no longer holds the lease.
//   - All methods must be safe for concurrent use by several processes
//     sharing the same metadata database.
type Queue interface {
	Enqueue(ctx context.Context, t Task) error
	Claim(ctx context.Context, kinds []string, owner string, lease time.Duration) (*Task, error)
	Extend(ctx context.Context, taskID, owner string, lease time.Duration) error
	Complete(ctx context.Context, taskID, owner string) error
	Retry(ctx context.Context, taskID, owner string, at time.Time, reason string) error
	Stats(ctx context.Context) (QueueStats, error)
}
