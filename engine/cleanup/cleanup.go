// Package cleanup enforces retention and sweeps the run folders that
// backups abandoned: the background cleanup of DataGuardian.
//
// A Cleaner does the work; a Worker runs a Cleaner's Pass every
// Options.Interval. One file per concern: retention.go deletes the
// backups a job's retention policy no longer keeps, sweep.go walks every
// storage location for run folders without manifest.json, runfolder.go
// holds what both know about a run folder (and removes the folders of one
// stopped attempt), worker.go is the periodic worker.
//
// The package depends on the metadata store, the queue, and the storage,
// manifest and retention packages, never on package engine: what it needs
// of the engine comes as callbacks in Config. Opening a storage location
// (OpenStorage) stays the engine's, since it enforces the engine's
// allowed paths; so does the list of locations holding a backup
// (BackupStorageIDs), which restores and retry-upload share, and the
// recording of a copy's status (SetStorageStatus). The opened
// destinations of a job are an engine/internal/jobstorage.Storage, the
// type the engine's backup and restore paths use too. The reservation
// marker of a run folder is manifest.ReservationName, the one
// manifest.Writer writes.
package cleanup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dataguardian/dataguardian/engine/queue"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/retention"
	"github.com/dataguardian/dataguardian/storage"
)

// LogKey is where retention deletions are logged in every storage.
const LogKey = "_system/cleanup.log"

// Config is what a Cleaner needs of the engine. Every field is required
// but Queue.
type Config struct {
	// Store is the metadata store.
	Store *store.Store
	// Queue is the engine's queue; its finished tasks are pruned when it
	// is a *queue.StoreQueue.
	Queue queue.Queue
	// OpenStorage opens the storage of a storage location.
	OpenStorage func(ctx context.Context, loc *store.StorageLocation) (storage.Storage, error)
	// BackupStorageIDs returns the storage locations that hold (or should
	// hold) the copies of a backup execution.
	BackupStorageIDs func(ctx context.Context, x *store.Execution) ([]string, error)
	// SetStorageStatus records the status of the copy of backup execID on
	// storage location locID, and why (cause may be nil); it logs its own
	// failures.
	SetStorageStatus func(ctx context.Context, execID, locID string, status store.StorageStatus, cause error)
	// Now returns the current time (UTC).
	Now func() time.Time
	// Log receives the cleanup's logs.
	Log *slog.Logger
}

// Cleaner applies retention policies and sweeps abandoned run folders. It
// is safe for concurrent use.
type Cleaner struct {
	cfg Config
	log *slog.Logger
}

// New returns a Cleaner working with cfg.
func New(cfg Config) *Cleaner {
	return &Cleaner{cfg: cfg, log: cfg.Log}
}

func (c *Cleaner) now() time.Time { return c.cfg.Now() }

// Options configure the cleanup worker. Zero values are the documented
// defaults.
type Options struct {
	// Interval is how often the cleanup runs; 0 means 1 h.
	Interval time.Duration
	// TaskRetention is how long done and failed queue tasks are kept; 0
	// means 7 days.
	TaskRetention time.Duration
	// IncompleteAfter is how long a run folder without manifest.json may
	// go unwritten before it counts as abandoned (a killed backup's
	// leftovers) and is removed; 0 means 24 h. Only folders DataGuardian
	// made are ever removed (see Cleaner.Pass).
	IncompleteAfter time.Duration
}

// WithDefaults returns o with every zero field set to its default.
func (o Options) WithDefaults() Options {
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

// Report says what one cleanup run did.
type Report struct {
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

// Pass runs one cleanup pass (what the Worker does every Interval; zero
// opts fields take the Options defaults): the retention policy of every
// enabled job with auto_delete, the pruning of finished queue tasks (when
// the queue is a *queue.StoreQueue), and a sweep of the run folders
// without manifest.json on every enabled storage location. The sweep
// removes only what DataGuardian made and abandoned: a folder holding our
// reservation marker (manifest.ReservationName), of a job the metadata
// store knows, last written more than IncompleteAfter ago, of no queued or
// running backup. It never removes another program's folders, nor the
// folder of a completed backup whose manifest.json disappeared: that copy
// is marked missing instead and its parts are kept for recovery by hand.
// A failing job or storage does not stop the others; the error joins
// their failures.
func (c *Cleaner) Pass(ctx context.Context, opts Options) (Report, error) {
	opts = opts.WithDefaults()
	var rep Report
	var errs []error
	jobs, err := c.cfg.Store.ListBackupJobs(ctx)
	if err != nil {
		return rep, fmt.Errorf("cleanup: %w", err)
	}
	for _, job := range jobs {
		if !job.Enabled || !job.Retention.AutoDelete {
			continue
		}
		dropped, err := c.ApplyRetention(ctx, job.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Jobs++
		rep.Deleted = append(rep.Deleted, dropped...)
	}
	if q, ok := c.cfg.Queue.(*queue.StoreQueue); ok {
		n, err := q.Prune(ctx, c.now().Add(-opts.TaskRetention))
		if err != nil {
			errs = append(errs, fmt.Errorf("cleanup: %w", err))
		}
		rep.TasksPruned = n
	}
	sw, err := c.sweepRunFolders(ctx, opts.IncompleteAfter)
	rep.Incomplete, rep.Missing = sw.removed, sw.missing
	if err != nil {
		errs = append(errs, err)
	}
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	return rep, errors.Join(errs...)
}
