package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/engine/internal/storedb"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/storage"
	"github.com/dataguardian/dataguardian/storage/local"
)

func wantErr(t *testing.T, what string, err, target error, words ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %q does not say %q", what, err, w)
		}
	}
}

func TestUpdateDatasource(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		tls := map[string]string{"sslmode": "verify-full"} // a password goes to another machine over TLS only
		ds := &Datasource{Name: "pg", Type: "postgres", Host: "db1", Port: 5432, Database: "app", Username: "u", Options: tls}
		mustNoErr(t, "create", e.CreateDatasource(ctx, ds, "old-pw"))
		// A health history to be reset by a connection change.
		ds.Status, ds.ConsecutiveFailures, ds.LastHealthCheckAt = DatasourceCritical, 3, ptr(time.Now().UTC())
		mustNoErr(t, "status", e.store.UpdateDatasource(ctx, ds, "status", "consecutive_failures", "last_health_check_at"))
		password := func() string {
			t.Helper()
			got, err := e.store.GetDatasource(ctx, ds.ID)
			mustNoErr(t, "get", err)
			src, err := e.Source(got)
			mustNoErr(t, "source", err)
			return src.Password
		}

		// Rename only, password omitted: kept, health kept.
		upd := &Datasource{ID: ds.ID, Name: "pg main", Host: "db1", Port: 5432, Database: "app", Username: "u", Enabled: true, Options: tls}
		mustNoErr(t, "rename", e.UpdateDatasource(ctx, upd, nil))
		got, _ := e.store.GetDatasource(ctx, ds.ID)
		if got.Name != "pg main" || got.Type != "postgres" || got.Status != DatasourceCritical || password() != "old-pw" {
			t.Fatalf("after rename: %+v, password %q", got, password())
		}
		// The stored password never follows a connection elsewhere: any
		// connection field changed without a password is refused.
		for field, change := range map[string]func(d *Datasource){
			"host": func(d *Datasource) { d.Host = "db2" }, "port": func(d *Datasource) { d.Port = 6432 },
			"database": func(d *Datasource) { d.Database = "other" }, "username": func(d *Datasource) { d.Username = "v" },
			"options": func(d *Datasource) { d.Options = map[string]string{"sslmode": "require"} },
		} {
			moved := *upd
			change(&moved)
			err := e.UpdateDatasource(ctx, &moved, nil)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "password" || !strings.Contains(err.Error(), field+" changed") {
				t.Fatalf("%s moved without a password: %v, want a FieldError on password", field, err)
			}
		}
		if password() != "old-pw" {
			t.Fatal("a refused move changed the password")
		}
		// New host and password: replaced, health starts over.
		upd.Host, upd.Enabled = "db2", false
		mustNoErr(t, "move", e.UpdateDatasource(ctx, upd, ptr("new-pw")))
		got, _ = e.store.GetDatasource(ctx, ds.ID)
		if got.Host != "db2" || got.Enabled || got.Status != DatasourceUnknown || got.ConsecutiveFailures != 0 ||
			got.LastHealthCheckAt != nil || password() != "new-pw" || !got.CreatedAt.Equal(ds.CreatedAt) {
			t.Fatalf("after move: %+v, password %q", got, password())
		}
		// Pointer to "": the password is removed.
		mustNoErr(t, "clear", e.UpdateDatasource(ctx, upd, ptr("")))
		if pw := password(); pw != "" {
			t.Fatalf("password %q after clearing", pw)
		}

		upd.Type = "mysql"
		wantErr(t, "type change", e.UpdateDatasource(ctx, upd, nil), ErrInvalid, "type cannot change")
		upd.Type, upd.Name = "", " "
		wantErr(t, "empty name", e.UpdateDatasource(ctx, upd, nil), ErrInvalid, "name is empty")
		wantErr(t, "missing", e.UpdateDatasource(ctx, &Datasource{ID: "00000000-0000-0000-0000-000000000000", Name: "x"}, nil),
			ErrNotFound)
		other := &Datasource{Name: "other", Type: "postgres", Host: "db9", Database: "app"}
		mustNoErr(t, "other", e.CreateDatasource(ctx, other, ""))
		upd.Name = "other"
		wantErr(t, "duplicate name", e.UpdateDatasource(ctx, upd, nil), ErrAlreadyExists)
	})
}

func TestUpdateDatasourceRefusesSyncOntoItself(t *testing.T) {
	e := newSQLiteEngine(t, Config{})
	f := newSyncFixture(t, e, SyncJob{})
	tgt := *f.tgt
	tgt.Path = f.src.Path
	wantErr(t, "target onto source", e.UpdateDatasource(t.Context(), &tgt, nil), ErrInvalid, "same database", f.job.Name)
}

