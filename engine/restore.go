package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/manifest"
)

// RestoreOptions are optional settings of one restore; nil means defaults.
type RestoreOptions struct {
	// StorageLocationID restores from that storage location only. Empty
	// means the job's storage locations in order, the first whose copy
	// verifies.
	StorageLocationID string
	// Recreate drops and recreates the target database before restoring
	// (network databases; drivers.RestoreOptions.Recreate).
	Recreate bool
	// SafetyBackup takes a backup of the current state of the backup's own
	// datasource (a zero target only) after the copy verified and before
	// anything touches the target; the restore does not start when it fails.
	SafetyBackup bool
}

// Restore restores the backup made by execution executionID into target,
// synchronously. A zero target (Type "") means the backup's own datasource.
//
// Every part and the whole stream are verified against the manifest before
// anything touches the target: a missing, truncated or corrupt copy is
// skipped for the next storage location, and when no copy verifies the
// restore fails with the target untouched. It records a restore execution
// (operation=restore) with its logs and returns it.
//
// Restore is the library call behind a confirmed request: it runs the same
// code as a queued restore (RequestRestore) without asking for the
// confirmation phrase.
func (e *Engine) Restore(ctx context.Context, executionID string, target drivers.Source, opts *RestoreOptions) (*Execution, error) {
	if opts == nil {
		opts = &RestoreOptions{}
	}
	req := RestoreRequest{ExecutionID: executionID, ConfirmationPhrase: ConfirmRestore, StorageLocationID: opts.StorageLocationID,
		Recreate: opts.Recreate, SafetyBackup: opts.SafetyBackup}
	if target.Type != "" {
		req.Target = &target
	}
	exec, err := e.newRestoreExecution(ctx, req)
	if err != nil {
		return nil, err
	}
	return exec, e.executeRestore(ctx, exec)
}

// restorePlan is a backup checked restorable, with its job, datasource and
// driver.
type restorePlan struct {
	backup *Execution
	job    *BackupJob
	ds     *Datasource
	driver drivers.Driver
}

// restorable loads the backup made by execution executionID and checks that
// it can be restored: a completed backup with files that retention has not
// deleted, whose job, datasource and driver exist. Every restore path
// (synchronous, requested, queued) checks through it.
func (e *Engine) restorable(ctx context.Context, executionID string) (*restorePlan, error) {
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
	p := &restorePlan{backup: backup}
	if p.job, err = e.backupJob(ctx, backup); err != nil {
		return nil, fmt.Errorf("restore %s: job: %w", executionID, err)
	}
	if p.ds, err = e.store.GetDatasource(ctx, backup.DatasourceID); err != nil {
		return nil, fmt.Errorf("restore %s: datasource: %w", executionID, err)
	}
	if p.driver, err = e.cfg.Drivers.Lookup(p.ds.Type); err != nil {
		return nil, fmt.Errorf("restore %s: %w", executionID, err)
	}
	return p, nil
}

// backupJob returns the job that made backup or, when that job was deleted
// (its backups stay restorable), a stand-in without an ID holding the
// storages the backup's copies were written to.
func (e *Engine) backupJob(ctx context.Context, backup *Execution) (*BackupJob, error) {
	if backup.JobID != "" {
		job, err := e.store.GetBackupJob(ctx, backup.JobID)
		if !errors.Is(err, ErrNotFound) {
			return job, err
		}
	}
	ids, err := e.backupStorageIDs(ctx, backup)
	if err != nil {
		return nil, err
	}
	return &BackupJob{DatasourceID: backup.DatasourceID, StorageLocationIDs: ids}, nil
}

