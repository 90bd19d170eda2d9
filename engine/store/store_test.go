package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/engine/secrets"
	"github.com/dataguardian/dataguardian/internal/testcheck"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// forEachStore runs fn against a fresh SQLite store (a file in a temp dir)
// and a fresh PostgreSQL store (a new database on the test server, see
// testsvc). The PostgreSQL half skips when no server answers, unless
// DG_REQUIRE_SERVICES=1.
func forEachStore(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, openTestStore(t, sqliteTestURL(t)))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, openTestStore(t, testsvc.NewPostgresDatabase(t)))
	})
}

func sqliteTestURL(t *testing.T) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "meta.db")
}

func openTestStore(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// ts is a fixed UTC time with microsecond precision, as the store keeps it.
func ts(minute int) time.Time {
	return time.Date(2025, 2, 13, 6, minute, 1, 123456000, time.UTC)
}

func ptr[T any](v T) *T { return &v }

// mustNoErr stops the test when err is not nil (testcheck.NoErr).
var mustNoErr = testcheck.NoErr

// same fails t unless got equals want field by field (testcheck.Same).
func same[T any](t *testing.T, what string, got, want *T) {
	t.Helper()
	testcheck.Same(t, what, got, want)
}

func TestMigrationsAreIdempotent(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, url string) {
		ctx := t.Context()
		// Several processes starting at once: migrate's lock serialises them.
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				s, err := Open(ctx, url)
				if err == nil {
					err = s.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		mustNoErr(t, "concurrent OpenStore", errors.Join(errs...))

		s := openTestStore(t, url)
		mustNoErr(t, "migrate again", s.migrate(ctx))
		n, err := s.db.NewSelect().TableExpr(migrationsTable).Count(ctx)
		mustNoErr(t, "count migrations", err)
		if want := int64(len(migrations.Sorted())); n != want {
			t.Errorf("%s has %d rows, want %d", migrationsTable, n, want)
		}
		locks, err := s.db.NewSelect().TableExpr(migrationLocksTable).Count(ctx)
		mustNoErr(t, "count locks", err)
		if locks != 0 {
			t.Errorf("%s has %d rows after migrating, want 0", migrationLocksTable, locks)
		}
		// The schema works after all that.
		mustNoErr(t, "create datasource", s.CreateDatasource(ctx, &Datasource{Name: "db", Type: "sqlite"}))
	}
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); check(t, sqliteTestURL(t)) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); check(t, testsvc.NewPostgresDatabase(t)) })
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		sealer, err := secrets.NewSealer(make([]byte, 32))
		mustNoErr(t, "NewSealer", err)
		sealed, err := sealer.Seal([]byte("s3cret"))
		mustNoErr(t, "Seal", err)

		ds := &Datasource{
			Name: "Banco Produção", Type: "postgres", Host: "db.internal", Port: 5432,
			Database: "app", Username: "backup", PasswordEncrypted: sealed,
			Options: map[string]string{"sslmode": "require"}, Enabled: true,
		}
		mustNoErr(t, "CreateDatasource", s.CreateDatasource(ctx, ds))
		if ds.ID == "" || ds.CreatedAt.IsZero() || ds.Status != DatasourceUnknown {
			t.Fatalf("CreateDatasource did not fill ID, CreatedAt, Status: %+v", ds)
		}
		got, err := s.GetDatasource(ctx, ds.ID)
		mustNoErr(t, "GetDatasource", err)
		same(t, "datasource", got, ds)
		if got.LastHealthCheckAt != nil {
			t.Errorf("LastHealthCheckAt = %v, want nil", got.LastHealthCheckAt)
		}
		if pw, err := sealer.Open(got.PasswordEncrypted); err != nil || string(pw) != "s3cret" {
			t.Errorf("sealed password round trip = %q, %v", pw, err)
		}
		if b, _ := json.Marshal(got); strings.Contains(string(b), "password") {
			t.Errorf("datasource JSON exports the password: %s", b)
		}

		// Partial update: only the named columns (and updated_at) change.
		before := ds.UpdatedAt
		ds.Status, ds.LastHealthCheckAt, ds.ConsecutiveFailures = DatasourceHealthy, ptr(ts(5)), 0
		ds.Host = "not-written"
		mustNoErr(t, "UpdateDatasource", s.UpdateDatasource(ctx, ds, "status", "last_health_check_at", "consecutive_failures"))
		got, err = s.GetDatasource(ctx, ds.ID)
		mustNoErr(t, "GetDatasource", err)
		if got.Status != DatasourceHealthy || !got.LastHealthCheckAt.Equal(ts(5)) || got.Host != "db.internal" {
			t.Errorf("partial update: got status %s, last check %v, host %q", got.Status, got.LastHealthCheckAt, got.Host)
		}
		if got.UpdatedAt.Before(before) {
			t.Errorf("UpdatedAt went back: %v < %v", got.UpdatedAt, before)
		}
		// Full update.
		ds.Host = "db2.internal"
		ds.Options = nil
		mustNoErr(t, "UpdateDatasource", s.UpdateDatasource(ctx, ds))
		got, err = s.GetDatasource(ctx, ds.ID)
		mustNoErr(t, "GetDatasource", err)
		same(t, "updated datasource", got, ds)

		loc := &StorageLocation{Name: "local", Type: "local", Config: map[string]string{"path": "/var/backups"}, Enabled: true}
		mustNoErr(t, "CreateStorageLocation", s.CreateStorageLocation(ctx, loc))
		loc2 := &StorageLocation{Name: "nas", Type: "local", Config: map[string]string{"path": "/mnt/nas"}}
		mustNoErr(t, "CreateStorageLocation", s.CreateStorageLocation(ctx, loc2))
		gotLoc, err := s.GetStorageLocation(ctx, loc.ID)
		mustNoErr(t, "GetStorageLocation", err)
		same(t, "storage location", gotLoc, loc)
		loc.Enabled = false
		mustNoErr(t, "UpdateStorageLocation", s.UpdateStorageLocation(ctx, loc, "enabled"))
		locs, err := s.ListStorageLocations(ctx)
		mustNoErr(t, "ListStorageLocations", err)
		if len(locs) != 2 || locs[0].Name != "local" || locs[0].Enabled || locs[1].Name != "nas" {
			t.Errorf("ListStorageLocations = %+v", locs)
		}

		job := &BackupJob{
			Name: "nightly", DatasourceID: ds.ID, Schedule: "0 6 * * *", Timezone: "America/Sao_Paulo",
			StorageLocationIDs: []string{loc2.ID, loc.ID}, Compression: "gzip", MaxFileSizeMB: 512,
			Retention: Retention{MaxBackups: 3, AutoDelete: true, KeepDaily: 7},
			Enabled:   true, NextExecutionAt: ptr(ts(0)),
		}
		mustNoErr(t, "CreateBackupJob", s.CreateBackupJob(ctx, job))
		gotJob, err := s.GetBackupJob(ctx, job.ID)
		mustNoErr(t, "GetBackupJob", err)
		same(t, "backup job", gotJob, job)
		job.LastExecutionAt, job.NextExecutionAt = ptr(ts(0)), ptr(ts(59))
		mustNoErr(t, "UpdateBackupJob", s.UpdateBackupJob(ctx, job, "last_execution_at", "next_execution_at"))
		jobs, err := s.ListBackupJobs(ctx)
		mustNoErr(t, "ListBackupJobs", err)
		if len(jobs) != 1 {
			t.Fatalf("ListBackupJobs returned %d jobs, want 1", len(jobs))
		}
		same(t, "listed backup job", &jobs[0], job)

		exec := &Execution{
			JobID: job.ID, DatasourceID: ds.ID, StartedAt: ptr(ts(0)),
			Metadata: map[string]any{
				"execution_logs": []any{map[string]any{"level": "info", "message": "dump started"}},
				"tables":         float64(48),
			},
		}
		mustNoErr(t, "CreateExecution", s.CreateExecution(ctx, exec))
		if exec.Status != ExecutionQueued || exec.Operation != OperationBackup {
			t.Errorf("CreateExecution defaults: status %q, operation %q", exec.Status, exec.Operation)
		}
		gotExec, err := s.GetExecution(ctx, exec.ID)
		mustNoErr(t, "GetExecution", err)
		same(t, "execution", gotExec, exec)
		exec.Status, exec.FinishedAt, exec.DurationMS = ExecutionCompleted, ptr(ts(1)), 60_000
		exec.SizeBytes, exec.CompressedSizeBytes = 1<<40, 1<<38
		exec.BackupPath, exec.Checksum = job.ID+"/2025-02-13_060001", "sha256:"+strings.Repeat("ab", 32)
		exec.LeaseOwner, exec.LeaseExpiresAt, exec.Attempt = "host-1", ptr(ts(2)), 1
		mustNoErr(t, "UpdateExecution", s.UpdateExecution(ctx, exec))
		gotExec, err = s.GetExecution(ctx, exec.ID)
		mustNoErr(t, "GetExecution", err)
		same(t, "updated execution", gotExec, exec)

		restore := &Execution{DatasourceID: ds.ID, Operation: OperationRestore, SourceExecutionID: exec.ID}
		mustNoErr(t, "CreateExecution (ad-hoc restore)", s.CreateExecution(ctx, restore))
		gotExec, err = s.GetExecution(ctx, restore.ID)
		mustNoErr(t, "GetExecution", err)
		same(t, "ad-hoc restore execution", gotExec, restore)
		exec.RestoredAt, exec.RestoredBy, exec.RestoreReason = ptr(ts(30)), "ana", "rollback"
		mustNoErr(t, "mark restored", s.UpdateExecution(ctx, exec, "restored_at", "restored_by", "restore_reason"))
		gotExec, err = s.GetExecution(ctx, exec.ID)
		mustNoErr(t, "GetExecution", err)
		same(t, "restored execution", gotExec, exec)

		st := &ExecutionStorage{ExecutionID: exec.ID, StorageLocationID: loc.ID, Status: StorageUnreachable, ErrorMessage: "timeout"}
		mustNoErr(t, "SetExecutionStorage", s.SetExecutionStorage(ctx, st))
		mustNoErr(t, "SetExecutionStorage", s.SetExecutionStorage(ctx, &ExecutionStorage{ExecutionID: exec.ID, StorageLocationID: loc2.ID, Status: StorageAvailable}))
		st.Status, st.ErrorMessage = StorageAvailable, ""
		mustNoErr(t, "SetExecutionStorage (replace)", s.SetExecutionStorage(ctx, st))
		sts, err := s.ListExecutionStorages(ctx, exec.ID)
		mustNoErr(t, "ListExecutionStorages", err)
		if len(sts) != 2 {
			t.Fatalf("ListExecutionStorages returned %d rows, want 2", len(sts))
		}
		for _, got := range sts {
			if got.Status != StorageAvailable || got.ErrorMessage != "" {
				t.Errorf("storage status of %s = %q %q, want available", got.StorageLocationID, got.Status, got.ErrorMessage)
			}
			if got.StorageLocationID == loc.ID {
				same(t, "execution storage", &got, st)
			}
		}

		mustNoErr(t, "AppendExecutionLog", s.AppendExecutionLog(ctx, exec.ID, "info", "[BACKUP] started"))
		mustNoErr(t, "AppendExecutionLog", s.AppendExecutionLog(ctx, exec.ID, "error", "[BACKUP] failed: disk full"))
		logs, err := s.ExecutionLogs(ctx, exec.ID)
		mustNoErr(t, "ExecutionLogs", err)
		if len(logs) != 2 || logs[0].Message != "[BACKUP] started" || logs[1].Level != "error" || logs[0].At.IsZero() || logs[0].ID >= logs[1].ID {
			t.Errorf("ExecutionLogs = %+v", logs)
		}

		ok := &HealthCheck{DatasourceID: ds.ID, CheckedAt: ts(5), Status: HealthOK, LatencyMS: ptr(int64(12)),
			Metadata: map[string]any{"database_version": "PostgreSQL 16.1", "active_connections": float64(8)}}
		down := &HealthCheck{DatasourceID: ds.ID, CheckedAt: ts(10), Status: HealthTimeout, ErrorMessage: "Connection timed out after 5000ms"}
		mustNoErr(t, "InsertHealthCheck", s.InsertHealthCheck(ctx, ok))
		mustNoErr(t, "InsertHealthCheck", s.InsertHealthCheck(ctx, down))
		checks, err := s.ListHealthChecks(ctx, ds.ID, 10, 0)
		mustNoErr(t, "ListHealthChecks", err)
		if len(checks) != 2 {
			t.Fatalf("ListHealthChecks returned %d, want 2", len(checks))
		}
		same(t, "newest health check", &checks[0], down)
		same(t, "older health check", &checks[1], ok)
		if b, _ := json.Marshal(checks[0]); !strings.Contains(string(b), `"latency_ms":null`) {
			t.Errorf("health check JSON lacks latency_ms null: %s", b)
		}

		n1 := &Notification{Type: "connection_lost", Severity: SeverityCritical, Title: "Conexão perdida",
			Message: "Banco Produção", EntityType: "datasource", EntityID: ds.ID, CreatedAt: ts(10)}
		n2 := &Notification{Type: "connection_restored", Title: "Conexão restabelecida", EntityType: "datasource", EntityID: ds.ID, Read: true, CreatedAt: ts(20)}
		mustNoErr(t, "InsertNotification", s.InsertNotification(ctx, n1))
		mustNoErr(t, "InsertNotification", s.InsertNotification(ctx, n2))
		if n2.Severity != SeverityInfo {
			t.Errorf("default severity = %q, want info", n2.Severity)
		}
		all, err := s.ListNotifications(ctx, NotificationFilter{})
		mustNoErr(t, "ListNotifications", err)
		if len(all) != 2 {
			t.Fatalf("ListNotifications returned %d, want 2", len(all))
		}
		same(t, "newest notification", &all[0], n2)
		same(t, "older notification", &all[1], n1)
		for _, f := range []NotificationFilter{{Type: "connection_lost"}, {UnreadOnly: true}} {
			got, err := s.ListNotifications(ctx, f)
			mustNoErr(t, "ListNotifications", err)
			if len(got) != 1 || got[0].ID != n1.ID {
				t.Errorf("ListNotifications(%+v) = %+v, want only %s", f, got, n1.ID)
			}
		}

		// Settings: JSON values compared by meaning (jsonb reformats them).
		mustNoErr(t, "PutSetting", s.PutSetting(ctx, &Setting{Key: "smtp", Value: json.RawMessage(`{"host":"a","port":25}`)}))
		smtp := &Setting{Key: "smtp", Value: json.RawMessage(`{"host":"mail.example.com","port":587,"tls":true}`)}
		mustNoErr(t, "PutSetting (replace)", s.PutSetting(ctx, smtp))
		sealedPW, _ := json.Marshal(sealed)
		mustNoErr(t, "PutSetting", s.PutSetting(ctx, &Setting{Key: "smtp.password", Value: sealedPW, Encrypted: true}))
		gotSetting, err := s.GetSetting(ctx, "smtp")
		mustNoErr(t, "GetSetting", err)
		if !jsonEqual(gotSetting.Value, smtp.Value) || gotSetting.Encrypted || !gotSetting.UpdatedAt.Equal(smtp.UpdatedAt) {
			t.Errorf("GetSetting = %s %v %v, want %s", gotSetting.Value, gotSetting.Encrypted, gotSetting.UpdatedAt, smtp.Value)
		}
		gotSetting, err = s.GetSetting(ctx, "smtp.password")
		mustNoErr(t, "GetSetting", err)
		var back []byte
		if err := json.Unmarshal(gotSetting.Value, &back); err != nil || !gotSetting.Encrypted || !slices.Equal(back, sealed) {
			t.Errorf("encrypted setting round trip: %s %v %v", gotSetting.Value, gotSetting.Encrypted, err)
		}

		// Models without dedicated methods yet go through the generic helpers.
		tpl := &NotificationTemplate{Key: "backup_failed", Channel: "email", Version: 1, Subject: "Backup falhou", Body: "{{.Job}}", Active: true}
		roundTripRow(t, s, tpl, func(r *NotificationTemplate) { r.Active = false })
		err = insertRow(ctx, s.db, &NotificationTemplate{Key: "backup_failed", Channel: "email", Version: 1, Body: "x"})
		var ce *ConflictError
		if !errors.As(err, &ce) || !slices.Equal(ce.Columns, []string{"key", "channel", "version"}) {
			t.Errorf("duplicate template version: err = %v, want a ConflictError on key, channel, version", err)
		}

		sync := &SyncJob{Name: "prod→staging", SourceDatasourceID: ds.ID, TargetDatasourceID: ds.ID, Schedule: "0 3 * * *",
			StorageLocationID: loc.ID, Enabled: true, NextExecutionAt: ptr(ts(3))}
		roundTripRow(t, s, sync, func(r *SyncJob) { r.LastExecutionAt = ptr(ts(3)); r.StorageLocationID = "" })
		syncExec := &SyncExecution{SyncJobID: sync.ID, Status: ExecutionQueued}
		roundTripRow(t, s, syncExec, func(r *SyncExecution) {
			r.Status, r.BackupExecutionID, r.RestoreExecutionID, r.StartedAt = ExecutionRunning, exec.ID, restore.ID, ptr(ts(4))
		})

		tok := &APIToken{Name: "ci", TokenHash: "sha256:feed", Permissions: []string{"backups.read", "backups.restore_verify"}, ExpiresAt: ptr(ts(50))}
		roundTripRow(t, s, tok, func(r *APIToken) { r.LastUsedAt = ptr(ts(9)) })
		byHash, err := getRow[APIToken](ctx, s.db, "token_hash", "sha256:feed")
		mustNoErr(t, "get token by hash", err)
		same(t, "token by hash", byHash, tok)
		if b, _ := json.Marshal(tok); strings.Contains(string(b), "feed") {
			t.Errorf("token JSON exports the hash: %s", b)
		}
	})
}

