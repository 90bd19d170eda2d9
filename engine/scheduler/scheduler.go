// Package scheduler enqueues the due runs of backup jobs and sync jobs:
// every Tick it reads the enabled jobs whose next_execution_at has come,
// records one queued run of each (an execution or a sync execution) with a
// task on the queue, and moves next_execution_at to the schedule's next
// time. Each due time is enqueued exactly once even when several processes
// share the metadata database: run IDs derive from (job, due time), and
// the move of next_execution_at is a compare-and-set. On the store's own
// queue (queue.TxEnqueuer) a batch is one transaction.
//
// The package depends on the metadata store, the queue and two callbacks
// of its host (the engine): record a queued run where the queue is not the
// store's, and publish the runs it queued.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dataguardian/dataguardian/engine/queue"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/google/uuid"
	"github.com/robfig/cron/v3"
)

// scheduledRunSpace namespaces the IDs of scheduled runs: the execution of
// job J due at T always has the same ID, so recording it twice (two
// processes, or a retry after a crash) fails instead of running twice.
var scheduledRunSpace = uuid.MustParse("5b0d7f0e-3c53-4c51-9d51-4f1c2a7e9d10")

// Parse parses a job's cron expression (five fields, or a
// descriptor such as "@daily") and its IANA time zone ("" means UTC).
func Parse(expr, tz string) (cron.Schedule, *time.Location, error) {
	loc := time.UTC
	if tz != "" {
		var err error
		if loc, err = time.LoadLocation(tz); err != nil {
			return nil, nil, fmt.Errorf("timezone %q: use an IANA name such as \"America/Sao_Paulo\" or \"UTC\"", tz)
		}
	}
	const use = "use five cron fields (minute hour day month weekday), e.g. \"0 6 * * *\" for 06:00 daily, or \"@daily\""
	if strings.HasPrefix(strings.TrimSpace(expr), "@every") {
		return nil, nil, fmt.Errorf("schedule %q: intervals are not schedules; %s", expr, use)
	}
	s, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, nil, fmt.Errorf("schedule %q: %v; %s", expr, err, use)
	}
	// The parser looks five years ahead: a schedule matching no day in
	// them (February 31st) never fires.
	if s.Next(time.Now().In(loc)).IsZero() {
		return nil, nil, fmt.Errorf("schedule %q matches no date (such as the 31st of a month that has 30 days or fewer): %s", expr, use)
	}
	return s, loc, nil
}

// Next is the first time after t that the schedule matches in loc, in UTC.
func Next(s cron.Schedule, loc *time.Location, t time.Time) time.Time {
	return s.Next(t.In(loc)).UTC()
}

// ErrRunJoined reports a scheduled run not recorded because the job
// already has a queued backup, which is the run.
var ErrRunJoined = errors.New("a backup of the job is already queued")

