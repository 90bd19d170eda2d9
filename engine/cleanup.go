package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/retention"
	"github.com/dataguardian/dataguardian/storage"
)

// CleanupLogKey is where retention deletions are logged in every storage.
const CleanupLogKey = "_system/cleanup.log"

// metaRetentionDeleted marks, in Execution.Metadata, a backup whose files
// retention deleted (the value is the time).
const metaRetentionDeleted = store.MetaRetentionDeleted

var retentionStatus = map[ExecutionStatus]retention.Status{
	ExecutionCompleted: retention.StatusCompleted,
	ExecutionRunning:   retention.StatusRunning,
	ExecutionQueued:    retention.StatusQueued,
	ExecutionFailed:    retention.StatusFailed,
	ExecutionCancelled: retention.StatusFailed,
}

// ApplyRetention deletes the backups of job that its retention policy no
// longer keeps (nothing when auto_delete is off). It never deletes the
// newest completed backup, a backup still running, one a restore is
// reading or a pinned one (Execution.Pinned, such as a restore's safety
// backup); pinned backups take no slot of the policy's rules. Each
// deletion removes the manifest first (so a half-deleted backup is never
// offered for restore), then the parts, on every storage location of the
// job, and is appended to _system/cleanup.log there. It returns what it
// deleted.
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
	reading, err := e.backupsBeingRead(ctx, job.ID)
	if err != nil {
		return nil, fmt.Errorf("apply retention of job %s: %w", job.Name, err)
	}
	var backups []retention.Backup
	for i := range execs {
		x := &execs[i]
		if _, gone := x.Metadata[metaRetentionDeleted]; gone {
			continue
		}
		b := retention.Backup{ID: x.ID, JobID: job.ID, CreatedAt: x.CreatedAt, Status: retentionStatus[x.Status],
			Path: x.BackupPath, Pinned: x.Pinned}
		if reading[x.ID] {
			b.Status = retention.StatusRestoring
		}
		backups = append(backups, b)
	}
	_, drop := retention.Apply(backups, policy, e.now())
	if len(drop) == 0 {
		return nil, nil
	}
	storages := e.openJobStorages(ctx, job)
	deleted := drop[:0:0]
	for _, d := range drop {
		// Read it again: it may have been pinned since it was listed.
		x, err := e.store.GetExecution(ctx, d.Backup.ID)
		if err != nil {
			return deleted, fmt.Errorf("apply retention of job %s: %w", job.Name, err)
		}
		if _, gone := x.Metadata[metaRetentionDeleted]; gone || x.Pinned {
			continue
		}
		if err := e.deleteBackup(ctx, storages, x, d); err != nil {
			return deleted, err
		}
		deleted = append(deleted, d)
	}
	return deleted, nil
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
// stops being restorable before any part goes, then everything else,
// unfinished writes included (storage.Aborter). The folder must have no
// live writer.
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
	if a, ok := s.(storage.Aborter); ok { // what a killed write left, which List does not show
		return a.AbortIncomplete(ctx, dir+"/")
	}
	return nil
}

// CleanupOptions configure the cleanup worker. Zero values are the
// documented defaults.
type CleanupOptions struct {
	// Interval is how often the cleanup runs; 0 means 1 h.
	Interval time.Duration
	// TaskRetention is how long done and failed queue tasks are kept; 0
	// means 7 days.
	TaskRetention time.Duration
	// IncompleteAfter is how long a run folder without manifest.json may
	// go unwritten before it counts as abandoned (a killed backup's
	// leftovers) and is removed; 0 means 24 h. Only folders DataGuardian
	// made are ever removed (see RunCleanup).
	IncompleteAfter time.Duration
}

// WithDefaults returns o with every zero field set to its default.
func (o CleanupOptions) WithDefaults() CleanupOptions {
	if o.Interval <= 0 {
		o.Interval = time.Hour
	}
	if o.TaskRetention <= 0 {
		o.TaskRetention = 7 * 24 * time.Hour
	}
	if o.IncompleteAfter <= 0 {
		o.IncompleteAfter = 24 * time.Hour
	}
	return o
}