// roundTripRow inserts row, reads it back, applies change, updates it and
// reads it back again, comparing each time.
func roundTripRow[T any](t *testing.T, s *Store, row *T, change func(*T)) {
	t.Helper()
	ctx := t.Context()
	name := reflect.TypeFor[T]().Name()
	mustNoErr(t, "insert "+name, insertRow(ctx, s.db, row))
	id := reflect.ValueOf(row).Elem().FieldByName("ID").String()
	got, err := getRow[T](ctx, s.db, "id", id)
	mustNoErr(t, "get "+name, err)
	same(t, name, got, row)
	change(row)
	mustNoErr(t, "update "+name, updateRow(ctx, s.db, row))
	got, err = getRow[T](ctx, s.db, "id", id)
	mustNoErr(t, "get "+name, err)
	same(t, "updated "+name, got, row)
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		const missing = "00000000-0000-0000-0000-000000000000"
		for name, err := range map[string]error{
			"GetDatasource":      second(s.GetDatasource(ctx, missing)),
			"GetStorageLocation": second(s.GetStorageLocation(ctx, missing)),
			"GetBackupJob":       second(s.GetBackupJob(ctx, missing)),
			"GetExecution":       second(s.GetExecution(ctx, missing)),
			"GetSetting":         second(s.GetSetting(ctx, "no.such.key")),
			"getRow[SyncJob]":    second(getRow[SyncJob](ctx, s.db, "id", missing)),
			"UpdateDatasource":   s.UpdateDatasource(ctx, &Datasource{ID: missing, Name: "x", Type: "x"}),
			"UpdateExecution":    s.UpdateExecution(ctx, &Execution{ID: missing}, "status"),
			"UpdateBackupJob":    s.UpdateBackupJob(ctx, &BackupJob{ID: missing}, "enabled"),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s of a missing row: err = %v, want ErrNotFound", name, err)
			} else if !strings.Contains(err.Error(), missing) && !strings.Contains(err.Error(), "no.such.key") {
				t.Errorf("%s: error %q does not name the missing row", name, err)
			}
		}
		if list, err := s.ListExecutions(ctx, ExecutionFilter{JobID: missing}); err != nil || list == nil || len(list) != 0 {
			t.Errorf("ListExecutions of nothing = %v, %v; want an empty, non-nil slice", list, err)
		}
	})
}

