package cleanup

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/dataguardian/dataguardian/engine/internal/jobstorage"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/retention"
	"github.com/dataguardian/dataguardian/storage"
)

// runDir is what listRunFolders learns about one run folder.
type runDir struct {
	dir         string
	job         string
	newest      time.Time // the later of the folder time and its newest object
	hasManifest bool
	reserved    bool // holds manifest.Writer's reservation (names the execution)
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
		case manifest.ReservationName:
			f.reserved = true
		}
	}
	return out, nil
}

// readReservation returns the execution ID in a run folder's reservation,
// or "" when it cannot be read.
func readReservation(ctx context.Context, st storage.Storage, dir string) string {
	rc, err := st.Open(ctx, dir+"/"+manifest.ReservationName, 0, 256)
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return strings.TrimSpace(string(b))
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

// ExecLogf writes a line to an execution's log.
type ExecLogf func(ctx context.Context, level slog.Level, format string, args ...any)

// RemoveAttempt removes, on every storage location of job, the run
// folders that the stopped attempt of its backup execution execID left:
// those reserved for it (manifest.Writer's reservation names it) without
// a manifest. Each removal is appended to LogKey there and, like a failed
// removal, written to the execution's log with logf. Call it only while
// no process can be writing them: with the execution's task held
// (adopted from a dead process), before it is queued again. A committed
// backup (manifest.json) is never touched.
func (c *Cleaner) RemoveAttempt(ctx context.Context, job *store.BackupJob, execID string, logf ExecLogf) {
	for _, js := range jobstorage.Open(ctx, c.cfg.Store, c.cfg.OpenStorage, job.StorageLocationIDs) {
		if js.Err != nil {
			continue
		}
		folders, err := listRunFolders(ctx, js.St)
		if err != nil {
			c.log.Warn("list run folders of a stopped backup", "storage", js.Loc.Name, "execution_id", execID, "err", err)
			continue
		}
		for _, f := range folders {
			if f.job != job.ID || f.hasManifest || !f.reserved || readReservation(ctx, js.St, f.dir) != execID {
				continue
			}
			if err := removeRunFolder(ctx, js.St, f.dir); err != nil {
				logf(ctx, slog.LevelError, "remove %s on storage %s, left by the attempt that stopped: %v", f.dir, js.Loc.Name, err)
				continue
			}
			entry := retention.LogEntry{At: c.now(), JobID: job.ID, Path: f.dir, ExecutionID: execID,
				Reason: "incomplete: its attempt stopped with its process, no " + manifest.FileName}
			if err := storage.Append(ctx, js.St, LogKey, []byte(retention.FormatCleanupLine(entry)+"\n")); err != nil {
				c.log.Warn("append cleanup log", "storage", js.Loc.Name, "err", err)
			}
			logf(ctx, slog.LevelInfo, "removed %s on storage %s: the attempt that stopped left it incomplete", f.dir, js.Loc.Name)
		}
	}
}
