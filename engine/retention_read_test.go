package engine

import (
	"os"
	"path/filepath"
	"testing"
)

// A backup that a queued restore will read is kept by retention until the
// restore is done, even when the policy would drop it.
func TestRetentionKeepsBackupsAwaitingRestore(t *testing.T) {
	ctx := t.Context()
	e, err := newEngine(ctx, Config{DataDir: t.TempDir(), Logger: discardLogger})
	mustNoErr(t, "new", err)
	defer e.Close()
	f := newFixture(t, e, BackupJob{Compression: "lz4", Retention: Retention{MaxBackups: 1, AutoDelete: true}})
	old, err := e.RunBackup(ctx, f.job.ID)
	mustNoErr(t, "first backup", err)
	// Queued, never run in this test: no engine is started.
	_, err = e.RequestRestore(ctx, e.Queue(), RestoreRequest{ExecutionID: old.ID, ConfirmationPhrase: ConfirmRestore})
	mustNoErr(t, "request restore", err)
	_, err = e.RunBackup(ctx, f.job.ID)
	mustNoErr(t, "second backup", err)
	if _, err := os.Stat(filepath.Join(f.roots[0], old.BackupPath, "manifest.json")); err != nil {
		t.Fatalf("the backup awaiting a restore was deleted: %v", err)
	}
}
