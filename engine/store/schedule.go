package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// Statuses of queue_tasks rows (the queue package's StoreQueue) that
// still run.
const (
	taskQueued  = "queued"
	taskClaimed = "claimed"
)

// QueuedBackups returns, for each of jobIDs that has one, its oldest
// queued backup execution other than except. With withTask (the queue is
// the store's), only executions whose task is queued or claimed count: a
// queued execution without a task never runs.
func QueuedBackups(ctx context.Context, c Querier, jobIDs []string, withTask bool, except ...string) (map[string]*Execution, error) {
	db := c.idb()
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
	if withTask {
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

// ScheduledJob is a row the scheduler enqueues runs of: a *BackupJob or a
// *SyncJob.
type ScheduledJob interface {
	// Scheduled returns the job's ID, cron expression, time zone and next due time.
	Scheduled() (id, expr, tz string, next *time.Time)
	// QueuedRun is the queued execution of the job's scheduled run id.
	QueuedRun(id string) Run
}

// DueJobs reads up to limit enabled rows of T due at now, oldest due first.
// With lock (PostgreSQL, inside a transaction) it locks them, skipping rows
// another process has locked: concurrent schedulers take disjoint batches
// instead of waiting for, or deadlocking on, each other.
func DueJobs[T any](ctx context.Context, c Querier, now time.Time, limit int, lock bool) ([]T, error) {
	q := c.idb().NewSelect().
		Where("enabled = ?", true).Where("next_execution_at IS NOT NULL").Where("next_execution_at <= ?", now).
		OrderExpr("next_execution_at ASC").Limit(int64(limit))
	if lock {
		q = q.For("UPDATE SKIP LOCKED")
	}
	return listRows[T](ctx, q)
}

// ScheduleMove is the compare-and-set of one job's next_execution_at.
type ScheduleMove struct {
	JobID     string
	Due, Next time.Time
}

// AdvanceSchedules sets, in one statement, next_execution_at to next (and
// last_execution_at to now) on each row of T whose next_execution_at is
// still due, and returns the IDs of the rows it changed.
func AdvanceSchedules[T any](ctx context.Context, c Querier, moves []ScheduleMove, now time.Time) ([]string, error) {
	db := c.idb()
	if len(moves) == 0 {
		return nil, nil
	}
	slices.SortFunc(moves, func(a, b ScheduleMove) int { return strings.Compare(a.JobID, b.JobID) })
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
		args = append(args, m.JobID, m.Due, m.Next)
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

// Run is the queued execution of a scheduled run: an *Execution or a
// *SyncExecution.
type Run interface {
	RunID() string
	RunJobID() string
}

// InsertRuns inserts runs (all of one type) that do not exist yet and
// returns the IDs it inserted.
func InsertRuns(ctx context.Context, c Querier, runs []Run) (map[string]bool, error) {
	db := c.idb()
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

func rowsOf[X any](runs []Run) []*X {
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

func (j *BackupJob) Scheduled() (string, string, string, *time.Time) {
	return j.ID, j.Schedule, j.Timezone, j.NextExecutionAt
}

func (j *SyncJob) Scheduled() (string, string, string, *time.Time) {
	return j.ID, j.Schedule, j.Timezone, j.NextExecutionAt
}

func (x *Execution) RunID() string        { return x.ID }
func (x *Execution) RunJobID() string     { return x.JobID }
func (x *SyncExecution) RunID() string    { return x.ID }
func (x *SyncExecution) RunJobID() string { return x.SyncJobID }

// QueuedRun is the queued execution of job's scheduled run id.
func (j *BackupJob) QueuedRun(id string) Run {
	return &Execution{ID: id, JobID: j.ID, DatasourceID: j.DatasourceID, Operation: OperationBackup, Status: ExecutionQueued,
		Compression: j.Compression, Attempt: 1}
}

func (j *SyncJob) QueuedRun(id string) Run {
	return &SyncExecution{ID: id, SyncJobID: j.ID, Status: ExecutionQueued}
}

// AdvanceSchedule moves job jobID's next_execution_at from due to next
// (compare-and-set on due) and sets its last_execution_at to now, on the
// table of T. It reports whether it moved it.
func AdvanceSchedule[T any](ctx context.Context, c Querier, jobID string, due, next, now time.Time) (bool, error) {
	res, err := c.idb().NewUpdate().Model((*T)(nil)).
		Set("next_execution_at = ?", next).Set("last_execution_at = ?", now).Set("updated_at = ?", now).
		Where("id = ?", jobID).Where("next_execution_at = ?", due).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("advance schedule of job %s: %w", jobID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// LockBackupJob holds backup job id's row until tx ends (SELECT … FOR
// UPDATE on PostgreSQL, which the scheduler's DueJobs takes too; on SQLite
// the transaction holds the database's write lock already).
func LockBackupJob(ctx context.Context, tx *Tx, id string) error {
	if !tx.pg {
		return nil
	}
	var got string
	err := tx.tx.NewSelect().Model((*BackupJob)(nil)).Column("id").Where("id = ?", id).For("UPDATE").Scan(ctx, &got)
	return dbError(err)
}

// InsertExecution inserts x through c (the Store or a Tx), assigning its
// ID and timestamps.
func InsertExecution(ctx context.Context, c Querier, x *Execution) error {
	return insertRow(ctx, c.idb(), x)
}
