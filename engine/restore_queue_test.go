package engine

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/engine/internal/storedb"
	"github.com/dataguardian/dataguardian/internal/testsvc"
	"github.com/dataguardian/dataguardian/manifest"
)

// restoreTestConfig is an engine configuration whose workers react within tens
// of milliseconds.
func restoreTestConfig(t *testing.T, url string) Config {
	return Config{DataDir: t.TempDir(), DatabaseURL: url, Logger: discardLogger,
		Worker: WorkerOptions{Poll: 50 * time.Millisecond, Lease: 5 * time.Second}, Scheduler: SchedulerOptions{Tick: 50 * time.Millisecond},
		Health: HealthOptions{Interval: time.Hour}}
}

// forEachStartableEngine is forEachEngine with restoreTestConfig engines.
func forEachStartableEngine(t *testing.T, fn func(t *testing.T, e *Engine)) {
	t.Helper()
	forEachStoreURL(t, func(t *testing.T, url string) {
		e, err := newEngine(t.Context(), restoreTestConfig(t, url))
		mustNoErr(t, "new", err)
		t.Cleanup(func() { e.Close() })
		fn(t, e)
	})
}

// waitRestoreDone waits until execution id is terminal and returns it.
func waitRestoreDone(t *testing.T, e *Engine, id string) *Execution {
	t.Helper()
	var x *Execution
	waitFor(t, "execution "+id+" to finish", func() bool {
		var err error
		x, err = e.Store().GetExecution(t.Context(), id)
		return err == nil && x.Status.Terminal()
	})
	return x
}

// listRestoreExecutions lists the restore and verify executions.
func listRestoreExecutions(t *testing.T, e *Engine) []Execution {
	t.Helper()
	var out []Execution
	for _, op := range []Operation{OperationRestore, OperationVerify} {
		xs, err := e.Store().ListExecutions(t.Context(), ExecutionFilter{Operation: op, Limit: -1})
		mustNoErr(t, "list", err)
		out = append(out, xs...)
	}
	return out
}

// findNotification returns the notification of type typ about entityID.
// The engine records a run's notification after its final status, so a
// test that saw the status may look before it is there: it waits up to 10 s.
func findNotification(t *testing.T, e *Engine, typ, entityID string) *Notification {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		notes, err := e.Store().ListNotifications(t.Context(), NotificationFilter{Type: typ, Limit: -1})
		mustNoErr(t, "notifications", err)
		for i := range notes {
			if notes[i].EntityID == entityID {
				return &notes[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s notification for %s among %+v", typ, entityID, notes)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A request without the right phrase, or with unusable options, is refused
// and queues nothing.
func TestRequestRestoreRefusals(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{Compression: "gzip"})
		backup, err := e.RunBackup(ctx, f.job.ID)
		mustNoErr(t, "backup", err)
		sqliteTarget := &drivers.Source{Type: "sqlite", Path: filepath.Join(t.TempDir(), "x.db")}

		for _, c := range []struct {
			name   string
			req    RestoreRequest
			is     error
			naming string
		}{
			{"missing phrase", RestoreRequest{}, ErrConfirmation, `"RESTAURAR"`},
			{"lower case", RestoreRequest{ConfirmationPhrase: "restaurar"}, ErrConfirmation, `"RESTAURAR"`},
			{"verify phrase for a restore", RestoreRequest{ConfirmationPhrase: ConfirmVerify}, ErrConfirmation, `"RESTAURAR"`},
			{"restore phrase for a verification", RestoreRequest{ConfirmationPhrase: ConfirmRestore, VerificationMode: true}, ErrConfirmation, `"VERIFICAR RESTORE"`},
			{"verification without a Verifier", RestoreRequest{ConfirmationPhrase: ConfirmVerify, VerificationMode: true}, ErrInvalid, "sqlite driver"},
			{"keep without verification", RestoreRequest{ConfirmationPhrase: ConfirmRestore, KeepVerificationDatabase: true}, ErrInvalid, "keep_verification_database"},
			{"safety backup with a target", RestoreRequest{ConfirmationPhrase: ConfirmRestore, SafetyBackup: true, Target: sqliteTarget}, ErrInvalid, "safety_backup"},
			{"target of another type", RestoreRequest{ConfirmationPhrase: ConfirmRestore, Target: &drivers.Source{Type: "postgres", Host: "h"}}, ErrInvalid, `"postgres"`},
			{"unknown storage", RestoreRequest{ConfirmationPhrase: ConfirmRestore, StorageLocationID: "nope"}, ErrInvalid, "storage_location_id"},
		} {
			c.req.ExecutionID = backup.ID
			x, err := e.RequestRestore(ctx, e.Queue(), c.req)
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.naming) || x != nil {
				t.Errorf("%s: RequestRestore = %v, %v; want %v naming %s", c.name, x, err, c.is, c.naming)
			}
		}
		if _, err := e.RequestRestore(ctx, nil, RestoreRequest{ExecutionID: "00000000-0000-0000-0000-000000000000", ConfirmationPhrase: ConfirmRestore}); !errors.Is(err, ErrNotFound) {
			t.Errorf("request for a missing backup: %v", err)
		}
		if xs := listRestoreExecutions(t, e); len(xs) != 0 {
			t.Fatalf("refused requests recorded %d executions", len(xs))
		}
		st, err := e.Queue().Stats(ctx)
		mustNoErr(t, "stats", err)
		if st.Depth != 0 || st.Scheduled != 0 {
			t.Fatalf("refused requests queued tasks: %+v", st)
		}

		// A restore execution is not a backup to restore.
		rexec, err := e.Restore(ctx, backup.ID, *sqliteTarget, nil)
		mustNoErr(t, "restore", err)
		if _, err := e.RequestRestore(ctx, nil, RestoreRequest{ExecutionID: rexec.ID, ConfirmationPhrase: ConfirmRestore}); !errors.Is(err, ErrNotRestorable) {
			t.Fatalf("request to restore a restore: %v", err)
		}
	})
}