// enqueueDueJobs enqueues one run (a task of kind) of each enabled row of T
// whose next_execution_at has come, at most limit of them, oldest due
// first. It returns how many runs this call enqueued.
//
// On the engine's own StoreQueue the whole batch is one transaction (see
// enqueueBatch): a few statements for up to limit jobs. On another Queue
// each job goes through enqueueDue, where create records the queued
// execution of a run with the given ID.
func enqueueDueJobs[T any, P interface {
	*T
	store.ScheduledJob
}](ctx context.Context, s *Scheduler, limit int, kind, prefix string, create func(ctx context.Context, job P, id string) error) (int, error) {
	q := s.cfg.Queue
	now := s.now()
	limit = max(limit, 1)
	if tq, ok := q.(queue.TxEnqueuer); ok && tq.InStore(s.cfg.Store) {
		var runs []store.Run
		err := s.cfg.Store.InTx(ctx, func(ctx context.Context, tx *store.Tx) error {
			jobs, err := store.DueJobs[T](ctx, tx, now, limit, s.cfg.Store.PostgreSQL())
			if err != nil {
				return err
			}
			runs, err = enqueueBatch[T, P](ctx, s, tx, tq, jobs, now, kind, prefix)
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("enqueue due %s runs: %w", kind, err)
		}
		for _, r := range runs { // after commit: only runs that exist
			s.cfg.Publish(r)
		}
		return len(runs), nil
	}
	jobs, err := store.DueJobs[T](ctx, s.cfg.Store, now, limit, false)
	if err != nil {
		return 0, fmt.Errorf("enqueue due %s runs: %w", kind, err)
	}
	n := 0
	for i := range jobs {
		job := P(&jobs[i])
		ok, err := enqueueDue(ctx, s, job, now, kind, prefix, func(ctx context.Context, id string) error { return create(ctx, job, id) })
		if err != nil {
			id, _, _, _ := job.Scheduled()
			s.cfg.Log.Error(prefix+" enqueue scheduled run", "job_id", id, "err", err)
			continue
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// RunID is the ID of the execution (and task) of the run of job
// jobID due at due.
func RunID(jobID string, due time.Time) string {
	return uuid.NewSHA1(scheduledRunSpace, []byte(jobID+"@"+due.UTC().Format(time.RFC3339Nano))).String()
}

// enqueueBatch records and enqueues, in tx, the runs of jobs (read due at
// now) and moves their next_execution_at, in three statements:
//
//  1. a compare-and-set of every job's next_execution_at from the due time
//     read to the schedule's next time after now; only the jobs it moved
//     (RETURNING) go on, so a job another process advanced meanwhile is
//     left alone;
//  2. the queued executions, INSERT … ON CONFLICT (id) DO NOTHING: the IDs
//     derive from (job, due time), so a run recorded before is not
//     recorded again;
//  3. their tasks, likewise.
//
// It returns the executions it inserted, for the caller to publish once tx
// has committed. A job whose schedule does not parse is logged and skipped.
func enqueueBatch[T any, P interface {
	*T
	store.ScheduledJob
}](ctx context.Context, s *Scheduler, tx *store.Tx, q queue.TxEnqueuer, jobs []T, now time.Time, kind, prefix string) ([]store.Run, error) {
	type plan struct {
		job       P
		id        string
		due, next time.Time
	}
	plans := make(map[string]plan, len(jobs))
	moves := make([]store.ScheduleMove, 0, len(jobs))
	for i := range jobs {
		job := P(&jobs[i])
		jobID, expr, tz, next := job.Scheduled()
		sched, loc, err := Parse(expr, tz)
		if err != nil {
			s.cfg.Log.Error(prefix+" enqueue scheduled run", "job_id", jobID, "err", err)
			continue
		}
		p := plan{job: job, id: RunID(jobID, *next), due: *next, next: Next(sched, loc, now)}
		plans[jobID] = p
		moves = append(moves, store.ScheduleMove{JobID: jobID, Due: p.due, Next: p.next})
	}
	moved, err := store.AdvanceSchedules[T](ctx, tx, moves, now)
	if err != nil {
		return nil, err
	}
	// At most one queued backup per job: a job with one queued gets no
	// second; the queued one, made due now, is the run. The rows are
	// locked (dueJobs), as RunNow locks them: the check holds.
	var joined map[string]*store.Execution
	if kind == queue.TaskBackup {
		if joined, err = store.QueuedBackups(ctx, tx, moved, true); err != nil {
			return nil, err
		}
		ids := make([]string, 0, len(joined))
		for jobID, x := range joined {
			ids = append(ids, x.ID)
			s.cfg.Log.Info(prefix+" scheduled run joins the backup already queued", "job_id", jobID, "execution_id", x.ID)
		}
		if err := q.MakeDueTx(ctx, tx, ids...); err != nil {
			return nil, err
		}
	}
	runs := make([]store.Run, 0, len(moved))
	tasks := make([]queue.Task, 0, len(moved))
	for _, jobID := range moved {
		if joined[jobID] != nil {
			continue
		}
		p := plans[jobID]
		runs = append(runs, p.job.QueuedRun(p.id))
		tasks = append(tasks, queue.Task{ID: p.id, Kind: kind, ExecutionID: p.id, Attempt: 1, RunAt: now})
	}
	slices.SortFunc(runs, func(a, b store.Run) int { return strings.Compare(a.RunID(), b.RunID()) })
	inserted, err := store.InsertRuns(ctx, tx, runs)
	if err != nil {
		return nil, err
	}
	if err := q.EnqueueTx(ctx, tx, tasks...); err != nil {
		return nil, err
	}
	out := runs[:0]
	for _, r := range runs {
		if inserted[r.RunID()] {
			out = append(out, r)
			p := plans[r.RunJobID()]
			s.cfg.Log.Debug(prefix+" scheduled run enqueued", "job_id", r.RunJobID(), "execution_id", p.id, "due", p.due, "next", p.next)
		}
	}
	if len(out) > 0 {
		s.cfg.Log.Info(prefix+" scheduled runs enqueued", "runs", len(out), "jobs_due", len(jobs))
	}
	return out, nil
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
	store.ScheduledJob
}](ctx context.Context, s *Scheduler, job P, now time.Time, kind, prefix string, create func(ctx context.Context, id string) error) (bool, error) {
	jobID, expr, tz, next := job.Scheduled()
	due := *next
	sched, loc, err := Parse(expr, tz)
	if err != nil {
		return false, err
	}
	id := RunID(jobID, due)
	err = create(ctx, id)
	created := err == nil
	joined := errors.Is(err, ErrRunJoined) // the queued one is the run: only move the schedule
	if err != nil && !errors.Is(err, store.ErrAlreadyExists) && !joined {
		return false, err
	}
	if joined {
		s.cfg.Log.Info(prefix+" scheduled run joins the backup already queued", "job_id", jobID, "err", err)
	} else if err := s.cfg.Queue.Enqueue(ctx, queue.Task{ID: id, Kind: kind, ExecutionID: id, Attempt: 1, RunAt: now}); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		return false, fmt.Errorf("enqueue run %s: %w", id, err)
	}
	after := Next(sched, loc, now)
	moved, err := store.AdvanceSchedule[T](ctx, s.cfg.Store, jobID, due, after, now)
	if err != nil {
		return false, err
	}
	if moved && created {
		s.cfg.Log.Info(prefix+" scheduled run enqueued", "job_id", jobID, "execution_id", id, "due", due, "next", after)
	}
	return created, nil
}

// Options configure a Scheduler. Zero values are the defaults.
type Options struct {
	// Tick is how often due jobs are looked for; 0 means 250 ms (a due run waits at most that long).
	Tick time.Duration
	// Batch bounds the jobs enqueued per look; 0 means 500 (a larger
	// backlog is worked off on the following ticks, at once).
	Batch int
}

// Config is what a Scheduler works on and needs from its host.
type Config struct {
	Store *store.Store
	Queue queue.Queue
	// CreateBackupRun records the queued execution id of a scheduled run of
	// job, where Queue is not the store's (the batch path records runs
	// itself); an existing id gives an error matching
	// store.ErrAlreadyExists.
	CreateBackupRun func(ctx context.Context, job *store.BackupJob, id string) error
	// CreateSyncRun records the queued sync execution id of job, likewise.
	CreateSyncRun func(ctx context.Context, job *store.SyncJob, id string) error
	// Publish is called with each run this scheduler queued, once it is
	// committed.
	Publish func(store.Run)
	Now     func() time.Time // nil: time.Now
	Log     *slog.Logger     // nil: slog.Default()
	Options
}

// Scheduler enqueues due backup jobs and sync jobs on a Queue, every Tick.
type Scheduler struct {
	cfg Config
}

// New returns a Scheduler for the jobs of cfg.Store on cfg.Queue.
func New(cfg Config) *Scheduler {
	if cfg.Tick <= 0 {
		cfg.Tick = 250 * time.Millisecond
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Scheduler{cfg: cfg}
}

func (s *Scheduler) now() time.Time { return s.cfg.Now().UTC() }

// EnqueueDueBackups records and enqueues one run of every enabled backup job
// whose next_execution_at has come, at most limit, then moves the job's
// next_execution_at to the schedule's next time after now. A job that was
// due several times while nothing ran (downtime) runs once, not once per
// missed time. It returns how many runs this call enqueued.
//
// A job has at most one queued backup: a job due while one is queued (run
// now, a retry, an earlier run waiting for its datasource) gets no second
// one; its schedule moves on and the queued one, made due now if it was
// due later, is the run. On another Queue than the store's this is checked
// without a lock.
func (s *Scheduler) EnqueueDueBackups(ctx context.Context, limit int) (int, error) {
	return enqueueDueJobs(ctx, s, limit, queue.TaskBackup, "[BACKUP]", func(ctx context.Context, job *store.BackupJob, id string) error {
		queued, err := store.QueuedBackups(ctx, s.cfg.Store, []string{job.ID}, false)
		if err != nil {
			return err
		}
		if x := queued[job.ID]; x != nil && x.ID != id {
			return fmt.Errorf("%w: execution %s", ErrRunJoined, x.ID)
		}
		return s.cfg.CreateBackupRun(ctx, job, id)
	})
}

// EnqueueDueSyncs does for sync jobs what EnqueueDueBackups does for
// backup jobs (the same code).
func (s *Scheduler) EnqueueDueSyncs(ctx context.Context, limit int) (int, error) {
	return enqueueDueJobs(ctx, s, limit, queue.TaskSync, "[SYNC]", s.cfg.CreateSyncRun)
}

// pgSchedulerLanes is how many batches a Scheduler on a PostgreSQL
// StoreQueue enqueues at once while a backlog lasts: batches lock disjoint
// jobs (SKIP LOCKED), and the server, not this process, is the bottleneck.
const pgSchedulerLanes = 4

// Run enqueues due jobs until ctx is done. A full batch is followed at once
// by more (on PostgreSQL, pgSchedulerLanes at a time), so a backlog does
// not wait a tick per batch.
func (s *Scheduler) Run(ctx context.Context) error {
	tick := time.NewTicker(s.cfg.Tick)
	defer tick.Stop()
	lanes := 1
	if tq, ok := s.cfg.Queue.(queue.TxEnqueuer); ok && tq.InStore(s.cfg.Store) && s.cfg.Store.PostgreSQL() {
		lanes = pgSchedulerLanes
	}
	for {
		if s.look(ctx) && ctx.Err() == nil {
			var wg sync.WaitGroup
			for range lanes {
				wg.Go(func() {
					for s.look(ctx) && ctx.Err() == nil {
					}
				})
			}
			wg.Wait()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// look enqueues one batch of due backup jobs and one of sync jobs, and
// reports whether either was full (more may be due).
func (s *Scheduler) look(ctx context.Context) bool {
	n, err := s.EnqueueDueBackups(ctx, s.cfg.Batch)
	if err != nil && ctx.Err() == nil {
		s.cfg.Log.Error("[BACKUP] scheduler", "err", err)
	}
	m, err := s.EnqueueDueSyncs(ctx, s.cfg.Batch)
	if err != nil && ctx.Err() == nil {
		s.cfg.Log.Error("[SYNC] scheduler", "err", err)
	}
	return n == s.cfg.Batch || m == s.cfg.Batch
}

// NextAfter is the first time after t that schedule expr in time zone tz
// matches, in UTC.
func NextAfter(expr, tz string, t time.Time) (time.Time, error) {
	s, loc, err := Parse(expr, tz)
	if err != nil {
		return time.Time{}, err
	}
	return Next(s, loc, t), nil
}