// CleanupReport says what one cleanup run did.
type CleanupReport struct {
	// Jobs is how many jobs had their retention policy applied.
	Jobs int
	// Deleted lists the backups retention deleted.
	Deleted []retention.Decision
	// TasksPruned is how many finished queue tasks were deleted.
	TasksPruned int
	// Incomplete lists the abandoned run folders removed, as
	// "storage name: run folder".
	Incomplete []string
	// Missing lists the completed backups found without their
	// manifest.json, as "storage name: run folder": that copy is marked
	// missing and its files are kept for recovery by hand.
	Missing []string
}

// RunCleanup runs one cleanup pass (what the cleanup worker does every
// Interval): the retention policy of every enabled job with auto_delete,
// the pruning of finished queue tasks (when the queue is a *StoreQueue),
// and a sweep of the run folders without manifest.json on every enabled
// storage location. The sweep removes only what DataGuardian made and
// abandoned: a folder holding our reservation marker (.dataguardian-run),
// of a job the metadata store knows, last written more than
// IncompleteAfter ago, of no queued or running backup. It never removes
// another program's folders, nor the folder of a completed backup whose
// manifest.json disappeared: that copy is marked missing instead and its
// parts are kept for recovery by hand. A failing job or storage does not
// stop the others; the error joins their failures.
func (e *Engine) RunCleanup(ctx context.Context) (CleanupReport, error) {
	return e.runCleanup(ctx, e.cfg.Cleanup.WithDefaults())
}

