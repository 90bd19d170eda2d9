package cleanup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/engine/internal/storetest"
	"github.com/dataguardian/dataguardian/engine/queue"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/retention"
	"github.com/dataguardian/dataguardian/storage"
	"github.com/dataguardian/dataguardian/storage/local"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func mustNoErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// fixture is a store with a datasource, a job writing to two local
// storage directories, and a Cleaner on them.
type fixture struct {
	s     *store.Store
	c     *Cleaner
	ds    *store.Datasource
	locs  []*store.StorageLocation
	roots []string
	job   *store.BackupJob
}

func newFixture(t *testing.T, s *store.Store, policy store.Retention) *fixture {
	t.Helper()
	ctx := t.Context()
	f := &fixture{s: s, ds: &store.Datasource{Name: "app", Type: "sqlite", Path: "/srv/app.db", Enabled: true}}
	mustNoErr(t, "create datasource", s.CreateDatasource(ctx, f.ds))
	f.job = &store.BackupJob{Name: "app nightly", DatasourceID: f.ds.ID, Retention: policy, Enabled: true}
	for i := range 2 {
		root := t.TempDir()
		loc := &store.StorageLocation{Name: fmt.Sprintf("disk%d", i+1), Type: "local", Config: map[string]string{"path": root}, Enabled: true}
		mustNoErr(t, "create storage", s.CreateStorageLocation(ctx, loc))
		f.locs, f.roots = append(f.locs, loc), append(f.roots, root)
		f.job.StorageLocationIDs = append(f.job.StorageLocationIDs, loc.ID)
	}
	mustNoErr(t, "create job", s.CreateBackupJob(ctx, f.job))
	f.c = New(Config{
		Store: s,
		Queue: queue.NewStoreQueue(s, nil),
		OpenStorage: func(_ context.Context, loc *store.StorageLocation) (storage.Storage, error) {
			return local.New(loc.Config["path"])
		},
		BackupStorageIDs: func(ctx context.Context, x *store.Execution) ([]string, error) {
			job, err := s.GetBackupJob(ctx, x.JobID)
			if err != nil {
				return nil, err
			}
			return job.StorageLocationIDs, nil
		},
		SetStorageStatus: func(ctx context.Context, execID, locID string, status store.StorageStatus, cause error) {
			es := &store.ExecutionStorage{ExecutionID: execID, StorageLocationID: locID, Status: status}
			if cause != nil {
				es.ErrorMessage = cause.Error()
			}
			if err := s.SetExecutionStorage(context.WithoutCancel(ctx), es); err != nil {
				t.Errorf("set storage status: %v", err)
			}
		},
		Now: func() time.Time { return time.Now().UTC() },
		Log: discard,
	})
	return f
}

// backup records a backup execution of the fixture's job created at at,
// with its run folder (manifest.json and a part) on both storages when
// status is completed.
func (f *fixture) backup(t *testing.T, at time.Time, status store.ExecutionStatus) *store.Execution {
	t.Helper()
	x := &store.Execution{JobID: f.job.ID, DatasourceID: f.ds.ID, Operation: store.OperationBackup, Status: status, CreatedAt: at}
	if status == store.ExecutionCompleted {
		x.BackupPath = f.job.ID + "/" + manifest.RunFolder(at)
		for _, root := range f.roots {
			storetest.WriteRunFolder(t, root, x.BackupPath, at, map[string]string{manifest.FileName: "{}", "backup.sql.gz": "data"})
		}
	}
	mustNoErr(t, "create execution", f.s.CreateExecution(t.Context(), x))
	return x
}

func (f *fixture) status(t *testing.T, execID, locID string) store.ExecutionStorage {
	t.Helper()
	ss, err := f.s.ListExecutionStorages(t.Context(), execID)
	mustNoErr(t, "list storage statuses", err)
	for _, s := range ss {
		if s.StorageLocationID == locID {
			return s
		}
	}
	return store.ExecutionStorage{}
}

