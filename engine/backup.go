package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/engine/internal/jobstorage"
	"github.com/dataguardian/dataguardian/engine/queue"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/notify"
)

// execLog writes an execution's log lines to the engine's logger and to the
// execution's stored log, with the "[BACKUP]"/"[RESTORE]" prefix of the spec.
type execLog struct {
	e      *Engine
	id     string
	prefix string
}

func (l execLog) log(ctx context.Context, level slog.Level, format string, args ...any) {
	msg := l.prefix + " " + fmt.Sprintf(format, args...)
	l.e.log.Log(ctx, level, msg, "execution_id", l.id)
	if err := l.e.store.AppendExecutionLog(context.WithoutCancel(ctx), l.id, strings.ToLower(level.String()), msg); err != nil {
		l.e.log.Warn("store execution log", "execution_id", l.id, "err", err)
	}
}

func (l execLog) info(ctx context.Context, format string, args ...any) {
	l.log(ctx, slog.LevelInfo, format, args...)
}

func (l execLog) errorf(ctx context.Context, format string, args ...any) {
	l.log(ctx, slog.LevelError, format, args...)
}

// jobStorage is one destination of a job, opened or not.
type jobStorage = jobstorage.Storage

// openJobStorages opens every storage location of job, in order.
func (e *Engine) openJobStorages(ctx context.Context, job *BackupJob) []jobStorage {
	return jobstorage.Open(ctx, e.store, e.openStorage, job.StorageLocationIDs)
}

// RunBackup backs up the datasource of job now, synchronously, to every
// storage location of the job, and applies the job's retention policy when
// it succeeds. It records an execution (with per-storage statuses and logs)
// and returns it; the error is non-nil when the backup failed, in which
// case the execution says why and no earlier backup was touched.
func (e *Engine) RunBackup(ctx context.Context, jobID string) (*Execution, error) {
	exec, err := e.newBackupExecution(ctx, jobID, "")
	if err != nil {
		return nil, err
	}
	return exec, e.executeBackup(ctx, exec)
}

// newBackupExecution records a queued backup execution of job jobID. A
// non-empty id is used as the execution ID, so that recording the same
// scheduled run twice fails with ErrAlreadyExists instead of running twice.
func (e *Engine) newBackupExecution(ctx context.Context, jobID, id string) (*Execution, error) {
	job, err := e.store.GetBackupJob(ctx, jobID)
	if err != nil {
		return nil, fmt.Errorf("run backup job %s: %w", jobID, err)
	}
	exec := &Execution{ID: id, JobID: job.ID, DatasourceID: job.DatasourceID, Operation: OperationBackup, Status: ExecutionQueued,
		Compression: job.Compression, Attempt: 1}
	if err := e.store.CreateExecution(ctx, exec); err != nil {
		return nil, fmt.Errorf("run backup job %s: %w", job.Name, err)
	}
	e.publishExecution(exec)
	return exec, nil
}

// ExecuteBackup runs the queued backup execution executionID (what a
// backup worker does with a claimed task) and, when it succeeds, applies
// the job's retention policy. The error is the backup's failure, also
// recorded in the execution.
func (e *Engine) ExecuteBackup(ctx context.Context, executionID string) error {
	exec, err := e.store.GetExecution(ctx, executionID)
	if err != nil {
		return fmt.Errorf("execute backup %s: %w", executionID, err)
	}
	return e.executeBackup(ctx, exec)
}

func (e *Engine) executeBackup(ctx context.Context, exec *Execution) error {
	if exec.Operation != OperationBackup || exec.Status.Terminal() {
		return fmt.Errorf("%w: execution %s is a %s execution with status %s, not a backup to run", ErrInvalid, exec.ID, exec.Operation, exec.Status)
	}
	job, err := e.store.GetBackupJob(ctx, exec.JobID)
	if err == nil {
		var ds *Datasource
		if ds, err = e.store.GetDatasource(ctx, job.DatasourceID); err == nil {
			var adopted bool
			if adopted, err = e.adoptCommitted(ctx, exec, job); err == nil && !adopted {
				err = e.runBackup(ctx, exec, job, ds)
			}
		}
	}
	if err != nil {
		if !exec.Status.Terminal() && !interrupted(ctx) { // the job or datasource vanished before the run started
			e.finish(ctx, exec, execLog{e: e, id: exec.ID, prefix: "[BACKUP]"}, err)
		}
		return err
	}
	// Retention runs only after a successful backup (spec: cleanup after success).
	l := execLog{e: e, id: exec.ID, prefix: "[BACKUP]"}
	dropped, rerr := e.ApplyRetention(ctx, job.ID)
	if rerr != nil {
		l.errorf(ctx, "retention: %v", rerr)
	}
	for _, d := range dropped {
		l.info(ctx, "retention deleted %s (%s)", d.Backup.Path, d.Reason)
	}
	return nil
}

