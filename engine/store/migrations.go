package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// Migration bookkeeping tables. They are prefixed so a database shared with
// another bun application does not mix both histories.
const (
	migrationsTable     = "dg_schema_migrations"
	migrationLocksTable = "dg_schema_migration_locks"
)

// migrationLockWait bounds how long OpenStore waits for another process
// that is migrating the same database.
const migrationLockWait = 60 * time.Second

// migrations are the schema migrations, in order. The same Go code runs on
// SQLite and PostgreSQL; bun renders each dialect's types (jsonb vs text,
// timestamptz vs TIMESTAMP, …).
//
// Rules for adding one: append a new entry with a larger Name, never edit a
// released one, make every statement idempotent (IF NOT EXISTS), and do not
// create tables from the live model structs in later migrations (their
// fields change over time): write the columns out or use AddColumn.
var migrations = func() *migrate.Migrations {
	ms := migrate.NewMigrations()
	ms.Add(migrate.Migration{
		Name:    "20250213000001",
		Comment: "initial_schema",
		Up:      upMigration(migrateInitialSchema),
	})
	ms.Add(queueTasksMigration) // migrations_queue.go
	ms.Add(listIndexesMigration)
	ms.Add(retryColumnsMigration)        // migrations_retry.go
	ms.Add(backupsByDatasourceMigration) // migrations_indexes.go
	ms.Add(pinnedColumnMigration)        // migrations_pin.go
	ms.Add(encryptionColumnMigration)    // migrations_encryption.go
	return ms
}()

// upMigration adapts fn, which runs inside one transaction (DDL is
// transactional on both SQLite and PostgreSQL, so a failed migration leaves
// nothing half-created), to migrate's Up function.
func upMigration(fn func(ctx context.Context, tx bun.Tx) error) func(context.Context, *migrate.Migrator, *migrate.Migration) error {
	return func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
		return m.DB().RunInTx(ctx, nil, fn)
	}
}

type tableDef struct {
	model any
	fks   []string // FOREIGN KEY clauses after "FOREIGN KEY"
}

type indexDef struct {
	model   any
	name    string
	unique  bool
	columns []string
}

