package engine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage"
)

// ErrUploadIncomplete reports a RetryUpload that repaired what it could
// but left at least one storage without a verified copy; each storage's
// status (ListExecutionStorages) says which and why. It is an expected
// outcome (a storage still down), not a fault of the engine.
var ErrUploadIncomplete = errors.New("some copies could not be repaired")

// maxManifestCopy bounds how much of a manifest.json RetryUpload copies.
const maxManifestCopy = 64 << 20

// RetryUpload copies a verified copy of the completed backup executionID
// onto every storage location of its job whose copy is missing or damaged
// (spec: POST /api/executions/:id/retry-upload). When the job was deleted,
// the storages are those the execution recorded a status for.
//
// Every copy is verified first (manifest, each part's size and sha256, the
// whole checksum); the first that verifies is the source. When none does,
// RetryUpload fails and writes nothing. On every other storage each part is
// streamed under a temporary name, read back and checked against the
// manifest, then renamed to its final name; manifest.json is written last,
// never over a manifest that already exists and verifies, so a copy
// becomes restorable only once it is whole. Each storage's status becomes
// available, or unreachable with the error. Progress is logged as
// "[BACKUP] retry-upload …" lines of the backup's execution. When some
// storage could not be repaired the error matches ErrUploadIncomplete and
// joins their errors; when no copy verifies it matches ErrNotRestorable.
func (e *Engine) RetryUpload(ctx context.Context, executionID string) (*Execution, error) {
	exec, err := e.store.GetExecution(ctx, executionID)
	if err != nil {
		return nil, fmt.Errorf("retry upload %s: %w", executionID, err)
	}
	if exec.Operation != OperationBackup || exec.Status != ExecutionCompleted || exec.BackupPath == "" {
		return exec, fmt.Errorf("retry upload %s: %w: it is a %s execution with status %s; choose a completed backup",
			executionID, ErrNotRestorable, exec.Operation, exec.Status)
	}
	if _, deleted := exec.Metadata[metaRetentionDeleted]; deleted {
		return exec, fmt.Errorf("retry upload %s: %w: retention deleted its files", executionID, ErrNotRestorable)
	}
	ids, err := e.backupStorageIDs(ctx, exec)
	if err != nil {
		return exec, fmt.Errorf("retry upload %s: %w", executionID, err)
	}
	l := execLog{e: e, id: exec.ID, prefix: "[BACKUP]"}
	dir := exec.BackupPath
	storages := e.openJobStorages(ctx, &BackupJob{ID: exec.JobID, StorageLocationIDs: ids})
	l.info(ctx, "retry-upload: checking the copies of %s on %d storage(s)", dir, len(storages))

	var (
		src      *jobStorage
		m        *manifest.Manifest
		targets  []jobStorage
		problems []error
	)
	for i := range storages {
		js := storages[i]
		cm, err := verifyCopy(ctx, js, dir)
		if err == nil {
			err = sameBackup(cm, exec)
		}
		if ctx.Err() != nil {
			return exec, fmt.Errorf("retry upload %s: %w", executionID, ctx.Err())
		}
		if err != nil {
			l.info(ctx, "retry-upload: storage %s needs a copy: %v", js.Loc.Name, err)
			e.setStorageStatus(ctx, exec.ID, js.Loc.ID, copyStatus(js, err), err) // until repaired
			targets = append(targets, js)
			problems = append(problems, fmt.Errorf("storage %s: %w", js.Loc.Name, err))
			continue
		}
		l.info(ctx, "retry-upload: storage %s: copy verified", js.Loc.Name)
		e.setStorageStatus(ctx, exec.ID, js.Loc.ID, StorageAvailable, nil)
		if src == nil {
			src, m = &storages[i], cm
		}
	}
	if src == nil {
		l.errorf(ctx, "retry-upload: no storage holds a verified copy of %s; nothing copied", dir)
		// Not a server fault: the copies themselves are gone or damaged.
		// Their errors are details, not causes a caller should match.
		return exec, fmt.Errorf("retry upload %s: %w: no storage holds a verified copy of %s, nothing copied: %v",
			executionID, ErrNotRestorable, dir, errors.Join(problems...))
	}
	if len(targets) == 0 {
		l.info(ctx, "retry-upload: every copy verifies; nothing to do")
		return exec, nil
	}
	var errs []error
	for _, js := range targets {
		err := js.Err
		if err == nil {
			l.info(ctx, "retry-upload: copying %s (%d part(s), %d bytes) from storage %s to storage %s",
				dir, len(m.Chunks), m.CompressedSizeBytes, src.Loc.Name, js.Loc.Name)
			err = copyBackup(ctx, src.St, js.St, dir, m)
		}
		if err != nil {
			l.errorf(ctx, "retry-upload: storage %s failed: %v", js.Loc.Name, err)
			e.setStorageStatus(ctx, exec.ID, js.Loc.ID, StorageUnreachable, err)
			errs = append(errs, fmt.Errorf("storage %s: %w", js.Loc.Name, err))
			continue
		}
		l.info(ctx, "retry-upload: storage %s: copy complete and verified", js.Loc.Name)
		e.setStorageStatus(ctx, exec.ID, js.Loc.ID, StorageAvailable, nil)
	}
	if len(errs) > 0 {
		return exec, fmt.Errorf("retry upload %s: %w: %w", executionID, ErrUploadIncomplete, errors.Join(errs...))
	}
	return exec, nil
}

