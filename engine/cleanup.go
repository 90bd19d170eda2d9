package engine

import (
	"context"
	"fmt"
	"slices"

	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/retention"
	"github.com/dataguardian/dataguardian/storage"
)

// CleanupLogKey is where retention deletions are logged in every storage.
const CleanupLogKey = "_system/cleanup.log"

// metaRetentionDeleted marks, in Execution.Metadata, a backup whose files
// retention deleted (the value is the time).
const metaRetentionDeleted = "retention_deleted_at"

var retentionStatus = map[ExecutionStatus]retention.Status{
	ExecutionCompleted: retention.StatusCompleted,
	ExecutionRunning:   retention.StatusRunning,
	ExecutionQueued:    retention.StatusQueued,
	ExecutionFailed:    retention.StatusFailed,
	ExecutionCancelled: retention.StatusFailed,
}

// ApplyRetention deletes the backups of job that its retention policy no
// longer keeps (nothing when auto_delete is off). It never deletes the
// newest completed backup, a backup still running or one a restore is
// reading. Each deletion removes the manifest first (so a half-deleted
// backup is never offered for restore), then the parts, on every storage
// location of the job, and is appended to _system/cleanup.log there. It
// returns what it deleted.
func (e *Engine) ApplyRetention(ctx context.Context, jobID string) ([]retention.Decision, error) {
	job, err := e.store.GetBackupJob(ctx, jobID)
	if err != nil {
		return nil, fmt.Errorf("apply retention of job %s: %w", jobID, err)
	}
	policy := job.Retention
	if !policy.AutoDelete {
		return nil, nil
	}
	execs, err := e.store.ListExecutions(ctx, ExecutionFilter{JobID: job.ID, Operation: OperationBackup, Limit: -1})
	if err != nil {
		return nil, fmt.Errorf("apply retention of job %s: %w", job.Name, err)
	}
	restores, err := e.store.ListExecutions(ctx, ExecutionFilter{JobID: job.ID, Operation: OperationRestore, Status: ExecutionRunning, Limit: -1})
	if err != nil {
		return nil, fmt.Errorf("apply retention of job %s: %w", job.Name, err)
	}
	byID := make(map[string]*Execution, len(execs))
	var backups []retention.Backup
	for i := range execs {
		x := &execs[i]
		if _, gone := x.Metadata[metaRetentionDeleted]; gone {
			continue
		}
		b := retention.Backup{ID: x.ID, JobID: job.ID, CreatedAt: x.CreatedAt, Status: retentionStatus[x.Status], Path: x.BackupPath}
		if slices.ContainsFunc(restores, func(r Execution) bool { return r.SourceExecutionID == x.ID }) {
			b.Status = retention.StatusRestoring
		}
		byID[x.ID] = x
		backups = append(backups, b)
	}
	_, drop := retention.Apply(backups, policy, e.now())
	storages := e.openJobStorages(ctx, job)
	for _, d := range drop {
		if err := e.deleteBackup(ctx, storages, byID[d.Backup.ID], d); err != nil {
			return nil, err
		}
	}
	return drop, nil
}

// deleteBackup removes one backup from every storage and records it.
func (e *Engine) deleteBackup(ctx context.Context, storages []jobStorage, x *Execution, d retention.Decision) error {
	now := e.now()
	line := retention.FormatCleanupLine(retention.NewLogEntry(now, x.JobID, d)) + "\n"
	for _, js := range storages {
		if js.err != nil {
			e.log.Warn("retention: storage unusable, backup left there", "storage", js.loc.Name, "path", x.BackupPath, "err", js.err)
			continue
		}
		if err := removeRunFolder(ctx, js.st, x.BackupPath); err != nil {
			return fmt.Errorf("retention: delete %s on storage %s: %w", x.BackupPath, js.loc.Name, err)
		}
		if err := storage.Append(ctx, js.st, CleanupLogKey, []byte(line)); err != nil {
			e.log.Warn("retention: append cleanup log", "storage", js.loc.Name, "err", err)
		}
		e.setStorageStatus(ctx, x.ID, js.loc.ID, StorageMissing, fmt.Errorf("deleted by retention: %s", d.Reason))
	}
	if x.Metadata == nil {
		x.Metadata = map[string]any{}
	}
	x.Metadata[metaRetentionDeleted] = now
	return e.store.UpdateExecution(ctx, x, "metadata")
}

// removeRunFolder deletes a run folder: manifest.json first, so the backup
// stops being restorable before any part goes, then everything else.
func removeRunFolder(ctx context.Context, s storage.Storage, dir string) error {
	if err := s.Delete(ctx, dir+"/"+manifest.FileName); err != nil {
		return err
	}
	objs, err := s.List(ctx, dir+"/")
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := s.Delete(ctx, o.Key); err != nil {
			return err
		}
	}
	return nil
}