func (e *Engine) runBackup(ctx context.Context, exec *Execution, job *BackupJob, ds *Datasource) (err error) {
	l := execLog{e: e, id: exec.ID, prefix: "[BACKUP]"}
	e.start(ctx, exec)
	defer func() { e.finish(ctx, exec, l, err) }()

	driver, err := e.cfg.Drivers.Lookup(ds.Type)
	if err != nil {
		return err
	}
	src, err := e.Source(ds)
	if err != nil {
		return err
	}
	comp, err := manifest.ParseCompression(job.Compression)
	if err != nil {
		return err
	}
	storages := e.openJobStorages(ctx, job)
	var dests []manifest.Destination
	var used []jobStorage
	for _, js := range storages {
		if js.Err != nil {
			l.errorf(ctx, "storage %s unusable: %v", js.Loc.Name, js.Err)
			e.setStorageStatus(ctx, exec.ID, js.Loc.ID, StorageUnreachable, js.Err)
			continue
		}
		dests = append(dests, manifest.Destination{Name: js.Loc.Name, Storage: js.St})
		used = append(used, js)
	}
	if len(dests) == 0 {
		return fmt.Errorf("no usable storage location among %d: check the storage locations of job %q", len(storages), job.Name)
	}
	l.info(ctx, "backing up %s datasource %q to %d storage(s) with %s compression", ds.Type, ds.Name, len(dests), comp)
	wopts := manifest.WriteOptions{
		JobID: job.ID, ExecutionID: exec.ID, DatasourceType: ds.Type, Compression: comp,
		PartSize: int64(job.MaxFileSizeMB) << 20, Concurrency: e.cfg.Concurrency, Now: e.cfg.Now,
	}
	if len(job.EncryptionRecipients) > 0 {
		wopts.Encrypt = &manifest.Encrypt{Recipients: job.EncryptionRecipients}
		l.info(ctx, "encrypting with age to %d recipient(s)", len(job.EncryptionRecipients))
	}
	res, err := manifest.Write(ctx, dests, wopts, func(ctx context.Context, w io.Writer) (manifest.Metadata, error) {
		return driver.Dump(ctx, src, w, &drivers.DumpOptions{Logf: func(format string, args ...any) { l.info(ctx, format, args...) }})
	})
	exec.BackupPath = res.Dir
	for i, r := range res.Destinations {
		status := StorageAvailable
		if err != nil || r.Err != nil {
			status = StorageUnreachable
			if r.Err == nil {
				status = StorageMissing // the backup as a whole failed
			} else {
				l.errorf(ctx, "storage %s failed: %v", r.Name, r.Err)
			}
		}
		e.setStorageStatus(ctx, exec.ID, used[i].Loc.ID, status, r.Err)
	}
	if err != nil {
		return err
	}
	recordManifest(exec, res.Manifest)
	l.info(ctx, "wrote %s: %d bytes, %d compressed (ratio %.3f) in %d part(s), %s", res.Dir, exec.SizeBytes,
		exec.CompressedSizeBytes, res.Manifest.CompressionRatio, len(res.Manifest.Chunks), exec.Checksum)
	return nil
}

// recordManifest copies what a committed backup's manifest says into exec,
// keeping the metadata it had (retry_of).
func recordManifest(exec *Execution, m *manifest.Manifest) {
	exec.SizeBytes, exec.CompressedSizeBytes, exec.Checksum = m.TotalSizeBytes, m.CompressedSizeBytes, m.Checksum
	if exec.Metadata == nil {
		exec.Metadata = map[string]any{}
	}
	exec.Metadata["manifest"], exec.Metadata["chunks"], exec.Metadata["compression_ratio"] = m.Metadata, len(m.Chunks), m.CompressionRatio
}

