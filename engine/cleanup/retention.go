package cleanup

import (
	"context"
	"fmt"

	"github.com/dataguardian/dataguardian/engine/internal/jobstorage"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/retention"
	"github.com/dataguardian/dataguardian/storage"
)

var retentionStatus = map[store.ExecutionStatus]retention.Status{
	store.ExecutionCompleted: retention.StatusCompleted,
	store.ExecutionRunning:   retention.StatusRunning,
	store.ExecutionQueued:    retention.StatusQueued,
	store.ExecutionFailed:    retention.StatusFailed,
	store.ExecutionCancelled: retention.StatusFailed,
}

// ApplyRetention deletes the backups of job jobID that its retention
// policy no longer keeps (nothing when auto_delete is off). It never
// deletes the newest completed backup, a backup still running, one a
// restore is reading or a pinned one (Execution.Pinned, such as a
// restore's safety backup); pinned backups take no slot of the policy's
// rules. Each deletion removes the manifest first (so a half-deleted
// backup is never offered for restore), then the parts, on every storage
// location of the job, and is appended to LogKey there. It returns what
// it deleted.
func (c *Cleaner) ApplyRetention(ctx context.Context, jobID string) ([]retention.Decision, error) {
	s := c.cfg.Store
	job, err := s.GetBackupJob(ctx, jobID)
	if err != nil {
		return nil, fmt.Errorf("apply retention of job %s: %w", jobID, err)
	}
	policy := job.Retention
	if !policy.AutoDelete {
		return nil, nil
	}
	execs, err := s.ListExecutions(ctx, store.ExecutionFilter{JobID: job.ID, Operation: store.OperationBackup, Limit: -1})
	if err != nil {
		return nil, fmt.Errorf("apply retention of job %s: %w", job.Name, err)
	}
	reading, err := c.backupsBeingRead(ctx, job.ID)
	if err != nil {
		return nil, fmt.Errorf("apply retention of job %s: %w", job.Name, err)
	}
	var backups []retention.Backup
	for i := range execs {
		x := &execs[i]
		if _, gone := x.Metadata[store.MetaRetentionDeleted]; gone {
			continue
		}
		b := retention.Backup{ID: x.ID, JobID: job.ID, CreatedAt: x.CreatedAt, Status: retentionStatus[x.Status],
			Path: x.BackupPath, Pinned: x.Pinned}
		if reading[x.ID] {
			b.Status = retention.StatusRestoring
		}
		backups = append(backups, b)
	}
	_, drop := retention.Apply(backups, policy, c.now())
	if len(drop) == 0 {
		return nil, nil
	}
	storages := jobstorage.Open(ctx, s, c.cfg.OpenStorage, job.StorageLocationIDs)
	deleted := drop[:0:0]
	for _, d := range drop {
		// Read it again: it may have been pinned since it was listed.
		x, err := s.GetExecution(ctx, d.Backup.ID)
		if err != nil {
			return deleted, fmt.Errorf("apply retention of job %s: %w", job.Name, err)
		}
		if _, gone := x.Metadata[store.MetaRetentionDeleted]; gone || x.Pinned {
			continue
		}
		if err := c.deleteBackup(ctx, storages, x, d); err != nil {
			return deleted, err
		}
		deleted = append(deleted, d)
	}
	return deleted, nil
}

// deleteBackup removes one backup from every storage and records it.
func (c *Cleaner) deleteBackup(ctx context.Context, storages []jobstorage.Storage, x *store.Execution, d retention.Decision) error {
	now := c.now()
	line := retention.FormatCleanupLine(retention.NewLogEntry(now, x.JobID, d)) + "\n"
	for _, js := range storages {
		if js.Err != nil {
			c.log.Warn("retention: storage unusable, backup left there", "storage", js.Loc.Name, "path", x.BackupPath, "err", js.Err)
			continue
		}
		if err := removeRunFolder(ctx, js.St, x.BackupPath); err != nil {
			return fmt.Errorf("retention: delete %s on storage %s: %w", x.BackupPath, js.Loc.Name, err)
		}
		if err := storage.Append(ctx, js.St, LogKey, []byte(line)); err != nil {
			c.log.Warn("retention: append cleanup log", "storage", js.Loc.Name, "err", err)
		}
		c.cfg.SetStorageStatus(ctx, x.ID, js.Loc.ID, store.StorageMissing, fmt.Errorf("deleted by retention: %s", d.Reason))
	}
	if x.Metadata == nil {
		x.Metadata = map[string]any{}
	}
	x.Metadata[store.MetaRetentionDeleted] = now
	return c.cfg.Store.UpdateExecution(ctx, x, "metadata")
}

// backupsBeingRead returns the backups of job that a queued or running
// restore or verification will read: retention keeps them.
func (c *Cleaner) backupsBeingRead(ctx context.Context, jobID string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, op := range []store.Operation{store.OperationRestore, store.OperationVerify} {
		for _, st := range []store.ExecutionStatus{store.ExecutionQueued, store.ExecutionRunning} {
			xs, err := c.cfg.Store.ListExecutions(ctx, store.ExecutionFilter{JobID: jobID, Operation: op, Status: st, Limit: -1})
			if err != nil {
				return nil, err
			}
			for _, x := range xs {
				out[x.SourceExecutionID] = true
			}
		}
	}
	return out, nil
}
