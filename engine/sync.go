package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/engine/scheduler"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/notify"
)

// Database sync (spec: "Sincronização automática entre bancos"): a sync job
// copies its source datasource into its target datasource on a schedule.
// Each run is a sync execution that goes queued → running → completed or
// failed (cancelled on shutdown): a backup of the source through the normal
// backup path into the sync job's storage location, then a restore of that
// backup into the target. The backup and the restore are ordinary
// executions of their own, linked from the sync execution and logged with
// the "[SYNC]" prefix besides their own lines.

// ---------------------------------------------------------------------------
// Store: sync jobs and sync executions.

// ---------------------------------------------------------------------------
// Engine: creating, enqueueing and running syncs.

// CreateSyncJob validates job and stores it, enabled, with its
// next_execution_at computed from its schedule (none without a schedule:
// such a job runs only through RunSyncNow). Errors match ErrInvalid and
// name the field to fix.
func (e *Engine) CreateSyncJob(ctx context.Context, job *SyncJob) error {
	if err := e.validateSyncJob(ctx, job); err != nil {
		return err
	}
	job.Enabled = true
	job.NextExecutionAt = nil
	if job.Schedule != "" {
		next, _ := scheduler.NextAfter(job.Schedule, job.Timezone, e.now())
		job.NextExecutionAt = &next
	}
	return e.store.CreateSyncJob(ctx, job)
}

// UpdateSyncJob validates job as CreateSyncJob does and writes it (every
// field but ID, LastExecutionAt and the timestamps). next_execution_at is
// recomputed from now when the schedule or timezone changes, cleared
// without a schedule, and kept otherwise (so a run already due is not
// skipped), as UpdateBackupJob does. A new source or storage location
// applies from the next run; backups already made stay where they are.
// Errors match ErrNotFound or ErrInvalid and name the field to fix.
func (e *Engine) UpdateSyncJob(ctx context.Context, job *SyncJob) error {
	cur, err := e.store.GetSyncJob(ctx, job.ID)
	if err != nil {
		return fmt.Errorf("update sync job %s: %w", job.ID, err)
	}
	if err := e.validateSyncJob(ctx, job); err != nil {
		return err
	}
	job.NextExecutionAt = e.rescheduled(cur.Schedule, cur.Timezone, cur.NextExecutionAt, job.Schedule, job.Timezone)
	job.LastExecutionAt, job.CreatedAt = cur.LastExecutionAt, cur.CreatedAt
	return e.store.UpdateSyncJob(ctx, job, "name", "source_datasource_id", "target_datasource_id",
		"storage_location_id", "schedule", "timezone", "enabled", "next_execution_at")
}

// DeleteSyncJob deletes sync job id, its run history (sync executions)
// and the hidden backup job it backs its source up through. Nothing in
// storage is touched: the backups it made stay, as completed backups of
// the source datasource (their job_id becomes empty and retention no
// longer applies to them). A sync job with a run in progress is refused
// with ErrInUse: wait for it to end.
func (e *Engine) DeleteSyncJob(ctx context.Context, id string) error {
	job, err := e.store.GetSyncJob(ctx, id)
	if err != nil {
		return fmt.Errorf("delete sync job %s: %w", id, err)
	}
	running, err := e.store.RunningSyncExecution(ctx, id)
	if err != nil {
		return fmt.Errorf("delete sync job %s: %w", id, err)
	}
	if running != nil {
		return fmt.Errorf("delete sync job %q: %w: run %s is in progress: wait for it to end, then retry",
			job.Name, ErrInUse, running.ID)
	}
	if err := e.store.DeleteSyncJob(ctx, id); err != nil {
		return fmt.Errorf("delete sync job %s: %w", id, err)
	}
	return nil
}

