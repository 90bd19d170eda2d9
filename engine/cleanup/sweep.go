package cleanup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/retention"
	"github.com/dataguardian/dataguardian/storage"
)

// sweep is what one sweepRunFolders pass did, as "storage: folder".
type sweep struct {
	removed []string // abandoned folders removed
	missing []string // completed backups without manifest.json, marked missing
}

// sweepRunFolders looks, on every enabled storage location, at the run
// folders that have no manifest.json. The folder of a completed backup
// (its manifest went missing) is kept and that copy marked missing. A
// folder DataGuardian made and abandoned (see Cleaner.Pass) is removed and
// the removal appended to LogKey there. Anything else is left alone, with
// a debug log line when it is old enough to have been removed had it been
// ours.
func (c *Cleaner) sweepRunFolders(ctx context.Context, age time.Duration) (sweep, error) {
	var out sweep
	s := c.cfg.Store
	locs, err := s.ListStorageLocations(ctx)
	if err != nil {
		return out, fmt.Errorf("cleanup: %w", err)
	}
	active := map[string]*store.Execution{}
	for _, st := range []store.ExecutionStatus{store.ExecutionRunning, store.ExecutionQueued} {
		xs, err := s.ListExecutions(ctx, store.ExecutionFilter{Operation: store.OperationBackup, Status: st, Limit: -1})
		if err != nil {
			return out, fmt.Errorf("cleanup: %w", err)
		}
		for i := range xs {
			active[xs[i].ID] = &xs[i]
		}
	}
	known := map[string]bool{} // job folder → the store knows the job
	now := c.now()
	var errs []error
	for i := range locs {
		loc := &locs[i]
		if !loc.Enabled {
			continue
		}
		st, err := c.cfg.OpenStorage(ctx, loc)
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
		completed, err := s.CompletedBackupsAt(ctx, dirs)
		if err != nil {
			errs = append(errs, fmt.Errorf("cleanup: storage %s: %w", loc.Name, err))
			continue
		}
	folder:
		for _, f := range bare {
			if x := completed[f.dir]; x != nil {
				if c.markManifestMissing(ctx, st, loc, x) {
					out.missing = append(out.missing, loc.Name+": "+f.dir)
				}
				continue
			}
			if now.Sub(f.newest) < age {
				continue
			}
			if !f.reserved {
				c.log.Debug("cleanup: left alone, not made by DataGuardian (no "+manifest.ReservationName+")", "storage", loc.Name, "path", f.dir)
				continue
			}
			execID := readReservation(ctx, st, f.dir)
			ok, seen := known[f.job]
			if !seen || !ok {
				if ok, err = s.KnowsJob(ctx, f.job, execID); err != nil {
					errs = append(errs, fmt.Errorf("cleanup: storage %s: %w", loc.Name, err))
					continue
				}
				known[f.job] = ok
			}
			if !ok {
				c.log.Debug("cleanup: left alone, of a job the metadata store does not know", "storage", loc.Name, "path", f.dir)
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
			if err := storage.Append(ctx, st, LogKey, []byte(line)); err != nil {
				c.log.Warn("cleanup: append cleanup log", "storage", loc.Name, "err", err)
			}
			c.log.Info("cleanup: removed abandoned run folder", "storage", loc.Name, "path", f.dir)
			out.removed = append(out.removed, loc.Name+": "+f.dir)
		}
	}
	return out, errors.Join(errs...)
}

// markManifestMissing records that the copy of the completed backup x on
// storage location loc has lost its manifest.json, unless the folder is
// not one of x's copies, retention deleted x, or the manifest is back (a
// retry-upload just finished). It reports whether it recorded it.
func (c *Cleaner) markManifestMissing(ctx context.Context, st storage.Storage, loc *store.StorageLocation, x *store.Execution) bool {
	if _, gone := x.Metadata[store.MetaRetentionDeleted]; gone {
		return false
	}
	ids, err := c.cfg.BackupStorageIDs(ctx, x)
	if err != nil || !slices.Contains(ids, loc.ID) {
		c.log.Debug("cleanup: left alone, a folder named like a backup not kept on this storage", "storage", loc.Name, "path", x.BackupPath)
		return false
	}
	if _, err := st.Stat(ctx, x.BackupPath+"/"+manifest.FileName); err == nil {
		return false
	}
	c.log.Warn("cleanup: completed backup has no manifest.json: marked missing, its files kept", "storage", loc.Name,
		"path", x.BackupPath, "execution_id", x.ID)
	c.cfg.SetStorageStatus(ctx, x.ID, loc.ID, store.StorageMissing, fmt.Errorf("%w: %s has no %s (found by cleanup); its files are kept "+
		"for recovery by hand, and retry-upload copies a verified copy from another storage", manifest.ErrNoManifest,
		x.BackupPath, manifest.FileName))
	return true
}
