package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/robfig/cron/v3"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
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
//
// A job has at most one queued backup: a job due while one is queued (run
// now, a retry, an earlier run waiting for its datasource) gets no second
// one; its schedule moves on and the queued one, made due now if it was
// due later, is the run. On another Queue than the engine's StoreQueue
// this is checked without a lock.
func (e *Engine) EnqueueDueBackups(ctx context.Context, q Queue, limit int) (int, error) {
	return enqueueDueJobs(ctx, e, q, limit, TaskBackup, "[BACKUP]", func(ctx context.Context, job *BackupJob, id string) error {
		queued, err := queuedBackups(ctx, e.store.DB(), []string{job.ID}, nil)
		if err != nil {
			return err
		}
		if x := queued[job.ID]; x != nil && x.ID != id {
			return fmt.Errorf("%w: execution %s", errRunJoined, x.ID)
		}
		_, err = e.newBackupExecution(ctx, job.ID, id)
		return err
	})
}

// errRunJoined reports a scheduled run not recorded because the job
// already has a queued backup, which is the run.
var errRunJoined = errors.New("a backup of the job is already queued")

// queuedBackups returns, for each of jobIDs that has one, its oldest
// queued backup execution other than except. With q (the StoreQueue on
// db), only executions whose task is queued or claimed count: a queued
// execution without a task never runs.
func queuedBackups(ctx context.Context, db bun.IDB, jobIDs []string, q *StoreQueue, except ...string) (map[string]*Execution, error) {
	if len(jobIDs) == 0 {
		return nil, nil
	}
	var xs []Execution
	sel := db.NewSelect().Model(&xs).Where("?TableAlias.job_id IN (?)", bun.In(jobIDs)).
		Where("?TableAlias.operation = ?", OperationBackup).Where("?TableAlias.status = ?", ExecutionQueued).
		OrderExpr("?TableAlias.created_at, ?TableAlias.id")
	if len(except) > 0 {
		sel = sel.Where("?TableAlias.id NOT IN (?)", bun.In(except))
	}
	if q != nil {
		sel = sel.Where("EXISTS (SELECT 1 FROM queue_tasks AS t WHERE t.execution_id = ?TableAlias.id AND t.status IN (?))",
			bun.In([]string{taskQueued, taskClaimed}))
	}
	if err := sel.Scan(ctx); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("look for queued backups: %w", err)
	}
	out := make(map[string]*Execution, len(xs))
	for i := range xs {
		if _, ok := out[xs[i].JobID]; !ok {
			out[xs[i].JobID] = &xs[i]
		}
	}
	return out, nil
}

// scheduledJob is a row the scheduler enqueues runs of: a backup job or a
// sync job.
type scheduledJob interface {
	scheduled() (id, expr, tz string, next *time.Time)
	queuedRun(id string) scheduledRun
}

func (j *BackupJob) scheduled() (string, string, string, *time.Time) {
	return j.ID, j.Schedule, j.Timezone, j.NextExecutionAt
}

