package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage"
	"github.com/dataguardian/dataguardian/storage/local"
)

// runDir is a run folder given on the command line: the storage rooted at
// its grandparent and its key "job/run" there.
type runDir struct {
	path string // absolute filesystem path of the folder
	key  string // "{job_id}/{YYYY-MM-DD_HHmmss}"
	st   *local.Local
}

// openRunDir opens the run folder at path, which must exist.
func openRunDir(path string) (*runDir, error) {
	abs, err := existingDir(path)
	if err != nil {
		return nil, err
	}
	run, job := filepath.Base(abs), filepath.Base(filepath.Dir(abs))
	if t, err := time.Parse(manifest.RunFolderLayout, run); err != nil || manifest.RunFolder(t) != run {
		return nil, usagef("%s is not a run folder: give a folder {storage}/{job_id}/{YYYY-MM-DD_HHmmss}, as 'dataguardian ls STORAGE' lists them", path)
	}
	key := job + "/" + run
	if err := storage.ValidateKey(key); err != nil {
		return nil, usagef("%s is not a run folder: %v", path, err)
	}
	st, err := local.New(filepath.Dir(filepath.Dir(abs)))
	if err != nil {
		return nil, err
	}
	return &runDir{path: abs, key: key, st: st}, nil
}

// openStorageDir opens the storage rooted at dir, which must exist.
func openStorageDir(dir string) (*local.Local, error) {
	abs, err := existingDir(dir)
	if err != nil {
		return nil, err
	}
	return local.New(abs)
}

// existingDir returns the absolute path of dir, which must be a directory:
// reading commands never create one.
func existingDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("open %s: not a directory", dir)
	}
	return abs, nil
}

// load reads the manifest of the run folder.
func (r *runDir) load(ctx context.Context) (*manifest.Manifest, error) {
	return manifest.Load(ctx, r.st, r.key)
}

// verify checks every part of m and the whole stream (manifest.Verify),
// showing progress.
func (c *cli) verifyRun(ctx context.Context, r *runDir, m *manifest.Manifest) error {
	p := c.startProgress("verify", m.CompressedSizeBytes)
	defer p.stop()
	return manifest.Verify(ctx, countingStorage{Storage: r.st, p: p}, r.key, m)
}

// countingStorage counts the bytes read through Open for a progress line.
type countingStorage struct {
	storage.Storage
	p *progress
}

func (s countingStorage) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	rc, err := s.Storage.Open(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{s.p.reader(rc), rc}, nil
}

// summary describes a completed backup in JSON output.
type summary struct {
	JobID               string               `json:"job_id"`
	ExecutionID         string               `json:"execution_id"`
	CreatedAt           time.Time            `json:"created_at"`
	DatasourceType      string               `json:"datasource_type"`
	Compression         manifest.Compression `json:"compression"`
	TotalSizeBytes      int64                `json:"total_size_bytes"`
	CompressedSizeBytes int64                `json:"compressed_size_bytes"`
	CompressionRatio    float64              `json:"compression_ratio"`
	Checksum            string               `json:"checksum"`
	Parts               int                  `json:"parts"`
	Metadata            manifest.Metadata    `json:"metadata"`
}

func summarize(m *manifest.Manifest) *summary {
	if m == nil {
		return nil
	}
	return &summary{JobID: m.JobID, ExecutionID: m.ExecutionID, CreatedAt: m.CreatedAt, DatasourceType: m.DatasourceType,
		Compression: m.Compression, TotalSizeBytes: m.TotalSizeBytes, CompressedSizeBytes: m.CompressedSizeBytes,
		CompressionRatio: m.CompressionRatio, Checksum: m.Checksum, Parts: len(m.Chunks), Metadata: m.Metadata}
}

// describe is a one-line text description of a backup.
func describe(s *summary) string {
	return fmt.Sprintf("%s backup, %s, %d part(s), %s (%s uncompressed)", s.DatasourceType, s.Compression, s.Parts,
		humanBytes(s.CompressedSizeBytes), humanBytes(s.TotalSizeBytes))
}

// humanBytes formats n in binary units: "512 B", "3.2 MiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