func (e *Engine) validateSyncJob(ctx context.Context, job *SyncJob) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: sync job %q: %s", ErrInvalid, job.Name, fmt.Sprintf(format, args...))
	}
	if job.Name == "" {
		return fmt.Errorf("%w: sync job name is empty: give it a name", ErrInvalid)
	}
	src, err := e.store.GetDatasource(ctx, job.SourceDatasourceID)
	if err != nil {
		return bad("source_datasource_id %q: %v", job.SourceDatasourceID, err)
	}
	tgt, err := e.store.GetDatasource(ctx, job.TargetDatasourceID)
	if err != nil {
		return bad("target_datasource_id %q: %v", job.TargetDatasourceID, err)
	}
	if tgt.ID == src.ID {
		return bad("target_datasource_id is the source datasource: choose another datasource to copy into")
	}
	if tgt.Type != src.Type {
		return bad("target_datasource_id: datasource %q is of type %s and the source %q of type %s: choose a target of the same type",
			tgt.Name, tgt.Type, src.Name, src.Type)
	}
	if connectionKey(tgt) == connectionKey(src) {
		return bad("target_datasource_id: datasource %q connects to the same database as the source %q: choose a different database",
			tgt.Name, src.Name)
	}
	if job.StorageLocationID == "" {
		return bad("storage_location_id is empty: give the storage location the source's backups go to")
	}
	if _, err := e.store.GetStorageLocation(ctx, job.StorageLocationID); err != nil {
		return bad("storage_location_id %q: %v", job.StorageLocationID, err)
	}
	if job.Schedule != "" {
		if _, _, err := scheduler.Parse(job.Schedule, job.Timezone); err != nil {
			return bad("%v", err)
		}
	} else if job.Timezone != "" {
		return bad("timezone %q without a schedule: set schedule too, or leave timezone empty", job.Timezone)
	}
	return nil
}

// connectionKey identifies the database ds connects to, so that a sync job
// cannot restore its source over itself through a second datasource: path
// datasources by absolute path, network ones by host (local names folded),
// port (default filled in) and database.
func connectionKey(ds *Datasource) string {
	if ds.Path != "" {
		p, err := filepath.Abs(ds.Path)
		if err != nil {
			p = filepath.Clean(ds.Path)
		}
		return ds.Type + "|" + p
	}
	host := strings.ToLower(strings.Trim(ds.Host, "[]"))
	switch host {
	case "", "127.0.0.1", "::1":
		host = "localhost"
	}
	port := ds.Port
	if port == 0 {
		switch ds.Type {
		case "postgres", "postgresql":
			port = drivers.DefaultPostgresPort
		case "mysql", "mariadb":
			port = drivers.DefaultMySQLPort
		}
	}
	return fmt.Sprintf("%s|%s|%d|%s", ds.Type, host, port, ds.Database)
}

// RunSyncNow records a run of sync job syncJobID and puts it on q (task
// kind TaskSync): the "run now" path, through the same queue and workers as
// scheduled runs. The returned sync execution is queued.
func (e *Engine) RunSyncNow(ctx context.Context, q Queue, syncJobID string) (*SyncExecution, error) {
	job, err := e.store.GetSyncJob(ctx, syncJobID)
	if err != nil {
		return nil, fmt.Errorf("run sync job %s: %w", syncJobID, err)
	}
	x, err := e.newSyncExecution(ctx, job, "")
	if err != nil {
		return nil, err
	}
	if err := q.Enqueue(ctx, Task{ID: x.ID, Kind: TaskSync, ExecutionID: x.ID, Attempt: 1, RunAt: e.now()}); err != nil {
		e.finishSync(ctx, x, &syncLog{e: e, x: x}, fmt.Errorf("enqueue: %w", err))
		return x, err
	}
	return x, nil
}

// EnqueueDueSyncs records and enqueues one run of every enabled sync job
// whose next_execution_at has come, as EnqueueDueBackups does for backup
// jobs (the same code): each due time exactly once across processes, a
// job due several times during downtime once. It returns how many runs
// this call enqueued.
func (e *Engine) EnqueueDueSyncs(ctx context.Context, q Queue, limit int) (int, error) {
	return e.scheduler(q, SchedulerOptions{}).EnqueueDueSyncs(ctx, limit)
}