func (j *SyncJob) scheduled() (string, string, string, *time.Time) {
	return j.ID, j.Schedule, j.Timezone, j.NextExecutionAt
}

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
	scheduledJob
}](ctx context.Context, e *Engine, q Queue, limit int, kind, prefix string, create func(ctx context.Context, job P, id string) error) (int, error) {
	now := e.now()
	limit = max(limit, 1)
	if sq, ok := q.(*StoreQueue); ok && sq.db == e.store.DB() {
		var runs []scheduledRun
		err := e.store.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			jobs, err := dueJobs[T](ctx, tx, now, limit, sq.pg)
			if err != nil {
				return err
			}
			runs, err = enqueueBatch[T, P](ctx, e, tx, sq, jobs, now, kind, prefix)
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("enqueue due %s runs: %w", kind, err)
		}
		for _, r := range runs { // after commit: only runs that exist
			r.publish(e)
		}
		return len(runs), nil
	}
	jobs, err := dueJobs[T](ctx, e.store.DB(), now, limit, false)
	if err != nil {
		return 0, fmt.Errorf("enqueue due %s runs: %w", kind, err)
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

// dueJobs reads up to limit enabled rows of T due at now, oldest due first.
// With lock (PostgreSQL, inside a transaction) it locks them, skipping rows
// another process has locked: concurrent schedulers take disjoint batches
// instead of waiting for, or deadlocking on, each other.
func dueJobs[T any](ctx context.Context, db bun.IDB, now time.Time, limit int, lock bool) ([]T, error) {
	q := db.NewSelect().
		Where("enabled = ?", true).Where("next_execution_at IS NOT NULL").Where("next_execution_at <= ?", now).
		OrderExpr("next_execution_at ASC").Limit(int64(limit))
	if lock {
		q = q.For("UPDATE SKIP LOCKED")
	}
	return listRows[T](ctx, q)
}

// scheduledRunID is the ID of the execution (and task) of the run of job
// jobID due at due.
func scheduledRunID(jobID string, due time.Time) string {
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
	scheduledJob
}](ctx context.Context, e *Engine, tx bun.IDB, q *StoreQueue, jobs []T, now time.Time, kind, prefix string) ([]scheduledRun, error) {
	type plan struct {
		job       P
		id        string
		due, next time.Time
	}
	plans := make(map[string]plan, len(jobs))
	moves := make([]scheduleMove, 0, len(jobs))
	for i := range jobs {
		job := P(&jobs[i])
		jobID, expr, tz, next := job.scheduled()
		s, loc, err := parseSchedule(expr, tz)
		if err != nil {
			e.log.Error(prefix+" enqueue scheduled run", "job_id", jobID, "err", err)
			continue
		}
		p := plan{job: job, id: scheduledRunID(jobID, *next), due: *next, next: nextRun(s, loc, now)}
		plans[jobID] = p
		moves = append(moves, scheduleMove{jobID: jobID, due: p.due, next: p.next})
	}
	moved, err := advanceSchedules[T](ctx, tx, moves, now)
	if err != nil {
		return nil, err
	}
	// At most one queued backup per job: a job with one queued gets no
	// second; the queued one, made due now, is the run. The rows are
	// locked (dueJobs), as RunNow locks them: the check holds.
	var joined map[string]*Execution
	if kind == TaskBackup {
		if joined, err = queuedBackups(ctx, tx, moved, q); err != nil {
			return nil, err
		}
		ids := make([]string, 0, len(joined))
		for jobID, x := range joined {
			ids = append(ids, x.ID)
			e.log.Info(prefix+" scheduled run joins the backup already queued", "job_id", jobID, "execution_id", x.ID)
		}
		if err := q.makeDue(ctx, tx, ids); err != nil {
			return nil, err
		}
	}
	runs := make([]scheduledRun, 0, len(moved))
	tasks := make([]Task, 0, len(moved))
	for _, jobID := range moved {
		if joined[jobID] != nil {
			continue
		}
		p := plans[jobID]
		runs = append(runs, p.job.queuedRun(p.id))
		tasks = append(tasks, Task{ID: p.id, Kind: kind, ExecutionID: p.id, Attempt: 1, RunAt: now})
	}
	slices.SortFunc(runs, func(a, b scheduledRun) int { return strings.Compare(a.runID(), b.runID()) })
	inserted, err := insertRuns(ctx, tx, runs)
	if err != nil {
		return nil, err
	}
	if err := q.enqueueNew(ctx, tx, tasks); err != nil {
		return nil, err
	}
	out := runs[:0]
	for _, r := range runs {
		if inserted[r.runID()] {
			out = append(out, r)
			p := plans[r.jobID()]
			e.log.Debug(prefix+" scheduled run enqueued", "job_id", r.jobID(), "execution_id", p.id, "due", p.due, "next", p.next)
		}
	}
	if len(out) > 0 {
		e.log.Info(prefix+" scheduled runs enqueued", "runs", len(out), "jobs_due", len(jobs))
	}
	return out, nil
}

