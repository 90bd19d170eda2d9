package engine

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/manifest"
)

// reservationKey is the marker manifest.Writer keeps in a run folder while
// its backup is written.
const reservationKey = manifest.ReservationName

// TestCleanupRemovesOnlyFoldersItMade: of the day-old run folders without
// manifest.json, cleanup removes those holding our reservation marker of a
// job the store knows (or knew: a deleted job whose backups it recorded)
// and leaves another program's folders, an unmarked folder of our own job
// and a marked folder of a job it never knew.
func TestCleanupRemovesOnlyFoldersItMade(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{})
		root, old := f.roots[0], time.Now().Add(-48*time.Hour)

		// A deleted job: its executions' job_id is gone, their run folders stay.
		gone := &BackupJob{Name: "gone", DatasourceID: f.ds.ID, StorageLocationIDs: f.job.StorageLocationIDs}
		mustNoErr(t, "create job", e.CreateBackupJob(ctx, gone))
		_, err := e.RunBackup(ctx, gone.ID)
		mustNoErr(t, "backup of the job to delete", err)
		goneID := gone.ID
		killedGone := &Execution{JobID: goneID, DatasourceID: f.ds.ID, Operation: OperationBackup, Status: ExecutionFailed}
		mustNoErr(t, "create execution", e.store.CreateExecution(ctx, killedGone))
		mustNoErr(t, "delete job", e.DeleteBackupJob(ctx, goneID))

		killed := &Execution{JobID: f.job.ID, DatasourceID: f.ds.ID, Operation: OperationBackup, Status: ExecutionFailed}
		mustNoErr(t, "create execution", e.store.CreateExecution(ctx, killed))

		foreign := "otherapp/2020-01-01_000000"
		writeRunFolder(t, root, foreign, old, map[string]string{"important.dump": "someone else's data"})
		foreignMarked := "00000000-0000-4000-8000-000000000001/" + manifest.RunFolder(old)
		writeRunFolder(t, root, foreignMarked, old, map[string]string{reservationKey: "00000000-0000-4000-8000-000000000002\n", "data.bin": "x"})
		unmarked := f.job.ID + "/" + manifest.RunFolder(old)
		writeRunFolder(t, root, unmarked, old, map[string]string{"notes.txt": "put here by hand"})
		ours := f.job.ID + "/" + manifest.RunFolder(old.Add(time.Hour))
		writeRunFolder(t, root, ours, old, map[string]string{reservationKey: killed.ID + "\n", ".incomplete-part-001": "partial"})
		oursGone := goneID + "/" + manifest.RunFolder(old)
		writeRunFolder(t, root, oursGone, old, map[string]string{reservationKey: killedGone.ID + "\n", ".incomplete-part-001": "partial"})

		rep, err := e.RunCleanup(ctx)
		mustNoErr(t, "cleanup", err)
		removed := slices.Sorted(slices.Values(rep.Incomplete))
		want := slices.Sorted(slices.Values([]string{"disk1: " + ours, "disk1: " + oursGone}))
		if !slices.Equal(removed, want) {
			t.Fatalf("removed %q, want %q", removed, want)
		}
		for _, dir := range []string{ours, oursGone} {
			if exists(root, dir) {
				t.Errorf("abandoned folder %s still there", dir)
			}
		}
		for _, dir := range []string{foreign, foreignMarked, unmarked} {
			if !exists(root, dir) {
				t.Errorf("%s removed", dir)
			}
		}
		if b, err := os.ReadFile(filepath.Join(root, "otherapp", "2020-01-01_000000", "important.dump")); err != nil || string(b) != "someone else's data" {
			t.Errorf("otherapp/2020-01-01_000000/important.dump: %q, %v", b, err)
		}
		log, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(CleanupLogKey)))
		mustNoErr(t, "read cleanup log", err)
		for _, dir := range []string{foreign, foreignMarked, unmarked} {
			if strings.Contains(string(log), dir) {
				t.Errorf("cleanup log names %s, which it left alone:\n%s", dir, log)
			}
		}
	})
}