// adoptCommitted completes exec from the backup an earlier attempt of it
// committed (manifest.json written) before its process died, instead of
// backing up a second time. It reports whether it did. Only an execution
// that started before (StartedAt set) is looked for.
func (e *Engine) adoptCommitted(ctx context.Context, exec *Execution, job *BackupJob) (bool, error) {
	if exec.StartedAt == nil {
		return false, nil
	}
	storages := e.openJobStorages(ctx, job)
	dir := ""
	var m *manifest.Manifest
	for _, js := range storages {
		if js.Err != nil || dir != "" {
			continue
		}
		backups, err := manifest.List(ctx, js.St)
		if err != nil {
			return false, fmt.Errorf("look for an earlier attempt's backup on storage %s: %w", js.Loc.Name, err)
		}
		for _, b := range backups {
			if b.JobID == job.ID && b.Manifest != nil && b.Manifest.ExecutionID == exec.ID {
				dir, m = b.Dir, b.Manifest
				break
			}
		}
	}
	if dir == "" {
		return false, nil
	}
	l := execLog{e: e, id: exec.ID, prefix: "[BACKUP]"}
	l.info(ctx, "an earlier attempt committed %s before its process stopped: verifying it instead of backing up again", dir)
	found := false
	for _, js := range storages {
		status := StorageUnreachable
		_, err := verifyCopy(ctx, js, dir)
		switch {
		case err == nil:
			status, found = StorageAvailable, true
		case js.Err == nil:
			status = StorageMissing
		}
		e.setStorageStatus(ctx, exec.ID, js.Loc.ID, status, err)
	}
	if !found { // nothing verifies: back up again
		l.errorf(ctx, "no copy of %s verifies: backing up again", dir)
		return false, nil
	}
	exec.BackupPath = dir
	recordManifest(exec, m)
	e.finish(ctx, exec, l, nil)
	return true, nil
}

func (e *Engine) setStorageStatus(ctx context.Context, execID, locID string, status StorageStatus, cause error) {
	es := &ExecutionStorage{ExecutionID: execID, StorageLocationID: locID, Status: status}
	if cause != nil {
		es.ErrorMessage = cause.Error()
	}
	if err := e.store.SetExecutionStorage(context.WithoutCancel(ctx), es); err != nil {
		e.log.Warn("store storage status", "execution_id", execID, "err", err)
	}
}

// start marks exec running and, for a backup of a job, records the run in
// the job's last_execution_at (every run: manual, scheduled or retry).
func (e *Engine) start(ctx context.Context, exec *Execution) {
	now := e.now()
	exec.Status, exec.StartedAt = ExecutionRunning, &now
	if err := e.store.UpdateExecution(ctx, exec, "status", "started_at"); err != nil {
		e.log.Warn("mark execution running", "execution_id", exec.ID, "err", err)
	}
	if exec.Operation == OperationBackup && exec.JobID != "" {
		e.recordJobRun(ctx, exec.JobID, now)
	}
	e.publishExecution(exec)
}

// recordJobRun sets the last_execution_at of backup job jobID to at, when
// one of its runs started, unless a later run set it already.
func (e *Engine) recordJobRun(ctx context.Context, jobID string, at time.Time) {
	if err := e.store.RecordJobRun(context.WithoutCancel(ctx), jobID, at); err != nil {
		e.log.Warn("record the job's last run", "job_id", jobID, "err", err)
	}
}

