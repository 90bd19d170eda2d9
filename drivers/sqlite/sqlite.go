package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

var (
	_ drivers.Driver    = (*Driver)(nil)
	_ drivers.Pather    = (*Driver)(nil)
	_ drivers.Checker   = (*Driver)(nil)
	_ drivers.Inspector = (*Driver)(nil)
)

const (
	// busyTimeout is how long a connection of this driver waits for a lock
	// held by another connection before giving up.
	busyTimeout = 10 * time.Second
	// pingTimeout bounds a Ping whose ctx has no deadline.
	pingTimeout = 5 * time.Second
	// pageBatch is how many pages Dump writes between two ctx checks.
	pageBatch = 64
	// headerMagic starts every SQLite database file.
	headerMagic = "SQLite format 3\x00"
	// Offsets of the file format write and read versions in the header of
	// page 1: 1 means rollback journal (legacy), 2 means WAL.
	offWriteVersion = 18
)

// Driver backs up and restores SQLite database files. The zero value is
// ready to use; New returns one.
type Driver struct{}

// New returns a SQLite driver.
func New() *Driver { return &Driver{} }

// Type returns "sqlite".
func (*Driver) Type() string { return "sqlite" }

// Format returns "db": a dump is a plain SQLite database file.
func (*Driver) Format() string { return "db" }

// Paths returns the database file of src: backed up, and replaced by a
// restore.
func (*Driver) Paths(src drivers.Source) []drivers.SourcePath {
	return []drivers.SourcePath{{Field: "path", Path: src.Path}}
}

// Check validates src without touching the file system: it needs a path
// (the engine also requires it to be absolute).
func (*Driver) Check(src drivers.Source) error {
	if src.Path == "" {
		return &drivers.FieldError{Field: "path", Err: errors.New("sqlite source has no path: set the database file path")}
	}
	return nil
}

// Empty reports whether target.Path is missing, zero bytes long, or a
// database without a table, view, index or trigger. It opens the file
// read-only and creates nothing. A path that is not a regular file is an
// error matching drivers.ErrInvalidSource, and so is a file that is not a
// SQLite database.
func (*Driver) Empty(ctx context.Context, target drivers.Source) (bool, error) {
	if target.Path == "" {
		return false, fmt.Errorf("inspect sqlite: %w: target has no path: set the database file path", drivers.ErrInvalidSource)
	}
	fi, err := os.Stat(target.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("inspect sqlite: %w", err)
	case !fi.Mode().IsRegular():
		return false, fmt.Errorf("inspect sqlite: %w: %s is not a regular file", drivers.ErrInvalidSource, target.Path)
	case fi.Size() == 0:
		return true, nil
	}
	mode := "ro"
	if _, wal, _ := targetInfo(target.Path); wal {
		if _, err := os.Stat(target.Path + "-wal"); errors.Is(err, os.ErrNotExist) {
			// A WAL database nobody has open: all of it is in the file.
			// Opened plainly, even read-only, SQLite would leave -wal and
			// -shm files beside it.
			mode = "ro+immutable"
		}
	}
	db, _, err := open(target.Path, mode)
	if err != nil {
		return false, fmt.Errorf("inspect sqlite: %w", err)
	}
	defer db.Close()
	var n int
	err = db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite\_%' ESCAPE '\'`).Scan(&n)
	switch {
	case err != nil && ctx.Err() != nil:
		return false, fmt.Errorf("inspect sqlite %s: %w (%v)", target.Path, ctx.Err(), err)
	case err != nil:
		return false, fmt.Errorf("inspect sqlite %s: %w: %w", target.Path, drivers.ErrInvalidSource, err)
	}
	return n == 0, nil
}