// migrateInitialSchema creates every table of the first release.
//
// Foreign keys: deleting a job keeps its executions (job_id becomes NULL),
// because their backups still exist in storage; deleting an execution
// removes its logs and storage statuses; deleting a datasource removes its
// health checks but is refused while jobs or executions refer to it.
func migrateInitialSchema(ctx context.Context, tx bun.Tx) error {
	tables := []tableDef{
		{model: (*Datasource)(nil)},
		{model: (*StorageLocation)(nil)},
		{model: (*BackupJob)(nil), fks: []string{
			`("datasource_id") REFERENCES "datasources" ("id")`,
		}},
		{model: (*Execution)(nil), fks: []string{
			`("job_id") REFERENCES "backup_jobs" ("id") ON DELETE SET NULL`,
			`("datasource_id") REFERENCES "datasources" ("id")`,
			`("source_execution_id") REFERENCES "backup_executions" ("id") ON DELETE SET NULL`,
		}},
		{model: (*ExecutionStorage)(nil), fks: []string{
			`("execution_id") REFERENCES "backup_executions" ("id") ON DELETE CASCADE`,
			`("storage_location_id") REFERENCES "storage_locations" ("id") ON DELETE CASCADE`,
		}},
		{model: (*ExecutionLog)(nil), fks: []string{
			`("execution_id") REFERENCES "backup_executions" ("id") ON DELETE CASCADE`,
		}},
		{model: (*HealthCheck)(nil), fks: []string{
			`("datasource_id") REFERENCES "datasources" ("id") ON DELETE CASCADE`,
		}},
		{model: (*Notification)(nil)},
		{model: (*NotificationTemplate)(nil)},
		{model: (*SyncJob)(nil), fks: []string{
			`("source_datasource_id") REFERENCES "datasources" ("id")`,
			`("target_datasource_id") REFERENCES "datasources" ("id")`,
			`("storage_location_id") REFERENCES "storage_locations" ("id")`,
		}},
		{model: (*SyncExecution)(nil), fks: []string{
			`("sync_job_id") REFERENCES "database_sync_jobs" ("id") ON DELETE CASCADE`,
			`("backup_execution_id") REFERENCES "backup_executions" ("id") ON DELETE SET NULL`,
			`("restore_execution_id") REFERENCES "backup_executions" ("id") ON DELETE SET NULL`,
		}},
		{model: (*Setting)(nil)},
		{model: (*APIToken)(nil)},
	}
	indexes := []indexDef{
		{model: (*BackupJob)(nil), name: "backup_jobs_datasource_id_idx", columns: []string{"datasource_id"}},
		{model: (*BackupJob)(nil), name: "backup_jobs_next_execution_at_idx", columns: []string{"next_execution_at"}},
		{model: (*Execution)(nil), name: "backup_executions_job_id_created_at_idx", columns: []string{"job_id", "created_at"}},
		{model: (*Execution)(nil), name: "backup_executions_datasource_id_created_at_idx", columns: []string{"datasource_id", "created_at"}},
		{model: (*Execution)(nil), name: "backup_executions_status_idx", columns: []string{"status"}},
		{model: (*ExecutionLog)(nil), name: "execution_logs_execution_id_id_idx", columns: []string{"execution_id", "id"}},
		{model: (*HealthCheck)(nil), name: "health_checks_datasource_id_checked_at_idx", columns: []string{"datasource_id", "checked_at"}},
		{model: (*Notification)(nil), name: "notifications_read_created_at_idx", columns: []string{"read", "created_at"}},
		{model: (*SyncJob)(nil), name: "database_sync_jobs_next_execution_at_idx", columns: []string{"next_execution_at"}},
		{model: (*SyncExecution)(nil), name: "database_sync_executions_sync_job_id_created_at_idx", columns: []string{"sync_job_id", "created_at"}},
	}
	for _, t := range tables {
		q := tx.NewCreateTable().Model(t.model).IfNotExists()
		for _, fk := range t.fks {
			q = q.ForeignKey(fk)
		}
		if _, err := q.Exec(ctx); err != nil {
			return fmt.Errorf("create table %s: %w", tx.Dialect().Tables().Get(typeOf(t.model)).Name, err)
		}
	}
	for _, ix := range indexes {
		q := tx.NewCreateIndex().Model(ix.model).Index(ix.name).Column(ix.columns...).IfNotExists()
		if ix.unique {
			q = q.Unique()
		}
		if _, err := q.Exec(ctx); err != nil {
			return fmt.Errorf("create index %s: %w", ix.name, err)
		}
	}
	return nil
}

// migrate brings the schema up to date. It is safe to run repeatedly and
// from several processes at once: migrate's lock row serialises them, and a
// process that finds the lock taken waits up to migrationLockWait.
func (s *Store) migrate(ctx context.Context) error {
	m := migrate.NewMigrator(s.db, migrations,
		migrate.WithTableName(migrationsTable),
		migrate.WithLocksTableName(migrationLocksTable),
		migrate.WithMarkAppliedOnSuccess(true),
	)
	if err := initMigrations(ctx, m); err != nil {
		return err
	}
	if err := lockMigrations(ctx, m); err != nil {
		return err
	}
	defer func() {
		// Unlock even when ctx is cancelled, or the next start would wait.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = m.Unlock(ctx)
	}()
	if _, err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("run migrations: %w", err)
	}
	return nil
}

// initMigrations creates migrate's bookkeeping tables. Processes creating
// them at the same moment collide in PostgreSQL's catalog even with IF NOT
// EXISTS ("duplicate key value violates unique constraint
// pg_type_typname_nsp_index"); the loser retries and then finds them.
func initMigrations(ctx context.Context, m *migrate.Migrator) error {
	var err error
	for attempt := 1; attempt <= 10; attempt++ {
		if err = m.Init(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("create migration tables: %w", errors.Join(ctx.Err(), err))
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
	}
	return fmt.Errorf("create migration tables: %w", err)
}

// lockMigrations takes migrate's lock, retrying while another process holds
// it.
func lockMigrations(ctx context.Context, m *migrate.Migrator) error {
	deadline := time.Now().Add(migrationLockWait)
	for {
		err := m.Lock(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lock migrations: %w (another process has held the lock for %s; "+
				"if none is running, a crash left it behind: delete the rows of table %s)",
				err, migrationLockWait, migrationLocksTable)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lock migrations: %w", errors.Join(ctx.Err(), err))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