// checkRestore validates the options of a restore of p (everything but the
// confirmation phrase); the errors match ErrInvalid and name the field.
func (e *Engine) checkRestore(ctx context.Context, p *restorePlan, req *RestoreRequest) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("restore %s: %w: %s", p.backup.ID, ErrInvalid, fmt.Sprintf(format, args...))
	}
	if req.Target != nil && req.Target.Type != p.ds.Type {
		return bad("target type %q differs from the backup's datasource type %q", req.Target.Type, p.ds.Type)
	}
	if req.Target != nil {
		dirs, err := e.paths.LocalStorageDirs(ctx, "")
		if err != nil {
			return err
		}
		if err := e.paths.CheckSource(*req.Target, dirs...); err != nil {
			return fmt.Errorf("restore %s: target: %w", p.backup.ID, err)
		}
	}
	if id := req.TargetDatasourceID; id != "" {
		field := func(format string, args ...any) error {
			return store.InvalidField("target_datasource_id", "restore %s: %s", p.backup.ID, fmt.Sprintf(format, args...))
		}
		if req.Target != nil {
			return field("target_datasource_id names the target already given as a connection: give one or the other")
		}
		tds, err := e.store.GetDatasource(ctx, id)
		if err != nil {
			return field("target_datasource_id %q: %v", id, err)
		}
		if tds.Type != p.ds.Type {
			return field("target_datasource_id %q is a %s datasource; the backup is of %s %q: choose a %s datasource",
				tds.Name, tds.Type, p.ds.Type, p.ds.Name, p.ds.Type)
		}
		if req.SafetyBackup && tds.ID != p.ds.ID {
			return bad("safety_backup backs up the backup's own datasource, not target_datasource_id: take a backup of %q first, or leave safety_backup false", tds.Name)
		}
	}
	if req.VerificationMode {
		if _, ok := p.driver.(drivers.Verifier); !ok {
			return bad("verification_mode: the %s driver cannot verify into a temporary database; restore into a separate target instead", p.ds.Type)
		}
		if req.SafetyBackup {
			return bad("safety_backup: verification mode restores into a temporary database and never touches the datasource; leave it false")
		}
		if req.Recreate {
			return bad("recreate: verification mode always restores into a new temporary database; leave it false")
		}
	} else if req.KeepVerificationDatabase {
		return bad("keep_verification_database applies to verification mode only: set verification_mode or leave it false")
	}
	if req.SafetyBackup {
		if req.Target != nil {
			return bad("safety_backup backs up the backup's own datasource: leave target empty to restore over it, or safety_backup false")
		}
		if p.job.ID == "" {
			return bad("safety_backup: the backup's job was deleted; take the safety backup by hand or leave it false")
		}
		if p.job.DatasourceID != p.ds.ID {
			return bad("safety_backup: job %q now backs up another datasource; take the safety backup by hand", p.job.Name)
		}
	}
	if req.StorageLocationID != "" {
		if _, err := e.store.GetStorageLocation(ctx, req.StorageLocationID); err != nil {
			return bad("storage_location_id %q: %v", req.StorageLocationID, err)
		}
	}
	return nil
}

// restoreTarget returns where req restores the backup of ds: req.Target,
// the datasource req.TargetDatasourceID, or ds itself; either way its
// paths must still be allowed.
func (e *Engine) restoreTarget(ctx context.Context, ds *Datasource, req *RestoreRequest) (drivers.Source, error) {
	switch {
	case req.Target != nil:
		return *req.Target, e.paths.CheckSource(*req.Target)
	case req.TargetDatasourceID != "":
		tds, err := e.store.GetDatasource(ctx, req.TargetDatasourceID)
		if err != nil {
			return drivers.Source{}, fmt.Errorf("target datasource: %w", err)
		}
		return e.Source(tds)
	}
	return e.Source(ds)
}