// newSyncExecution records a queued sync execution of job. A non-empty id
// is used as its ID, so recording the same scheduled run twice fails with
// ErrAlreadyExists.
func (e *Engine) newSyncExecution(ctx context.Context, job *SyncJob, id string) (*SyncExecution, error) {
	x := &SyncExecution{ID: id, SyncJobID: job.ID, Status: ExecutionQueued}
	if err := e.store.CreateSyncExecution(ctx, x); err != nil {
		return nil, fmt.Errorf("run sync job %s: %w", job.Name, err)
	}
	e.publishSync(x)
	return x, nil
}

// syncTaskState is what a worker needs before running the sync execution
// id of a claimed task: its status, and the datasources it works on
// (source and target, sorted), which the worker serialises it on.
func (e *Engine) syncTaskState(ctx context.Context, id string) (ExecutionStatus, []string, error) {
	x, err := e.store.GetSyncExecution(ctx, id)
	if err != nil {
		return "", nil, err
	}
	job, err := e.store.GetSyncJob(ctx, x.SyncJobID)
	if err != nil { // executeSync records why it cannot run
		return x.Status, nil, nil
	}
	ids := []string{job.SourceDatasourceID, job.TargetDatasourceID}
	slices.Sort(ids)
	return x.Status, ids, nil
}

// syncLog writes a sync execution's "[SYNC]" lines to the engine's logger
// and to the stored logs of its current step's execution (the backup, then
// the restore), where the API shows them.
type syncLog struct {
	e   *Engine
	x   *SyncExecution
	ids []string // executions whose stored log gets the lines
}

func (l *syncLog) log(ctx context.Context, level slog.Level, format string, args ...any) {
	msg := "[SYNC] " + fmt.Sprintf(format, args...)
	l.e.log.Log(ctx, level, msg, "sync_execution_id", l.x.ID, "sync_job_id", l.x.SyncJobID)
	for _, id := range l.ids {
		if err := l.e.store.AppendExecutionLog(context.WithoutCancel(ctx), id, strings.ToLower(level.String()), msg); err != nil {
			l.e.log.Warn("store execution log", "execution_id", id, "err", err)
		}
	}
}

func (l *syncLog) info(ctx context.Context, format string, args ...any) {
	l.log(ctx, slog.LevelInfo, format, args...)
}

// executeSync runs the queued sync execution id: a backup of the source
// into the sync job's storage location, then a restore of it into the
// target. The error is the sync's failure, also recorded in the execution;
// the target is touched only once a backup completed and verified.
func (e *Engine) executeSync(ctx context.Context, id string) (err error) {
	x, err := e.store.GetSyncExecution(ctx, id)
	if err != nil {
		return fmt.Errorf("execute sync %s: %w", id, err)
	}
	if x.Status.Terminal() {
		return fmt.Errorf("%w: sync execution %s has status %s, not a sync to run", ErrInvalid, id, x.Status)
	}
	now := e.now()
	x.Status, x.StartedAt = ExecutionRunning, &now
	if err := e.store.UpdateSyncExecution(ctx, x, "status", "started_at"); err != nil {
		e.log.Warn("mark sync execution running", "sync_execution_id", x.ID, "err", err)
	}
	e.publishSync(x)
	l := &syncLog{e: e, x: x}
	defer func() { e.finishSync(ctx, x, l, err) }()

	job, err := e.store.GetSyncJob(ctx, x.SyncJobID)
	if err != nil {
		return fmt.Errorf("sync job: %w", err)
	}
	src, err := e.store.GetDatasource(ctx, job.SourceDatasourceID)
	if err != nil {
		return fmt.Errorf("source datasource: %w", err)
	}
	tgt, err := e.store.GetDatasource(ctx, job.TargetDatasourceID)
	if err != nil {
		return fmt.Errorf("target datasource: %w", err)
	}
	target, err := e.Source(tgt)
	if err != nil {
		return fmt.Errorf("target datasource: %w", err)
	}
	bjob, err := e.syncBackupJob(ctx, job, src)
	if err != nil {
		return err
	}
	backup, err := e.newBackupExecution(ctx, bjob.ID, "")
	if err != nil {
		return err
	}
	x.BackupExecutionID = backup.ID
	if err := e.store.UpdateSyncExecution(ctx, x, "backup_execution_id"); err != nil {
		e.log.Warn("link sync backup", "sync_execution_id", x.ID, "err", err)
	}
	e.publishSync(x)
	l.ids = []string{backup.ID}
	l.info(ctx, "sync job %q (execution %s): backing up source %q to restore it into target %q", job.Name, x.ID, src.Name, tgt.Name)
	if err := e.executeBackup(ctx, backup); err != nil {
		return fmt.Errorf("backup of source %q: %w", src.Name, err)
	}
	l.info(ctx, "backup of %q completed: restoring it into target %q (%s)", src.Name, tgt.Name, target)
	restore, err := e.Restore(ctx, backup.ID, target, nil)
	if restore != nil {
		x.RestoreExecutionID = restore.ID
		if uerr := e.store.UpdateSyncExecution(ctx, x, "restore_execution_id"); uerr != nil {
			e.log.Warn("link sync restore", "sync_execution_id", x.ID, "err", uerr)
		}
		l.ids = append(l.ids, restore.ID)
	}
	if err != nil {
		return fmt.Errorf("restore into target %q: %w", tgt.Name, err)
	}
	return nil
}

