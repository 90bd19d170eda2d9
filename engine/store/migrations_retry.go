package store

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"
)

// retryColumnsMigration adds the automatic retry settings of backup jobs
// (BackupJob.RetryAttempts, RetryDelaySeconds). Every job that existed
// before gets the API's defaults through the columns' DEFAULT: failed
// backups are retried DefaultRetryAttempts times, the first after
// DefaultRetryDelaySeconds.
//
// A database created by this release already has the columns (the first
// migration creates backup_jobs from the live model): they are added only
// where missing, since SQLite has no ADD COLUMN IF NOT EXISTS.
var retryColumnsMigration = migrate.Migration{
	Name:    "20250405000001",
	Comment: "backup_job_retries",
	Up:      upMigration(migrateRetryColumns),
}

func migrateRetryColumns(ctx context.Context, tx bun.Tx) error {
	for _, c := range []struct {
		name string
		def  int
	}{
		{"retry_attempts", DefaultRetryAttempts},
		{"retry_delay_seconds", DefaultRetryDelaySeconds},
	} {
		ok, err := columnExists(ctx, tx, "backup_jobs", c.name)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		// BIGINT: what the first migration makes of a Go int on PostgreSQL
		// (on SQLite any type naming INT has integer affinity).
		if _, err := tx.ExecContext(ctx, "ALTER TABLE ? ADD COLUMN ? BIGINT NOT NULL DEFAULT ?",
			bun.Ident("backup_jobs"), bun.Ident(c.name), c.def); err != nil {
			return fmt.Errorf("add column backup_jobs.%s: %w", c.name, err)
		}
	}
	return nil
}

// columnExists reports whether table (in the current schema) has column.
func columnExists(ctx context.Context, db bun.IDB, table, column string) (bool, error) {
	q := "SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?"
	if db.Dialect().Name() == dialect.PG {
		q = "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? AND column_name = ?"
	}
	var n int
	if err := db.NewRaw(q, table, column).Scan(ctx, &n); err != nil {
		return false, fmt.Errorf("look for column %s.%s: %w", table, column, err)
	}
	return n > 0, nil
}
