package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage"
)

// BackupCopy is a verified copy of a completed backup on one storage.
type BackupCopy struct {
	Execution *Execution
	Location  *StorageLocation
	Storage   storage.Storage
	Dir       string // run folder: parts and manifest.json are Dir + "/" + name
	Manifest  *manifest.Manifest
}

// OpenBackupCopy returns the first copy of the completed backup
// executionID that verifies completely (manifest, every part's size and
// sha256, the whole checksum), trying the storage locations of its job in
// order, or those it was written to when the job is gone (spec: GET
// /api/executions/:id/download). An execution that is not a completed
// backup with files gives ErrNotRestorable.
func (e *Engine) OpenBackupCopy(ctx context.Context, executionID string) (*BackupCopy, error) {
	exec, err := e.completedBackup(ctx, executionID)
	if err != nil {
		return nil, fmt.Errorf("open backup %s: %w", executionID, err)
	}
	ids, err := e.backupStorageIDs(ctx, exec)
	if err != nil {
		return nil, fmt.Errorf("open backup %s: %w", executionID, err)
	}
	var errs []error
	for _, js := range e.openJobStorages(ctx, &BackupJob{StorageLocationIDs: ids}) {
		m, err := verifyCopy(ctx, js, exec.BackupPath)
		if err == nil {
			err = sameBackup(m, exec)
		}
		if err == nil {
			return &BackupCopy{Execution: exec, Location: js.Loc, Storage: js.St, Dir: exec.BackupPath, Manifest: m}, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, fmt.Errorf("storage %s: %w", js.Loc.Name, err))
	}
	return nil, fmt.Errorf("open backup %s: %w: no storage holds a verified copy of %s (run POST /api/executions/%s/retry-upload or choose another backup): %w",
		executionID, ErrNotRestorable, exec.BackupPath, executionID, errors.Join(errs...))
}

// completedBackup returns the execution executionID if it is a completed
// backup whose files retention has not deleted; otherwise an error
// matching ErrNotFound or ErrNotRestorable.
func (e *Engine) completedBackup(ctx context.Context, executionID string) (*Execution, error) {
	exec, err := e.store.GetExecution(ctx, executionID)
	if err != nil {
		return nil, err
	}
	if exec.Operation != OperationBackup || exec.Status != ExecutionCompleted || exec.BackupPath == "" {
		return nil, fmt.Errorf("%w: it is a %s execution with status %s; choose a completed backup",
			ErrNotRestorable, exec.Operation, exec.Status)
	}
	if _, deleted := exec.Metadata[metaRetentionDeleted]; deleted {
		return nil, fmt.Errorf("%w: retention deleted its files", ErrNotRestorable)
	}
	return exec, nil
}
