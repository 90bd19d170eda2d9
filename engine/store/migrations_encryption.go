package store

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// encryptionColumnMigration adds BackupJob.EncryptionRecipients
// (backup_jobs.encryption_recipients, a JSON list of age public keys): a
// job with recipients encrypts its backups to them. Jobs that existed
// before have none, through NULL.
//
// A database created by this release already has the column (the first
// migration creates backup_jobs from the live model): it is added only
// where missing.
var encryptionColumnMigration = migrate.Migration{
	Name:    "20261205000008",
	Comment: "job_encryption_recipients",
	Up:      upMigration(migrateEncryptionColumn),
}

func migrateEncryptionColumn(ctx context.Context, tx bun.Tx) error {
	ok, err := columnExists(ctx, tx, "backup_jobs", "encryption_recipients")
	if err != nil || ok {
		return err
	}
	if _, err := tx.ExecContext(ctx, "ALTER TABLE ? ADD COLUMN ? TEXT",
		bun.Ident("backup_jobs"), bun.Ident("encryption_recipients")); err != nil {
		return fmt.Errorf("add column backup_jobs.encryption_recipients: %w", err)
	}
	return nil
}
