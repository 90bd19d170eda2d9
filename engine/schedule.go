package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/robfig/cron/v3"
)

// scheduledRunSpace namespaces the IDs of scheduled runs: the execution of
// job J due at T always has the same ID, so recording it twice (two
// processes, or a retry after a crash) fails instead of running twice.
var scheduledRunSpace = uuid.MustParse("5b0d7f0e-3c53-4c51-9d51-4f1c2a7e9d10")

// parseSchedule parses a job's cron expression (five fields, or a
// descriptor such as "@daily") and its IANA time zone ("" means UTC).
func parseSchedule(expr, tz string) (cron.Schedule, *time.Location, error) {
	loc := time.UTC
	if tz != "" {
		var err error
		if loc, err = time.LoadLocation(tz); err != nil {
			return nil, nil, fmt.Errorf("timezone %q: use an IANA name such as \"America/Sao_Paulo\" or \"UTC\"", tz)
		}
	}
	s, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, nil, fmt.Errorf("schedule %q: %v; use five cron fields (minute hour day month weekday), e.g. \"0 6 * * *\" for 06:00 daily, or \"@daily\"", expr, err)
	}
	return s, loc, nil
}

// nextRun is the first time after t that the schedule matches in loc, in UTC.
func nextRun(s cron.Schedule, loc *time.Location, t time.Time) time.Time {
	return s.Next(t.In(loc)).UTC()
}

// EnqueueDueBackups records and enqueues one run of every enabled backup job
// whose next_execution_at has come, then moves the job's next_execution_at
// to the schedule's next time after now. A job that was due several times
// while nothing ran (downtime) runs once, not once per missed time.
//
// Each due time is enqueued exactly once even when several processes share
// the metadata database (see enqueueDue). It returns how many runs this
// call enqueued.
func (e *Engine) EnqueueDueBackups(ctx context.Context, q Queue, limit int) (int, error) {
	return enqueueDueJobs(ctx, e, q, limit, TaskBackup, "[BACKUP]", func(ctx context.Context, job *BackupJob, id string) error {
		_, err := e.newBackupExecution(ctx, job.ID, id)
		return err
	})
}

// scheduledJob is a row the scheduler enqueues runs of: a backup job or a
// sync job.
type scheduledJob interface {
	scheduled() (id, expr, tz string, next *time.Time)
}

func (j *BackupJob) scheduled() (string, string, string, *time.Time) {
	return j.ID, j.Schedule, j.Timezone, j.NextExecutionAt
}

func (j *SyncJob) scheduled() (string, string, string, *time.Time) {
	return j.ID, j.Schedule, j.Timezone, j.NextExecutionAt
}