// scheduleMove is the compare-and-set of one job's next_execution_at.
type scheduleMove struct {
	jobID     string
	due, next time.Time
}

// advanceSchedules sets, in one statement, next_execution_at to next (and
// last_execution_at to now) on each row of T whose next_execution_at is
// still due, and returns the IDs of the rows it changed.
func advanceSchedules[T any](ctx context.Context, db bun.IDB, moves []scheduleMove, now time.Time) ([]string, error) {
	if len(moves) == 0 {
		return nil, nil
	}
	slices.SortFunc(moves, func(a, b scheduleMove) int { return strings.Compare(a.jobID, b.jobID) })
	// VALUES columns are column1… on both PostgreSQL and SQLite; PostgreSQL
	// needs the times typed to compare them with a timestamptz column.
	tuple := "(?, ?, ?)"
	if db.Dialect().Name() == dialect.PG {
		tuple = "(?, ?::timestamptz, ?::timestamptz)"
	}
	table := db.Dialect().Tables().Get(reflect.TypeFor[T]()).Name
	var sb strings.Builder
	args := []any{bun.Ident(table), now, now}
	for i, m := range moves {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(tuple)
		args = append(args, m.jobID, m.due, m.next)
	}
	args = append(args, bun.Ident(table), bun.Ident(table), bun.Ident(table))
	var ids []string
	err := db.NewRaw(`UPDATE ? SET next_execution_at = v.column3, last_execution_at = ?, updated_at = ?
FROM (VALUES `+sb.String()+`) AS v
WHERE ?.id = v.column1 AND ?.next_execution_at = v.column2 RETURNING ?.id`, args...).Scan(ctx, &ids)
	if err != nil {
		return nil, fmt.Errorf("advance schedules: %w", err)
	}
	return ids, nil
}

// scheduledRun is the queued execution of a scheduled run: an *Execution
// or a *SyncExecution.
type scheduledRun interface {
	runID() string
	jobID() string
	publish(e *Engine)
}

func (x *Execution) runID() string         { return x.ID }
func (x *Execution) jobID() string         { return x.JobID }
func (x *Execution) publish(e *Engine)     { e.publishExecution(x) }
func (x *SyncExecution) runID() string     { return x.ID }
func (x *SyncExecution) jobID() string     { return x.SyncJobID }
func (x *SyncExecution) publish(e *Engine) { e.publishSync(x) }

// insertRuns inserts runs (all of one type) that do not exist yet and
// returns the IDs it inserted.
func insertRuns(ctx context.Context, db bun.IDB, runs []scheduledRun) (map[string]bool, error) {
	if len(runs) == 0 {
		return nil, nil
	}
	switch runs[0].(type) {
	case *Execution:
		return insertNew(ctx, db, rowsOf[Execution](runs))
	case *SyncExecution:
		return insertNew(ctx, db, rowsOf[SyncExecution](runs))
	}
	return nil, fmt.Errorf("insert runs: unexpected %T", runs[0])
}

func rowsOf[X any](runs []scheduledRun) []*X {
	out := make([]*X, len(runs))
	for i, r := range runs {
		out[i] = any(r).(*X)
	}
	return out
}