// A requested restore runs through a started engine's worker and restores
// the data exactly; the target's password never lands in the metadata in
// clear.
func TestQueuedRestoreThroughStartedEngine(t *testing.T) {
	t.Parallel()
	forEachStartableEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{Compression: "zstd", MaxFileSizeMB: 1})
		backup, err := e.RunBackup(ctx, f.job.ID)
		mustNoErr(t, "backup", err)
		startEngine(t, e)

		const secret = "s3cret-target-pw"
		target := filepath.Join(t.TempDir(), "restored.db")
		x, err := e.RequestRestore(ctx, e.Queue(), RestoreRequest{ExecutionID: backup.ID, ConfirmationPhrase: " RESTAURAR ",
			Target: &drivers.Source{Type: "sqlite", Path: target, Password: secret}, StorageLocationID: f.job.StorageLocationIDs[1], RequestedBy: "ana"})
		mustNoErr(t, "request", err)
		if x.Status != ExecutionQueued || x.Operation != OperationRestore || x.SourceExecutionID != backup.ID {
			t.Fatalf("requested execution = %+v", x)
		}
		got := waitRestoreDone(t, e, x.ID)
		if got.Status != ExecutionCompleted || got.StartedAt == nil || got.FinishedAt == nil || got.Checksum != backup.Checksum {
			t.Fatalf("restore execution = %+v\n%s", got, logText(t, e, x.ID))
		}
		if want, have := digest(t, f.dbPath), digest(t, target); want != have {
			t.Fatalf("restored %s, want %s", have, want)
		}
		l := logText(t, e, x.ID)
		for _, want := range []string{"[RESTORE] restore of backup " + backup.ID + " requested by ana",
			"[RESTORE] verifying the copy on storage disk2", "[RESTORE] restore completed"} {
			if !strings.Contains(l, want) {
				t.Fatalf("log lacks %q:\n%s", want, l)
			}
		}
		if strings.Contains(l, "disk1") {
			t.Fatalf("the restore looked at disk1 although disk2 was chosen:\n%s", l)
		}
		if n := findNotification(t, e, "restore_completed", x.ID); !strings.Contains(n.Message, "Restore into datasource") ||
			!strings.Contains(n.Message, "from backup "+backup.ID) || !strings.Contains(n.Message, "completed in ") {
			t.Errorf("the restore's notification says %q", n.Message)
		}

		var raw string
		mustNoErr(t, "raw metadata", e.Store().DB(storedb.Key{}).NewSelect().Table("backup_executions").ColumnExpr("CAST(metadata AS TEXT)").
			Where("id = ?", x.ID).Scan(ctx, &raw))
		if strings.Contains(raw, secret) || !strings.Contains(raw, "target_password_sealed") || !strings.Contains(raw, target) {
			t.Fatalf("stored metadata %s: want the target with its password sealed", raw)
		}
	})
}

