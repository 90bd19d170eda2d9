package store

import (
	"database/sql"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestMigrationsUpgradeFirstRelease: a metadata database as the first
// release left it, with rows in it, migrates to a schema where every live
// model reads and writes. A fresh database cannot show a missing
// migration: the first migration creates its tables from the live models.
func TestMigrationsUpgradeFirstRelease(t *testing.T) {
	dump, err := os.ReadFile(filepath.Join("testdata", "schema-20250301000001.sqlite.sql"))
	mustNoErr(t, "read dump", err)
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := sql.Open("sqlite", path)
	mustNoErr(t, "open", err)
	_, err = db.Exec(string(dump))
	mustNoErr(t, "load the first release's schema", err)
	// Rows of the first release, written with its columns only.
	for _, q := range []string{
		`INSERT INTO datasources (id, name, type, port, status, enabled, consecutive_failures, created_at, updated_at)
			VALUES ('ds1', 'app', 'sqlite', 0, 'unknown', 1, 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')`,
		`INSERT INTO backup_jobs (id, name, datasource_id, compression, max_file_size_mb, enabled, created_at, updated_at)
			VALUES ('job1', 'nightly', 'ds1', 'gzip', 1024, 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')`,
		`INSERT INTO database_sync_jobs (id, name, source_datasource_id, target_datasource_id, enabled, created_at, updated_at)
			VALUES ('sync1', 'copy', 'ds1', 'ds1', 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')`,
	} {
		_, err := db.Exec(q)
		mustNoErr(t, "insert a first-release row", err)
	}
	db.Close()

	s := openTestStore(t, "sqlite://"+path)
	ctx := t.Context()
	for _, m := range allModels {
		rows := reflect.New(reflect.SliceOf(reflect.TypeOf(m).Elem()))
		if err := s.db.NewSelect().Model(rows.Interface()).Limit(1).Scan(ctx); err != nil {
			t.Errorf("read %T after the upgrade: %v", m, err)
		}
	}
	job, err := s.GetBackupJob(ctx, "job1")
	mustNoErr(t, "get job", err)
	if job.RetryAttempts != DefaultRetryAttempts || job.RetryDelaySeconds != DefaultRetryDelaySeconds {
		t.Errorf("upgraded job retries %d/%d, want the defaults %d/%d", job.RetryAttempts, job.RetryDelaySeconds,
			DefaultRetryAttempts, DefaultRetryDelaySeconds)
	}
	job.Name = "renamed"
	mustNoErr(t, "update an upgraded job", s.UpdateBackupJob(ctx, job))
	sj, err := s.GetSyncJob(ctx, "sync1")
	mustNoErr(t, "get sync job", err)
	sj.Name = "renamed"
	mustNoErr(t, "update an upgraded sync job", s.UpdateSyncJob(ctx, sj))
}