func TestDeleteDatasource(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newSyncFixture(t, e, SyncJob{})
		job := &BackupJob{Name: "nightly", DatasourceID: f.src.ID, StorageLocationIDs: []string{f.loc.ID}}
		mustNoErr(t, "job", e.CreateBackupJob(ctx, job))

		// The schema itself refuses, and the error is recognised as such.
		_, err := e.store.DB(storedb.Key{}).NewDelete().Model((*Datasource)(nil)).Where("id = ?", f.src.ID).Exec(ctx)
		if err == nil {
			t.Fatalf("raw delete of a datasource a job uses: no error, want a foreign key violation")
		}
		// Store.DeleteDatasource recognises it (ErrReferenced).
		if err := e.store.DeleteDatasource(ctx, f.src.ID); !errors.Is(err, store.ErrReferenced) {
			t.Fatalf("Store.DeleteDatasource of a datasource a sync job uses: %v, want store.ErrReferenced", err)
		}

		wantErr(t, "used by a job", e.DeleteDatasource(ctx, f.src.ID), ErrInUse, `"nightly"`, job.ID, "delete them first")
		mustNoErr(t, "delete job", e.DeleteBackupJob(ctx, job.ID))
		wantErr(t, "used by a sync job", e.DeleteDatasource(ctx, f.src.ID), ErrInUse, f.job.Name, f.job.ID)
		wantErr(t, "sync target", e.DeleteDatasource(ctx, f.tgt.ID), ErrInUse, f.job.Name)

		// A run of the sync job leaves backups of the source: once the sync
		// job is gone, they still hold the datasource.
		x, err := e.RunSyncNow(ctx, discardQueue{}, f.job.ID)
		mustNoErr(t, "run sync", err)
		mustNoErr(t, "execute sync", e.executeSync(ctx, x.ID))
		mustNoErr(t, "delete sync job", e.DeleteSyncJob(ctx, f.job.ID))
		wantErr(t, "has executions", e.DeleteDatasource(ctx, f.src.ID), ErrInUse, "execution(s)", "set enabled to false")

		// The target has a restore execution too; a fresh datasource goes,
		// with its health checks.
		ds := &Datasource{Name: "spare", Type: "sqlite", Path: filepath.Join(t.TempDir(), "spare.db")}
		mustNoErr(t, "spare", e.CreateDatasource(ctx, ds, ""))
		mustNoErr(t, "health check", e.store.InsertHealthCheck(ctx, &HealthCheck{DatasourceID: ds.ID, Status: HealthOK, CheckedAt: time.Now()}))
		mustNoErr(t, "delete", e.DeleteDatasource(ctx, ds.ID))
		wantErr(t, "deleted", second(e.store.GetDatasource(ctx, ds.ID)), ErrNotFound)
		if n, _ := e.store.DB(storedb.Key{}).NewSelect().Model((*HealthCheck)(nil)).Where("datasource_id = ?", ds.ID).Count(ctx); n != 0 {
			t.Errorf("%d health checks left", n)
		}
		wantErr(t, "again", e.DeleteDatasource(ctx, ds.ID), ErrNotFound)
	})
}

// discardQueue accepts tasks and drops them: the test runs them itself.
type discardQueue struct{ Queue }

func (discardQueue) Enqueue(context.Context, Task) error { return nil }