// TestCleanupKeepsCompletedBackupMissingManifest: the folder of a
// completed backup whose manifest.json was deleted is never removed as
// incomplete, however old; its copy is marked missing (the Backups tab
// shows it) while the other copy stays available and restorable.
func TestCleanupKeepsCompletedBackupMissingManifest(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{MaxFileSizeMB: 1})
		x, err := e.RunBackup(ctx, f.job.ID)
		mustNoErr(t, "backup", err)
		root := f.roots[0]
		files := runFiles(t, root, x.BackupPath)
		mustNoErr(t, "delete manifest", os.Remove(filepath.Join(root, filepath.FromSlash(x.BackupPath), manifest.FileName)))
		ageFolder(t, root, x.BackupPath, time.Now().Add(-72*time.Hour))

		rep, err := e.RunCleanup(ctx)
		mustNoErr(t, "cleanup", err)
		if len(rep.Incomplete) != 0 {
			t.Fatalf("removed %q", rep.Incomplete)
		}
		if want := []string{"disk1: " + x.BackupPath}; !slices.Equal(rep.Missing, want) {
			t.Fatalf("missing %q, want %q", rep.Missing, want)
		}
		left := runFiles(t, root, x.BackupPath)
		if len(left) != len(files)-1 {
			t.Fatalf("%d files left of %d, want all but the manifest", len(left), len(files))
		}
		if s := storageStatus(t, e, x.ID, f.job.StorageLocationIDs[0]); s.Status != StorageMissing || !strings.Contains(s.ErrorMessage, manifest.FileName) {
			t.Fatalf("disk1 status %+v, want missing naming %s", s, manifest.FileName)
		}
		if s := storageStatus(t, e, x.ID, f.job.StorageLocationIDs[1]); s.Status != StorageAvailable {
			t.Fatalf("disk2 status %+v, want available", s)
		}
		if log, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(CleanupLogKey))); err == nil && strings.Contains(string(log), x.BackupPath) {
			t.Fatalf("cleanup log names the kept backup:\n%s", log)
		}

		// A second pass keeps it too, and the other copy still restores.
		_, err = e.RunCleanup(ctx)
		mustNoErr(t, "cleanup again", err)
		if got := runFiles(t, root, x.BackupPath); len(got) != len(left) {
			t.Fatalf("second pass left %d files, want %d", len(got), len(left))
		}
		r, err := e.Restore(ctx, x.ID, drivers.Source{Type: "sqlite", Path: filepath.Join(t.TempDir(), "r.db")}, nil)
		mustNoErr(t, "restore from disk2", err)
		if r.Status != ExecutionCompleted {
			t.Fatalf("restore %s: %s", r.Status, r.ErrorMessage)
		}
	})
}

// TestVerifyMarksCorruptAndMissingCopies: a checksum failure marks the
// copy corrupt, a part gone marks it missing, at restore (pass 1), at
// VerifyBackup and at retry-upload.
func TestVerifyMarksCorruptAndMissingCopies(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *Engine) {
		ctx := t.Context()
		f := newFixture(t, e, BackupJob{Compression: "gzip"})
		x, err := e.RunBackup(ctx, f.job.ID)
		mustNoErr(t, "backup", err)
		disk1, disk2 := f.job.StorageLocationIDs[0], f.job.StorageLocationIDs[1]

		// Restore: pass 1 finds disk1 corrupt and restores from disk2.
		corruptPart(t, f.roots[0], x.BackupPath)
		r, err := e.Restore(ctx, x.ID, drivers.Source{Type: "sqlite", Path: filepath.Join(t.TempDir(), "r.db")}, nil)
		mustNoErr(t, "restore from disk2", err)
		if r.Status != ExecutionCompleted {
			t.Fatalf("restore %s: %s", r.Status, r.ErrorMessage)
		}
		if s := storageStatus(t, e, x.ID, disk1); s.Status != StorageCorrupt || !strings.Contains(s.ErrorMessage, "checksum mismatch") {
			t.Fatalf("disk1 after restore: %+v, want corrupt", s)
		}
		if s := storageStatus(t, e, x.ID, disk2); s.Status != StorageAvailable {
			t.Fatalf("disk2 after restore: %+v, want available", s)
		}

		// Retry-upload repairs disk1; then a part gone is missing for
		// VerifyBackup and for a retry-upload that cannot repair it.
		_, err = e.RetryUpload(ctx, x.ID)
		mustNoErr(t, "retry upload", err)
		if s := storageStatus(t, e, x.ID, disk1); s.Status != StorageAvailable {
			t.Fatalf("disk1 after retry-upload: %+v, want available", s)
		}
		parts, _ := filepath.Glob(filepath.Join(f.roots[1], filepath.FromSlash(x.BackupPath), "backup.*"))
		mustNoErr(t, "remove part", os.Remove(parts[0]))
		if err := e.VerifyBackup(ctx, x.ID); !errors.Is(err, manifest.ErrMissingPart) {
			t.Fatalf("verify: %v, want a missing part", err)
		}
		if s := storageStatus(t, e, x.ID, disk2); s.Status != StorageMissing {
			t.Fatalf("disk2 after verify: %+v, want missing", s)
		}
		corruptPart(t, f.roots[0], x.BackupPath)
		if _, err := e.RetryUpload(ctx, x.ID); !errors.Is(err, ErrNotRestorable) {
			t.Fatalf("retry upload with no good copy: %v", err)
		}
		if s := storageStatus(t, e, x.ID, disk1); s.Status != StorageCorrupt {
			t.Fatalf("disk1 after a failed retry-upload: %+v, want corrupt", s)
		}
	})
}
