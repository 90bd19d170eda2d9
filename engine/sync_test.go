package engine

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// syncFixture is a SQLite source with 3000 rows, a SQLite target holding
// other data, a storage location and a sync job between them.
type syncFixture struct {
	src, tgt *Datasource
	loc      *StorageLocation
	job      *SyncJob
}

func newSyncFixture(t *testing.T, e *Engine, job SyncJob) *syncFixture {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	f := &syncFixture{
		src: &Datasource{Name: "app", Type: "sqlite", Path: filepath.Join(dir, "app.db")},
		tgt: &Datasource{Name: "app staging", Type: "sqlite", Path: filepath.Join(dir, "staging.db")},
		loc: &StorageLocation{Name: "disk", Type: "local", Config: map[string]string{"path": t.TempDir()}},
	}
	makeSQLite(t, f.src.Path, 3000)
	makeSQLite(t, f.tgt.Path, 10)
	mustNoErr(t, "source", e.CreateDatasource(ctx, f.src, ""))
	mustNoErr(t, "target", e.CreateDatasource(ctx, f.tgt, ""))
	mustNoErr(t, "storage", e.CreateStorageLocation(ctx, f.loc))
	job.Name, job.SourceDatasourceID, job.TargetDatasourceID, job.StorageLocationID = "app → staging", f.src.ID, f.tgt.ID, f.loc.ID
	f.job = &job
	mustNoErr(t, "sync job", e.CreateSyncJob(ctx, f.job))
	return f
}

// startEngine runs e.Start until the test ends.
func startEngine(t *testing.T, e *Engine) {
	t.Helper()
	ctx, stop := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- e.Start(ctx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Start: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Start did not return after its context ended")
		}
	})
}

func newStartedEngine(t *testing.T, url string) *Engine {
	t.Helper()
	e, err := newEngine(t.Context(), Config{DataDir: t.TempDir(), DatabaseURL: url, SecretKey: testKey, Logger: discardLogger,
		Worker: WorkerOptions{Poll: 50 * time.Millisecond, Lease: 5 * time.Second}, Scheduler: SchedulerOptions{Tick: 50 * time.Millisecond},
		Health: HealthOptions{Interval: time.Hour}})
	mustNoErr(t, "new", err)
	t.Cleanup(func() { e.Close() })
	startEngine(t, e)
	return e
}

// waitSync waits for sync execution id to finish and returns it.
func waitSync(t *testing.T, e *Engine, id string) *SyncExecution {
	t.Helper()
	var x *SyncExecution
	waitFor(t, "sync execution "+id, func() bool {
		var err error
		x, err = e.Store().GetSyncExecution(t.Context(), id)
		return err == nil && x.Status.Terminal()
	})
	return x
}