// runRestore verifies a copy of the backup (pass 1), takes the safety
// backup when asked, and streams the backup into target (pass 2). It marks
// exec running and records its outcome.
func (e *Engine) runRestore(ctx context.Context, exec *Execution, job *BackupJob, ds *Datasource, target drivers.Source, opts *RestoreOptions) (err error) {
	if opts == nil {
		opts = &RestoreOptions{}
	}
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
	js, m, err := e.pickCopy(ctx, l, exec, job, opts)
	if err != nil {
		return err
	}
	if err := e.canDecrypt(m); err != nil {
		return err
	}
	if opts.SafetyBackup {
		if err := e.safetyBackup(ctx, l, exec, job, ds); err != nil {
			return err
		}
	}
	l.info(ctx, "restoring %s (%d bytes) into %s", exec.BackupPath, m.TotalSizeBytes, target)
	exec.SizeBytes, exec.CompressedSizeBytes, exec.Checksum = m.TotalSizeBytes, m.CompressedSizeBytes, m.Checksum
	err = manifest.Stream(ctx, js.St, exec.BackupPath, m, func(ctx context.Context, r io.Reader) error {
		return driver.Restore(ctx, target, r, &drivers.RestoreOptions{Recreate: opts.Recreate,
			Logf: func(format string, args ...any) { l.info(ctx, format, args...) }})
	}, manifest.WithIdentities(e.cfg.AgeIdentities...))
	e.recordDamage(ctx, exec, job, js, err)
	return err
}

// safetyBackup backs up the current state of ds with a backup execution of
// job of its own, synchronously, and records its ID in exec's metadata.
// The safety backup is pinned (Execution.Pinned, metadata pinned_reason):
// retention keeps it until someone unpins it.
//
// It runs the backup without the retention pass a queued backup ends with:
// retention could delete the very backup being restored (the oldest of a
// full job). The job's next backup or the cleanup worker applies it.
func (e *Engine) safetyBackup(ctx context.Context, l execLog, exec *Execution, job *BackupJob, ds *Datasource) error {
	safety, err := e.newBackupExecution(ctx, job.ID, "")
	if err != nil {
		return fmt.Errorf("safety backup: %w; restore not started, target untouched", err)
	}
	// Pinned before it runs: retention never deletes the way back.
	safety.Pinned = true
	safety.Metadata = map[string]any{metaPinnedReason: "safety backup before restore " + exec.ID}
	if err := e.store.UpdateExecution(ctx, safety, "pinned", "metadata"); err != nil {
		return fmt.Errorf("safety backup %s: pin: %w; restore not started, target untouched", safety.ID, err)
	}
	l.info(ctx, "safety backup of the current state of %q: execution %s", ds.Name, safety.ID)
	if exec.Metadata == nil {
		exec.Metadata = map[string]any{}
	}
	exec.Metadata[metaSafetyBackup] = safety.ID
	if err := e.runBackup(ctx, safety, job, ds); err != nil {
		return fmt.Errorf("safety backup %s: %w; restore not started, target untouched", safety.ID, err)
	}
	l.info(ctx, "safety backup %s completed: %s", safety.ID, safety.BackupPath)
	return nil
}

// verifyDatabaseName is the temporary database a verification execution
// restores into: "dg_verify_" and the first 8 hex digits of its ID.
func verifyDatabaseName(executionID string) string {
	hex := strings.ToLower(strings.ReplaceAll(executionID, "-", ""))
	return "dg_verify_" + hex[:min(8, len(hex))]
}