func second[T any](_ T, err error) error { return err }

func TestUniqueName(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		mustNoErr(t, "CreateDatasource", s.CreateDatasource(ctx, &Datasource{Name: "prod", Type: "postgres"}))
		err := s.CreateDatasource(ctx, &Datasource{Name: "prod", Type: "mysql"})
		if !errors.Is(err, ErrAlreadyExists) {
			t.Fatalf("duplicate name: err = %v, want ErrAlreadyExists", err)
		}
		var ce *ConflictError
		if !errors.As(err, &ce) || ce.Table != "datasources" || !slices.Equal(ce.Columns, []string{"name"}) {
			t.Errorf("duplicate name: err = %#v, want ConflictError on datasources(name)", err)
		}
		if !strings.Contains(err.Error(), "name") {
			t.Errorf("error %q does not name the field", err)
		}

		loc := &StorageLocation{Name: "a", Type: "local"}
		mustNoErr(t, "CreateStorageLocation", s.CreateStorageLocation(ctx, loc))
		other := &StorageLocation{Name: "b", Type: "local"}
		mustNoErr(t, "CreateStorageLocation", s.CreateStorageLocation(ctx, other))
		other.Name = "a"
		if err := s.UpdateStorageLocation(ctx, other); !errors.Is(err, ErrAlreadyExists) {
			t.Errorf("rename onto an existing name: err = %v, want ErrAlreadyExists", err)
		}
	})
}