// SafetyBackup backs up the live datasource inside the restore execution,
// before anything is restored over it.
func TestSafetyBackupBeforeRestore(t *testing.T) {
	t.Parallel()
	forEachStartableEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{Compression: "lz4"})
		backup, err := e.RunBackup(ctx, f.job.ID)
		mustNoErr(t, "backup", err)
		original := digest(t, f.dbPath)

		db, err := sql.Open("sqlite", "file:"+f.dbPath)
		mustNoErr(t, "open", err)
		mustExec(t, db, `INSERT INTO items (name, blob) VALUES ('after the backup', x'00')`)
		db.Close()
		changed := digest(t, f.dbPath)
		startEngine(t, e)

		x, err := e.RequestRestore(ctx, nil, RestoreRequest{ExecutionID: backup.ID, ConfirmationPhrase: ConfirmRestore, SafetyBackup: true})
		mustNoErr(t, "request", err)
		got := waitRestoreDone(t, e, x.ID)
		if got.Status != ExecutionCompleted {
			t.Fatalf("restore = %+v\n%s", got, logText(t, e, x.ID))
		}
		if d := digest(t, f.dbPath); d != original {
			t.Fatalf("live datasource holds %s after the rollback, want %s", d, original)
		}
		safetyID, _ := got.Metadata[metaSafetyBackup].(string)
		safety, err := e.Store().GetExecution(ctx, safetyID)
		mustNoErr(t, "safety backup "+safetyID, err)
		if safety.Operation != OperationBackup || safety.Status != ExecutionCompleted || safety.JobID != f.job.ID {
			t.Fatalf("safety backup = %+v", safety)
		}
		if safety.StartedAt.Before(*got.StartedAt) || safety.FinishedAt.After(*got.FinishedAt) {
			t.Fatalf("safety backup ran %v–%v, outside the restore %v–%v", safety.StartedAt, safety.FinishedAt, got.StartedAt, got.FinishedAt)
		}
		l := logText(t, e, x.ID)
		i, j := strings.Index(l, "[RESTORE] safety backup "+safetyID+" completed"), strings.Index(l, "[RESTORE] restoring ")
		if !strings.Contains(l, "execution "+safetyID) || i < 0 || j < i {
			t.Fatalf("log: want the safety backup's ID, then its completion before the restore:\n%s", l)
		}
		// The safety backup holds the state from before the rollback.
		before := filepath.Join(t.TempDir(), "before.db")
		_, err = e.Restore(ctx, safetyID, drivers.Source{Type: "sqlite", Path: before}, nil)
		mustNoErr(t, "restore the safety backup", err)
		if d := digest(t, before); d != changed {
			t.Fatalf("safety backup holds %s, want the pre-rollback %s", d, changed)
		}
	})
}