func (e *Engine) runCleanup(ctx context.Context, opts CleanupOptions) (CleanupReport, error) {
	var rep CleanupReport
	var errs []error
	jobs, err := e.store.ListBackupJobs(ctx)
	if err != nil {
		return rep, fmt.Errorf("cleanup: %w", err)
	}
	for _, job := range jobs {
		if !job.Enabled || !job.Retention.AutoDelete {
			continue
		}
		dropped, err := e.ApplyRetention(ctx, job.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Jobs++
		rep.Deleted = append(rep.Deleted, dropped...)
	}
	if q, ok := e.cfg.Queue.(*StoreQueue); ok {
		n, err := q.Prune(ctx, e.now().Add(-opts.TaskRetention))
		if err != nil {
			errs = append(errs, fmt.Errorf("cleanup: %w", err))
		}
		rep.TasksPruned = n
	}
	sw, err := e.sweepRunFolders(ctx, opts.IncompleteAfter)
	rep.Incomplete, rep.Missing = sw.removed, sw.missing
	if err != nil {
		errs = append(errs, err)
	}
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	return rep, errors.Join(errs...)
}

// runDir is what sweepRunFolders learns about one run folder.
type runDir struct {
	dir         string
	job         string
	newest      time.Time // the later of the folder time and its newest object
	hasManifest bool
	reserved    bool // holds manifest.Writer's reservation (names the execution)
}

// reservationKey is the file manifest.Writer keeps in a run folder while
// its backup is written; it holds the execution ID.
const reservationKey = ".dataguardian-run"

// sweep is what one sweepRunFolders pass did, as "storage: folder".
type sweep struct {
	removed []string // abandoned folders removed
	missing []string // completed backups without manifest.json, marked missing
}

// sweepRunFolders looks, on every enabled storage location, at the run
// folders that have no manifest.json. The folder of a completed backup
// (its manifest went missing) is kept and that copy marked missing. A
// folder DataGuardian made and abandoned (see RunCleanup) is removed and
// the removal appended to _system/cleanup.log there. Anything else is left
// alone, with a debug log line when it is old enough to have been removed
// had it been ours.
func (e *Engine) sweepRunFolders(ctx context.Context, age time.Duration) (sweep, error) {
	var out sweep
	locs, err := e.store.ListStorageLocations(ctx)
	if err != nil {
		return out, fmt.Errorf("cleanup: %w", err)
	}
	active := map[string]*Execution{}
	for _, st := range []ExecutionStatus{ExecutionRunning, ExecutionQueued} {
		xs, err := e.store.ListExecutions(ctx, ExecutionFilter{Operation: OperationBackup, Status: st, Limit: -1})
		if err != nil {
			return out, fmt.Errorf("cleanup: %w", err)
		}
		for i := range xs {
			active[xs[i].ID] = &xs[i]
		}
	}
	known := map[string]bool{} // job folder → the store knows the job
	now := e.now()
	var errs []error
	for i := range locs {
		loc := &locs[i]
		if !loc.Enabled {
			continue
		}
		st, err := e.openStorage(ctx, loc)
		if err != nil {
			errs = append(errs, fmt.Errorf("cleanup: storage %s: %w", loc.Name, err))
			continue
		}
		folders, err := listRunFolders(ctx, st)
		if err != nil {
			errs = append(errs, fmt.Errorf("cleanup: storage %s: %w", loc.Name, err))
			continue
		}
		var bare []runDir // no manifest.json
		var dirs []string
		for _, f := range folders {
			if !f.hasManifest {
				bare = append(bare, f)
				dirs = append(dirs, f.dir)
			}
		}
		completed, err := e.store.CompletedBackupsAt(ctx, dirs)
		if err != nil {
			errs = append(errs, fmt.Errorf("cleanup: storage %s: %w", loc.Name, err))
			continue
		}
	folder:
		for _, f := range bare {
			if x := completed[f.dir]; x != nil {
				if e.markManifestMissing(ctx, st, loc, x) {
					out.missing = append(out.missing, loc.Name+": "+f.dir)
				}
				continue
			}
			if now.Sub(f.newest) < age {
				continue
			}
			if !f.reserved {
				e.log.Debug("cleanup: left alone, not made by DataGuardian (no "+reservationKey+")", "storage", loc.Name, "path", f.dir)
				continue
			}
			execID := readReservation(ctx, st, f.dir)
			ok, seen := known[f.job]
			if !seen || !ok {
				if ok, err = e.store.KnowsJob(ctx, f.job, execID); err != nil {
					errs = append(errs, fmt.Errorf("cleanup: storage %s: %w", loc.Name, err))
					continue
				}
				known[f.job] = ok
			}
			if !ok {
				e.log.Debug("cleanup: left alone, of a job the metadata store does not know", "storage", loc.Name, "path", f.dir)
				continue
			}
			if _, ok := active[execID]; ok {
				continue
			}
			for _, x := range active {
				if x.BackupPath == f.dir {
					continue folder
				}
			}
			if err := removeRunFolder(ctx, st, f.dir); err != nil {
				errs = append(errs, fmt.Errorf("cleanup: remove %s on storage %s: %w", f.dir, loc.Name, err))
				continue
			}
			reason := fmt.Sprintf("incomplete: no %s, last written %s, no running execution", manifest.FileName, f.newest.UTC().Format(time.RFC3339))
			line := retention.FormatCleanupLine(retention.LogEntry{At: now, JobID: f.job, Path: f.dir, ExecutionID: execID, Reason: reason}) + "\n"
			if err := storage.Append(ctx, st, CleanupLogKey, []byte(line)); err != nil {
				e.log.Warn("cleanup: append cleanup log", "storage", loc.Name, "err", err)
			}
			e.log.Info("cleanup: removed abandoned run folder", "storage", loc.Name, "path", f.dir)
			out.removed = append(out.removed, loc.Name+": "+f.dir)
		}
	}
	return out, errors.Join(errs...)
}

// markManifestMissing records that the copy of the completed backup x on
// storage location loc has lost its manifest.json, unless the folder is
// not one of x's copies, retention deleted x, or the manifest is back (a
// retry-upload just finished). It reports whether it recorded it.
func (e *Engine) markManifestMissing(ctx context.Context, st storage.Storage, loc *StorageLocation, x *Execution) bool {
	if _, gone := x.Metadata[metaRetentionDeleted]; gone {
		return false
	}
	ids, err := e.backupStorageIDs(ctx, x)
	if err != nil || !slices.Contains(ids, loc.ID) {
		e.log.Debug("cleanup: left alone, a folder named like a backup not kept on this storage", "storage", loc.Name, "path", x.BackupPath)
		return false
	}
	if _, err := st.Stat(ctx, x.BackupPath+"/"+manifest.FileName); err == nil {
		return false
	}
	e.log.Warn("cleanup: completed backup has no manifest.json: marked missing, its files kept", "storage", loc.Name,
		"path", x.BackupPath, "execution_id", x.ID)
	e.setStorageStatus(ctx, x.ID, loc.ID, StorageMissing, fmt.Errorf("%w: %s has no %s (found by cleanup); its files are kept "+
		"for recovery by hand, and retry-upload copies a verified copy from another storage", manifest.ErrNoManifest,
		x.BackupPath, manifest.FileName))
	return true
}

// listRunFolders lists the storage once and groups its objects by run
// folder "{job_id}/{YYYY-MM-DD_HHmmss}" (job folders starting with "_",
// such as _system, are not run folders).
func listRunFolders(ctx context.Context, st storage.Storage) ([]runDir, error) {
	objs, err := st.List(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []runDir
	for _, o := range objs {
		job, rest, ok1 := strings.Cut(o.Key, "/")
		run, file, ok2 := strings.Cut(rest, "/")
		if !ok1 || !ok2 || job == "" || strings.HasPrefix(job, "_") || file == "" {
			continue
		}
		t, err := time.ParseInLocation(manifest.RunFolderLayout, run, time.UTC)
		if err != nil || manifest.RunFolder(t) != run {
			continue
		}
		dir := job + "/" + run
		if n := len(out); n == 0 || out[n-1].dir != dir {
			out = append(out, runDir{dir: dir, job: job, newest: t})
		}
		f := &out[len(out)-1]
		if o.ModTime.After(f.newest) {
			f.newest = o.ModTime
		}
		switch file {
		case manifest.FileName:
			f.hasManifest = true
		case reservationKey:
			f.reserved = true
		}
	}
	return out, nil
}

// readReservation returns the execution ID in a run folder's reservation,
// or "" when it cannot be read.
func readReservation(ctx context.Context, st storage.Storage, dir string) string {
	rc, err := st.Open(ctx, dir+"/"+reservationKey, 0, 256)
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return strings.TrimSpace(string(b))
}

// CleanupWorker runs RunCleanup every Interval.
type CleanupWorker struct {
	e    *Engine
	opts CleanupOptions

	mu   sync.Mutex
	last CleanupReport
	runs int
}

// NewCleanupWorker returns a CleanupWorker for e; zero opts fields take the
// CleanupOptions defaults.
func NewCleanupWorker(e *Engine, opts CleanupOptions) *CleanupWorker {
	return &CleanupWorker{e: e, opts: opts.WithDefaults()}
}

// Run cleans up at once and then every Interval until ctx is done; it
// returns nil then. A failing pass is logged and retried at the next tick.
func (w *CleanupWorker) Run(ctx context.Context) error {
	log := w.e.log.WithGroup("cleanup")
	tick := time.NewTicker(w.opts.Interval)
	defer tick.Stop()
	for {
		rep, err := w.e.runCleanup(ctx, w.opts)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			log.Error("cleanup pass", "err", err)
		}
		w.mu.Lock()
		w.last, w.runs = rep, w.runs+1
		w.mu.Unlock()
		log.Debug("cleanup pass", "jobs", rep.Jobs, "deleted", len(rep.Deleted), "tasks_pruned", rep.TasksPruned, "incomplete", len(rep.Incomplete),
			"missing", len(rep.Missing))
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Last returns the report of the last pass and how many passes ran.
func (w *CleanupWorker) Last() (CleanupReport, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.runs
}

// backupsBeingRead returns the backups of job that a queued or running
// restore or verification will read: retention keeps them.
func (e *Engine) backupsBeingRead(ctx context.Context, jobID string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, op := range []Operation{OperationRestore, OperationVerify} {
		for _, st := range []ExecutionStatus{ExecutionQueued, ExecutionRunning} {
			xs, err := e.store.ListExecutions(ctx, ExecutionFilter{JobID: jobID, Operation: op, Status: st, Limit: -1})
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