func TestCreateSyncJobNamesTheBadField(t *testing.T) {
	ctx := t.Context()
	e, err := newEngine(ctx, Config{DataDir: t.TempDir(), DatabaseURL: sqliteTestURL(t), SecretKey: testKey, Logger: discardLogger})
	mustNoErr(t, "new", err)
	defer e.Close()
	f := newSyncFixture(t, e, SyncJob{})
	dir := filepath.Dir(f.src.Path)
	alias := &Datasource{Name: "app again", Type: "sqlite", Path: filepath.Join(dir, "x", "..", "app.db")}
	mustNoErr(t, "alias", e.CreateDatasource(ctx, alias, ""))
	pgA := &Datasource{Name: "pg a", Type: "postgres", Host: "127.0.0.1", Database: "app"}
	pgB := &Datasource{Name: "pg b", Type: "postgres", Host: "localhost", Port: 5432, Database: "app", Username: "other"}
	files := &Datasource{Name: "uploads", Type: "files", Path: dir}
	for _, ds := range []*Datasource{pgA, pgB, files} {
		mustNoErr(t, "datasource", e.CreateDatasource(ctx, ds, ""))
	}
	for _, c := range []struct {
		name   string
		change func(j *SyncJob)
		want   string
	}{
		{"no name", func(j *SyncJob) { j.Name = "" }, "name is empty"},
		{"missing source", func(j *SyncJob) { j.SourceDatasourceID = "nope" }, "source_datasource_id"},
		{"no source", func(j *SyncJob) { j.SourceDatasourceID = "" }, "source_datasource_id"},
		{"missing target", func(j *SyncJob) { j.TargetDatasourceID = "nope" }, "target_datasource_id"},
		{"target is source", func(j *SyncJob) { j.TargetDatasourceID = j.SourceDatasourceID }, "target_datasource_id is the source"},
		{"other type", func(j *SyncJob) { j.TargetDatasourceID = files.ID }, "target_datasource_id: datasource \"uploads\" is of type files"},
		{"same file", func(j *SyncJob) { j.TargetDatasourceID = alias.ID }, "target_datasource_id: datasource \"app again\" connects to the same database"},
		{"same server database", func(j *SyncJob) { j.SourceDatasourceID, j.TargetDatasourceID = pgA.ID, pgB.ID }, "connects to the same database"},
		{"no storage", func(j *SyncJob) { j.StorageLocationID = "" }, "storage_location_id is empty"},
		{"missing storage", func(j *SyncJob) { j.StorageLocationID = "nope" }, "storage_location_id \"nope\""},
		{"bad schedule", func(j *SyncJob) { j.Schedule = "every day" }, "schedule \"every day\""},
		{"bad timezone", func(j *SyncJob) { j.Schedule, j.Timezone = "@daily", "Mars/Olympus" }, "timezone \"Mars/Olympus\""},
		{"timezone alone", func(j *SyncJob) { j.Timezone = "UTC" }, "timezone \"UTC\" without a schedule"},
	} {
		t.Run(c.name, func(t *testing.T) {
			j := SyncJob{Name: "bad", SourceDatasourceID: f.src.ID, TargetDatasourceID: f.tgt.ID, StorageLocationID: f.loc.ID}
			c.change(&j)
			err := e.CreateSyncJob(ctx, &j)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("CreateSyncJob = %v; want ErrInvalid naming %q", err, c.want)
			}
		})
	}
	jobs, err := e.Store().ListSyncJobs(ctx)
	mustNoErr(t, "list", err)
	if len(jobs) != 1 {
		t.Fatalf("%d sync jobs stored; want only the fixture's", len(jobs))
	}

	// A valid scheduled job starts enabled with its next run computed.
	j := &SyncJob{Name: "nightly", SourceDatasourceID: f.src.ID, TargetDatasourceID: f.tgt.ID, StorageLocationID: f.loc.ID,
		Schedule: "30 3 * * *", Timezone: "America/Sao_Paulo"}
	mustNoErr(t, "create", e.CreateSyncJob(ctx, j))
	got, err := e.Store().GetSyncJob(ctx, j.ID)
	mustNoErr(t, "get", err)
	sp, _ := time.LoadLocation("America/Sao_Paulo")
	if !got.Enabled || got.NextExecutionAt == nil || !got.NextExecutionAt.After(time.Now()) ||
		got.NextExecutionAt.In(sp).Hour() != 3 || got.NextExecutionAt.In(sp).Minute() != 30 {
		t.Fatalf("created sync job = %+v; want enabled, next run at 03:30 São Paulo", got)
	}
	if f.job.NextExecutionAt != nil {
		t.Fatalf("unscheduled sync job has next_execution_at %v", f.job.NextExecutionAt)
	}
	got.Enabled = false
	mustNoErr(t, "update", e.Store().UpdateSyncJob(ctx, got, "enabled"))
	if again, _ := e.Store().GetSyncJob(ctx, j.ID); again.Enabled {
		t.Fatal("update of enabled was not stored")
	}
}