// runVerify verifies a copy of the backup (pass 1), restores it into a
// temporary database on the server of target through the driver's Verifier
// (pass 2), stores the report in exec.Metadata["verification"] and fails
// when the report is not OK. It marks exec running and records its outcome.
func (e *Engine) runVerify(ctx context.Context, exec *Execution, job *BackupJob, ds *Datasource, target drivers.Source, storageLocationID string, keep bool) (err error) {
	l := execLog{e: e, id: exec.ID, prefix: "[RESTORE]"}
	e.start(ctx, exec)
	defer func() { e.finish(ctx, exec, l, err) }()

	driver, err := e.cfg.Drivers.Lookup(ds.Type)
	if err != nil {
		return err
	}
	verifier, ok := driver.(drivers.Verifier)
	if !ok {
		return fmt.Errorf("%w: verification_mode: the %s driver cannot verify into a temporary database", ErrInvalid, ds.Type)
	}
	js, m, err := e.pickCopy(ctx, l, exec, job, &RestoreOptions{StorageLocationID: storageLocationID})
	if err != nil {
		return err
	}
	if err := e.canDecrypt(m); err != nil {
		return err
	}
	name := verifyDatabaseName(exec.ID)
	l.info(ctx, "verification restore of %s (%d bytes) into temporary database %s on %s", exec.BackupPath, m.TotalSizeBytes, name, target)
	exec.SizeBytes, exec.CompressedSizeBytes, exec.Checksum = m.TotalSizeBytes, m.CompressedSizeBytes, m.Checksum
	var rep *drivers.VerifyReport
	err = manifest.Stream(ctx, js.St, exec.BackupPath, m, func(ctx context.Context, r io.Reader) error {
		var verr error
		rep, verr = verifier.Verify(ctx, target, r, m.Metadata, &drivers.VerifyOptions{Database: name, Keep: keep,
			Logf: func(format string, args ...any) { l.info(ctx, format, args...) }})
		return verr
	}, manifest.WithIdentities(e.cfg.AgeIdentities...))
	e.recordDamage(ctx, exec, job, js, err)
	if rep != nil {
		if exec.Metadata == nil {
			exec.Metadata = map[string]any{}
		}
		exec.Metadata[metaVerification] = rep
		if rep.Kept {
			l.info(ctx, "kept verification database %s: drop it when done", rep.Database)
		}
	}
	if err != nil {
		return err
	}
	if rep == nil {
		return fmt.Errorf("verify %s: the %s driver returned no report", exec.BackupPath, ds.Type)
	}
	for _, t := range rep.Tables {
		l.info(ctx, "table %s: %d rows (expected %d) ok=%v", t.Table, t.Rows, t.ExpectedRows, t.OK)
	}
	if !rep.OK {
		return fmt.Errorf("verify %s: restored copy differs from the backup: %s", exec.BackupPath, strings.Join(rep.Problems, "; "))
	}
	l.info(ctx, "verification passed: %d table(s) match the backup", len(rep.Tables))
	return nil
}

// pickCopy returns the first storage whose copy of the backup verifies
// completely, trying the chosen storage location or else the job's in order.
// exec is the restore or verification execution (its BackupPath is the
// backup's). The outcome for each copy of the job tried is recorded as
// that copy's status (available, missing, corrupt or unreachable).
func (e *Engine) pickCopy(ctx context.Context, l execLog, exec *Execution, job *BackupJob, opts *RestoreOptions) (jobStorage, *manifest.Manifest, error) {
	candidates := e.openJobStorages(ctx, job)
	if opts.StorageLocationID != "" {
		candidates = e.openJobStorages(ctx, &BackupJob{StorageLocationIDs: []string{opts.StorageLocationID}})
	}
	var errs []error
	for _, js := range candidates {
		l.info(ctx, "verifying the copy on storage %s", js.Loc.Name)
		m, err := verifyCopy(ctx, js, exec.BackupPath)
		if ctx.Err() != nil {
			return jobStorage{}, nil, ctx.Err()
		}
		if slices.Contains(job.StorageLocationIDs, js.Loc.ID) {
			e.setStorageStatus(ctx, exec.SourceExecutionID, js.Loc.ID, copyStatus(js, err), err)
		}
		if err == nil {
			l.info(ctx, "storage %s: every checksum matches", js.Loc.Name)
			return js, m, nil
		}
		l.errorf(ctx, "storage %s: %v", js.Loc.Name, err)
		errs = append(errs, fmt.Errorf("storage %s: %w", js.Loc.Name, err))
	}
	return jobStorage{}, nil, fmt.Errorf("no storage holds a verified copy of %s, target untouched: %w", exec.BackupPath, errors.Join(errs...))
}