// backupStorageIDs returns the storage locations that hold (or should
// hold) the copies of backup exec: its job's, or, once the job was deleted,
// those exec recorded a copy status for. Restores, verification and
// downloads of a backup whose job was deleted need the same list.
func (e *Engine) backupStorageIDs(ctx context.Context, exec *Execution) ([]string, error) {
	if exec.JobID != "" {
		job, err := e.store.GetBackupJob(ctx, exec.JobID)
		if err == nil {
			return job.StorageLocationIDs, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	ess, err := e.store.ListExecutionStorages(ctx, exec.ID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(ess))
	for _, es := range ess {
		ids = append(ids, es.StorageLocationID)
	}
	return ids, nil
}

// sameBackup checks that a verified copy is the backup exec made, not
// another one left under the same folder name.
func sameBackup(m *manifest.Manifest, exec *Execution) error {
	if m.ExecutionID != "" && m.ExecutionID != exec.ID {
		return fmt.Errorf("manifest names execution %s, not %s", m.ExecutionID, exec.ID)
	}
	if exec.Checksum != "" && m.Checksum != exec.Checksum {
		return fmt.Errorf("%w: manifest checksum %s, the execution recorded %s", manifest.ErrChecksumMismatch, m.Checksum, exec.Checksum)
	}
	return nil
}

// copyBackup copies the verified backup in dir described by m from src to
// dst: parts under temporary names, each read back and checked, then
// renamed, then the by-hand recovery files, then manifest.json last.
func copyBackup(ctx context.Context, src, dst storage.Storage, dir string, m *manifest.Manifest) (err error) {
	mkey := dir + "/" + manifest.FileName
	// A manifest here did not verify (else dst would not be a target):
	// remove it first, so the folder is plainly incomplete while its parts
	// are replaced.
	if _, serr := dst.Stat(ctx, mkey); serr == nil {
		if err := dst.Delete(ctx, mkey); err != nil {
			return fmt.Errorf("remove damaged manifest: %w", err)
		}
	}
	tag := make([]byte, 4)
	rand.Read(tag)
	var temps []string
	defer func() {
		if err != nil { // leave no temporary part behind
			cctx := context.WithoutCancel(ctx)
			for _, t := range temps {
				_ = dst.Delete(cctx, t)
			}
		}
	}()
	for _, c := range m.Chunks {
		tmp := fmt.Sprintf("%s/.retry-%s-part-%03d", dir, hex.EncodeToString(tag), c.Number)
		temps = append(temps, tmp)
		if err := copyPart(ctx, src, dst, dir+"/"+c.File, tmp, c); err != nil {
			return err
		}
	}
	for i, c := range m.Chunks {
		if err := storage.Rename(ctx, dst, temps[i], dir+"/"+c.File); err != nil {
			return fmt.Errorf("rename part %s: %w", c.File, err)
		}
	}
	temps = nil
	if err := manifest.WriteRecoveryFiles(ctx, dst, dir, m); err != nil {
		return err
	}
	rc, err := src.Open(ctx, mkey, 0, maxManifestCopy)
	if err != nil {
		return fmt.Errorf("read source manifest: %w", err)
	}
	err = dst.Put(ctx, mkey, rc, &storage.PutOptions{IfNotExist: true})
	rc.Close()
	if err != nil && !errors.Is(err, storage.ErrExist) {
		return fmt.Errorf("put manifest: %w", err)
	}
	// The manifest now in place (ours, or one a concurrent retry wrote)
	// must describe this backup, and every part it names must be there
	// with its size: nothing deleted them while we renamed.
	got, err := manifest.Load(ctx, dst, dir)
	if err != nil {
		return err
	}
	if got.Checksum != m.Checksum {
		return fmt.Errorf("%w: manifest in place says %s, the source %s", manifest.ErrChecksumMismatch, got.Checksum, m.Checksum)
	}
	for _, c := range got.Chunks {
		obj, err := dst.Stat(ctx, dir+"/"+c.File)
		if err != nil {
			return fmt.Errorf("check part %s: %w", c.File, err)
		}
		if obj.Size != c.SizeBytes {
			return fmt.Errorf("check part %s: %w: %d bytes, manifest says %d", c.File, manifest.ErrSizeMismatch, obj.Size, c.SizeBytes)
		}
	}
	return nil
}

// copyPart streams the part at key on src to tmp on dst and checks both
// what was sent and what landed against the manifest's size and sha256.
func copyPart(ctx context.Context, src, dst storage.Storage, key, tmp string, c manifest.Chunk) error {
	rc, err := src.Open(ctx, key, 0, -1)
	if err != nil {
		return fmt.Errorf("open part %s: %w", c.File, err)
	}
	h := sha256.New()
	cr := &countReader{r: io.TeeReader(io.LimitReader(rc, c.SizeBytes+1), h)}
	err = dst.Put(ctx, tmp, cr, nil)
	rc.Close()
	if err != nil {
		return fmt.Errorf("put part %s: %w", c.File, err)
	}
	if err := checkPart(c, cr.n, h.Sum(nil)); err != nil {
		return fmt.Errorf("copy part %s: source changed while read: %w", c.File, err)
	}
	back, err := dst.Open(ctx, tmp, 0, -1)
	if err != nil {
		return fmt.Errorf("read back part %s: %w", c.File, err)
	}
	defer back.Close()
	h.Reset()
	n, err := io.Copy(h, back)
	if err != nil {
		return fmt.Errorf("read back part %s: %w", c.File, err)
	}
	if err := checkPart(c, n, h.Sum(nil)); err != nil {
		return fmt.Errorf("verify copied part %s: %w", c.File, err)
	}
	return nil
}

func checkPart(c manifest.Chunk, n int64, sum []byte) error {
	if n != c.SizeBytes {
		return fmt.Errorf("%w: %d bytes, manifest says %d", manifest.ErrSizeMismatch, n, c.SizeBytes)
	}
	if got := "sha256:" + hex.EncodeToString(sum); got != c.Checksum {
		return fmt.Errorf("%w: %s, manifest says %s", manifest.ErrChecksumMismatch, got, c.Checksum)
	}
	return nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