// syncBackupJob returns the backup job through which sync job backs up its
// source (named SyncBackupJobName, retention SyncBackupRetention, the sync
// job's storage location), creating it on the first run and following the
// sync job's source and storage when they changed.
func (e *Engine) syncBackupJob(ctx context.Context, job *SyncJob, src *Datasource) (*BackupJob, error) {
	id := store.SyncBackupJobID(job.ID)
	storages := []string{job.StorageLocationID}
	bj, err := e.store.GetBackupJob(ctx, id)
	if errors.Is(err, ErrNotFound) {
		bj = &BackupJob{ID: id, Name: SyncBackupJobName(job.ID), DatasourceID: src.ID, StorageLocationIDs: storages,
			Retention: SyncBackupRetention}
		if err = e.CreateBackupJob(ctx, bj); errors.Is(err, ErrAlreadyExists) { // another process made it first
			bj, err = e.store.GetBackupJob(ctx, id)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("backup job %s: %w", SyncBackupJobName(job.ID), err)
	}
	if bj.DatasourceID != src.ID || !slices.Equal(bj.StorageLocationIDs, storages) {
		bj.DatasourceID, bj.StorageLocationIDs = src.ID, storages
		if err := e.store.UpdateBackupJob(ctx, bj, "datasource_id", "storage_location_ids"); err != nil {
			return nil, fmt.Errorf("backup job %s: %w", bj.Name, err)
		}
	}
	return bj, nil
}

// finishSync records the outcome of x, even when ctx was cancelled,
// publishes it and notifies (sync_completed, info; sync_failed, critical,
// or warning when cancelled).
func (e *Engine) finishSync(ctx context.Context, x *SyncExecution, l *syncLog, err error) {
	if interrupted(ctx) {
		// The sync runs again; the steps of this attempt will not finish.
		bg := context.WithoutCancel(ctx)
		for _, id := range []string{x.BackupExecutionID, x.RestoreExecutionID} {
			if id != "" {
				_ = e.FailOrphaned(bg, id, "interrupted with its sync, which runs again")
			}
		}
		l.log(bg, slog.LevelError, "sync interrupted (%v): left to run again", context.Cause(ctx))
		return
	}
	// The run is cancelled only when its own context is (a user's cancel,
	// the caller giving up): an error that merely wraps context.Canceled,
	// such as a step stopped because a sibling stage failed, is a failure.
	cancelled := errors.Is(ctx.Err(), context.Canceled)
	ctx = context.WithoutCancel(ctx)
	now := e.now()
	x.FinishedAt = &now
	took := time.Duration(0)
	if x.StartedAt != nil {
		took = now.Sub(*x.StartedAt).Round(time.Millisecond)
	}
	n := notify.Notification{EntityType: "sync_execution", EntityID: x.ID, CreatedAt: now}
	switch {
	case err == nil:
		x.Status = ExecutionCompleted
		l.info(ctx, "sync completed in %s", took)
		n.Type, n.Severity, n.Title = "sync_completed", notify.Info, "sync completed"
		n.Message = "sync job " + x.SyncJobID + " copied its source into its target"
	case cancelled:
		x.Status, x.ErrorMessage = ExecutionCancelled, err.Error()
		l.log(ctx, slog.LevelError, "sync cancelled: %v", err)
		n.Type, n.Severity, n.Title, n.Message = "sync_failed", notify.Warning, "sync cancelled", x.ErrorMessage
	default:
		x.Status, x.ErrorMessage = ExecutionFailed, err.Error()
		l.log(ctx, slog.LevelError, "sync failed: %v", err)
		n.Type, n.Severity, n.Title, n.Message = "sync_failed", notify.Critical, "sync failed", x.ErrorMessage
	}
	if uerr := e.store.UpdateSyncExecution(ctx, x); uerr != nil {
		e.log.Error("record sync outcome", "sync_execution_id", x.ID, "err", uerr)
	}
	e.publishSync(x)
	e.notify(ctx, n)
}

// failOrphanedSync marks a queued or running sync execution whose worker
// died as failed with reason, and its unfinished backup and restore with
// it, so none stays running. Finished ones are left as they are.
func (e *Engine) failOrphanedSync(ctx context.Context, id, reason string) error {
	x, err := e.store.GetSyncExecution(ctx, id)
	if err != nil {
		return err
	}
	if x.Status.Terminal() {
		return nil
	}
	l := &syncLog{e: e, x: x}
	if x.BackupExecutionID != "" {
		l.ids = append(l.ids, x.BackupExecutionID)
		if err := e.FailOrphaned(ctx, x.BackupExecutionID, reason); err != nil {
			e.log.Warn("recover sync backup", "execution_id", x.BackupExecutionID, "err", err)
		}
		// The restore is linked only once it returns: find it by its backup.
		restores, err := e.store.RestoresOf(ctx, x.BackupExecutionID)
		if err != nil {
			return err
		}
		for _, r := range restores {
			if x.RestoreExecutionID == "" {
				x.RestoreExecutionID = r.ID
			}
			l.ids = append(l.ids, r.ID)
			if err := e.FailOrphaned(ctx, r.ID, reason); err != nil {
				e.log.Warn("recover sync restore", "execution_id", r.ID, "err", err)
			}
		}
	}
	e.finishSync(ctx, x, l, errors.New(reason))
	return nil
}

// SyncExecutionLogs returns the stored log lines of a sync execution: those
// of its backup, then those of its restore, each oldest first.
func (e *Engine) SyncExecutionLogs(ctx context.Context, id string) ([]ExecutionLog, error) {
	x, err := e.store.GetSyncExecution(ctx, id)
	if err != nil {
		return nil, err
	}
	out := []ExecutionLog{}
	for _, xid := range []string{x.BackupExecutionID, x.RestoreExecutionID} {
		if xid == "" {
			continue
		}
		lines, err := e.store.ExecutionLogs(ctx, xid)
		if err != nil {
			return nil, err
		}
		out = append(out, lines...)
	}
	return out, nil
}

func (e *Engine) publishSync(x *SyncExecution) {
	e.events.Publish(Event{Type: EventExecutionStatus, EntityID: x.ID, Status: string(x.Status),
		Data: map[string]any{"operation": "sync", "sync_job_id": x.SyncJobID,
			"backup_execution_id": x.BackupExecutionID, "restore_execution_id": x.RestoreExecutionID}})
}
