package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/manifest"
)

// backupOnDisk reports whether the manifest of backup x is on every storage
// root of f (a run folder retention emptied may be reused by a later
// backup: the manifest must name x).
func backupOnDisk(f *fixture, x *Execution) bool {
	for _, root := range f.roots {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(x.BackupPath), manifest.FileName))
		if err != nil {
			return false
		}
		if m, err := manifest.Parse(b); err != nil || m.ExecutionID != x.ID {
			return false
		}
	}
	return true
}

func retentionDeleted(t *testing.T, e *Engine, id string) bool {
	t.Helper()
	x, err := e.store.GetExecution(t.Context(), id)
	mustNoErr(t, "get execution", err)
	_, gone := x.Metadata[metaRetentionDeleted]
	return gone
}

// TestRetentionKeepsPinnedBackup: with max_backups 1, a pinned backup is
// kept besides the newest and takes no slot; unpinned, it goes.
func TestRetentionKeepsPinnedBackup(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{Retention: Retention{MaxBackups: 1, AutoDelete: true}})
		first, err := e.RunBackup(ctx, f.job.ID)
		mustNoErr(t, "backup", err)
		p, err := e.PinExecution(ctx, first.ID, "")
		mustNoErr(t, "pin", err)
		if !p.Pinned || p.Metadata[metaPinnedReason] != "pinned by hand" {
			t.Fatalf("pinned execution %+v", p)
		}
		second, err := e.RunBackup(ctx, f.job.ID)
		mustNoErr(t, "backup", err)
		third, err := e.RunBackup(ctx, f.job.ID)
		mustNoErr(t, "backup", err)

		if !backupOnDisk(f, first) || retentionDeleted(t, e, first.ID) {
			t.Fatal("retention deleted the pinned backup")
		}
		if backupOnDisk(f, second) || !retentionDeleted(t, e, second.ID) {
			t.Fatal("the pinned backup took the max_backups slot: the second backup is still there")
		}
		if !backupOnDisk(f, third) {
			t.Fatal("newest backup deleted")
		}

		x, err := e.UnpinExecution(ctx, first.ID)
		mustNoErr(t, "unpin", err)
		if x.Pinned || x.Metadata[metaPinnedReason] != nil {
			t.Fatalf("unpinned execution %+v", x)
		}
		_, err = e.ApplyRetention(ctx, f.job.ID)
		mustNoErr(t, "retention", err)
		if backupOnDisk(f, first) || !retentionDeleted(t, e, first.ID) {
			t.Fatal("unpinned backup kept beyond max_backups=1")
		}
		_, err = e.PinExecution(ctx, first.ID, "too late")
		wantErr(t, "pin a deleted backup", err, ErrNotRestorable, "retention already deleted")
	})
}

// TestPinRefusesWhatIsNotACompletedBackup: only completed backups pin.
func TestPinRefusesWhatIsNotACompletedBackup(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{})
		failed := &Execution{JobID: f.job.ID, DatasourceID: f.ds.ID, Operation: OperationBackup, Status: ExecutionFailed}
		mustNoErr(t, "create execution", e.store.CreateExecution(ctx, failed))
		_, err := e.PinExecution(ctx, failed.ID, "")
		wantErr(t, "pin a failed backup", err, ErrNotRestorable, "only a completed backup can be pinned", "failed")

		b, err := e.RunBackup(ctx, f.job.ID)
		mustNoErr(t, "backup", err)
		r, err := e.Restore(ctx, b.ID, drivers.Source{Type: "sqlite", Path: filepath.Join(t.TempDir(), "r.db")}, nil)
		mustNoErr(t, "restore", err)
		_, err = e.PinExecution(ctx, r.ID, "")
		wantErr(t, "pin a restore", err, ErrNotRestorable, "restore execution")
		_, err = e.UnpinExecution(ctx, r.ID)
		wantErr(t, "unpin a restore", err, ErrNotRestorable)
		_, err = e.PinExecution(ctx, b.ID, strings.Repeat("x", 501))
		wantErr(t, "pin with a long reason", err, ErrInvalid, "reason")
		x, err := e.UnpinExecution(ctx, b.ID)
		mustNoErr(t, "unpin an unpinned backup", err)
		if x.Pinned {
			t.Fatal("unpinned backup is pinned")
		}
	})
}

// TestSafetyBackupOfRollbackSurvivesRetention: the safety backup a
// rollback takes is pinned, says why, and outlives many later backups of
// an every-minute job keeping one backup.
func TestSafetyBackupOfRollbackSurvivesRetention(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{Schedule: "* * * * *", Retention: Retention{MaxBackups: 1, AutoDelete: true}})
		old, err := e.RunBackup(ctx, f.job.ID)
		mustNoErr(t, "backup", err)
		r, err := e.Restore(ctx, old.ID, drivers.Source{}, &RestoreOptions{SafetyBackup: true})
		mustNoErr(t, "rollback", err)
		if r.Status != ExecutionCompleted {
			t.Fatalf("rollback %s: %s", r.Status, r.ErrorMessage)
		}
		safetyID, _ := r.Metadata[metaSafetyBackup].(string)
		safety, err := e.store.GetExecution(ctx, safetyID)
		mustNoErr(t, "get safety backup", err)
		if !safety.Pinned || safety.Status != ExecutionCompleted {
			t.Fatalf("safety backup pinned=%v status=%s", safety.Pinned, safety.Status)
		}
		if want := "safety backup before restore " + r.ID; safety.Metadata[metaPinnedReason] != want {
			t.Fatalf("pinned_reason %q, want %q", safety.Metadata[metaPinnedReason], want)
		}
		var last *Execution
		for range 4 {
			last, err = e.RunBackup(ctx, f.job.ID)
			mustNoErr(t, "scheduled backup", err)
			_, err = e.RunCleanup(ctx)
			mustNoErr(t, "cleanup", err)
		}
		if !backupOnDisk(f, safety) || retentionDeleted(t, e, safety.ID) {
			t.Fatal("retention deleted the safety backup")
		}
		if !backupOnDisk(f, last) {
			t.Fatal("newest backup deleted")
		}
		xs, err := e.store.ListExecutions(ctx, ExecutionFilter{JobID: f.job.ID, Operation: OperationBackup, Limit: -1})
		mustNoErr(t, "list", err)
		kept := 0
		for i := range xs {
			if backupOnDisk(f, &xs[i]) {
				kept++
			}
		}
		if kept != 2 {
			t.Fatalf("%d backups on disk, want the safety backup and the newest", kept)
		}
	})
}
