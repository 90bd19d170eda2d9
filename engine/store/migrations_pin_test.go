package store

import "testing"

// TestPinnedColumnMigration: the pinned column is added where it is
// missing, existing rows unpinned, and the migration is a no-op where it
// exists.
func TestPinnedColumnMigration(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		x := newExecution(t, s)
		_, err := s.db.ExecContext(ctx, "ALTER TABLE backup_executions DROP COLUMN pinned")
		mustNoErr(t, "drop column", err)
		for range 2 {
			tx, err := s.db.BeginTx(ctx, nil)
			mustNoErr(t, "begin", err)
			mustNoErr(t, "migrate", migratePinnedColumn(ctx, tx))
			mustNoErr(t, "commit", tx.Commit())
		}
		got, err := s.GetExecution(ctx, x.ID)
		mustNoErr(t, "get", err)
		if got.Pinned {
			t.Fatal("an execution from before the migration is pinned")
		}
		got.Pinned = true
		mustNoErr(t, "pin", s.UpdateExecution(ctx, got, "pinned"))
		if got, _ = s.GetExecution(ctx, x.ID); !got.Pinned {
			t.Fatal("pin not stored")
		}
	})
}