func TestListExecutions(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		ds1 := &Datasource{Name: "one", Type: "postgres"}
		ds2 := &Datasource{Name: "two", Type: "mysql"}
		mustNoErr(t, "CreateDatasource", s.CreateDatasource(ctx, ds1))
		mustNoErr(t, "CreateDatasource", s.CreateDatasource(ctx, ds2))
		j1 := &BackupJob{Name: "j1", DatasourceID: ds1.ID}
		j2 := &BackupJob{Name: "j2", DatasourceID: ds2.ID}
		mustNoErr(t, "CreateBackupJob", s.CreateBackupJob(ctx, j1))
		mustNoErr(t, "CreateBackupJob", s.CreateBackupJob(ctx, j2))

		// Created out of order on purpose; CreatedAt decides the order.
		specs := []struct {
			minute int
			job    *BackupJob
			op     Operation
			status ExecutionStatus
		}{
			{3, j1, OperationBackup, ExecutionCompleted},
			{1, j1, OperationBackup, ExecutionCompleted},
			{5, j1, OperationBackup, ExecutionFailed},
			{2, j2, OperationBackup, ExecutionCompleted},
			{4, j1, OperationBackup, ExecutionCompleted},
			{6, nil, OperationRestore, ExecutionRunning},
		}
		byMinute := map[int]string{}
		for _, sp := range specs {
			e := &Execution{DatasourceID: ds1.ID, Operation: sp.op, Status: sp.status, CreatedAt: ts(sp.minute)}
			if sp.job != nil {
				e.JobID, e.DatasourceID = sp.job.ID, sp.job.DatasourceID
			}
			mustNoErr(t, "CreateExecution", s.CreateExecution(ctx, e))
			byMinute[sp.minute] = e.ID
		}
		ids := func(minutes ...int) []string {
			var out []string
			for _, m := range minutes {
				out = append(out, byMinute[m])
			}
			return out
		}
		for _, tc := range []struct {
			name string
			f    ExecutionFilter
			want []string
		}{
			{"all", ExecutionFilter{}, ids(6, 5, 4, 3, 2, 1)},
			{"job", ExecutionFilter{JobID: j1.ID}, ids(5, 4, 3, 1)},
			{"job completed", ExecutionFilter{JobID: j1.ID, Status: ExecutionCompleted}, ids(4, 3, 1)},
			{"job completed limit", ExecutionFilter{JobID: j1.ID, Status: ExecutionCompleted, Limit: 2}, ids(4, 3)},
			{"job limit offset", ExecutionFilter{JobID: j1.ID, Limit: 2, Offset: 1}, ids(4, 3)},
			{"offset past end", ExecutionFilter{JobID: j1.ID, Offset: 10}, nil},
			{"no limit", ExecutionFilter{Limit: -1}, ids(6, 5, 4, 3, 2, 1)},
			{"datasource", ExecutionFilter{DatasourceID: ds2.ID}, ids(2)},
			{"operation", ExecutionFilter{Operation: OperationRestore}, ids(6)},
			{"status", ExecutionFilter{Status: ExecutionFailed}, ids(5)},
		} {
			got, err := s.ListExecutions(ctx, tc.f)
			mustNoErr(t, "ListExecutions "+tc.name, err)
			var gotIDs []string
			for _, e := range got {
				gotIDs = append(gotIDs, e.ID)
			}
			if !slices.Equal(gotIDs, tc.want) {
				t.Errorf("ListExecutions(%s) = %v, want %v", tc.name, gotIDs, tc.want)
			}
		}
	})
}

