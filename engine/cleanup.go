package engine

import (
	"context"

	"github.com/dataguardian/dataguardian/engine/cleanup"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/retention"
)

// metaRetentionDeleted marks, in Execution.Metadata, a backup whose files
// retention deleted (the value is the time).
const metaRetentionDeleted = store.MetaRetentionDeleted

// newCleaner returns the cleanup of e's store and storages (package cleanup).
func (e *Engine) newCleaner() *cleanup.Cleaner {
	return cleanup.New(cleanup.Config{Store: e.store, Queue: e.cfg.Queue, OpenStorage: e.openStorage,
		BackupStorageIDs: e.backupStorageIDs, SetStorageStatus: e.setStorageStatus, Now: e.now, Log: e.log})
}

// ApplyRetention deletes the backups of job that its retention policy no
// longer keeps; see cleanup.Cleaner.ApplyRetention.
func (e *Engine) ApplyRetention(ctx context.Context, jobID string) ([]retention.Decision, error) {
	return e.cleaner.ApplyRetention(ctx, jobID)
}

// RunCleanup runs one cleanup pass with Config.Cleanup (what the cleanup
// worker does every Interval); see cleanup.Cleaner.Pass.
func (e *Engine) RunCleanup(ctx context.Context) (CleanupReport, error) {
	return e.cleaner.Pass(ctx, e.cfg.Cleanup)
}

// NewCleanupWorker returns a CleanupWorker for e; zero opts fields take the
// CleanupOptions defaults.
func NewCleanupWorker(e *Engine, opts CleanupOptions) *CleanupWorker {
	return cleanup.NewWorker(e.cleaner, opts)
}
