package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/sqlite"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// stoppedDriver is the sqlite driver whose Dump fails the way a pipeline
// stage stopped by a failing sibling does: with an error that wraps
// context.Canceled while the run's own context is alive.
type stoppedDriver struct{ *sqlite.Driver }

func (stoppedDriver) Dump(context.Context, drivers.Source, io.Writer, *drivers.DumpOptions) (drivers.Metadata, error) {
	return drivers.Metadata{}, fmt.Errorf("dump: count rows: permission denied for table t; pg_dump: %w", context.Canceled)
}

// checkFailedNotCancelled fails t unless execution exec is recorded as
// failed with want in its error, its retry is queued and nothing calls it
// cancelled.
func checkFailedNotCancelled(t *testing.T, e *Engine, exec *Execution, want string) {
	t.Helper()
	got := mustGet(t, e, exec.ID)
	if got.Status != ExecutionFailed || !strings.Contains(got.ErrorMessage, want) {
		t.Fatalf("execution %s (%q); want failed with %q", got.Status, got.ErrorMessage, want)
	}
	if _, err := e.store.GetExecution(t.Context(), retryRunID(exec.ID)); err != nil {
		t.Fatalf("no retry queued for the failure: %v", err)
	}
	if n := failedNotification(t, e, exec.ID); strings.Contains(n.Title, "cancelled") || !strings.Contains(n.Message, want) {
		t.Fatalf("notified %q: %q; want a failure naming %q", n.Title, n.Message, want)
	}
	if log := logText(t, e, exec.ID); strings.Contains(log, "backup cancelled") {
		t.Fatalf("the log calls the failure a cancellation:\n%s", log)
	}
}

// A dump error that wraps context.Canceled while the run's own context is
// alive is a failure (retried), not a cancellation; cancelling the run's
// context still records a cancellation.
func TestDumpFailureWrappingCanceledIsFailed(t *testing.T) {
	reg := &drivers.Registry{}
	reg.Register(stoppedDriver{sqlite.New()})
	e := newSQLiteEngine(t, Config{Drivers: reg})
	f := newFixture(t, e, BackupJob{RetryAttempts: 2, RetryDelaySeconds: 10})
	exec, err := e.RunBackup(t.Context(), f.job.ID)
	if err == nil {
		t.Fatal("backup succeeded")
	}
	checkFailedNotCancelled(t, e, exec, "permission denied for table t")

	exec, err = e.newBackupExecution(t.Context(), f.job.ID, "")
	mustNoErr(t, "new execution", err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := e.executeBackup(ctx, exec); err == nil {
		t.Fatal("backup with a cancelled context succeeded")
	}
	if got := mustGet(t, e, exec.ID); got.Status != ExecutionCancelled {
		t.Fatalf("backup with a cancelled context: %s (%q); want cancelled", got.Status, got.ErrorMessage)
	}
}

// runDeniedBackup backs up ds (as an account that may not read table t)
// with an engine of its own and checks that the execution failed with
// want, not as a cancellation.
func runDeniedBackup(t *testing.T, ds *Datasource, want string) {
	t.Helper()
	e := newSQLiteEngine(t, Config{})
	ctx := t.Context()
	mustNoErr(t, "datasource", e.CreateDatasource(ctx, ds, ""))
	loc := &StorageLocation{Name: "disk", Type: "local", Config: map[string]string{"path": t.TempDir()}}
	mustNoErr(t, "storage", e.CreateStorageLocation(ctx, loc))
	job := &BackupJob{Name: ds.Type, DatasourceID: ds.ID, StorageLocationIDs: []string{loc.ID}, Compression: "zstd", RetryAttempts: 2, RetryDelaySeconds: 10}
	mustNoErr(t, "job", e.CreateBackupJob(ctx, job))
	exec, err := e.RunBackup(ctx, job.ID)
	if err == nil {
		t.Fatal("backup by an account without SELECT on t succeeded")
	}
	if errors.Is(err, context.Canceled) {
		t.Errorf("backup error reads as a cancellation: %v", err)
	}
	checkFailedNotCancelled(t, e, exec, want)
}

// A mariadb-dump that fails because the account may not read a table is
// recorded as failed with the tool's message, and retried.
func TestMariaDBDumpPermissionDeniedFails(t *testing.T) {
	name := testsvc.NewMySQLDatabase(t)
	cfg := testsvc.MySQLConfig(t)
	host, port, _ := strings.Cut(cfg.Addr, ":")
	user := "dg_u" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	root := testsvc.OpenMySQL(t, name)
	for _, q := range []string{"CREATE TABLE t (x INT)", "INSERT INTO t VALUES (1)", "CREATE USER '" + user + "'@'%'",
		"GRANT INSERT ON `" + name + "`.`t` TO '" + user + "'@'%'"} { // t is visible to the dump, not readable
		_, err := root.ExecContext(t.Context(), q)
		mustNoErr(t, q, err)
	}
	t.Cleanup(func() {
		if _, err := testsvc.OpenMySQL(t, "").Exec("DROP USER IF EXISTS '" + user + "'@'%'"); err != nil {
			t.Errorf("drop user %s: %v", user, err)
		}
	})
	runDeniedBackup(t, &Datasource{Name: "maria", Type: "mariadb", Host: host, Port: atoi(port), Database: name, Username: user},
		"SELECT command denied")
}

// A pg_dump that fails because the role may not read a table is recorded
// as failed with the server's message, and retried.
func TestPostgresDumpPermissionDeniedFails(t *testing.T) {
	dsn := testsvc.NewPostgresDatabase(t)
	src, err := drivers.ParseDSN("postgres", dsn)
	mustNoErr(t, "parse dsn", err)
	db, err := sql.Open("pg", dsn)
	mustNoErr(t, "open", err)
	t.Cleanup(func() { db.Close() }) // after the role is dropped
	role := "dg_role_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	for _, q := range []string{`CREATE TABLE t (x int)`, `INSERT INTO t VALUES (1)`, `CREATE ROLE ` + role + ` LOGIN`} {
		_, err := db.ExecContext(t.Context(), q)
		mustNoErr(t, q, err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), `DROP ROLE IF EXISTS `+role); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})

	runDeniedBackup(t, &Datasource{Name: "pg", Type: "postgres", Host: src.Host, Port: src.Port, Database: src.Database, Username: role, Options: src.Options},
		"permission denied for table t")
}