// newExecution creates a datasource and an execution for log tests.
func newExecution(t *testing.T, s *Store) *Execution {
	t.Helper()
	ds := &Datasource{Name: fmt.Sprintf("ds-%d", time.Now().UnixNano()), Type: "sqlite"}
	mustNoErr(t, "CreateDatasource", s.CreateDatasource(t.Context(), ds))
	e := &Execution{DatasourceID: ds.ID}
	mustNoErr(t, "CreateExecution", s.CreateExecution(t.Context(), e))
	return e
}

func TestExecutionLogCap(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		s.maxLogLines = 5
		e, other := newExecution(t, s), newExecution(t, s)
		mustNoErr(t, "AppendExecutionLog", s.AppendExecutionLog(ctx, other.ID, "info", "other execution"))
		for i := range 12 {
			mustNoErr(t, "AppendExecutionLog", s.AppendExecutionLog(ctx, e.ID, "info", fmt.Sprintf("line %d", i)))
		}
		logs, err := s.ExecutionLogs(ctx, e.ID)
		mustNoErr(t, "ExecutionLogs", err)
		var msgs []string
		for _, l := range logs {
			msgs = append(msgs, l.Message)
		}
		if want := []string{"line 7", "line 8", "line 9", "line 10", "line 11"}; !slices.Equal(msgs, want) {
			t.Errorf("after 12 appends with a cap of 5: %q, want %q", msgs, want)
		}
		if logs, err := s.ExecutionLogs(ctx, other.ID); err != nil || len(logs) != 1 {
			t.Errorf("the cap trimmed another execution's logs: %v, %v", logs, err)
		}
		if err := s.AppendExecutionLog(ctx, "no-such-execution", "info", "x"); err == nil {
			t.Error("AppendExecutionLog to a missing execution succeeded; want a foreign key error")
		}
	})
}