func exists(root, dir string) bool {
	_, err := os.Stat(filepath.Join(root, filepath.FromSlash(dir)))
	return err == nil
}

func cleanupLog(t *testing.T, root string) []retention.LogEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(LogKey)))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	mustNoErr(t, "read cleanup log", err)
	var out []retention.LogEntry
	for line := range strings.Lines(string(b)) {
		e, err := retention.ParseCleanupLine(line)
		mustNoErr(t, "parse cleanup log", err)
		out = append(out, e)
	}
	return out
}

// ApplyRetention deletes what the policy drops on every storage, manifest
// first, and keeps the newest, pinned, failed and being-read backups.
func TestApplyRetention(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		f := newFixture(t, s, store.Retention{MaxBackups: 1, AutoDelete: true})
		t0 := time.Now().UTC().Add(-10 * time.Hour).Truncate(time.Second)
		pinned := f.backup(t, t0, store.ExecutionCompleted)
		pinned.Pinned = true
		mustNoErr(t, "pin", s.UpdateExecution(ctx, pinned, "pinned"))
		dropped := f.backup(t, t0.Add(time.Hour), store.ExecutionCompleted)
		failed := f.backup(t, t0.Add(2*time.Hour), store.ExecutionFailed)
		read := f.backup(t, t0.Add(3*time.Hour), store.ExecutionCompleted)
		restore := &store.Execution{JobID: f.job.ID, DatasourceID: f.ds.ID, Operation: store.OperationRestore,
			Status: store.ExecutionQueued, SourceExecutionID: read.ID}
		mustNoErr(t, "create restore", s.CreateExecution(ctx, restore))
		newest := f.backup(t, t0.Add(4*time.Hour), store.ExecutionCompleted)

		deleted, err := f.c.ApplyRetention(ctx, f.job.ID)
		mustNoErr(t, "apply retention", err)
		if len(deleted) != 1 || deleted[0].Backup.ID != dropped.ID || deleted[0].Reason != "beyond max_backups=1" {
			t.Fatalf("deleted %+v, want only %s beyond max_backups=1", deleted, dropped.BackupPath)
		}
		for i, root := range f.roots {
			if exists(root, dropped.BackupPath) {
				t.Errorf("%s still on disk%d", dropped.BackupPath, i+1)
			}
			for _, x := range []*store.Execution{pinned, read, newest} {
				if !exists(root, x.BackupPath+"/"+manifest.FileName) {
					t.Errorf("%s removed from disk%d", x.BackupPath, i+1)
				}
			}
			log := cleanupLog(t, root)
			if len(log) != 1 || log[0].Path != dropped.BackupPath || log[0].ExecutionID != dropped.ID || log[0].JobID != f.job.ID {
				t.Errorf("disk%d cleanup log %+v", i+1, log)
			}
			if st := f.status(t, dropped.ID, f.locs[i].ID); st.Status != store.StorageMissing || !strings.Contains(st.ErrorMessage, "deleted by retention") {
				t.Errorf("disk%d status %+v, want missing, deleted by retention", i+1, st)
			}
		}
		x, err := s.GetExecution(ctx, dropped.ID)
		mustNoErr(t, "get execution", err)
		if _, gone := x.Metadata[store.MetaRetentionDeleted]; !gone {
			t.Fatalf("metadata %v, want %s", x.Metadata, store.MetaRetentionDeleted)
		}
		for _, x := range []*store.Execution{pinned, failed, read, newest} {
			x, err := s.GetExecution(ctx, x.ID)
			mustNoErr(t, "get execution", err)
			if _, gone := x.Metadata[store.MetaRetentionDeleted]; gone {
				t.Errorf("%s (%s) marked deleted", x.ID, x.Status)
			}
		}

		// Once deleted, a backup is not deleted again.
		again, err := f.c.ApplyRetention(ctx, f.job.ID)
		mustNoErr(t, "apply retention again", err)
		if len(again) != 0 {
			t.Fatalf("second pass deleted %+v", again)
		}
		if log := cleanupLog(t, f.roots[0]); len(log) != 1 {
			t.Fatalf("cleanup log has %d lines after a second pass, want 1", len(log))
		}

		// auto_delete off deletes nothing; an unknown job is an error.
		f.job.Retention.AutoDelete = false
		mustNoErr(t, "update job", s.UpdateBackupJob(ctx, f.job, "retention"))
		restore.Status = store.ExecutionCompleted
		mustNoErr(t, "finish restore", s.UpdateExecution(ctx, restore, "status"))
		if d, err := f.c.ApplyRetention(ctx, f.job.ID); err != nil || len(d) != 0 {
			t.Fatalf("auto_delete off: deleted %+v, %v", d, err)
		}
		if _, err := f.c.ApplyRetention(ctx, "00000000-0000-4000-8000-00000000dead"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown job: %v, want ErrNotFound", err)
		}
	})
}