// finish records the outcome of exec, even when ctx was cancelled, and
// notifies. A failed backup whose job has retries left first queues its
// retry (queueRetry) and is notified as a warning that says when the retry
// runs; the last failure stays critical.
func (e *Engine) finish(ctx context.Context, exec *Execution, l execLog, err error) {
	if interrupted(ctx) {
		l.errorf(context.WithoutCancel(ctx), "%s interrupted (%v): left to run again", exec.Operation, context.Cause(ctx))
		return
	}
	// The run is cancelled only when its own context is (a user's cancel,
	// the caller giving up): an error that merely wraps context.Canceled,
	// such as a pipeline stage stopped because a sibling failed, is a
	// failure, and the retry policy applies to it.
	cancelled := errors.Is(ctx.Err(), context.Canceled)
	ctx = context.WithoutCancel(ctx)
	now := e.now()
	exec.FinishedAt = &now
	if exec.StartedAt != nil {
		exec.DurationMS = now.Sub(*exec.StartedAt).Milliseconds()
	}
	what := string(exec.Operation)
	n := notify.Notification{EntityType: "execution", EntityID: exec.ID, CreatedAt: now}
	switch {
	case err == nil:
		exec.Status = ExecutionCompleted
		l.info(ctx, "%s completed in %s", what, time.Duration(exec.DurationMS)*time.Millisecond)
		n.Type, n.Severity, n.Title = what+"_completed", notify.Info, what+" completed"
	case cancelled:
		exec.Status, exec.ErrorMessage = ExecutionCancelled, err.Error()
		l.errorf(ctx, "%s cancelled: %v", what, err)
		n.Type, n.Severity, n.Title = what+"_failed", notify.Warning, what+" cancelled"
	default:
		exec.Status, exec.ErrorMessage = ExecutionFailed, err.Error()
		l.errorf(ctx, "%s failed: %v", what, err)
		n.Type, n.Severity, n.Title = what+"_failed", notify.Critical, what+" failed"
	}
	subject := e.notificationSubject(ctx, exec)
	n.Message = subject.message(exec)
	if exec.Status == ExecutionFailed && exec.Operation == OperationBackup {
		// Queued before the failure is recorded: if this process dies in
		// between, the execution runs again and queues the same retry.
		if r := e.queueRetry(ctx, exec, l); r != nil {
			n.Severity, n.Title = notify.Warning, what+" failed, retry queued"
			n.Message += fmt.Sprintf("; retry %d of %d queued for %s", r.n, r.of, r.at.Format(time.RFC3339))
			n.Data = map[string]any{"retry_execution_id": r.id, "retry_at": r.at, "retry": r.n, "retry_attempts": r.of}
		}
	}
	if uerr := e.store.UpdateExecution(ctx, exec); uerr != nil {
		e.log.Error("record execution outcome", "execution_id", exec.ID, "err", uerr)
	}
	e.publishExecution(exec)
	if e.partOfSync(ctx, exec) {
		return // the sync execution notifies sync_completed or sync_failed for the whole run
	}
	n.Title = subject.title(n.Title)
	e.notify(ctx, n)
}

// partOfSync reports whether exec is the backup or restore step of a sync
// run (its job is a sync job's internal backup job).
func (e *Engine) partOfSync(ctx context.Context, exec *Execution) bool {
	if exec.JobID == "" {
		return false
	}
	job, err := e.store.GetBackupJob(ctx, exec.JobID)
	return err == nil && isSyncBackupJob(job)
}

// notify records n in-app and hands it to the configured channel.
func (e *Engine) notify(ctx context.Context, n notify.Notification) {
	rec := &Notification{Type: n.Type, Severity: Severity(n.Severity), Title: n.Title, Message: n.Message,
		EntityType: n.EntityType, EntityID: n.EntityID}
	if err := e.store.InsertNotification(ctx, rec); err != nil {
		e.log.Warn("store notification", "type", n.Type, "err", err)
	}
	if err := e.cfg.Notifier.Notify(ctx, n); err != nil {
		e.log.Warn("deliver notification", "type", n.Type, "err", err)
	}
}

func (e *Engine) publishExecution(x *Execution) {
	e.events.Publish(Event{Type: EventExecutionStatus, EntityID: x.ID, Status: string(x.Status),
		Data: map[string]any{"operation": x.Operation, "job_id": x.JobID, "datasource_id": x.DatasourceID}})
}

// retryRunSpace namespaces the IDs of retries: the retry of failed
// execution X always has the same ID, so it is queued once however many
// processes decide it.
var retryRunSpace = uuid.MustParse("c8a3e2d4-6f1b-4e7a-9b2c-3d5f7a9e1b40")

// retryRunID is the ID of the execution (and task) retrying failed
// execution failedID.
func retryRunID(failedID string) string {
	return uuid.NewSHA1(retryRunSpace, []byte(failedID)).String()
}

// maxRetryBackoff is where the doubling of the retry delay stops.
const maxRetryBackoff = time.Hour

// retryDelay is the wait before retry n (1 for the first) of job: its
// RetryDelaySeconds doubled for each retry after the first, the doubling
// stopping at an hour (a first delay above an hour is kept as it is).
func retryDelay(job *BackupJob, n int) time.Duration {
	d := time.Duration(job.RetryDelaySeconds) * time.Second
	for i := 1; i < n && d < maxRetryBackoff; i++ {
		d = min(2*d, maxRetryBackoff)
	}
	return d
}