// TestConcurrentAppend writes logs from 8 goroutines while others read: on
// SQLite this must never surface SQLITE_BUSY.
func TestConcurrentAppend(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		const goroutines, lines = 8, 40
		e, capped := newExecution(t, s), newExecution(t, s)
		s.maxLogLines = 100 // below goroutines*lines (capped), above goroutines*lines/4 (e)

		var wg sync.WaitGroup
		errs := make(chan error, 3*goroutines*lines)
		for g := range goroutines {
			wg.Go(func() {
				for i := range lines {
					if i%4 == 0 {
						errs <- s.AppendExecutionLog(ctx, e.ID, "info", fmt.Sprintf("g%d line %d", g, i))
					}
					errs <- s.AppendExecutionLog(ctx, capped.ID, "info", fmt.Sprintf("g%d line %d", g, i))
					_, err := s.ListExecutions(ctx, ExecutionFilter{Limit: 5})
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent append: %v", err)
			}
		}
		logs, err := s.ExecutionLogs(ctx, e.ID)
		mustNoErr(t, "ExecutionLogs", err)
		if len(logs) != goroutines*lines/4 {
			t.Errorf("got %d lines, want %d", len(logs), goroutines*lines/4)
		}
		logs, err = s.ExecutionLogs(ctx, capped.ID)
		mustNoErr(t, "ExecutionLogs", err)
		if len(logs) != 100 {
			t.Errorf("capped execution has %d lines after concurrent appends, want 100", len(logs))
		}
	})
}

func TestParseStoreURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url, display string
		postgres     bool
	}{
		{"", "sqlite://dataguardian.db", false},
		{"sqlite:///var/lib/dg/meta.db", "sqlite:///var/lib/dg/meta.db", false},
		{"sqlite://meta.db", "sqlite://meta.db", false},
		{"/data/meta.db", "sqlite:///data/meta.db", false},
		{"state/meta.sqlite3", "sqlite://state/meta.sqlite3", false},
		{"postgres://dg:hunter2@db:5432/dg?sslmode=disable", "postgres://dg:xxxxx@db:5432/dg?sslmode=disable", true},
		{"postgresql://dg@db/dg?password=hunter2", "postgresql://dg@db/dg?password=xxxxx", true},
	} {
		got, err := parseStoreURL(tc.url)
		if err != nil {
			t.Errorf("parseStoreURL(%q): %v", tc.url, err)
			continue
		}
		if got.display != tc.display || got.postgres != tc.postgres {
			t.Errorf("parseStoreURL(%q) = %q postgres=%v, want %q postgres=%v", tc.url, got.display, got.postgres, tc.display, tc.postgres)
		}
		if strings.Contains(got.display, "hunter2") || strings.Contains(got.hint, "hunter2") {
			t.Errorf("parseStoreURL(%q) leaks the password: %+v", tc.url, got)
		}
	}
	for _, bad := range []string{"mysql://u:hunter2@db/x", "meta.txt", "sqlite://", "postgres://u:hunter2@db:notaport/x"} {
		_, err := parseStoreURL(bad)
		if err == nil {
			t.Errorf("parseStoreURL(%q) succeeded, want an error", bad)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("parseStoreURL(%q) error leaks the password: %v", bad, err)
		}
	}
}

func TestOpenStoreErrors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	// Nothing listens on port 1.
	_, err := Open(ctx, "postgres://dg:hunter2@127.0.0.1:1/dg?sslmode=disable")
	if err == nil {
		t.Fatal("OpenStore of a closed port succeeded")
	}
	if msg := err.Error(); strings.Contains(msg, "hunter2") || !strings.Contains(msg, "127.0.0.1:1") || !strings.Contains(msg, "check that PostgreSQL runs") {
		t.Errorf("error should name the address, say what to check and hide the password: %v", err)
	}
	_, err = Open(ctx, "postgres://dg:hunter2@127.0.0.1:1/dg?sslmode=bogus")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("OpenStore with a bad sslmode: %v", err)
	}
}