// enqueueDueJobs enqueues one run (a task of kind) of each enabled row of T
// whose next_execution_at has come, at most limit of them, oldest due
// first; create records the queued execution of a run with the given ID.
// It returns how many runs this call enqueued.
func enqueueDueJobs[T any, P interface {
	*T
	scheduledJob
}](ctx context.Context, e *Engine, q Queue, limit int, kind, prefix string, create func(ctx context.Context, job P, id string) error) (int, error) {
	now := e.now()
	jobs, err := listRows[T](ctx, e.store.DB().NewSelect().
		Where("enabled = ?", true).Where("next_execution_at IS NOT NULL").Where("next_execution_at <= ?", now).
		OrderExpr("next_execution_at ASC").Limit(int64(max(limit, 1))))
	if err != nil {
		return 0, fmt.Errorf("due %s runs: %w", kind, err)
	}
	n := 0
	for i := range jobs {
		job := P(&jobs[i])
		ok, err := enqueueDue(ctx, e, q, job, now, kind, prefix, func(ctx context.Context, id string) error { return create(ctx, job, id) })
		if err != nil {
			id, _, _, _ := job.scheduled()
			e.log.Error(prefix+" enqueue scheduled run", "job_id", id, "err", err)
			continue
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// enqueueDue enqueues the run of job due at its next_execution_at and moves
// next_execution_at to the schedule's next time after now.
//
// The run is enqueued exactly once even when several processes do this at
// once: its execution and task IDs derive from (job, due time), so a second
// attempt fails on the unique key, and the move of next_execution_at is a
// compare-and-set on the due time. A process that crashed between the steps
// is completed by the next attempt (the existing execution is enqueued
// under the same ID). It reports whether this call recorded the run.
func enqueueDue[T any, P interface {
	*T
	scheduledJob
}](ctx context.Context, e *Engine, q Queue, job P, now time.Time, kind, prefix string, create func(ctx context.Context, id string) error) (bool, error) {
	jobID, expr, tz, next := job.scheduled()
	due := *next
	s, loc, err := parseSchedule(expr, tz)
	if err != nil {
		return false, err
	}
	id := uuid.NewSHA1(scheduledRunSpace, []byte(jobID+"@"+due.UTC().Format(time.RFC3339Nano))).String()
	err = create(ctx, id)
	created := err == nil
	if err != nil && !errors.Is(err, ErrAlreadyExists) {
		return false, err
	}
	if err := q.Enqueue(ctx, Task{ID: id, Kind: kind, ExecutionID: id, Attempt: 1, RunAt: now}); err != nil && !errors.Is(err, ErrAlreadyExists) {
		return false, fmt.Errorf("enqueue run %s: %w", id, err)
	}
	after := nextRun(s, loc, now)
	res, err := e.store.DB().NewUpdate().Model((*T)(nil)).
		Set("next_execution_at = ?", after).Set("last_execution_at = ?", now).Set("updated_at = ?", now).
		Where("id = ?", jobID).Where("next_execution_at = ?", due).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("advance schedule of job %s: %w", jobID, err)
	}
	if n, _ := res.RowsAffected(); n == 1 && created {
		e.log.Info(prefix+" scheduled run enqueued", "job_id", jobID, "execution_id", id, "due", due, "next", after)
	}
	return created, nil
}

// EnqueueBackup records a backup of job jobID and puts it on q: the "run
// now" path, through the same queue and workers as scheduled runs. The
// returned execution is queued.
func (e *Engine) EnqueueBackup(ctx context.Context, q Queue, jobID string) (*Execution, error) {
	exec, err := e.newBackupExecution(ctx, jobID, "")
	if err != nil {
		return nil, err
	}
	if err := q.Enqueue(ctx, Task{ID: exec.ID, Kind: TaskBackup, ExecutionID: exec.ID, Attempt: 1, RunAt: e.now()}); err != nil {
		e.finish(ctx, exec, execLog{e: e, id: exec.ID, prefix: "[BACKUP]"}, fmt.Errorf("enqueue: %w", err))
		return exec, err
	}
	return exec, nil
}

// SchedulerOptions configure a Scheduler. Zero values are the defaults.
type SchedulerOptions struct {
	// Tick is how often due jobs are looked for; 0 means 1 s.
	Tick time.Duration
	// Batch bounds the jobs enqueued per look; 0 means 500 (a larger
	// backlog is worked off on the following ticks, at once).
	Batch int
}

// Scheduler enqueues due backup jobs and sync jobs on a Queue, every Tick.
type Scheduler struct {
	e    *Engine
	q    Queue
	opts SchedulerOptions
}

// NewScheduler returns a Scheduler for e's jobs on q.
func NewScheduler(e *Engine, q Queue, opts SchedulerOptions) *Scheduler {
	if opts.Tick <= 0 {
		opts.Tick = time.Second
	}
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	return &Scheduler{e: e, q: q, opts: opts}
}

// Run enqueues due jobs until ctx is done. A full batch is followed at once
// by another look, so a backlog does not wait a tick per batch.
func (s *Scheduler) Run(ctx context.Context) error {
	tick := time.NewTicker(s.opts.Tick)
	defer tick.Stop()
	for {
		n, err := s.e.EnqueueDueBackups(ctx, s.q, s.opts.Batch)
		if err != nil && ctx.Err() == nil {
			s.e.log.Error("[BACKUP] scheduler", "err", err)
		}
		m, err := s.e.EnqueueDueSyncs(ctx, s.q, s.opts.Batch)
		if err != nil && ctx.Err() == nil {
			s.e.log.Error("[SYNC] scheduler", "err", err)
		}
		if (n == s.opts.Batch || m == s.opts.Batch) && ctx.Err() == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
