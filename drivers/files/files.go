package files

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
)

var (
	_ drivers.Driver    = (*Driver)(nil)
	_ drivers.Pather    = (*Driver)(nil)
	_ drivers.Checker   = (*Driver)(nil)
	_ drivers.Inspector = (*Driver)(nil)
)

// maxSkippedPaths bounds the skipped paths listed in the metadata.
const maxSkippedPaths = 20

// Driver backs up and restores a directory tree as a tar archive. The zero
// value is ready to use; New returns one.
type Driver struct {
	// Logger receives notes about skipped entries; nil means slog.Default().
	Logger *slog.Logger
	// AllowExternalSymlinks makes Restore accept symbolic links whose target
	// lies outside the restored tree (absolute targets such as
	// "current -> /srv/releases/42"). They are created as links and never
	// followed during the restore. By default such an archive is refused
	// with drivers.ErrUnsafeArchive.
	AllowExternalSymlinks bool
}

// New returns a files driver with default settings.
func New() *Driver { return &Driver{} }

// Type returns "files".
func (*Driver) Type() string { return "files" }

// Format returns "tar".
func (*Driver) Format() string { return "tar" }

// Paths returns the directory of src: backed up, and replaced by a restore.
func (*Driver) Paths(src drivers.Source) []drivers.SourcePath {
	return []drivers.SourcePath{{Field: "path", Path: src.Path}}
}

func (d *Driver) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.Default()
}

// Check validates src without touching the file system: it needs a path
// (the engine also requires it to be absolute).
func (*Driver) Check(src drivers.Source) error {
	if src.Path == "" {
		return &drivers.FieldError{Field: "path", Err: errors.New("files source has no path: set the directory to back up")}
	}
	return nil
}

// checkDir resolves the directory at path, following symbolic links (a
// path that is a link to a directory means that directory, as for
// `tar -C path .`), and returns the resolved path and its FileInfo, or an
// error matching drivers.ErrInvalidSource.
func checkDir(path string) (string, os.FileInfo, error) {
	if path == "" {
		return "", nil, fmt.Errorf("%w: files source has no path: set the directory to back up", drivers.ErrInvalidSource)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", drivers.ErrInvalidSource, err)
	}
	if !fi.IsDir() {
		return "", nil, fmt.Errorf("%w: %s is not a directory", drivers.ErrInvalidSource, path)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", nil, fmt.Errorf("%w: resolve %s: %w", drivers.ErrInvalidSource, path, err)
	}
	return real, fi, nil
}

// Dump writes the tree under src.Path to w as a PAX tar archive: the root
// as "./", then every directory, regular file and symbolic link in sorted
// order under its slash-separated relative name, with mode, modification
// time, uid and gid. When src.Path itself is a symbolic link to a
// directory, the directory it resolves to is backed up (as `tar -C path .`
// does; the metadata's "resolved_path" names it); symbolic links below the
// root are stored as links, never followed. Sockets, devices and named
// pipes are skipped and counted in the metadata ("skipped",
// "skipped_paths"); hard links are stored as separate files. A file that
// shrinks while it is read is padded with zeros and logged.
//
// A dump that archived nothing below the root while the directory holds
// entries is an error naming the path, never an empty backup.
func (d *Driver) Dump(ctx context.Context, src drivers.Source, w io.Writer, opts *drivers.DumpOptions) (drivers.Metadata, error) {
	root, _, err := checkDir(src.Path)
	if err != nil {
		return drivers.Metadata{}, fmt.Errorf("dump files: %w", err)
	}
	if root != filepath.Clean(src.Path) {
		opts.Log("%s resolves to %s: backing up that directory", src.Path, root)
	}
	dw := dumper{ctx: ctx, root: root, tw: tar.NewWriter(w), log: d.logger(), opts: opts}
	err = filepath.WalkDir(root, dw.add)
	if err == nil && dw.entries == 0 {
		err = checkNothingMissed(root)
	}
	if err == nil {
		err = dw.tw.Close()
	}
	md := drivers.Metadata{
		RowsApproximate: dw.files,
		Extra:           map[string]any{"files": dw.files, "directories": dw.dirs, "bytes": dw.bytes},
	}
	if root != filepath.Clean(src.Path) {
		md.Extra["resolved_path"] = root
	}
	if len(dw.skipped) > 0 {
		md.Extra["skipped"] = dw.nSkipped
		md.Extra["skipped_paths"] = dw.skipped
	}
	if err != nil {
		return md, fmt.Errorf("dump files %s: %w", src.Path, err)
	}
	return md, nil
}

// errNothingArchived reports a tree whose entries the dump did not see.
var errNothingArchived = errors.New("the directory holds entries but none was archived")