// TestTimeOrdering checks that times with different fractional digits sort
// in time order on both databases (SQLite keeps them as text).
func TestTimeOrdering(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		ds := &Datasource{Name: "db", Type: "sqlite"}
		mustNoErr(t, "CreateDatasource", s.CreateDatasource(ctx, ds))
		base := time.Date(2025, 2, 13, 6, 0, 1, 0, time.UTC)
		offsets := []time.Duration{500 * time.Millisecond, 0, 450 * time.Millisecond, time.Microsecond, time.Second, 50 * time.Millisecond}
		for _, d := range offsets {
			mustNoErr(t, "InsertHealthCheck", s.InsertHealthCheck(ctx, &HealthCheck{DatasourceID: ds.ID, CheckedAt: base.Add(d), Status: HealthOK}))
		}
		checks, err := s.ListHealthChecks(ctx, ds.ID, -1, 0)
		mustNoErr(t, "ListHealthChecks", err)
		if len(checks) != len(offsets) {
			t.Fatalf("got %d checks, want %d", len(checks), len(offsets))
		}
		for i := 1; i < len(checks); i++ {
			if !checks[i-1].CheckedAt.After(checks[i].CheckedAt) {
				t.Errorf("not newest first: %v then %v", checks[i-1].CheckedAt, checks[i].CheckedAt)
			}
		}
		// A time argument compares correctly with stored times.
		n, err := s.db.NewSelect().Model((*HealthCheck)(nil)).Where("checked_at > ?", base.Add(450*time.Millisecond)).Count(ctx)
		mustNoErr(t, "count", err)
		if n != 2 {
			t.Errorf("%d checks after +450ms, want 2", n)
		}
	})
}

// LastBackups is each job's newest completed backup by finished time: not
// a newer failed one, not an ad-hoc one, not another operation; by job
// name.
func TestLastBackups(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		ds := &Datasource{Name: "db", Type: "sqlite", Path: "/srv/db"}
		mustNoErr(t, "datasource", s.CreateDatasource(ctx, ds))
		loc := &StorageLocation{Name: "local", Type: "local", Config: map[string]string{"path": "/srv/b"}}
		mustNoErr(t, "location", s.CreateStorageLocation(ctx, loc))
		jobs := map[string]*BackupJob{}
		for _, name := range []string{"zeta", "alpha"} {
			jobs[name] = &BackupJob{Name: name, DatasourceID: ds.ID, StorageLocationIDs: []string{loc.ID}, Compression: "gzip"}
			mustNoErr(t, "job", s.CreateBackupJob(ctx, jobs[name]))
		}
		run := func(job string, op Operation, status ExecutionStatus, minute int) *Execution {
			x := &Execution{DatasourceID: ds.ID, Operation: op, Status: status, StartedAt: ptr(ts(minute)),
				FinishedAt: ptr(ts(minute)), CompressedSizeBytes: int64(minute)}
			if job != "" {
				x.JobID = jobs[job].ID
			}
			mustNoErr(t, "execution", s.CreateExecution(ctx, x))
			return x
		}
		run("alpha", OperationBackup, ExecutionCompleted, 1)
		alpha := run("alpha", OperationBackup, ExecutionCompleted, 5)
		run("alpha", OperationBackup, ExecutionCompleted, 3)
		run("alpha", OperationBackup, ExecutionFailed, 9)
		zeta := run("zeta", OperationBackup, ExecutionCompleted, 2)
		run("zeta", OperationVerify, ExecutionCompleted, 8)
		run("", OperationBackup, ExecutionCompleted, 7)
		got, err := s.LastBackups(ctx)
		mustNoErr(t, "LastBackups", err)
		if len(got) != 2 || got[0].ExecutionID != alpha.ID || got[0].JobName != "alpha" || got[0].CompressedSizeBytes != 5 ||
			got[1].ExecutionID != zeta.ID || got[1].JobName != "zeta" || !got[1].FinishedAt.Equal(ts(2)) {
			t.Errorf("LastBackups = %+v; want alpha's minute-5 backup %s, then zeta's %s", got, alpha.ID, zeta.ID)
		}
	})
}