// dsn returns the modernc.org/sqlite DSN of the database file at path,
// opened with mode (ro, rw, or ro+immutable for a file no one writes),
// never creating it.
func dsn(path, mode string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	mode, immutable := strings.CutSuffix(mode, "+immutable")
	q := url.Values{"mode": {mode}, "_busy_timeout": {fmt.Sprint(busyTimeout.Milliseconds())}}
	if immutable {
		q.Set("immutable", "1") // no locks, no -wal or -shm files
	}
	return u.String() + "?" + q.Encode(), nil
}

// open checks that path is an existing regular file and opens it with at
// most one connection. A missing file is an error matching
// drivers.ErrInvalidSource; it is never created.
func open(path, mode string) (*sql.DB, os.FileInfo, error) {
	if path == "" {
		return nil, nil, fmt.Errorf("%w: sqlite source has no path: set the database file path", drivers.ErrInvalidSource)
	}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w: sqlite database %s does not exist: check the path", drivers.ErrInvalidSource, path)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: stat sqlite database: %v", drivers.ErrInvalidSource, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%w: sqlite database %s is not a regular file", drivers.ErrInvalidSource, path)
	}
	name, err := dsn(path, mode)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: sqlite database %s: %v", drivers.ErrInvalidSource, path, err)
	}
	db, err := sql.Open("sqlite", name)
	if err != nil {
		return nil, nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, fi, nil
}

// Dump writes a consistent snapshot of the database at src.Path to w while
// other connections keep reading and writing it. The snapshot is one read
// transaction: the pages are streamed from the sqlite_dbpage virtual table
// in page order, so the output is an exact image of the database file as of
// the start of the transaction, written without a temporary file.
//
// The image is marked as a rollback-journal database (header bytes 18 and 19
// set to 1) even when the source uses WAL, so the dump is a self-contained
// database file that the sqlite3 shell opens as is, read-only media
// included. Restore marks it WAL again when the database it replaces was WAL.
//
// In WAL mode writers are never blocked by Dump. In rollback-journal mode
// the read transaction holds a shared lock for the whole dump, so writers
// wait (their busy timeout) until it ends: put busy databases in WAL mode.
func (d *Driver) Dump(ctx context.Context, src drivers.Source, w io.Writer, _ *drivers.DumpOptions) (md drivers.Metadata, err error) {
	db, _, err := open(src.Path, "rw")
	if err != nil {
		return md, fmt.Errorf("dump sqlite: %w", err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return md, fmt.Errorf("dump sqlite %s: begin read transaction: %w", src.Path, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only transaction
	// The first read starts the snapshot; everything below sees it.
	md, pageSize, pageCount, err := describe(ctx, tx)
	if err == nil {
		err = copyPages(ctx, tx, w, pageSize, pageCount)
	}
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	if err != nil {
		return md, fmt.Errorf("dump sqlite %s: %w", src.Path, err)
	}
	return md, nil
}

// describe reads the metadata of the snapshot open in tx.
func describe(ctx context.Context, tx *sql.Tx) (md drivers.Metadata, pageSize, pageCount int64, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return md, 0, 0, fmt.Errorf("list tables: %w", err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return md, 0, 0, fmt.Errorf("list tables: %w", err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return md, 0, 0, fmt.Errorf("list tables: %w", err)
	}
	var version string
	if err := tx.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&version); err != nil {
		return md, 0, 0, fmt.Errorf("read version: %w", err)
	}
	if err := tx.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		return md, 0, 0, fmt.Errorf("read page size: %w", err)
	}
	if err := tx.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pageCount); err != nil {
		return md, 0, 0, fmt.Errorf("read page count: %w", err)
	}
	var journal string
	if err := tx.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&journal); err != nil {
		return md, 0, 0, fmt.Errorf("read journal mode: %w", err)
	}
	var rowCount int64
	for _, t := range tables {
		var n int64
		q := `SELECT count(*) FROM "` + strings.ReplaceAll(t, `"`, `""`) + `"`
		if err := tx.QueryRowContext(ctx, q).Scan(&n); err != nil {
			return md, 0, 0, fmt.Errorf("count rows of %s: %w", t, err)
		}
		rowCount += n
	}
	md = drivers.Metadata{
		DatabaseVersion: "SQLite " + version,
		TablesBackedUp:  len(tables),
		RowsApproximate: rowCount,
		Extra: map[string]any{
			"page_size":    pageSize,
			"page_count":   pageCount,
			"journal_mode": journal,
		},
	}
	return md, pageSize, pageCount, nil
}