// A queued restore whose only copy is corrupt fails, takes no safety
// backup and leaves the target as it was.
func TestQueuedRestoreOfCorruptCopyFails(t *testing.T) {
	t.Parallel()
	forEachStartableEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{Compression: "gzip"})
		backup, err := e.RunBackup(ctx, f.job.ID)
		mustNoErr(t, "backup", err)
		corruptPart(t, f.roots[0], backup.BackupPath)
		before, err := os.ReadFile(f.dbPath)
		mustNoErr(t, "read datasource", err)
		startEngine(t, e)

		x, err := e.RequestRestore(ctx, e.Queue(), RestoreRequest{ExecutionID: backup.ID, ConfirmationPhrase: ConfirmRestore,
			StorageLocationID: f.job.StorageLocationIDs[0], SafetyBackup: true})
		mustNoErr(t, "request", err)
		got := waitRestoreDone(t, e, x.ID)
		if got.Status != ExecutionFailed || !strings.Contains(got.ErrorMessage, "target untouched") || !strings.Contains(got.ErrorMessage, "disk1") {
			t.Fatalf("restore of a corrupt copy = %+v", got)
		}
		if !strings.Contains(got.ErrorMessage, manifest.ErrChecksumMismatch.Error()) {
			t.Fatalf("error %q does not name the checksum mismatch", got.ErrorMessage)
		}
		if after, _ := os.ReadFile(f.dbPath); !bytes.Equal(before, after) {
			t.Fatal("a refused restore changed the target")
		}
		backups, err := e.Store().ListExecutions(ctx, ExecutionFilter{Operation: OperationBackup, Limit: -1})
		mustNoErr(t, "list", err)
		if len(backups) != 1 {
			t.Fatalf("%d backups; a restore refused before it started must take no safety backup", len(backups))
		}
		findNotification(t, e, "restore_failed", x.ID)
	})
}

// A backup that retention deleted while its restore waited fails the
// restore when it runs.
func TestQueuedRestoreOfBackupDeletedMeanwhile(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{Compression: "gzip"})
		backup, err := e.RunBackup(ctx, f.job.ID)
		mustNoErr(t, "backup", err)
		x, err := e.RequestRestore(ctx, e.Queue(), RestoreRequest{ExecutionID: backup.ID, ConfirmationPhrase: ConfirmRestore})
		mustNoErr(t, "request", err)

		backup.Metadata[metaRetentionDeleted] = e.now()
		mustNoErr(t, "mark deleted", e.Store().UpdateExecution(ctx, backup, "metadata"))
		x, err = e.Store().GetExecution(ctx, x.ID)
		mustNoErr(t, "reload", err)
		if err := e.executeRestore(ctx, x); !errors.Is(err, ErrNotRestorable) {
			t.Fatalf("executeRestore = %v", err)
		}
		x, _ = e.Store().GetExecution(ctx, x.ID)
		if x.Status != ExecutionFailed || !strings.Contains(x.ErrorMessage, "retention deleted") {
			t.Fatalf("execution = %+v", x)
		}
	})
}

func TestMarkRestored(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{Compression: "gzip"})
		backup, err := e.RunBackup(ctx, f.job.ID)
		mustNoErr(t, "backup", err)

		at := time.Date(2025, 2, 13, 10, 30, 0, 0, time.UTC)
		const reason = "Rollback após deploy com bug na migração de dados"
		x, err := e.MarkRestored(ctx, backup.ID, at, "operador", reason)
		mustNoErr(t, "mark restored", err)
		got, err := e.Store().GetExecution(ctx, backup.ID)
		mustNoErr(t, "get", err)
		if got.RestoredAt == nil || !got.RestoredAt.Equal(at) || got.RestoredBy != "operador" || got.RestoreReason != reason ||
			got.Status != ExecutionCompleted || x.RestoredBy != "operador" {
			t.Fatalf("backup after mark-restored = %+v", got)
		}
		n := findNotification(t, e, "restore_completed", backup.ID)
		if n.Severity != SeverityInfo || !strings.Contains(n.Message, "operador") || !strings.Contains(n.Message, reason) {
			t.Fatalf("notification = %+v", n)
		}

		for _, c := range []struct {
			id, by, reason string
			is             error
			naming         string
		}{
			{backup.ID, "", reason, ErrInvalid, "restored_by"},
			{backup.ID, "operador", "  ", ErrInvalid, "reason"},
			{"00000000-0000-0000-0000-000000000000", "operador", reason, ErrNotFound, ""},
		} {
			if _, err := e.MarkRestored(ctx, c.id, time.Time{}, c.by, c.reason); !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.naming) {
				t.Errorf("MarkRestored(%q, %q, %q) = %v; want %v naming %q", c.id, c.by, c.reason, err, c.is, c.naming)
			}
		}
		rexec, err := e.Restore(ctx, backup.ID, drivers.Source{Type: "sqlite", Path: filepath.Join(t.TempDir(), "r.db")}, nil)
		mustNoErr(t, "restore", err)
		if _, err := e.MarkRestored(ctx, rexec.ID, time.Time{}, "operador", reason); !errors.Is(err, ErrNotRestorable) {
			t.Fatalf("mark-restored of a restore execution: %v", err)
		}
	})
}

