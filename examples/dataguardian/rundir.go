package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage"
	"github.com/dataguardian/dataguardian/storage/local"
)

// runDir is a run folder given on the command line: any directory that
// holds a manifest.json, wherever it lives and whatever its name (a copy in
// /tmp, a renamed folder, a mounted disk). The manifest says which job and
// run it is; the path says nothing. It is read through folderStorage, so
// verify and restore never write into it.
type runDir struct {
	path string // absolute filesystem path of the folder
	key  string // the folder's key in st
	st   storage.Storage
}

// openRun opens the run folder at path: a local folder (openRunDir) or a
// remote one, s3://BUCKET/PREFIX/JOB/RUN or sftp://USER@HOST/PATH/JOB/RUN.
func (c *cli) openRun(ctx context.Context, path string) (*runDir, error) {
	if !isRemote(path) {
		return openRunDir(path)
	}
	st, key, err := c.openRemote(ctx, path, true)
	if err != nil {
		return nil, err
	}
	return &runDir{path: path, key: key, st: st}, nil
}

// openRunDir opens the run folder at path, which must exist. A folder
// without manifest.json that does not look like a run either (no run-time
// name, no part, no reservation) is a usage error; an incomplete run is
// left for manifest.Load to report.
func openRunDir(path string) (*runDir, error) {
	abs, err := existingDir(path)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(abs, manifest.FileName)); err != nil && !looksLikeRun(abs) {
		return nil, usagef("%s is not a run folder: it holds no %s; give a folder that does, as 'dataguardian ls STORAGE' lists them", path, manifest.FileName)
	}
	key := filepath.Base(abs)
	if storage.ValidateKey(key) != nil || strings.ContainsAny(key, "/"+string(filepath.Separator)) {
		key = "run"
	}
	return &runDir{path: abs, key: key, st: &folderStorage{dir: abs, key: key}}, nil
}

// looksLikeRun reports whether dir, which has no manifest.json, is still a
// run folder: named as one, or holding a part or a backup's reservation.
func looksLikeRun(dir string) bool {
	name := filepath.Base(dir)
	if t, err := time.Parse(manifest.RunFolderLayout, name); err == nil && manifest.RunFolder(t) == name {
		return true
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, "backup.") || strings.HasPrefix(n, ".incomplete-part-") || n == ".dataguardian-run" {
			return true
		}
	}
	return false
}

// errReadOnly refuses a write through folderStorage.
var errReadOnly = errors.New("read-only: the CLI never writes into a run folder it reads")

// folderStorage is a read-only storage.Storage over one directory: the file
// NAME in it is the object "{key}/NAME". Unlike local.Local it needs no
// write access (a backup on read-only media verifies and restores) and no
// storage root above the folder.
type folderStorage struct {
	dir, key string
}

var _ storage.Storage = (*folderStorage)(nil)

// file returns the path of the file behind key.
func (f *folderStorage) file(op, key string) (string, error) {
	if err := storage.ValidateKey(key); err != nil {
		return "", &storage.OpError{Op: op, Key: key, Err: err}
	}
	name, ok := strings.CutPrefix(key, f.key+"/")
	if !ok || strings.Contains(name, "/") {
		return "", &storage.OpError{Op: op, Key: key, Err: storage.ErrNotFound}
	}
	return filepath.Join(f.dir, name), nil
}

func (f *folderStorage) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	name, err := f.file("open", key)
	if err != nil {
		return nil, err
	}
	fh, err := os.Open(name)
	if err == nil {
		err = regular(fh)
	}
	if err == nil && offset > 0 {
		_, err = fh.Seek(offset, io.SeekStart)
	}
	if err != nil {
		if fh != nil {
			fh.Close()
		}
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%w: %v", storage.ErrNotFound, err)
		}
		return nil, &storage.OpError{Op: "open", Key: key, Err: err}
	}
	if length < 0 {
		return fh, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(fh, length), fh}, nil
}

// regular fails unless fh is a regular file.
func regular(fh *os.File) error {
	fi, err := fh.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", fh.Name())
	}
	return err
}

func (f *folderStorage) Stat(ctx context.Context, key string) (storage.Object, error) {
	name, err := f.file("stat", key)
	if err != nil {
		return storage.Object{}, err
	}
	fi, err := os.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("%w: %v", storage.ErrNotFound, err)
	}
	if err != nil {
		return storage.Object{}, &storage.OpError{Op: "stat", Key: key, Err: err}
	}
	return storage.Object{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

func (f *folderStorage) List(ctx context.Context, prefix string) ([]storage.Object, error) {
	if err := storage.ValidatePrefix(prefix); err != nil {
		return nil, &storage.OpError{Op: "list", Key: prefix, Err: err}
	}
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		return nil, &storage.OpError{Op: "list", Key: prefix, Err: err}
	}
	var out []storage.Object
	for _, e := range entries { // sorted by name, so by key
		key := f.key + "/" + e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			continue
		}
		if fi, err := e.Info(); err == nil {
			out = append(out, storage.Object{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
		}
	}
	return out, nil
}

func (f *folderStorage) Put(ctx context.Context, key string, r io.Reader, opts *storage.PutOptions) error {
	return &storage.OpError{Op: "put", Key: key, Err: errReadOnly}
}

func (f *folderStorage) Delete(ctx context.Context, key string) error {
	return &storage.OpError{Op: "delete", Key: key, Err: errReadOnly}
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
		manifest.FormatBytes(s.CompressedSizeBytes), manifest.FormatBytes(s.TotalSizeBytes))
}
