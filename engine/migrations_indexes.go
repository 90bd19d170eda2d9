package engine

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// listIndexesMigration adds the indexes the API's list endpoints read
// through, so a page costs the same whatever the table's size (measured by
// bench/api-latency.sh with 1,000 datasources and 10,000 executions):
//
//   - backup_executions (job_id, created_at, id) replaces (job_id,
//     created_at): a job's executions newest first, ties by id, read in
//     index order without a sort (ListExecutions' order);
//   - backup_executions (job_id, status, created_at, id): the same with a
//     status filter (?status=completed), which otherwise walks every
//     execution of the job until it has a page of matches;
//   - backup_jobs (name, id): FindBackupJobs reads one page in name order
//     instead of sorting every job.
//
// Datasources need none: the unique index on name gives their order.
var listIndexesMigration = migrate.Migration{
	Name:    "20250320000001",
	Comment: "list_indexes",
	Up:      upMigration(migrateListIndexes),
}

// tableIndex is an index of a table named by its SQL name: migrations after
// the first name tables, not live model structs, whose fields change.
type tableIndex struct {
	table, name string
	columns     []string
}

func migrateListIndexes(ctx context.Context, tx bun.Tx) error {
	for _, ix := range []tableIndex{
		{"backup_executions", "backup_executions_job_id_created_at_id_idx", []string{"job_id", "created_at", "id"}},
		{"backup_executions", "backup_executions_job_id_status_created_at_id_idx", []string{"job_id", "status", "created_at", "id"}},
		{"backup_jobs", "backup_jobs_name_id_idx", []string{"name", "id"}},
	} {
		_, err := tx.NewCreateIndex().Table(ix.table).Index(ix.name).Column(ix.columns...).IfNotExists().Exec(ctx)
		if err != nil {
			return fmt.Errorf("create index %s: %w", ix.name, err)
		}
	}
	// A prefix of backup_executions_job_id_created_at_id_idx: every query it
	// served uses the new one, and each insert would update both.
	if _, err := tx.NewDropIndex().Index("backup_executions_job_id_created_at_idx").IfExists().Exec(ctx); err != nil {
		return fmt.Errorf("drop index backup_executions_job_id_created_at_idx: %w", err)
	}
	return nil
}