// A storage that cannot be opened keeps its copy; the others are deleted.
func TestApplyRetentionSkipsUnusableStorage(t *testing.T) {
	s := storetest.Open(t, storetest.SQLiteURL(t))
	ctx := t.Context()
	f := newFixture(t, s, store.Retention{MaxBackups: 1, AutoDelete: true})
	t0 := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	old := f.backup(t, t0, store.ExecutionCompleted)
	f.backup(t, t0.Add(time.Hour), store.ExecutionCompleted)
	open := f.c.cfg.OpenStorage
	f.c.cfg.OpenStorage = func(ctx context.Context, loc *store.StorageLocation) (storage.Storage, error) {
		if loc.ID == f.locs[1].ID {
			return nil, errors.New("unplugged")
		}
		return open(ctx, loc)
	}
	deleted, err := f.c.ApplyRetention(ctx, f.job.ID)
	mustNoErr(t, "apply retention", err)
	if len(deleted) != 1 || deleted[0].Backup.ID != old.ID {
		t.Fatalf("deleted %+v, want %s", deleted, old.BackupPath)
	}
	if exists(f.roots[0], old.BackupPath) || !exists(f.roots[1], old.BackupPath+"/"+manifest.FileName) {
		t.Fatalf("want %s gone from disk1 and kept on the unusable disk2", old.BackupPath)
	}
	if st := f.status(t, old.ID, f.locs[1].ID); st.Status != "" {
		t.Fatalf("disk2 status %+v, want none recorded", st)
	}
}