// copyPages streams every page of the snapshot open in tx to w.
func copyPages(ctx context.Context, tx *sql.Tx, w io.Writer, pageSize, pageCount int64) error {
	rows, err := tx.QueryContext(ctx, "SELECT pgno, data FROM sqlite_dbpage ORDER BY pgno")
	if err != nil {
		return fmt.Errorf("read pages: %w", err)
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		if n%pageBatch == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("read pages: %w", err)
			}
		}
		var pgno int64
		var data sql.RawBytes
		if err := rows.Scan(&pgno, &data); err != nil {
			return fmt.Errorf("read page %d: %w", n+1, err)
		}
		n++
		if pgno != n || int64(len(data)) != pageSize {
			return fmt.Errorf("read page %d: got page %d of %d bytes, want %d bytes", n, pgno, len(data), pageSize)
		}
		if pgno == 1 {
			data = plainHeader(data)
		}
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("write page %d: %w", pgno, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read pages: %w", err)
	}
	if n != pageCount {
		return fmt.Errorf("read pages: got %d pages, the database has %d", n, pageCount)
	}
	return ctx.Err()
}

// plainHeader returns a copy of page 1 marked as a rollback-journal database.
func plainHeader(page []byte) []byte {
	p := bytes.Clone(page)
	p[offWriteVersion], p[offWriteVersion+1] = 1, 1
	return p
}

// Restore replaces the database file at target.Path with the database r
// holds. The stream is written to a temporary file beside the target
// (".<name>.restore-<random>"), synced, checked with PRAGMA integrity_check,
// and only then renamed over the target, so a failed or cancelled restore
// leaves the target untouched. The stale -wal, -shm and -journal files of the
// old database are removed just before the rename: they belong to the old
// file and would corrupt the new one.
//
// The restore replaces the file, it does not write into it: stop every
// process that has the database open before restoring, or it keeps using the
// old (deleted) file. The new file keeps the mode of the file it replaces
// (0600 for a new one) and, when the old database was in WAL mode, is marked
// WAL too; the parent directory must exist.
func (d *Driver) Restore(ctx context.Context, target drivers.Source, r io.Reader, opts *drivers.RestoreOptions) error {
	logf := opts.Log
	if target.Path == "" {
		return fmt.Errorf("restore sqlite: %w: target has no path: set the database file path", drivers.ErrInvalidSource)
	}
	dir, name := filepath.Split(filepath.Clean(target.Path))
	if dir == "" {
		dir = "."
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("restore sqlite: %w: directory %s of %s does not exist: create it first", drivers.ErrInvalidSource, dir, target.Path)
	}
	mode, wal, err := targetInfo(target.Path)
	if err != nil {
		return fmt.Errorf("restore sqlite %s: %w", target.Path, err)
	}
	tmp := filepath.Join(dir, "."+name+".restore-"+rand.Text()[:12])
	if err := writeTemp(ctx, tmp, mode, r); err != nil {
		removeDB(tmp)
		return fmt.Errorf("restore sqlite %s: %w", target.Path, err)
	}
	logf("restore sqlite: wrote %s, checking integrity", tmp)
	if err := finishTemp(ctx, tmp, wal); err != nil {
		removeDB(tmp)
		return fmt.Errorf("restore sqlite %s: %w", target.Path, err)
	}
	for _, suffix := range []string{"-journal", "-wal", "-shm"} {
		if err := os.Remove(target.Path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			removeDB(tmp)
			return fmt.Errorf("restore sqlite %s: remove stale %s file: %w", target.Path, suffix, err)
		}
	}
	if err := os.Rename(tmp, target.Path); err != nil {
		removeDB(tmp)
		return fmt.Errorf("restore sqlite %s: %w", target.Path, err)
	}
	syncDir(dir)
	logf("restore sqlite: replaced %s", target.Path)
	return nil
}