func TestUpdateAndDeleteSyncJob(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newSyncFixture(t, e, SyncJob{Schedule: "0 3 * * *"})
		next := *f.job.NextExecutionAt

		upd := *f.job
		upd.Name, upd.Enabled = "renamed", false
		mustNoErr(t, "rename", e.UpdateSyncJob(ctx, &upd))
		got, _ := e.store.GetSyncJob(ctx, f.job.ID)
		if got.Name != "renamed" || got.Enabled || got.NextExecutionAt == nil || !got.NextExecutionAt.Equal(next) {
			t.Fatalf("after rename: %+v (next was %s)", got, next)
		}
		upd.Schedule, upd.Timezone = "30 4 * * *", "America/Sao_Paulo"
		mustNoErr(t, "reschedule", e.UpdateSyncJob(ctx, &upd))
		got, _ = e.store.GetSyncJob(ctx, f.job.ID)
		if got.NextExecutionAt == nil || got.NextExecutionAt.Equal(next) || got.Schedule != "30 4 * * *" {
			t.Fatalf("after reschedule: %+v", got)
		}
		upd.Schedule, upd.Timezone = "", ""
		mustNoErr(t, "unschedule", e.UpdateSyncJob(ctx, &upd))
		if got, _ = e.store.GetSyncJob(ctx, f.job.ID); got.NextExecutionAt != nil {
			t.Fatalf("next %v without a schedule", got.NextExecutionAt)
		}
		bad := upd
		bad.TargetDatasourceID = f.src.ID
		wantErr(t, "onto itself", e.UpdateSyncJob(ctx, &bad), ErrInvalid, "target_datasource_id")
		bad = upd
		bad.ID = "00000000-0000-0000-0000-000000000000"
		wantErr(t, "missing", e.UpdateSyncJob(ctx, &bad), ErrNotFound)

		// A run: its backup stays after the sync job is deleted.
		x, err := e.RunSyncNow(ctx, discardQueue{}, f.job.ID)
		mustNoErr(t, "run", err)
		x.Status = ExecutionRunning
		mustNoErr(t, "mark running", e.store.UpdateSyncExecution(ctx, x, "status"))
		wantErr(t, "running", e.DeleteSyncJob(ctx, f.job.ID), ErrInUse, x.ID)
		x.Status = ExecutionQueued
		mustNoErr(t, "mark queued", e.store.UpdateSyncExecution(ctx, x, "status"))
		mustNoErr(t, "execute", e.executeSync(ctx, x.ID))
		x, _ = e.store.GetSyncExecution(ctx, x.ID)
		backup, err := e.store.GetExecution(ctx, x.BackupExecutionID)
		mustNoErr(t, "backup of the run", err)

		mustNoErr(t, "delete", e.DeleteSyncJob(ctx, f.job.ID))
		wantErr(t, "sync job gone", second(e.store.GetSyncJob(ctx, f.job.ID)), ErrNotFound)
		wantErr(t, "its backup job gone", second(e.store.GetBackupJob(ctx, backup.JobID)), ErrNotFound)
		wantErr(t, "its runs gone", second(e.store.GetSyncExecution(ctx, x.ID)), ErrNotFound)
		kept, err := e.store.GetExecution(ctx, backup.ID)
		mustNoErr(t, "backup execution kept", err)
		if kept.JobID != "" || kept.Status != ExecutionCompleted {
			t.Errorf("kept backup %+v", kept)
		}
		_, err = e.OpenBackupCopy(ctx, backup.ID)
		mustNoErr(t, "backup still verifies", err)
		wantErr(t, "again", e.DeleteSyncJob(ctx, f.job.ID), ErrNotFound)
	})
}

// breakStorage replaces a local storage root with a regular file, so that
// nothing can be written there, even by root.
func breakStorage(t *testing.T, root string) {
	t.Helper()
	mustNoErr(t, "remove root", os.RemoveAll(root))
	mustNoErr(t, "file at root", os.WriteFile(root, []byte("not a directory"), 0o600))
}

func TestRetryUploadPartialFailure(t *testing.T) {
	e := newSQLiteEngine(t, Config{})
	f := newFixture(t, e, BackupJob{MaxFileSizeMB: 1})
	ctx := t.Context()
	exec, err := e.RunBackup(ctx, f.job.ID)
	mustNoErr(t, "backup", err)
	breakStorage(t, f.roots[1])

	_, err = e.RetryUpload(ctx, exec.ID)
	wantErr(t, "broken storage", err, ErrUploadIncomplete, "disk2")
	if s := storageStatus(t, e, exec.ID, f.job.StorageLocationIDs[1]); s.Status != StorageUnreachable || s.ErrorMessage == "" {
		t.Errorf("broken storage status %+v", s)
	}
	if s := storageStatus(t, e, exec.ID, f.job.StorageLocationIDs[0]); s.Status != StorageAvailable {
		t.Errorf("good storage status %+v", s)
	}

	// Repaired storage, deleted job: the storages come from the execution.
	mustNoErr(t, "repair root", os.Remove(f.roots[1]))
	mustNoErr(t, "delete job", e.DeleteBackupJob(ctx, f.job.ID))
	_, err = e.RetryUpload(ctx, exec.ID)
	mustNoErr(t, "retry after repair", err)
	sameCopies(t, f, exec.BackupPath)

	// No copy verifies: not restorable, nothing written.
	breakStorage(t, f.roots[0])
	mustNoErr(t, "remove second copy", os.RemoveAll(filepath.Join(f.roots[1], filepath.FromSlash(exec.BackupPath))))
	_, err = e.RetryUpload(ctx, exec.ID)
	wantErr(t, "no copy", err, ErrNotRestorable, "no storage holds a verified copy")
	if errors.Is(err, ErrUploadIncomplete) {
		t.Errorf("no copy at all is not a partial upload: %v", err)
	}
}