// The sweep removes only the abandoned run folders DataGuardian made,
// marks a completed backup without its manifest missing, and leaves
// everything else alone.
func TestPassSweepsRunFolders(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		f := newFixture(t, s, store.Retention{})
		root, now := f.roots[0], time.Now()
		old := now.Add(-48 * time.Hour)

		done := f.backup(t, old.Add(-time.Hour).UTC().Truncate(time.Second), store.ExecutionCompleted)
		mustNoErr(t, "delete manifest", os.Remove(filepath.Join(root, filepath.FromSlash(done.BackupPath), manifest.FileName)))
		killed := f.backup(t, old, store.ExecutionFailed)
		running := f.backup(t, old, store.ExecutionRunning)
		queued := f.backup(t, old, store.ExecutionQueued)
		queued.BackupPath = f.job.ID + "/" + manifest.RunFolder(old.Add(3*time.Hour))
		mustNoErr(t, "set backup path", s.UpdateExecution(ctx, queued, "backup_path"))

		job := f.job.ID
		stale := job + "/" + manifest.RunFolder(old)
		storetest.WriteRunFolder(t, root, stale, old, map[string]string{manifest.ReservationName: killed.ID + "\n", "backup.sql.gz.001": "partial"})
		fresh := job + "/" + manifest.RunFolder(now.Add(-time.Hour))
		storetest.WriteRunFolder(t, root, fresh, now.Add(-time.Hour), map[string]string{manifest.ReservationName: killed.ID + "\n"})
		live := job + "/" + manifest.RunFolder(old.Add(time.Hour))
		storetest.WriteRunFolder(t, root, live, old, map[string]string{manifest.ReservationName: running.ID + "\n"})
		// Reserved for an execution the store never had, at the folder of a queued one.
		atQueued := queued.BackupPath
		storetest.WriteRunFolder(t, root, atQueued, old, map[string]string{manifest.ReservationName: "00000000-0000-4000-8000-000000000009\n"})
		unmarked := job + "/" + manifest.RunFolder(old.Add(2*time.Hour))
		storetest.WriteRunFolder(t, root, unmarked, old, map[string]string{"notes.txt": "put here by hand"})
		foreign := "otherapp/2020-01-01_000000"
		storetest.WriteRunFolder(t, root, foreign, old, map[string]string{manifest.ReservationName: killed.ID + "\n"})
		stranger := "00000000-0000-4000-8000-000000000001/" + manifest.RunFolder(old)
		storetest.WriteRunFolder(t, root, stranger, old, map[string]string{manifest.ReservationName: "00000000-0000-4000-8000-000000000002\n"})
		system := "_system/" + manifest.RunFolder(old)
		storetest.WriteRunFolder(t, root, system, old, map[string]string{manifest.ReservationName: killed.ID + "\n"})
		// A disabled storage location is not swept.
		f.locs[1].Enabled = false
		mustNoErr(t, "disable disk2", s.UpdateStorageLocation(ctx, f.locs[1], "enabled"))
		storetest.WriteRunFolder(t, f.roots[1], stale, old, map[string]string{manifest.ReservationName: killed.ID + "\n"})

		rep, err := f.c.Pass(ctx, Options{})
		mustNoErr(t, "cleanup", err)
		if want := []string{"disk1: " + stale}; !slices.Equal(rep.Incomplete, want) {
			t.Fatalf("removed %q, want %q", rep.Incomplete, want)
		}
		if want := []string{"disk1: " + done.BackupPath}; !slices.Equal(rep.Missing, want) {
			t.Fatalf("missing %q, want %q", rep.Missing, want)
		}
		if exists(root, stale) {
			t.Error("stale folder still there")
		}
		for _, dir := range []string{done.BackupPath + "/backup.sql.gz", fresh, live, atQueued, unmarked, foreign, stranger, system} {
			if !exists(root, dir) {
				t.Errorf("%s removed", dir)
			}
		}
		if !exists(f.roots[1], stale) {
			t.Error("run folder on the disabled storage removed")
		}
		if st := f.status(t, done.ID, f.locs[0].ID); st.Status != store.StorageMissing || !strings.Contains(st.ErrorMessage, manifest.FileName) {
			t.Errorf("status of the copy without manifest: %+v", st)
		}
		log := cleanupLog(t, root)
		if len(log) != 1 || log[0].Path != stale || log[0].JobID != job || log[0].ExecutionID != killed.ID ||
			!strings.HasPrefix(log[0].Reason, "incomplete: no manifest.json") {
			t.Fatalf("cleanup log %+v", log)
		}

		// With a shorter IncompleteAfter the fresh folder goes too.
		rep, err = f.c.Pass(ctx, Options{IncompleteAfter: time.Minute})
		mustNoErr(t, "cleanup", err)
		if want := []string{"disk1: " + fresh}; !slices.Equal(rep.Incomplete, want) {
			t.Fatalf("second pass removed %q, want %q", rep.Incomplete, want)
		}
		if want := []string{"disk1: " + done.BackupPath}; !slices.Equal(rep.Missing, want) {
			t.Fatalf("second pass: missing %q, want %q", rep.Missing, want)
		}
	})
}