// recordDamage marks the copy on js corrupt or missing when reading it
// for a restore or verification (pass 2) found it damaged after pass 1
// verified it; any other outcome leaves its status alone.
func (e *Engine) recordDamage(ctx context.Context, exec *Execution, job *BackupJob, js jobStorage, err error) {
	if err == nil || ctx.Err() != nil || !slices.Contains(job.StorageLocationIDs, js.Loc.ID) {
		return
	}
	if st := copyStatus(js, err); st == StorageCorrupt || errors.Is(err, manifest.ErrMissingPart) {
		e.setStorageStatus(ctx, exec.SourceExecutionID, js.Loc.ID, st, err)
	}
}

// canDecrypt refuses, before anything else is done (a safety backup, a
// temporary database), an encrypted backup this server has no key for.
// A key that turns out not to be one of the recipients is found when the
// stream opens, still before the target is touched.
func (e *Engine) canDecrypt(m *manifest.Manifest) error {
	return m.NeedsKey(len(e.cfg.AgeIdentities) > 0)
}

// copyStatus is the status of a copy that verifyCopy (or a read of it)
// answered err for: available when nil, unreachable when the storage
// could not be opened, corrupt when a size, a checksum or the manifest
// itself does not match, missing otherwise (manifest.json or a part gone,
// or another backup's manifest in its folder).
func copyStatus(js jobStorage, err error) StorageStatus {
	switch {
	case err == nil:
		return StorageAvailable
	case js.Err != nil:
		return StorageUnreachable
	case errors.Is(err, manifest.ErrChecksumMismatch), errors.Is(err, manifest.ErrSizeMismatch),
		errors.Is(err, manifest.ErrInvalidManifest):
		return StorageCorrupt
	default:
		return StorageMissing
	}
}

// VerifyBackup checks every copy of a completed backup, on every storage
// location of its job: the manifest, each part's size and sha256, and the
// whole stream's checksum. It records each copy's status (available, or
// missing, corrupt or unreachable with the reason; see StorageStatus) and
// returns an error when any copy failed to verify.
func (e *Engine) VerifyBackup(ctx context.Context, executionID string) error {
	backup, err := e.store.GetExecution(ctx, executionID)
	if err != nil {
		return fmt.Errorf("verify %s: %w", executionID, err)
	}
	if backup.Operation != OperationBackup || backup.Status != ExecutionCompleted {
		return fmt.Errorf("verify %s: %w: status %s", executionID, ErrNotRestorable, backup.Status)
	}
	job, err := e.backupJob(ctx, backup)
	if err != nil {
		return fmt.Errorf("verify %s: job: %w", executionID, err)
	}
	var errs []error
	for _, js := range e.openJobStorages(ctx, job) {
		_, err := verifyCopy(ctx, js, backup.BackupPath)
		if ctx.Err() != nil {
			return fmt.Errorf("verify %s: %w", backup.BackupPath, ctx.Err())
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("storage %s: %w", js.Loc.Name, err))
		}
		e.setStorageStatus(ctx, backup.ID, js.Loc.ID, copyStatus(js, err), err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("verify %s: %w", backup.BackupPath, errors.Join(errs...))
	}
	return nil
}

// verifyCopy loads and fully verifies the copy of the backup in dir on one
// storage. A SHA256SUMS that disagrees with the manifest does not make the
// copy unusable: the parts verified against manifest.json, the authority
// (the CLI's verify reports the mismatch).
func verifyCopy(ctx context.Context, js jobStorage, dir string) (*manifest.Manifest, error) {
	if js.Err != nil {
		return nil, js.Err
	}
	m, err := manifest.Load(ctx, js.St, dir)
	if err != nil {
		return nil, err
	}
	if err := manifest.Verify(ctx, js.St, dir, m); err != nil && !errors.Is(err, manifest.ErrSumsMismatch) {
		return m, err
	}
	return m, nil
}