// A started engine runs "run now" syncs through the queue: the target ends
// up with the source's data, through a backup and a restore that are
// linked, logged and notified; the backup job behind it is made once.
func TestRunSyncNowCopiesSourceIntoTarget(t *testing.T) {
	ctx := t.Context()
	e := newStartedEngine(t, sqliteTestURL(t))
	f := newSyncFixture(t, e, SyncJob{})
	events, unsubscribe := e.Events().Subscribe(256)
	defer unsubscribe()
	want := digest(t, f.src.Path)
	if digest(t, f.tgt.Path) == want {
		t.Fatal("target starts equal to the source")
	}

	var runs []*SyncExecution
	for i := range 2 {
		x, err := e.RunSyncNow(ctx, e.Queue(), f.job.ID)
		mustNoErr(t, "run now", err)
		if x.Status != ExecutionQueued {
			t.Fatalf("RunSyncNow returned status %s; want queued", x.Status)
		}
		x = waitSync(t, e, x.ID)
		if x.Status != ExecutionCompleted || x.ErrorMessage != "" || x.StartedAt == nil || x.FinishedAt == nil {
			logs, _ := e.SyncExecutionLogs(ctx, x.ID)
			t.Fatalf("run %d: sync execution = %+v\n%v", i, x, logs)
		}
		if got := digest(t, f.tgt.Path); got != want {
			t.Fatalf("run %d: target holds %s; want the source's %s", i, got, want)
		}
		runs = append(runs, x)
	}

	x := runs[0]
	backup, err := e.Store().GetExecution(ctx, x.BackupExecutionID)
	mustNoErr(t, "backup execution", err)
	restore, err := e.Store().GetExecution(ctx, x.RestoreExecutionID)
	mustNoErr(t, "restore execution", err)
	if backup.Operation != OperationBackup || backup.Status != ExecutionCompleted || backup.DatasourceID != f.src.ID {
		t.Fatalf("backup execution = %+v", backup)
	}
	if restore.Operation != OperationRestore || restore.Status != ExecutionCompleted || restore.SourceExecutionID != backup.ID {
		t.Fatalf("restore execution = %+v", restore)
	}
	bjob, err := e.Store().GetBackupJob(ctx, backup.JobID)
	mustNoErr(t, "backup job", err)
	if bjob.Name != SyncBackupJobName(f.job.ID) || bjob.Retention != SyncBackupRetention ||
		len(bjob.StorageLocationIDs) != 1 || bjob.StorageLocationIDs[0] != f.loc.ID || bjob.Schedule != "" {
		t.Fatalf("backup job behind the sync = %+v", bjob)
	}
	if b2, _ := e.Store().GetExecution(ctx, runs[1].BackupExecutionID); b2 == nil || b2.JobID != bjob.ID {
		t.Fatal("the second sync did not reuse the sync's backup job")
	}
	all, err := e.Store().ListBackupJobs(ctx)
	mustNoErr(t, "backup jobs", err)
	if len(all) != 1 {
		t.Fatalf("%d backup jobs; want the one behind the sync", len(all))
	}

	logs, err := e.SyncExecutionLogs(ctx, x.ID)
	mustNoErr(t, "sync logs", err)
	var text strings.Builder
	for _, l := range logs {
		text.WriteString(l.Message + "\n")
	}
	for _, s := range []string{"[SYNC] sync job \"app → staging\"", "[BACKUP] backup completed", "[SYNC] backup of \"app\" completed: restoring it into target \"app staging\"",
		"[RESTORE] restore completed", "[SYNC] sync completed"} {
		if !strings.Contains(text.String(), s) {
			t.Fatalf("sync logs lack %q:\n%s", s, text.String())
		}
	}

	list, err := e.Store().ListSyncExecutions(ctx, f.job.ID, 0, 0)
	mustNoErr(t, "list executions", err)
	if len(list) != 2 || list[0].ID != runs[1].ID || list[1].ID != runs[0].ID {
		t.Fatalf("ListSyncExecutions = %d rows; want both runs, newest first", len(list))
	}
	notes, err := e.Store().ListNotifications(ctx, NotificationFilter{Type: "sync_completed"})
	mustNoErr(t, "notifications", err)
	if len(notes) != 2 || notes[0].Severity != SeverityInfo || notes[0].EntityType != "sync_execution" {
		t.Fatalf("sync_completed notifications = %+v", notes)
	}
	// The sync's own backup and restore steps are not notified apart.
	allNotes, err := e.Store().ListNotifications(ctx, NotificationFilter{})
	mustNoErr(t, "all notifications", err)
	if len(allNotes) != len(notes) {
		t.Errorf("%d notifications for 2 sync runs, want only the 2 sync_completed: %+v", len(allNotes), allNotes)
	}
	var statuses []string
	for len(events) > 0 {
		ev := <-events
		if ev.EntityID == x.ID {
			statuses = append(statuses, ev.Status)
		}
	}
	if s := strings.Join(statuses, ","); !strings.HasPrefix(s, "queued,running") || !strings.HasSuffix(s, "completed") {
		t.Fatalf("events of the sync execution: %s; want queued, running, …, completed", s)
	}

	// The scheduler runs a due sync job once, and moves its schedule on.
	past := e.now().Add(-10 * time.Minute).Truncate(time.Second)
	f.job.Schedule, f.job.NextExecutionAt = "*/5 * * * *", &past
	mustNoErr(t, "make due", e.Store().UpdateSyncJob(ctx, f.job, "schedule", "next_execution_at"))
	waitFor(t, "the scheduled sync", func() bool {
		xs, _ := e.Store().ListSyncExecutions(ctx, f.job.ID, -1, 0)
		return len(xs) == 3 && xs[0].Status == ExecutionCompleted
	})
	time.Sleep(300 * time.Millisecond) // a few more scheduler ticks
	if xs, _ := e.Store().ListSyncExecutions(ctx, f.job.ID, -1, 0); len(xs) != 3 {
		t.Fatalf("%d sync executions; want 2 manual and 1 scheduled", len(xs))
	}
	job, err := e.Store().GetSyncJob(ctx, f.job.ID)
	mustNoErr(t, "get job", err)
	if job.NextExecutionAt == nil || !job.NextExecutionAt.After(e.now()) || job.LastExecutionAt == nil {
		t.Fatalf("sync job after its scheduled run: next %v, last %v", job.NextExecutionAt, job.LastExecutionAt)
	}
}

