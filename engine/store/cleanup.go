package store

import (
	"context"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/uptrace/bun"
)

// MetaRetentionDeleted is the Execution.Metadata key retention sets on a
// backup it deleted (the time): its folder may be reused by a later one.
const MetaRetentionDeleted = "retention_deleted_at"

// CompletedBackupsAt returns the completed backup executions whose run
// folder is one of dirs, by folder.
func (s *Store) CompletedBackupsAt(ctx context.Context, dirs []string) (map[string]*Execution, error) {
	out := map[string]*Execution{}
	for batch := range slices.Chunk(dirs, 500) {
		paths := batch
		var xs []Execution
		err := s.read.NewSelect().Model(&xs).Where("backup_path IN (?)", bun.In(paths)).
			Where("operation = ?", string(OperationBackup)).Where("status = ?", string(ExecutionCompleted)).
			OrderExpr("created_at, id").Scan(ctx) // the newest of a reused folder wins
		if err != nil {
			return nil, fmt.Errorf("look up completed backups: %w", dbError(err))
		}
		for i := range xs {
			// A folder retention emptied may be reused by a later backup.
			if _, gone := xs[i].Metadata[MetaRetentionDeleted]; !gone {
				out[xs[i].BackupPath] = &xs[i]
			}
		}
	}
	return out, nil
}

// KnowsJob reports whether job is, or was, a backup job of this store: a
// row of backup_jobs, or the job or run folder of some execution (a
// deleted job's executions keep their backup_path), or the job of
// execution execID (what a run folder's reservation names; its job_id is
// empty once the job was deleted).
func (s *Store) KnowsJob(ctx context.Context, job, execID string) (bool, error) {
	ok, err := s.read.NewSelect().Model((*BackupJob)(nil)).Where("id = ?", job).Exists(ctx)
	if err == nil && !ok {
		prefix := job + "/"
		ok, err = s.read.NewSelect().Model((*Execution)(nil)).
			WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
				return q.Where("job_id = ?", job).WhereOr("substr(backup_path, 1, ?) = ?", utf8.RuneCountInString(prefix), prefix)
			}).Exists(ctx)
	}
	if err == nil && !ok && execID != "" {
		ok, err = s.read.NewSelect().Model((*Execution)(nil)).Where("id = ?", execID).
			Where("operation = ?", string(OperationBackup)).
			WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
				return q.Where("job_id = ?", job).WhereOr("job_id IS NULL")
			}).Exists(ctx)
	}
	if err != nil {
		return false, fmt.Errorf("look up job %s: %w", job, dbError(err))
	}
	return ok, nil
}
