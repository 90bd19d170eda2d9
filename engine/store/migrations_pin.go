package store

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// pinnedColumnMigration adds Execution.Pinned (backup_executions.pinned):
// a pinned backup is never deleted by retention. Every execution that
// existed before is unpinned, through the column's DEFAULT.
//
// A database created by this release already has the column (the first
// migration creates backup_executions from the live model): it is added
// only where missing, since SQLite has no ADD COLUMN IF NOT EXISTS.
var pinnedColumnMigration = migrate.Migration{
	Name:    "20250502000007",
	Comment: "execution_pinned",
	Up:      upMigration(migratePinnedColumn),
}

func migratePinnedColumn(ctx context.Context, tx bun.Tx) error {
	ok, err := columnExists(ctx, tx, "backup_executions", "pinned")
	if err != nil || ok {
		return err
	}
	// BOOLEAN: what the first migration makes of a Go bool on both
	// dialects (SQLite stores it as 0/1 and reads FALSE as 0).
	if _, err := tx.ExecContext(ctx, "ALTER TABLE ? ADD COLUMN ? BOOLEAN NOT NULL DEFAULT FALSE",
		bun.Ident("backup_executions"), bun.Ident("pinned")); err != nil {
		return fmt.Errorf("add column backup_executions.pinned: %w", err)
	}
	return nil
}
