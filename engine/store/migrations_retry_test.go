package store

import "testing"

// TestRetryColumnsMigration takes a store back to the schema before
// retries, with a job in it, and migrates: the job gets the default retry
// settings, and migrating again changes nothing.
func TestRetryColumnsMigration(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		ds := &Datasource{Name: "db", Type: "sqlite", Path: "/tmp/x.db"}
		mustNoErr(t, "datasource", s.CreateDatasource(ctx, ds))
		job := &BackupJob{Name: "job", DatasourceID: ds.ID, RetryAttempts: 3, RetryDelaySeconds: 45}
		mustNoErr(t, "job", s.CreateBackupJob(ctx, job))
		for _, q := range []string{
			"ALTER TABLE backup_jobs DROP COLUMN retry_attempts",
			"ALTER TABLE backup_jobs DROP COLUMN retry_delay_seconds",
			"DELETE FROM " + migrationsTable + " WHERE name = '" + retryColumnsMigration.Name + "'",
		} {
			_, err := s.db.ExecContext(ctx, q)
			mustNoErr(t, q, err)
		}
		mustNoErr(t, "migrate", s.migrate(ctx))
		got, err := s.GetBackupJob(ctx, job.ID)
		mustNoErr(t, "get migrated", err)
		if got.RetryAttempts != DefaultRetryAttempts || got.RetryDelaySeconds != DefaultRetryDelaySeconds {
			t.Fatalf("job from before retries: %d/%d; want %d/%d", got.RetryAttempts, got.RetryDelaySeconds, DefaultRetryAttempts, DefaultRetryDelaySeconds)
		}
		mustNoErr(t, "migrate again", s.migrate(ctx))
	})
}