// Verification mode on a real PostgreSQL datasource restores into a
// temporary database, reports every table OK, and drops the database unless
// asked to keep it.
func TestVerificationModePostgres(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := testsvc.NewPostgresDatabase(t)
	src, err := drivers.ParseDSN("postgres", dsn)
	mustNoErr(t, "parse dsn", err)
	db, err := sql.Open("pg", dsn)
	mustNoErr(t, "open", err)
	t.Cleanup(func() { db.Close() })
	for _, q := range []string{
		`CREATE TABLE orders (id serial PRIMARY KEY, city text, total numeric(10,2))`,
		`INSERT INTO orders (city, total) SELECT 'São Paulo ' || g, g / 7.0 FROM generate_series(1, 2000) g`,
		`CREATE TABLE customers (id serial PRIMARY KEY, name text)`,
		`INSERT INTO customers (name) SELECT 'c' || g FROM generate_series(1, 300) g`,
	} {
		_, err := db.ExecContext(ctx, q)
		mustNoErr(t, q, err)
	}

	e, err := newEngine(ctx, restoreTestConfig(t, sqliteTestURL(t)))
	mustNoErr(t, "new", err)
	t.Cleanup(func() { e.Close() })
	ds := &Datasource{Name: "pg", Type: "postgres", Host: src.Host, Port: src.Port, Database: src.Database, Username: src.Username, Options: src.Options}
	mustNoErr(t, "datasource", e.CreateDatasource(ctx, ds, src.Password))
	loc := &StorageLocation{Name: "disk", Type: "local", Config: map[string]string{"path": t.TempDir()}}
	mustNoErr(t, "storage", e.CreateStorageLocation(ctx, loc))
	job := &BackupJob{Name: "pg", DatasourceID: ds.ID, StorageLocationIDs: []string{loc.ID}, Compression: "zstd"}
	mustNoErr(t, "job", e.CreateBackupJob(ctx, job))
	backup, err := e.RunBackup(ctx, job.ID)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, logText(t, e, backup.ID))
	}
	startEngine(t, e)

	exists := func(name string) bool {
		var ok bool
		mustNoErr(t, "look up "+name, db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&ok))
		return ok
	}
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			x, err := e.RequestRestore(ctx, e.Queue(), RestoreRequest{ExecutionID: backup.ID, ConfirmationPhrase: ConfirmVerify,
				VerificationMode: true, KeepVerificationDatabase: keep, RequestedBy: "qa"})
			mustNoErr(t, "request", err)
			name := verifyDatabaseName(x.ID)
			if keep {
				t.Cleanup(func() {
					_, err := db.ExecContext(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
					if err != nil {
						t.Errorf("drop %s: %v", name, err)
					}
				})
			}
			if x.Operation != OperationVerify || !strings.HasPrefix(name, "dg_verify_") || len(name) != len("dg_verify_")+8 {
				t.Fatalf("execution %+v, database %s", x, name)
			}
			got := waitRestoreDone(t, e, x.ID)
			if got.Status != ExecutionCompleted {
				t.Fatalf("verification = %+v\n%s", got, logText(t, e, x.ID))
			}
			rep, _ := got.Metadata[metaVerification].(map[string]any)
			if rep["ok"] != true || rep["database"] != name || rep["kept"] != keep || len(rep["tables"].([]any)) != 2 {
				t.Fatalf("verification report = %v", got.Metadata[metaVerification])
			}
			if exists(name) != keep {
				t.Fatalf("temporary database %s exists=%v after the verification; want %v", name, !keep, keep)
			}
			if l := logText(t, e, x.ID); !strings.Contains(l, "[RESTORE] verification passed: 2 table(s)") {
				t.Fatalf("log:\n%s", l)
			}
			findNotification(t, e, "verify_completed", x.ID)
		})
	}
	// The datasource itself was never touched.
	var n int
	mustNoErr(t, "count", db.QueryRowContext(ctx, `SELECT count(*) FROM orders`).Scan(&n))
	if n != 2000 {
		t.Fatalf("source holds %d orders", n)
	}
}
