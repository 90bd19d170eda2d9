package store

import (
	"context"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// syncBackupJobSpace namespaces the IDs of the backup jobs sync jobs back
// up their source through: sync job S always uses backup job
// uuid5(space, S), so two processes creating it at once make one.
var syncBackupJobSpace = uuid.MustParse("0e6b2f61-8c1d-4c8e-a0a4-7d3b9f5e2c41")

// SyncBackupJobID is the ID of the backup job of sync job syncJobID.
func SyncBackupJobID(syncJobID string) string {
	return uuid.NewSHA1(syncBackupJobSpace, []byte(syncJobID)).String()
}

// SyncBackupRetention is the retention of the backup job a sync job backs up
// its source through (the spec's operational default).
var SyncBackupRetention = Retention{MaxBackups: 3, AutoDelete: true}

// SyncBackupJobName is the name of the backup job through which sync job
// syncJobID backs up its source.
func SyncBackupJobName(syncJobID string) string { return "sync:" + syncJobID }

// CreateSyncJob inserts job, assigning its ID and timestamps.
func (s *Store) CreateSyncJob(ctx context.Context, job *SyncJob) error {
	return insertRow(ctx, s.db, job)
}

// GetSyncJob returns the sync job with id.
func (s *Store) GetSyncJob(ctx context.Context, id string) (*SyncJob, error) {
	return getRow[SyncJob](ctx, s.db, "id", id)
}

// ListSyncJobs returns every sync job, by name.
func (s *Store) ListSyncJobs(ctx context.Context) ([]SyncJob, error) {
	return s.FindSyncJobs(ctx, -1, 0)
}

// FindSyncJobs returns at most limit sync jobs (0 means DefaultListLimit,
// negative no limit) after skipping offset, by name.
func (s *Store) FindSyncJobs(ctx context.Context, limit, offset int) ([]SyncJob, error) {
	return listRows[SyncJob](ctx, page(s.db.NewSelect().Order("name", "id"), limit, offset))
}

// UpdateSyncJob writes job; with columns, only those.
func (s *Store) UpdateSyncJob(ctx context.Context, job *SyncJob, columns ...string) error {
	return updateRow(ctx, s.db, job, columns...)
}

// CreateSyncExecution inserts x, assigning its ID and created_at; an empty
// Status becomes ExecutionQueued.
func (s *Store) CreateSyncExecution(ctx context.Context, x *SyncExecution) error {
	if x.Status == "" {
		x.Status = ExecutionQueued
	}
	return insertRow(ctx, s.db, x)
}

// GetSyncExecution returns the sync execution with id.
func (s *Store) GetSyncExecution(ctx context.Context, id string) (*SyncExecution, error) {
	return getRow[SyncExecution](ctx, s.db, "id", id)
}

// UpdateSyncExecution writes x; with columns, only those.
func (s *Store) UpdateSyncExecution(ctx context.Context, x *SyncExecution, columns ...string) error {
	return updateRow(ctx, s.db, x, columns...)
}

// ListSyncExecutions returns the executions of sync job syncJobID, newest
// first (limit 0: DefaultListLimit; negative: no limit), after skipping
// offset.
func (s *Store) ListSyncExecutions(ctx context.Context, syncJobID string, limit, offset int) ([]SyncExecution, error) {
	return listRows[SyncExecution](ctx, page(s.db.NewSelect().
		Where("sync_job_id = ?", syncJobID).OrderExpr("created_at DESC, id DESC"), limit, offset))
}

// RunningSyncExecution returns a running execution of sync job id, or nil.
func (s *Store) RunningSyncExecution(ctx context.Context, id string) (*SyncExecution, error) {
	xs, err := listRows[SyncExecution](ctx, s.db.NewSelect().
		Where("sync_job_id = ?", id).Where("status = ?", ExecutionRunning).Limit(1))
	if err != nil || len(xs) == 0 {
		return nil, err
	}
	return &xs[0], nil
}

// DeleteSyncJob deletes sync job id with its backup job, in one
// transaction. The backup job's executions stay, their job_id set to NULL.
func (s *Store) DeleteSyncJob(ctx context.Context, id string) error {
	return dbError(s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewDelete().Model((*BackupJob)(nil)).Where("id = ?", SyncBackupJobID(id)).Exec(ctx); err != nil {
			return err
		}
		_, err := tx.NewDelete().Model((*SyncJob)(nil)).Where("id = ?", id).Exec(ctx)
		return err
	}))
}

// RestoresOf returns the restore executions of backup execution id.
func (s *Store) RestoresOf(ctx context.Context, id string) ([]Execution, error) {
	return listRows[Execution](ctx, s.db.NewSelect().
		Where("source_execution_id = ?", id).Where("operation = ?", OperationRestore))
}