// Pass applies retention to the enabled jobs with auto_delete only, and
// prunes finished queue tasks older than TaskRetention.
func TestPassAppliesRetentionAndPrunes(t *testing.T) {
	s := storetest.Open(t, storetest.SQLiteURL(t))
	ctx := t.Context()
	f := newFixture(t, s, store.Retention{MaxBackups: 1, AutoDelete: true})
	t0 := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	old := f.backup(t, t0, store.ExecutionCompleted)
	f.backup(t, t0.Add(time.Hour), store.ExecutionCompleted)
	off := &store.BackupJob{Name: "off", DatasourceID: f.ds.ID, StorageLocationIDs: f.job.StorageLocationIDs,
		Retention: store.Retention{MaxBackups: 1, AutoDelete: true}}
	mustNoErr(t, "create disabled job", s.CreateBackupJob(ctx, off))

	q := f.c.cfg.Queue.(*queue.StoreQueue)
	mustNoErr(t, "enqueue", q.Enqueue(ctx, queue.Task{Kind: queue.TaskBackup, ExecutionID: "x-1"}))
	task, err := q.Claim(ctx, []string{queue.TaskBackup}, "test", time.Minute)
	mustNoErr(t, "claim", err)
	mustNoErr(t, "complete", q.Complete(ctx, task.ID, "test"))
	time.Sleep(5 * time.Millisecond)

	rep, err := f.c.Pass(ctx, Options{TaskRetention: time.Nanosecond})
	mustNoErr(t, "cleanup", err)
	if rep.Jobs != 1 || len(rep.Deleted) != 1 || rep.Deleted[0].Backup.ID != old.ID {
		t.Fatalf("jobs %d, deleted %+v; want 1 job, %s deleted", rep.Jobs, rep.Deleted, old.BackupPath)
	}
	if rep.TasksPruned != 1 {
		t.Fatalf("pruned %d tasks, want 1", rep.TasksPruned)
	}

	// Another queue is not pruned.
	f.c.cfg.Queue = nil
	rep, err = f.c.Pass(ctx, Options{TaskRetention: time.Nanosecond})
	mustNoErr(t, "cleanup without a store queue", err)
	if rep.TasksPruned != 0 || rep.Jobs != 1 || len(rep.Deleted) != 0 {
		t.Fatalf("report %+v, want 1 job, nothing deleted or pruned", rep)
	}
}

// RemoveAttempt removes the uncommitted run folders reserved for one
// execution, and logs each removal to the execution and the cleanup log.
func TestRemoveAttempt(t *testing.T) {
	s := storetest.Open(t, storetest.SQLiteURL(t))
	ctx := t.Context()
	f := newFixture(t, s, store.Retention{})
	now := time.Now()
	x := f.backup(t, now, store.ExecutionRunning)
	mine := f.job.ID + "/" + manifest.RunFolder(now)
	theirs := f.job.ID + "/" + manifest.RunFolder(now.Add(time.Second))
	committed := f.job.ID + "/" + manifest.RunFolder(now.Add(2*time.Second))
	for _, root := range f.roots {
		storetest.WriteRunFolder(t, root, mine, now, map[string]string{manifest.ReservationName: x.ID + "\n", "backup.sql.gz.001": "half"})
		storetest.WriteRunFolder(t, root, theirs, now, map[string]string{manifest.ReservationName: "another-execution\n", "backup.sql.gz.001": "half"})
		storetest.WriteRunFolder(t, root, committed, now, map[string]string{manifest.ReservationName: x.ID + "\n", manifest.FileName: "{}"})
	}
	var mu sync.Mutex
	var lines []string
	logf := func(_ context.Context, level slog.Level, format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, level.String()+" "+fmt.Sprintf(format, args...))
	}
	f.c.RemoveAttempt(ctx, f.job, x.ID, logf)
	for i, root := range f.roots {
		if exists(root, mine) {
			t.Errorf("disk%d: %s still there", i+1, mine)
		}
		if !exists(root, theirs+"/backup.sql.gz.001") || !exists(root, committed+"/"+manifest.FileName) {
			t.Errorf("disk%d: a folder not left by the attempt was removed", i+1)
		}
		log := cleanupLog(t, root)
		if len(log) != 1 || log[0].Path != mine || log[0].ExecutionID != x.ID || !strings.HasPrefix(log[0].Reason, "incomplete: its attempt stopped") {
			t.Errorf("disk%d cleanup log %+v", i+1, log)
		}
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "INFO removed "+mine+" on storage disk1") ||
		!strings.HasPrefix(lines[1], "INFO removed "+mine+" on storage disk2") {
		t.Fatalf("execution log %q", lines)
	}
}

