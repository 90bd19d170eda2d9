package manifest_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage"
)

// putFile writes a file under the storage root by hand, as a crash or a
// person would leave it.
func putFile(t *testing.T, root, key, content string) {
	t.Helper()
	name := filepath.Join(root, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	s, root := newLocal(t)
	at := func(s string) time.Time {
		tm, err := time.Parse(manifest.RunFolderLayout, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	write := func(job, when string, c manifest.Compression, partSize int64, size int) *manifest.Result {
		o := opts(c, partSize)
		o.JobID, o.Now = job, func() time.Time { return at(when) }
		res, err := manifest.Write(ctx, []manifest.Destination{{Name: "disk", Storage: s}}, o, dumpBytes(make([]byte, size)))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	write("job-b", "2025-02-13_060001", manifest.Gzip, 1<<20, 1000)
	write("job-a", "2025-02-13_060001", manifest.None, 400, 1000) // same second, other job: 3 parts
	write("job-a", "2025-02-12_060001", manifest.Zstd, 1<<20, 10)
	// Completed backups whose parts were damaged afterwards: one
	// truncated, one deleted. List tells them by size, without hashing.
	truncated := write("job-d", "2025-02-09_000000", manifest.None, 400, 1000)
	if err := os.Truncate(filepath.Join(root, truncated.Dir, "backup.dump.part-002"), 100); err != nil {
		t.Fatal(err)
	}
	missing := write("job-d", "2025-02-08_000000", manifest.None, 400, 1000)
	if err := os.Remove(filepath.Join(root, missing.Dir, "backup.dump.part-003")); err != nil {
		t.Fatal(err)
	}
	// A backup killed with SIGKILL: a temporary part and the reservation.
	putFile(t, root, "job-a/2025-02-14_000000/.incomplete-part-001", "partial")
	putFile(t, root, "job-a/2025-02-14_000000/.dataguardian-run", "exec-9\n")
	// A manifest that is not JSON, and one that is JSON but not a manifest.
	putFile(t, root, "job-c/2025-02-11_000000/manifest.json", "\x00garbage{")
	putFile(t, root, "job-c/2025-02-11_000000/backup.db", "x")
	putFile(t, root, "job-c/2025-02-10_000000/manifest.json", `{"version":"1.0"}`)
	// Keys that are not run folders.
	putFile(t, root, "_system/cleanup.log", "log\n")
	putFile(t, root, "_old/2025-02-13_060001/manifest.json", "{}")
	putFile(t, root, "README.txt", "hello")
	putFile(t, root, "job-a/notes.txt", "hello")
	putFile(t, root, "job-a/2025-13-01_000000/manifest.json", "{}")
	putFile(t, root, "job-a/latest/manifest.json", "{}")

	got, err := manifest.List(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dir, status, reason string
		compression         manifest.Compression
		parts, files        int
	}{
		{dir: "job-a/2025-02-14_000000", status: manifest.StatusIncomplete, files: 2},
		{dir: "job-a/2025-02-13_060001", status: manifest.StatusCompleted, compression: manifest.None, parts: 3, files: 6},
		{dir: "job-b/2025-02-13_060001", status: manifest.StatusCompleted, compression: manifest.Gzip, parts: 1, files: 4},
		{dir: "job-a/2025-02-12_060001", status: manifest.StatusCompleted, compression: manifest.Zstd, parts: 1, files: 4},
		{dir: "job-c/2025-02-11_000000", status: manifest.StatusInvalid, reason: "decode manifest.json", files: 2},
		{dir: "job-c/2025-02-10_000000", status: manifest.StatusInvalid, reason: "unknown datasource type", files: 1},
		{dir: "job-d/2025-02-09_000000", status: manifest.StatusDamaged, reason: "chunk 2 backup.dump.part-002: part size mismatch: 100 bytes, manifest says 400", compression: manifest.None, parts: 3, files: 6},
		{dir: "job-d/2025-02-08_000000", status: manifest.StatusDamaged, reason: "chunk 3: missing part backup.dump.part-003", compression: manifest.None, parts: 3, files: 5},
	}
	if len(got) != len(tests) {
		for _, b := range got {
			t.Logf("%s %s %s", b.Dir, b.Status, b.Reason)
		}
		t.Fatalf("List returned %d folders, want %d", len(got), len(tests))
	}
	for i, tt := range tests {
		b := got[i]
		t.Run(strings.ReplaceAll(tt.dir, "/", "_"), func(t *testing.T) {
			if b.Dir != tt.dir || b.Status != tt.status {
				t.Fatalf("entry %d = %s %s, want %s %s", i, b.Dir, b.Status, tt.dir, tt.status)
			}
			job, run, _ := strings.Cut(tt.dir, "/")
			if b.JobID != job || !b.Time.Equal(at(run)) || b.Time.Location() != time.UTC {
				t.Errorf("job %q time %v, want %q %s UTC", b.JobID, b.Time, job, run)
			}
			if b.Files != tt.files || b.StoredBytes <= 0 {
				t.Errorf("files %d stored %d bytes, want %d files and some bytes", b.Files, b.StoredBytes, tt.files)
			}
			if !strings.Contains(b.Reason, tt.reason) || (tt.reason == "") != (b.Reason == "") {
				t.Errorf("reason %q, want one containing %q", b.Reason, tt.reason)
			}
			if tt.status != manifest.StatusCompleted && tt.status != manifest.StatusDamaged {
				if b.Manifest != nil {
					t.Errorf("a %s backup has a manifest", b.Status)
				}
				return
			}
			m := b.Manifest
			if m == nil {
				t.Fatalf("%s backup without manifest", b.Status)
			}
			if m.Compression != tt.compression || len(m.Chunks) != tt.parts || m.DatasourceType != "postgres" || m.JobID != job || m.CompressedSizeBytes <= 0 {
				t.Errorf("manifest %s: compression %s, %d parts, type %s, job %s, %d bytes", b.Dir, m.Compression, len(m.Chunks), m.DatasourceType, m.JobID, m.CompressedSizeBytes)
			}
		})
	}
}

func TestListEmptyAndCancelled(t *testing.T) {
	s, _ := newLocal(t)
	got, err := manifest.List(context.Background(), s)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty storage: %v, %v", got, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := manifest.List(ctx, s); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled List: %v, want context.Canceled", err)
	}
}

// failingOpen lists like its storage but fails every Open: the manifests
// are unreadable.
type failingOpen struct{ storage.Storage }

func (failingOpen) Open(context.Context, string, int64, int64) (io.ReadCloser, error) {
	return nil, errors.New("disk on fire")
}

func TestListUnreadableManifest(t *testing.T) {
	s, _ := newLocal(t)
	o := opts(manifest.Gzip, 1<<20)
	if _, err := manifest.Write(context.Background(), []manifest.Destination{{Name: "disk", Storage: s}}, o, dumpBytes([]byte("data"))); err != nil {
		t.Fatal(err)
	}
	got, err := manifest.List(context.Background(), failingOpen{s})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Status != manifest.StatusInvalid || !strings.Contains(got[0].Reason, "disk on fire") {
		t.Fatalf("got %+v, want one invalid backup naming the read error", got)
	}
}