// queuedRetry is a retry queueRetry queued: retry n of of, execution id,
// due at at.
type queuedRetry struct {
	id    string
	n, of int
	at    time.Time
}

// queueRetry queues the next attempt of the failed backup execution exec
// when its job has retries left (exec.Attempt <= RetryAttempts): a new
// queued execution of the job with Attempt+1 and metadata retry_of, whose
// task is due after retryDelay. It returns the retry, or nil when none is
// queued (no retries left, the job is gone, or a store error, logged into
// exec's log).
//
// The retry is queued exactly once across processes: its execution and
// task IDs derive from exec's ID, so a second decision (another process,
// or exec run again after its process died) finds them and adds nothing.
// The task is enqueued even when the execution existed, which completes a
// decision that stopped in between. Backups of sync jobs are not retried
// here: a failed sync fails as a whole.
func (e *Engine) queueRetry(ctx context.Context, exec *Execution, l execLog) *queuedRetry {
	if exec.JobID == "" {
		return nil
	}
	job, err := e.store.GetBackupJob(ctx, exec.JobID)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			l.errorf(ctx, "retry not queued: %v", err)
		}
		return nil
	}
	n := max(exec.Attempt, 1)
	if n > job.RetryAttempts || isSyncBackupJob(job) {
		return nil
	}
	r := &queuedRetry{id: retryRunID(exec.ID), n: n, of: job.RetryAttempts, at: e.now().Add(retryDelay(job, n))}
	// At most one queued backup per job: one queued meanwhile (run now, the
	// schedule) backs the job up instead of a retry.
	tq, ok := e.cfg.Queue.(queue.TxEnqueuer)
	withTask := ok && tq.InStore(e.store)
	if queued, err := store.QueuedBackups(ctx, e.store, []string{job.ID}, withTask, exec.ID, r.id); err != nil {
		l.errorf(ctx, "retry %d of %d not queued: %v", r.n, r.of, err)
		return nil
	} else if x := queued[job.ID]; x != nil {
		l.info(ctx, "retry %d of %d not queued: execution %s, queued already, backs the job up", r.n, r.of, x.ID)
		return nil
	}
	retry := &Execution{ID: r.id, JobID: job.ID, DatasourceID: job.DatasourceID, Operation: OperationBackup,
		Status: ExecutionQueued, Compression: job.Compression, Attempt: n + 1, Metadata: map[string]any{"retry_of": exec.ID}}
	err = e.store.CreateExecution(ctx, retry)
	created := err == nil
	if err != nil && !errors.Is(err, ErrAlreadyExists) {
		l.errorf(ctx, "retry %d of %d not queued: %v", r.n, r.of, err)
		return nil
	}
	// Attempt 1: the task's attempts count runs lost with their process
	// (lease expiry), not backup failures.
	task := Task{ID: r.id, Kind: TaskBackup, ExecutionID: r.id, Attempt: 1, RunAt: r.at}
	if err := e.cfg.Queue.Enqueue(ctx, task); err != nil && !errors.Is(err, ErrAlreadyExists) {
		l.errorf(ctx, "retry %d of %d not queued: %v", r.n, r.of, err)
		if created { // no task would ever run it: undo, so it does not wait queued forever
			if derr := e.store.DeleteExecution(ctx, r.id); derr != nil {
				e.log.Error("delete unqueued retry", "execution_id", r.id, "err", derr)
			}
		}
		return nil
	}
	if created {
		l.info(ctx, "retry %d of %d queued for %s (execution %s)", r.n, r.of, r.at.Format(time.RFC3339), r.id)
		execLog{e: e, id: r.id, prefix: l.prefix}.info(ctx, "retry %d of %d of execution %s", r.n, r.of, exec.ID)
		e.publishExecution(retry)
	}
	return r
}

// isSyncBackupJob reports whether job is the backup job of a sync job.
func isSyncBackupJob(job *BackupJob) bool {
	syncJobID, ok := strings.CutPrefix(job.Name, SyncBackupJobName(""))
	return ok && job.ID == store.SyncBackupJobID(syncJobID)
}