// When the source cannot be backed up the sync fails, says why, and the
// target is left as it was.
func TestSyncWithFailingSourceLeavesTargetAlone(t *testing.T) {
	ctx := t.Context()
	e := newStartedEngine(t, sqliteTestURL(t))
	f := newSyncFixture(t, e, SyncJob{})
	mustNoErr(t, "break source", os.WriteFile(f.src.Path, []byte("this is not a database, just some text long enough to look like a header"), 0o600))
	for _, p := range []string{f.src.Path + "-wal", f.src.Path + "-shm"} {
		os.Remove(p)
	}
	before := digest(t, f.tgt.Path)

	x, err := e.RunSyncNow(ctx, e.Queue(), f.job.ID)
	mustNoErr(t, "run now", err)
	x = waitSync(t, e, x.ID)
	if x.Status != ExecutionFailed || !strings.Contains(x.ErrorMessage, `backup of source "app"`) || x.RestoreExecutionID != "" {
		t.Fatalf("sync execution = %+v; want failed in the backup, no restore", x)
	}
	if got := digest(t, f.tgt.Path); got != before {
		t.Fatalf("target changed: %s, was %s", got, before)
	}
	backup, err := e.Store().GetExecution(ctx, x.BackupExecutionID)
	mustNoErr(t, "backup", err)
	if backup.Status != ExecutionFailed {
		t.Fatalf("backup execution status %s; want failed", backup.Status)
	}
	restores, err := e.Store().ListExecutions(ctx, ExecutionFilter{Operation: OperationRestore})
	mustNoErr(t, "restores", err)
	if len(restores) != 0 {
		t.Fatalf("%d restores ran", len(restores))
	}
	notes, err := e.Store().ListNotifications(ctx, NotificationFilter{Type: "sync_failed"})
	mustNoErr(t, "notifications", err)
	if len(notes) != 1 || notes[0].Severity != SeverityCritical || notes[0].EntityID != x.ID {
		t.Fatalf("sync_failed notifications = %+v", notes)
	}
	if all, _ := e.Store().ListNotifications(ctx, NotificationFilter{}); len(all) != 1 {
		t.Errorf("%d notifications for one failed sync, want only sync_failed: %+v", len(all), all)
	}
	if l := logText(t, e, backup.ID); !strings.Contains(l, "[SYNC] sync failed: backup of source") {
		t.Fatalf("backup log:\n%s", l)
	}
}