// checkNothingMissed is the last check of a dump that archived nothing
// below root: root must really be empty.
func checkNothingMissed(root string) error {
	f, err := os.Open(root)
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) || (err == nil && len(names) == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%w (%s, ...)", errNothingArchived, names[0])
}

type dumper struct {
	ctx                context.Context
	root               string
	tw                 *tar.Writer
	log                *slog.Logger
	opts               *drivers.DumpOptions
	files, dirs, bytes int64
	entries            int64 // entries below the root, skipped ones included
	nSkipped           int
	skipped            []string
}

// add writes one walked entry to the archive.
func (d *dumper) add(path string, de fs.DirEntry, err error) error {
	if err != nil {
		return err
	}
	if err := d.ctx.Err(); err != nil {
		return err
	}
	rel, err := filepath.Rel(d.root, path)
	if err != nil {
		return err
	}
	rel = filepath.ToSlash(rel)
	fi, err := de.Info()
	if err != nil {
		return err
	}
	if rel == "." && !fi.IsDir() {
		return fmt.Errorf("the root %s is not a directory (%s)", path, fi.Mode().Type())
	}
	if rel != "." {
		d.entries++
	}
	var link string
	switch {
	case fi.Mode().IsRegular(), fi.IsDir():
	case fi.Mode()&fs.ModeSymlink != 0:
		if link, err = os.Readlink(path); err != nil {
			return err
		}
	default:
		d.nSkipped++
		if len(d.skipped) < maxSkippedPaths {
			d.skipped = append(d.skipped, rel)
		}
		d.log.Info("files backup: skipping special file", "path", rel, "mode", fi.Mode().String())
		d.opts.Log("skipping special file %s (%s)", rel, fi.Mode())
		return nil
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	hdr.Name = rel
	hdr.Format = tar.FormatPAX
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{} // keep the archive reproducible
	if fi.IsDir() {
		hdr.Name += "/"
		d.dirs++
	}
	if err := d.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	d.files++
	d.bytes += hdr.Size
	return d.copyFile(path, rel, hdr.Size)
}

// copyFile writes size bytes of the file at path to the archive.
func (d *dumper) copyFile(path, rel string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyN(d.tw, ctxReader{d.ctx, f}, size)
	if errors.Is(err, io.EOF) {
		d.log.Warn("files backup: file shrank while being read; padded with zeros", "path", rel, "read", n, "expected", size)
		d.opts.Log("file %s shrank while being read (%d of %d bytes); padded with zeros", rel, n, size)
		_, err = io.CopyN(d.tw, zeros{}, size-n)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Ping checks that src.Path is a readable directory; like Dump, it follows
// a symbolic link at src.Path (the metadata's "resolved_path" names where
// it leads).
func (d *Driver) Ping(_ context.Context, src drivers.Source) drivers.Health {
	start := time.Now()
	h := drivers.Health{Status: drivers.HealthOK}
	root, fi, err := checkDir(src.Path)
	if err == nil {
		var f *os.File
		if f, err = os.Open(root); err == nil {
			_, err = f.ReadDir(1)
			if errors.Is(err, io.EOF) {
				err = nil
			}
			f.Close()
		}
	}
	h.Latency = time.Since(start)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		h.Status, h.ErrorText = drivers.HealthUnreachable, fmt.Sprintf("ping files: %v", err)
	case err != nil:
		h.Status, h.ErrorText = drivers.HealthError, fmt.Sprintf("ping files: %v", err)
	default:
		h.Metadata = map[string]any{"mode": fi.Mode().String()}
		if root != filepath.Clean(src.Path) {
			h.Metadata["resolved_path"] = root
		}
	}
	return h
}

// Empty reports whether the directory target.Path (followed when it is a
// symbolic link, as Restore does) is missing or holds no entry. A path
// that exists and is not a directory is an error matching
// drivers.ErrInvalidSource.
func (*Driver) Empty(_ context.Context, target drivers.Source) (bool, error) {
	if target.Path == "" {
		return false, fmt.Errorf("inspect files: %w: target has no path: set the directory to restore into", drivers.ErrInvalidSource)
	}
	fi, err := os.Stat(target.Path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, lerr := os.Lstat(target.Path); lerr == nil {
			return false, fmt.Errorf("inspect files: %w: %s is a symbolic link to a missing target", drivers.ErrInvalidSource, target.Path)
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspect files: %w", err)
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("inspect files: %w: %s exists and is not a directory", drivers.ErrInvalidSource, target.Path)
	}
	f, err := os.Open(target.Path)
	if err != nil {
		return false, fmt.Errorf("inspect files: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspect files %s: %w", target.Path, err)
	}
	return len(names) == 0, nil
}