// listRunFolders groups a storage's objects by run folder.
func TestListRunFolders(t *testing.T) {
	root := t.TempDir()
	st, err := local.New(root)
	mustNoErr(t, "open storage", err)
	t0 := time.Date(2025, 2, 13, 6, 0, 1, 0, time.UTC)
	later := t0.Add(30 * time.Hour)
	storetest.WriteRunFolder(t, root, "job/2025-02-13_060001", t0, map[string]string{manifest.FileName: "{}", "backup.sql.gz": "x"})
	storetest.WriteRunFolder(t, root, "job/2025-02-13_060002", later, map[string]string{manifest.ReservationName: "x-1\n"})
	storetest.WriteRunFolder(t, root, "job/not-a-run", t0, map[string]string{"a": "x"})
	storetest.WriteRunFolder(t, root, "job/2025-02-30_060001", t0, map[string]string{"a": "x"}) // no such day
	storetest.WriteRunFolder(t, root, "_system", t0, map[string]string{"cleanup.log": "x"})
	storetest.WriteRunFolder(t, root, "_x/2025-02-13_060001", t0, map[string]string{"a": "x"})
	storetest.WriteRunFolder(t, root, "", t0, map[string]string{"top": "x"})

	got, err := listRunFolders(t.Context(), st)
	mustNoErr(t, "list", err)
	want := []runDir{
		{dir: "job/2025-02-13_060001", job: "job", newest: t0, hasManifest: true},
		{dir: "job/2025-02-13_060002", job: "job", newest: later, reserved: true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.dir != w.dir || g.job != w.job || !g.newest.Equal(w.newest) || g.hasManifest != w.hasManifest || g.reserved != w.reserved {
			t.Errorf("folder %d: %+v, want %+v", i, g, w)
		}
	}
	if id := readReservation(t.Context(), st, "job/2025-02-13_060002"); id != "x-1" {
		t.Errorf("reservation %q, want x-1", id)
	}
	if id := readReservation(t.Context(), st, "job/2025-02-13_060001"); id != "" {
		t.Errorf("reservation of an unreserved folder %q, want none", id)
	}
	mustNoErr(t, "remove", removeRunFolder(t.Context(), st, "job/2025-02-13_060001"))
	if exists(root, "job/2025-02-13_060001") {
		t.Error("run folder still there")
	}
}

// The worker passes at once and then every Interval, and stops with ctx.
func TestWorker(t *testing.T) {
	s := storetest.Open(t, storetest.SQLiteURL(t))
	f := newFixture(t, s, store.Retention{MaxBackups: 1, AutoDelete: true})
	t0 := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	old := f.backup(t, t0, store.ExecutionCompleted)
	f.backup(t, t0.Add(time.Hour), store.ExecutionCompleted)
	w := NewWorker(f.c, Options{Interval: 10 * time.Millisecond})
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, n := w.Last(); n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no second cleanup pass")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	mustNoErr(t, "run", <-done)
	rep, n := w.Last()
	if n < 2 || rep.Jobs != 1 || len(rep.Deleted) != 0 {
		t.Fatalf("last of %d passes: %+v; want a pass with nothing left to delete", n, rep)
	}
	if exists(f.roots[0], old.BackupPath) {
		t.Fatalf("%s still there", old.BackupPath)
	}
}
