package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrReferenced reports a delete refused because other rows still refer
// to the row (a foreign key).
var ErrReferenced = errors.New("still referenced")

// SyncJobsOf returns the sync jobs that copy from or into datasource id,
// by name.
func (s *Store) SyncJobsOf(ctx context.Context, id string) ([]SyncJob, error) {
	return listRows[SyncJob](ctx, s.read.NewSelect().
		Where("source_datasource_id = ? OR target_datasource_id = ?", id, id).Order("name", "id"))
}

// CountExecutionsOf counts the executions of datasource id.
func (s *Store) CountExecutionsOf(ctx context.Context, id string) (int, error) {
	n, err := s.read.NewSelect().Model((*Execution)(nil)).Where("datasource_id = ?", id).Count(ctx)
	return int(n), dbError(err)
}

// DeleteDatasource deletes datasource id with the backup jobs that back
// it up, in one transaction; ErrReferenced when executions or sync jobs
// still refer to it.
func (s *Store) DeleteDatasource(ctx context.Context, id string) error {
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewDelete().Model((*BackupJob)(nil)).Where("datasource_id = ?", id).Exec(ctx); err != nil {
			return err
		}
		_, err := tx.NewDelete().Model((*Datasource)(nil)).Where("id = ?", id).Exec(ctx)
		return err
	})
	if isForeignKeyViolation(err) {
		return fmt.Errorf("%w: %w", ErrReferenced, err)
	}
	return dbError(err)
}

// isForeignKeyViolation reports whether err is a foreign key violation of
// PostgreSQL or SQLite.
func isForeignKeyViolation(err error) bool {
	var pgErr pgdriver.Error
	if errors.As(err, &pgErr) {
		return pgErr.Field('C') == "23503"
	}
	var sqlErr *sqlite.Error
	return errors.As(err, &sqlErr) && sqlErr.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