// countingOpener opens local storages and counts the opens.
func countingOpener(n *atomic.Int64) map[string]StorageOpener {
	return map[string]StorageOpener{"local": func(_ context.Context, loc *StorageLocation) (storage.Storage, error) {
		n.Add(1)
		return local.New(loc.Config["path"])
	}}
}

func TestLastStorageHealth(t *testing.T) {
	var opens atomic.Int64
	clock := time.Now()
	var mu atomic.Pointer[time.Time]
	mu.Store(&clock)
	e := newSQLiteEngine(t, Config{StorageOpeners: countingOpener(&opens), Now: func() time.Time { return *mu.Load() },
		Health: HealthOptions{Interval: time.Minute}})
	ctx := t.Context()
	var locs []*StorageLocation
	for _, name := range []string{"a", "b"} {
		loc := &StorageLocation{Name: name, Type: "local", Config: map[string]string{"path": t.TempDir()}}
		mustNoErr(t, "create", e.CreateStorageLocation(ctx, loc))
		locs = append(locs, loc)
	}
	check := func(what string, wantOpens int64) []StorageHealth {
		t.Helper()
		opens.Store(0)
		sts, err := e.LastStorageHealth(ctx)
		mustNoErr(t, what, err)
		if got := opens.Load(); got != wantOpens {
			t.Fatalf("%s: %d storage opens, want %d", what, got, wantOpens)
		}
		return sts
	}

	if sts := check("first call probes", 2); len(sts) != 2 || sts[0].Status != HealthOK || sts[1].Status != HealthOK {
		t.Fatalf("first: %+v", sts)
	}
	check("second call reads the record", 0)

	// A health cycle records its result.
	_, err := e.RunHealthCycle(ctx, HealthOptions{})
	mustNoErr(t, "cycle", err)
	check("after a cycle", 0)

	// A changed location is probed on the spot, and only it.
	breakStorage(t, locs[1].Config["path"])
	locs[1].Name = "b2"
	mustNoErr(t, "rename", e.store.UpdateStorageLocation(ctx, locs[1], "name"))
	sts := check("changed location", 1)
	if sts[1].Name != "b2" || sts[1].Status != HealthUnreachable || sts[1].ErrorMessage == "" || sts[0].Status != HealthOK {
		t.Fatalf("after change: %+v", sts)
	}
	check("changed location recorded", 0)

	// Disabled: left out, nothing probed.
	locs[1].Enabled = false
	mustNoErr(t, "disable", e.store.UpdateStorageLocation(ctx, locs[1], "enabled"))
	if sts := check("disabled", 0); len(sts) != 1 || sts[0].Name != "a" {
		t.Fatalf("after disable: %+v", sts)
	}

	// No cycle for two intervals: everything is probed again.
	later := clock.Add(3 * time.Minute)
	mu.Store(&later)
	check("stale", 1)
	check("fresh again", 0)
}

// Text a database cannot store (a NUL byte) is invalid input, not a server
// error, on every store.
func TestNULIsInvalidInput(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		for _, ds := range []*Datasource{
			{Name: "a\x00b", Type: "sqlite", Path: filepath.Join(t.TempDir(), "x.db")},
			{Name: "opts", Type: "sqlite", Path: filepath.Join(t.TempDir(), "x.db"), Options: map[string]string{"k": "v\xff"}},
		} {
			err := e.CreateDatasource(t.Context(), ds, "")
			wantErr(t, "bad text", err, ErrInvalid, "NUL")
		}
	})
}

// What other programs said (a tool's output in a log line) is kept with
// its NUL bytes and invalid UTF-8 repaired, never lost.
func TestObservedTextRepaired(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		f := newSyncFixture(t, e, SyncJob{})
		job := &BackupJob{Name: "nightly", DatasourceID: f.src.ID, StorageLocationIDs: []string{f.loc.ID}}
		mustNoErr(t, "job", e.CreateBackupJob(t.Context(), job))
		x, err := e.RunBackup(t.Context(), job.ID)
		mustNoErr(t, "backup", err)
		mustNoErr(t, "log", e.store.AppendExecutionLog(t.Context(), x.ID, "info", "pg_restore: caf\xe9\x00 done"))
		logs, err := e.ExecutionLogs(t.Context(), x.ID)
		mustNoErr(t, "logs", err)
		if last := logs[len(logs)-1].Message; last != "pg_restore: caf\uFFFD done" {
			t.Fatalf("last log line %q", last)
		}
	})
}