// A PostgreSQL database synced into another through pg_dump/pg_restore:
// the target's own table is replaced by the source's.
func TestSyncPostgresIntoPostgres(t *testing.T) {
	ctx := t.Context()
	newDB := func(name string) (*Datasource, drivers.Source, *sql.DB) {
		dsn := testsvc.NewPostgresDatabase(t)
		src, err := drivers.ParseDSN("postgres", dsn)
		mustNoErr(t, "parse dsn", err)
		db, err := sql.Open("pg", dsn)
		mustNoErr(t, "open", err)
		t.Cleanup(func() { db.Close() })
		return &Datasource{Name: name, Type: "postgres", Host: src.Host, Port: src.Port, Database: src.Database,
			Username: src.Username, Options: src.Options}, src, db
	}
	srcDS, src, srcDB := newDB("orders")
	tgtDS, tgt, tgtDB := newDB("orders copy")
	for _, q := range []string{
		`CREATE TABLE orders (id serial PRIMARY KEY, city text, total numeric(10,2))`,
		`INSERT INTO orders (city, total) SELECT 'São Paulo ' || g, g / 7.0 FROM generate_series(1, 2000) g`,
	} {
		if _, err := srcDB.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, q := range []string{
		`CREATE TABLE orders (id serial PRIMARY KEY, city text, total numeric(10,2))`,
		`INSERT INTO orders (city, total) VALUES ('stale', 1)`,
	} {
		if _, err := tgtDB.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	e := newStartedEngine(t, sqliteTestURL(t))
	mustNoErr(t, "source", e.CreateDatasource(ctx, srcDS, src.Password))
	mustNoErr(t, "target", e.CreateDatasource(ctx, tgtDS, tgt.Password))
	loc := &StorageLocation{Name: "disk", Type: "local", Config: map[string]string{"path": t.TempDir()}}
	mustNoErr(t, "storage", e.CreateStorageLocation(ctx, loc))
	job := &SyncJob{Name: "orders → copy", SourceDatasourceID: srcDS.ID, TargetDatasourceID: tgtDS.ID, StorageLocationID: loc.ID}
	mustNoErr(t, "sync job", e.CreateSyncJob(ctx, job))

	x, err := e.RunSyncNow(ctx, e.Queue(), job.ID)
	mustNoErr(t, "run now", err)
	if x = waitSync(t, e, x.ID); x.Status != ExecutionCompleted {
		logs, _ := e.SyncExecutionLogs(ctx, x.ID)
		t.Fatalf("sync execution = %+v\n%v", x, logs)
	}
	const q = `SELECT count(*), sum(total)::text, min(city) FROM orders`
	var n1, n2 int
	var s1, s2, c1, c2 string
	mustNoErr(t, "source query", srcDB.QueryRowContext(ctx, q).Scan(&n1, &s1, &c1))
	mustNoErr(t, "target query", tgtDB.QueryRowContext(ctx, q).Scan(&n2, &s2, &c2))
	if n1 != 2000 || n1 != n2 || s1 != s2 || c1 != c2 {
		t.Fatalf("target holds %d/%s/%q; source %d/%s/%q", n2, s2, c2, n1, s1, c1)
	}
}

// Several processes sharing one PostgreSQL enqueue each due sync time
// exactly once, and a sync job overdue for a day runs once.
func TestDueSyncsEnqueuedOnceAcrossProcesses(t *testing.T) {
	ctx := t.Context()
	engines := enginesOnOnePostgres(t, 3)
	f := newSyncFixture(t, engines[0], SyncJob{})
	const jobs = 30
	past := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	for i := range jobs {
		j := &SyncJob{Name: "due", SourceDatasourceID: f.src.ID, TargetDatasourceID: f.tgt.ID, StorageLocationID: f.loc.ID, Schedule: "0 * * * *"}
		mustNoErr(t, "job", engines[0].CreateSyncJob(ctx, j))
		j.NextExecutionAt = &past
		if i%2 == 0 {
			older := past.Add(-24 * time.Hour) // long overdue: still one run
			j.NextExecutionAt = &older
		}
		mustNoErr(t, "due", engines[0].Store().UpdateSyncJob(ctx, j, "next_execution_at"))
	}
	raceEnqueue(t, engines, jobs, (*Engine).EnqueueDueSyncs)
	sjobs, err := engines[1].Store().ListSyncJobs(ctx)
	mustNoErr(t, "list jobs", err)
	for _, j := range sjobs {
		xs, err := engines[1].Store().ListSyncExecutions(ctx, j.ID, -1, 0)
		mustNoErr(t, "list executions", err)
		want := 1
		if j.ID == f.job.ID {
			want = 0 // not scheduled
		} else if j.NextExecutionAt == nil || !j.NextExecutionAt.After(time.Now()) {
			t.Fatalf("sync job %s next_execution_at %v; want the next hour", j.ID, j.NextExecutionAt)
		}
		if len(xs) != want {
			t.Fatalf("sync job %s has %d executions; want %d", j.ID, len(xs), want)
		}
		if want == 1 && xs[0].Status != ExecutionQueued {
			t.Fatalf("scheduled sync execution status %s; want queued", xs[0].Status)
		}
	}
	st, err := engines[2].Queue().Stats(ctx)
	mustNoErr(t, "stats", err)
	if st.Depth != jobs {
		t.Fatalf("queue depth %d; want %d", st.Depth, jobs)
	}
	if n, err := engines[0].EnqueueDueBackups(ctx, engines[0].Queue(), jobs); err != nil || n != 0 {
		t.Fatalf("EnqueueDueBackups = %d, %v; want nothing due", n, err)
	}
}

// A sync whose process died (its task's lease expired, no attempt left) is
// failed by recovery together with its unfinished backup and restore.
func TestFailOrphanedSync(t *testing.T) {
	ctx := t.Context()
	e, err := newEngine(ctx, Config{DataDir: t.TempDir(), DatabaseURL: sqliteTestURL(t), SecretKey: testKey, Logger: discardLogger})
	mustNoErr(t, "new", err)
	defer e.Close()
	f := newSyncFixture(t, e, SyncJob{})
	x, err := e.RunSyncNow(ctx, e.Queue(), f.job.ID)
	mustNoErr(t, "run now", err)
	bjob, err := e.syncBackupJob(ctx, f.job, f.src)
	mustNoErr(t, "backup job", err)
	backup := &Execution{JobID: bjob.ID, DatasourceID: f.src.ID, Operation: OperationBackup, Status: ExecutionCompleted}
	mustNoErr(t, "backup", e.Store().CreateExecution(ctx, backup))
	restore := &Execution{JobID: bjob.ID, DatasourceID: f.src.ID, Operation: OperationRestore, Status: ExecutionRunning, SourceExecutionID: backup.ID}
	mustNoErr(t, "restore", e.Store().CreateExecution(ctx, restore))
	x.Status, x.BackupExecutionID = ExecutionRunning, backup.ID
	mustNoErr(t, "running", e.Store().UpdateSyncExecution(ctx, x))

	mustNoErr(t, "fail orphaned", e.failOrphanedSync(ctx, x.ID, LeaseExpiredReason))
	got, err := e.Store().GetSyncExecution(ctx, x.ID)
	mustNoErr(t, "get", err)
	if got.Status != ExecutionFailed || got.ErrorMessage != LeaseExpiredReason || got.RestoreExecutionID != restore.ID || got.FinishedAt == nil {
		t.Fatalf("sync execution = %+v", got)
	}
	if r, _ := e.Store().GetExecution(ctx, restore.ID); r.Status != ExecutionFailed {
		t.Fatalf("restore left %s", r.Status)
	}
	if b, _ := e.Store().GetExecution(ctx, backup.ID); b.Status != ExecutionCompleted {
		t.Fatalf("completed backup became %s", b.Status)
	}
	mustNoErr(t, "again", e.failOrphanedSync(ctx, x.ID, "other")) // finished: left alone
	if again, _ := e.Store().GetSyncExecution(ctx, x.ID); again.ErrorMessage != LeaseExpiredReason {
		t.Fatalf("a finished sync execution was rewritten: %+v", again)
	}
}
