package engine

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
)

// TestBackupOfDeletedJobStaysRestorable: deleting a job keeps its backups,
// so they verify, download and restore from the storages their copies were
// written to; only a safety backup (which needs the job) is refused.
func TestBackupOfDeletedJobStaysRestorable(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{})
		want := digest(t, f.dbPath)
		x, err := e.RunBackup(ctx, f.job.ID)
		mustNoErr(t, "backup", err)
		mustNoErr(t, "delete job", e.DeleteBackupJob(ctx, f.job.ID))

		mustNoErr(t, "verify", e.VerifyBackup(ctx, x.ID))
		c, err := e.OpenBackupCopy(ctx, x.ID)
		mustNoErr(t, "open copy", err)
		if c.Manifest.Checksum != x.Checksum {
			t.Errorf("copy checksum %s, want %s", c.Manifest.Checksum, x.Checksum)
		}
		_, err = e.RequestRestore(ctx, nil, RestoreRequest{ExecutionID: x.ID, ConfirmationPhrase: ConfirmRestore, SafetyBackup: true})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "safety_backup") {
			t.Errorf("safety backup of a deleted job: %v", err)
		}

		mustNoErr(t, "damage", os.WriteFile(f.dbPath, []byte("not a database"), 0o600))
		r, err := e.Restore(ctx, x.ID, drivers.Source{}, nil)
		mustNoErr(t, "restore", err)
		if r.Status != ExecutionCompleted {
			t.Fatalf("restore %s: %s", r.Status, r.ErrorMessage)
		}
		if got := digest(t, f.dbPath); got != want {
			t.Errorf("after restore %s, want %s", got, want)
		}
	})
}
