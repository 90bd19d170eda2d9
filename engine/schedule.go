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
// the metadata database: the run's execution and task IDs derive from (job,
// due time), so a second attempt fails on the unique key, and the move of
// next_execution_at is a compare-and-set. It returns how many runs this call
// enqueued.
func (e *Engine) EnqueueDueBackups(ctx context.Context, q Queue, limit int) (int, error) {
	now := e.now()
	var jobs []BackupJob
	err := e.store.DB().NewSelect().Model(&jobs).
		Where("enabled = ?", true).Where("next_execution_at IS NOT NULL").Where("next_execution_at <= ?", now).
		OrderExpr("next_execution_at ASC").Limit(int64(max(limit, 1))).Scan(ctx)
	if err != nil {
		return 0, fmt.Errorf("list due backup jobs: %w", err)
	}
	n := 0
	for i := range jobs {
		ok, err := e.enqueueDue(ctx, q, &jobs[i], now)
		if err != nil {
			e.log.Error("[BACKUP] enqueue scheduled run", "job_id", jobs[i].ID, "err", err)
			continue
		}
		if ok {
			n++
		}
	}
	return n, nil
}

func (e *Engine) enqueueDue(ctx context.Context, q Queue, job *BackupJob, now time.Time) (bool, error) {
	due := *job.NextExecutionAt
	s, loc, err := parseSchedule(job.Schedule, job.Timezone)
	if err != nil {
		return false, err
	}
	id := uuid.NewSHA1(scheduledRunSpace, []byte(job.ID+"@"+due.UTC().Format(time.RFC3339Nano))).String()
	_, err = e.newBackupExecution(ctx, job.ID, id)
	created := err == nil
	if err != nil && !errors.Is(err, ErrAlreadyExists) {
		return false, err
	}
	if err := q.Enqueue(ctx, Task{ID: id, Kind: TaskBackup, ExecutionID: id, Attempt: 1, RunAt: now}); err != nil && !errors.Is(err, ErrAlreadyExists) {
		return false, fmt.Errorf("enqueue run %s: %w", id, err)
	}
	next := nextRun(s, loc, now)
	res, err := e.store.DB().NewUpdate().Model((*BackupJob)(nil)).
		Set("next_execution_at = ?", next).Set("last_execution_at = ?", now).Set("updated_at = ?", now).
		Where("id = ?", job.ID).Where("next_execution_at = ?", due).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("advance schedule of job %s: %w", job.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 1 && created {
		e.log.Info("[BACKUP] scheduled run enqueued", "job_id", job.ID, "execution_id", id, "due", due, "next", next)
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

// Scheduler enqueues due backup jobs on a Queue, every Tick.
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
		if n == s.opts.Batch && ctx.Err() == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