// insertNew stamps and inserts rows in one statement, in ID order, skipping
// those whose ID exists, and returns the IDs it inserted.
func insertNew[X any](ctx context.Context, db bun.IDB, rows []*X) (map[string]bool, error) {
	for _, r := range rows {
		stamp(db, r, true)
	}
	var ids []string
	if _, err := db.NewInsert().Model(&rows).On("CONFLICT (id) DO NOTHING").Returning("id").Exec(ctx, &ids); err != nil {
		return nil, fmt.Errorf("create %ss: %w", noun[X](db), dbError(err))
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}

// queuedRun is the queued execution of job's scheduled run id.
func (j *BackupJob) queuedRun(id string) scheduledRun {
	return &Execution{ID: id, JobID: j.ID, DatasourceID: j.DatasourceID, Operation: OperationBackup, Status: ExecutionQueued,
		Compression: j.Compression, Attempt: 1}
}

func (j *SyncJob) queuedRun(id string) scheduledRun {
	return &SyncExecution{ID: id, SyncJobID: j.ID, Status: ExecutionQueued}
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
	id := scheduledRunID(jobID, due)
	err = create(ctx, id)
	created := err == nil
	joined := errors.Is(err, errRunJoined) // the queued one is the run: only move the schedule
	if err != nil && !errors.Is(err, ErrAlreadyExists) && !joined {
		return false, err
	}
	if joined {
		e.log.Info(prefix+" scheduled run joins the backup already queued", "job_id", jobID, "err", err)
	} else if err := q.Enqueue(ctx, Task{ID: id, Kind: kind, ExecutionID: id, Attempt: 1, RunAt: now}); err != nil && !errors.Is(err, ErrAlreadyExists) {
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
	sq, ok := q.(*StoreQueue)
	if !ok || sq.db != e.store.DB() { // another queue: checked, not locked
		queued, err := queuedBackups(ctx, e.store.DB(), []string{job.ID}, nil)
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
	err = e.store.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		x, queued = nil, false
		if sq.pg { // SQLite: the transaction holds the write lock already
			var id string
			err := tx.NewSelect().Model((*BackupJob)(nil)).Column("id").Where("id = ?", job.ID).For("UPDATE").Scan(ctx, &id)
			if err != nil {
				return dbError(err)
			}
		}
		found, err := queuedBackups(ctx, tx, []string{job.ID}, sq)
		if err != nil {
			return err
		}
		if x = found[job.ID]; x != nil {
			return sq.makeDue(ctx, tx, []string{x.ID})
		}
		x = &Execution{JobID: job.ID, DatasourceID: job.DatasourceID, Operation: OperationBackup, Status: ExecutionQueued,
			Compression: job.Compression, Attempt: 1}
		if err := insertRow(ctx, tx, x); err != nil {
			return err
		}
		queued = true
		return sq.enqueueNew(ctx, tx, []Task{{ID: x.ID, Kind: TaskBackup, ExecutionID: x.ID, Attempt: 1}})
	})
	if err != nil {
		return nil, false, fmt.Errorf("run backup job %s: %w", job.Name, err)
	}
	if queued {
		e.publishExecution(x)
	}
	return x, queued, nil
}

// SchedulerOptions configure a Scheduler. Zero values are the defaults.
type SchedulerOptions struct {
	// Tick is how often due jobs are looked for; 0 means 250 ms (a due run waits at most that long).
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
		opts.Tick = 250 * time.Millisecond
	}
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	return &Scheduler{e: e, q: q, opts: opts}
}

// pgSchedulerLanes is how many batches a Scheduler on a PostgreSQL
// StoreQueue enqueues at once while a backlog lasts: batches lock disjoint
// jobs (SKIP LOCKED), and the server, not this process, is the bottleneck.
const pgSchedulerLanes = 4

// Run enqueues due jobs until ctx is done. A full batch is followed at once
// by more (on PostgreSQL, pgSchedulerLanes at a time), so a backlog does
// not wait a tick per batch.
func (s *Scheduler) Run(ctx context.Context) error {
	tick := time.NewTicker(s.opts.Tick)
	defer tick.Stop()
	lanes := 1
	if sq, ok := s.q.(*StoreQueue); ok && sq.pg {
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
	n, err := s.e.EnqueueDueBackups(ctx, s.q, s.opts.Batch)
	if err != nil && ctx.Err() == nil {
		s.e.log.Error("[BACKUP] scheduler", "err", err)
	}
	m, err := s.e.EnqueueDueSyncs(ctx, s.q, s.opts.Batch)
	if err != nil && ctx.Err() == nil {
		s.e.log.Error("[SYNC] scheduler", "err", err)
	}
	return n == s.opts.Batch || m == s.opts.Batch
}
