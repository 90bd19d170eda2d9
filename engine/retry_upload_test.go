package engine

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
)

// newSQLiteEngine opens an Engine on a fresh SQLite metadata database.
func newSQLiteEngine(t *testing.T, cfg Config) *Engine {
	t.Helper()
	cfg.DataDir, cfg.DatabaseURL = t.TempDir(), sqliteTestURL(t)
	if cfg.Logger == nil {
		cfg.Logger = discardLogger
	}
	e, err := newEngine(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// runFiles returns every file of a run folder under root, by name.
func runFiles(t *testing.T, root, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	base := filepath.Join(root, filepath.FromSlash(dir))
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(base, p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func storageStatus(t *testing.T, e *Engine, execID, locID string) ExecutionStorage {
	t.Helper()
	ss, err := e.store.ListExecutionStorages(t.Context(), execID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if s.StorageLocationID == locID {
			return s
		}
	}
	t.Fatalf("no status of storage %s for %s", locID, execID)
	return ExecutionStorage{}
}

// sameCopies fails unless both storages hold byte-identical run folders
// with no leftover temporary file.
func sameCopies(t *testing.T, f *fixture, dir string) {
	t.Helper()
	a, b := runFiles(t, f.roots[0], dir), runFiles(t, f.roots[1], dir)
	if len(a) < 3 {
		t.Fatalf("source copy has %d files, want manifest and several parts", len(a))
	}
	if len(a) != len(b) {
		t.Fatalf("copies differ: %d files vs %d", len(a), len(b))
	}
	for name, data := range a {
		if !bytes.Equal(data, b[name]) {
			t.Fatalf("%s differs between storages", name)
		}
	}
}

func TestRetryUpload(t *testing.T) {
	e := newSQLiteEngine(t, Config{})
	f := newFixture(t, e, BackupJob{MaxFileSizeMB: 1}) // ~2 MiB of blobs: 3 parts
	ctx := t.Context()
	exec, err := e.RunBackup(ctx, f.job.ID)
	mustNoErr(t, "backup", err)
	loc2 := f.job.StorageLocationIDs[1]
	target := filepath.Join(f.roots[1], filepath.FromSlash(exec.BackupPath))

	t.Run("missing copy is copied back and restores alone", func(t *testing.T) {
		mustNoErr(t, "remove copy", os.RemoveAll(target))
		e.setStorageStatus(ctx, exec.ID, loc2, StorageUnreachable, errors.New("disk full"))
		if _, err := e.RetryUpload(ctx, exec.ID); err != nil {
			t.Fatal(err)
		}
		sameCopies(t, f, exec.BackupPath)
		if s := storageStatus(t, e, exec.ID, loc2); s.Status != StorageAvailable || s.ErrorMessage != "" {
			t.Fatalf("status %+v, want available", s)
		}
		if logs := logText(t, e, exec.ID); !strings.Contains(logs, "[BACKUP] retry-upload: copying") ||
			!strings.Contains(logs, "[BACKUP] retry-upload: storage disk2: copy complete and verified") {
			t.Fatalf("logs:\n%s", logs)
		}
		restored := filepath.Join(t.TempDir(), "restored.db")
		_, err := e.Restore(ctx, exec.ID, drivers.Source{Type: "sqlite", Path: restored}, &RestoreOptions{StorageLocationID: loc2})
		mustNoErr(t, "restore from the repaired storage", err)
		if got, want := digest(t, restored), digest(t, f.dbPath); got != want {
			t.Fatalf("restored %s, want %s", got, want)
		}
	})

	t.Run("corrupt copy is replaced", func(t *testing.T) {
		part := filepath.Join(target, "backup.db.gz.part-002")
		data, err := os.ReadFile(part)
		mustNoErr(t, "read part", err)
		data[len(data)/2] ^= 0xff
		mustNoErr(t, "corrupt part", os.WriteFile(part, data, 0o600))
		if _, err := e.RetryUpload(ctx, exec.ID); err != nil {
			t.Fatal(err)
		}
		sameCopies(t, f, exec.BackupPath)
		mustNoErr(t, "verify", e.VerifyBackup(ctx, exec.ID))
	})

	t.Run("every copy fine: nothing to do", func(t *testing.T) {
		if _, err := e.RetryUpload(ctx, exec.ID); err != nil {
			t.Fatal(err)
		}
		if logs := logText(t, e, exec.ID); !strings.Contains(logs, "retry-upload: every copy verifies") {
			t.Fatalf("logs:\n%s", logs)
		}
	})

	t.Run("no verified source: error, nothing written", func(t *testing.T) {
		mustNoErr(t, "remove copy", os.RemoveAll(target))
		part := filepath.Join(f.roots[0], filepath.FromSlash(exec.BackupPath), "backup.db.gz.part-001")
		data, err := os.ReadFile(part)
		mustNoErr(t, "read part", err)
		data[10] ^= 0xff
		mustNoErr(t, "corrupt part", os.WriteFile(part, data, 0o600))
		_, err = e.RetryUpload(ctx, exec.ID)
		if err == nil || !strings.Contains(err.Error(), "no storage holds a verified copy") {
			t.Fatalf("err = %v, want no verified copy", err)
		}
		if files := runFiles(t, f.roots[1], exec.BackupPath); len(files) != 0 {
			t.Fatalf("wrote %d files to the target", len(files))
		}
	})

	t.Run("not a completed backup", func(t *testing.T) {
		if _, err := e.RetryUpload(ctx, "no-such-execution"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}