// targetInfo returns the mode the restored file gets and whether the file
// it replaces is a WAL database.
func targetInfo(path string) (os.FileMode, bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0o600, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if !fi.Mode().IsRegular() {
		return 0, false, fmt.Errorf("%w: target exists and is not a regular file", drivers.ErrInvalidSource)
	}
	var hdr [offWriteVersion + 2]byte
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	_, err = io.ReadFull(f, hdr[:])
	wal := err == nil && string(hdr[:len(headerMagic)]) == headerMagic && hdr[offWriteVersion] == 2
	return fi.Mode().Perm(), wal, nil
}

// writeTemp copies the stream to its end into a new file at tmp, checking
// ctx between reads, and syncs it. Page 1 is marked rollback-journal so the check in
// finishTemp reads the file alone.
func writeTemp(ctx context.Context, tmp string, mode os.FileMode, r io.Reader) error {
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	defer f.Close()
	hdr := make([]byte, 100)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return fmt.Errorf("read backup: the stream is too short for a SQLite database: %w", err)
	}
	if string(hdr[:len(headerMagic)]) != headerMagic {
		return errors.New("read backup: the stream is not a SQLite database (no \"SQLite format 3\" header)")
	}
	hdr[offWriteVersion], hdr[offWriteVersion+1] = 1, 1
	if _, err := f.Write(hdr); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(r, buf)
		if _, werr := f.Write(buf[:n]); werr != nil {
			return werr
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read backup: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// finishTemp runs PRAGMA integrity_check on the database at tmp and marks
// it WAL when wal is set.
func finishTemp(ctx context.Context, tmp string, wal bool) error {
	db, _, err := open(tmp, "ro")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("check restored database: %w", err)
	}
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return fmt.Errorf("check restored database: %w", err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check restored database: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("check restored database: integrity_check failed: %s", strings.Join(problems, "; "))
	}
	if err := db.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !wal {
		return nil
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{2, 2}, offWriteVersion); err != nil {
		return fmt.Errorf("mark restored database WAL: %w", err)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// removeDB removes a database file and the files SQLite may keep beside it.
func removeDB(path string) {
	for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
		_ = os.Remove(path + suffix)
	}
}

// syncDir makes a rename in dir durable; errors are ignored because some
// platforms cannot sync a directory.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		f.Close()
	}
}

// Ping opens the database and runs SELECT 1. A missing file reports
// HealthUnreachable; a file that is not a healthy database, HealthError.
func (d *Driver) Ping(ctx context.Context, src drivers.Source) drivers.Health {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, pingTimeout)
		defer cancel()
	}
	start := time.Now()
	h := drivers.Health{Status: drivers.HealthError}
	db, fi, err := open(src.Path, "rw")
	if err != nil {
		h.Status, h.ErrorText = drivers.HealthUnreachable, err.Error()
		return h
	}
	defer db.Close()
	var one, pages int64
	err = db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	if err == nil {
		err = db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&h.Version)
	}
	if err == nil {
		err = db.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages)
	}
	h.Latency = time.Since(start)
	switch {
	case ctx.Err() != nil:
		h.Status, h.ErrorText = drivers.HealthTimeout, fmt.Sprintf("ping sqlite %s: %v", src.Path, ctx.Err())
	case err != nil:
		h.ErrorText = fmt.Sprintf("ping sqlite %s: %v", src.Path, err)
	default:
		h.Status = drivers.HealthOK
		h.Version = "SQLite " + h.Version
		h.Metadata = map[string]any{"size_bytes": fi.Size(), "page_count": pages}
	}
	return h
}
