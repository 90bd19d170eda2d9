package engine

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage"
)

// RestoreOptions are optional settings of one restore; nil means defaults.
type RestoreOptions struct {
	// StorageLocationID restores from that storage location only. Empty
	// means the job's storage locations in order, the first whose copy
	// verifies.
	StorageLocationID string
}

// Restore restores the backup made by execution executionID into target,
// synchronously. A zero target (Type "") means the backup's own datasource.
//
// Every part and the whole stream are verified against the manifest before
// anything touches the target: a missing, truncated or corrupt copy is
// skipped for the next storage location, and when no copy verifies the
// restore fails with the target untouched. It records a restore execution
// (operation=restore) with its logs and returns it.
func (e *Engine) Restore(ctx context.Context, executionID string, target drivers.Source, opts *RestoreOptions) (*Execution, error) {
	if opts == nil {
		opts = &RestoreOptions{}
	}
	backup, err := e.store.GetExecution(ctx, executionID)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", executionID, err)
	}
	if backup.Operation != OperationBackup || backup.Status != ExecutionCompleted || backup.BackupPath == "" {
		return nil, fmt.Errorf("restore %s: %w: it is a %s execution with status %s; choose a completed backup",
			executionID, ErrNotRestorable, backup.Operation, backup.Status)
	}
	if _, deleted := backup.Metadata[metaRetentionDeleted]; deleted {
		return nil, fmt.Errorf("restore %s: %w: retention deleted its files; choose a newer backup", executionID, ErrNotRestorable)
	}
	job, err := e.store.GetBackupJob(ctx, backup.JobID)
	if err != nil {
		return nil, fmt.Errorf("restore %s: job: %w", executionID, err)
	}
	ds, err := e.store.GetDatasource(ctx, backup.DatasourceID)
	if err != nil {
		return nil, fmt.Errorf("restore %s: datasource: %w", executionID, err)
	}
	exec := &Execution{JobID: job.ID, DatasourceID: ds.ID, Operation: OperationRestore, Status: ExecutionQueued,
		SourceExecutionID: backup.ID, BackupPath: backup.BackupPath, Compression: backup.Compression, Attempt: 1}
	if err := e.store.CreateExecution(ctx, exec); err != nil {
		return nil, fmt.Errorf("restore %s: %w", executionID, err)
	}
	err = e.runRestore(ctx, exec, job, ds, target, opts)
	return exec, err
}

func (e *Engine) runRestore(ctx context.Context, exec *Execution, job *BackupJob, ds *Datasource, target drivers.Source, opts *RestoreOptions) (err error) {
	l := execLog{e: e, id: exec.ID, prefix: "[RESTORE]"}
	e.start(ctx, exec)
	defer func() { e.finish(ctx, exec, l, err) }()

	driver, err := e.cfg.Drivers.Lookup(ds.Type)
	if err != nil {
		return err
	}
	if target.Type == "" {
		if target, err = e.Source(ds); err != nil {
			return err
		}
	}
	if target.Type != ds.Type {
		return fmt.Errorf("%w: target type %q differs from the backup's datasource type %q", ErrInvalid, target.Type, ds.Type)
	}
	st, m, err := e.pickCopy(ctx, l, exec, job, opts)
	if err != nil {
		return err
	}
	l.info(ctx, "restoring %s (%d bytes) into %s", exec.BackupPath, m.TotalSizeBytes, target)
	exec.SizeBytes, exec.CompressedSizeBytes, exec.Checksum = m.TotalSizeBytes, m.CompressedSizeBytes, m.Checksum
	return manifest.Stream(ctx, st, exec.BackupPath, m, func(ctx context.Context, r io.Reader) error {
		return driver.Restore(ctx, target, r, &drivers.RestoreOptions{Logf: func(format string, args ...any) { l.info(ctx, format, args...) }})
	})
}

// pickCopy returns the first storage whose copy of the backup verifies
// completely, trying the chosen storage location or else the job's in order.
func (e *Engine) pickCopy(ctx context.Context, l execLog, exec *Execution, job *BackupJob, opts *RestoreOptions) (storage.Storage, *manifest.Manifest, error) {
	candidates := e.openJobStorages(ctx, job)
	if opts.StorageLocationID != "" {
		candidates = e.openJobStorages(ctx, &BackupJob{StorageLocationIDs: []string{opts.StorageLocationID}})
	}
	var errs []error
	for _, js := range candidates {
		l.info(ctx, "verifying the copy on storage %s", js.loc.Name)
		m, err := verifyCopy(ctx, js, exec.BackupPath)
		if err == nil {
			l.info(ctx, "storage %s: every checksum matches", js.loc.Name)
			return js.st, m, nil
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		l.errorf(ctx, "storage %s: %v", js.loc.Name, err)
		errs = append(errs, fmt.Errorf("storage %s: %w", js.loc.Name, err))
	}
	return nil, nil, fmt.Errorf("no storage holds a verified copy of %s, target untouched: %w", exec.BackupPath, errors.Join(errs...))
}

// VerifyBackup checks every copy of a completed backup, on every storage
// location of its job: the manifest, each part's size and sha256, and the
// whole stream's checksum. It records each copy's status (available, or
// missing/unreachable with the reason) and returns an error when any copy
// failed to verify.
func (e *Engine) VerifyBackup(ctx context.Context, executionID string) error {
	backup, err := e.store.GetExecution(ctx, executionID)
	if err != nil {
		return fmt.Errorf("verify %s: %w", executionID, err)
	}
	if backup.Operation != OperationBackup || backup.Status != ExecutionCompleted {
		return fmt.Errorf("verify %s: %w: status %s", executionID, ErrNotRestorable, backup.Status)
	}
	job, err := e.store.GetBackupJob(ctx, backup.JobID)
	if err != nil {
		return fmt.Errorf("verify %s: job: %w", executionID, err)
	}
	var errs []error
	for _, js := range e.openJobStorages(ctx, job) {
		_, err := verifyCopy(ctx, js, backup.BackupPath)
		status := StorageAvailable
		switch {
		case js.err != nil:
			status = StorageUnreachable
		case err != nil:
			status = StorageMissing
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("storage %s: %w", js.loc.Name, err))
		}
		e.setStorageStatus(ctx, backup.ID, js.loc.ID, status, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("verify %s: %w", backup.BackupPath, errors.Join(errs...))
	}
	return nil
}

// verifyCopy loads and fully verifies the copy of the backup in dir on one
// storage.
func verifyCopy(ctx context.Context, js jobStorage, dir string) (*manifest.Manifest, error) {
	if js.err != nil {
		return nil, js.err
	}
	m, err := manifest.Load(ctx, js.st, dir)
	if err != nil {
		return nil, err
	}
	return m, manifest.Verify(ctx, js.st, dir, m)
}
