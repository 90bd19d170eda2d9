package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unicode/utf8"

	"github.com/dataguardian/dataguardian/storage"
)

var (
	_ storage.Storage = (*Local)(nil)
	_ storage.Renamer = (*Local)(nil)
)

const (
	// Backups hold whole databases: the owner (the service's user) reads
	// and writes, its group reads (an operator recovering by hand, a
	// copy job), others nothing. A root the operator created keeps its
	// own mode.
	dirPerm  = 0o750
	filePerm = 0o640

	// copyBufSize is the size of the buffer Put copies through.
	copyBufSize = 1 << 20

	// tmpMarker and tmpRandLen shape temporary names: ".{base}.tmp-{16 hex}".
	tmpMarker  = ".tmp-"
	tmpRandLen = 16
	// tmpBaseMax caps the part of the base name copied into a temporary
	// name, so that the temporary name stays within NAME_MAX (255 bytes).
	tmpBaseMax = 200

	// retries bounds how often Put and Rename recreate a parent directory
	// that a concurrent Delete removed because it looked empty.
	retries = 10
)

// copyBufs holds the 1 MiB buffers Put copies through, so that a Put does
// not allocate one.
// testHookMkdir, when set by a test, runs after Put or Rename made sure a
// directory exists and before they use it.
var testHookMkdir func(dir string)

var copyBufs = sync.Pool{New: func() any {
	b := make([]byte, copyBufSize)
	return &b
}}

// Local is a storage.Storage on a local directory. It is safe for
// concurrent use by many goroutines and by many processes sharing the root.
type Local struct {
	root   string // absolute, cleaned, as given to New
	dir    string // root with symbolic links resolved: every path is built on it
	prefix string // dir ending in a separator: what a name below it starts with
}

// New returns a Local storing objects under root, which it creates (with
// mode 0755, and missing parents) when missing. It fails, naming root and
// what to do, when root cannot be created or is not writable.
func New(root string) (*Local, error) {
	if root == "" {
		return nil, errors.New("local storage: root is empty: set the directory backups are stored in")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("local storage root %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, dirPerm); err != nil {
		return nil, fmt.Errorf("local storage root %q: cannot create it: %w: create the directory, or point the storage at a directory that exists or can be created", abs, err)
	}
	dir, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("local storage root %q: %w", abs, err)
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("local storage root %q: %w", abs, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("local storage root %q: not a directory: point the storage at a directory", abs)
	}
	f, name, err := createTemp(dir, "dataguardian-probe")
	if err != nil {
		return nil, fmt.Errorf("local storage root %q: not writable: %w: give the user running DataGuardian write permission on it, or choose another directory", abs, err)
	}
	f.Close()
	if err := os.Remove(name); err != nil {
		return nil, fmt.Errorf("local storage root %q: remove write probe: %w", abs, err)
	}
	prefix := dir
	if !strings.HasSuffix(prefix, string(filepath.Separator)) {
		prefix += string(filepath.Separator)
	}
	return &Local{root: abs, dir: dir, prefix: prefix}, nil
}

// Root returns the absolute root directory given to New.
func (l *Local) Root() string { return l.root }

// Put stores the bytes of r under key, replacing an existing object unless
// opts.IfNotExist is set. See the package documentation for how the write is
// made atomic and durable. Put stops between two reads of r once ctx is done;
// a Read that blocks is not interrupted.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, opts *storage.PutOptions) error {
	if err := l.put(ctx, key, r, opts); err != nil {
		return &storage.OpError{Op: "put", Key: key, Err: err}
	}
	return nil
}

func (l *Local) put(ctx context.Context, key string, r io.Reader, opts *storage.PutOptions) error {
	final, dir, existing, err := l.locate(ctx, key)
	if err != nil {
		return err
	}
	ifNotExist := opts != nil && opts.IfNotExist
	if ifNotExist && existing == dir {
		// Fail early rather than after reading the whole stream; the
		// hard link below is what makes the check atomic.
		if _, err := os.Lstat(final); err == nil {
			return storage.ErrExist
		}
	}

	f, tmp, err := l.createTempIn(dir, path.Base(key))
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if f != nil {
			f.Close()
		}
		if !committed {
			os.Remove(tmp)
		}
	}()

	bufp := copyBufs.Get().(*[]byte)
	// The writer has no ReadFrom: io.CopyBuffer uses the buffer (*os.File's
	// ReadFrom would allocate its own 32 KiB one).
	_, err = io.CopyBuffer(&writebackWriter{f: f}, &ctxReader{ctx: ctx, r: r}, *bufp)
	copyBufs.Put(bufp)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	err = f.Close()
	f = nil
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	if ifNotExist {
		if err := os.Link(tmp, final); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return storage.ErrExist
			}
			return err
		}
		committed = true
		os.Remove(tmp) // best effort: the object is committed, a leftover is hidden
	} else {
		if err := os.Rename(tmp, final); err != nil {
			return err
		}
		committed = true
	}
	return syncDirs(dir, existing)
}

// Open returns a reader of length bytes of key from offset; length < 0
// reads to the end. An offset at or past the end gives an empty reader. The
// reader stops with ctx's error once ctx is done, and must be closed.
func (l *Local) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	rc, err := l.open(ctx, key, offset, length)
	if err != nil {
		return nil, &storage.OpError{Op: "open", Key: key, Err: err}
	}
	return rc, nil
}

func (l *Local) open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("negative offset %d", offset)
	}
	name, err := l.resolveFile(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, notFound(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, storage.ErrNotFound
	}
	size := fi.Size()
	offset = min(offset, size)
	n := size - offset
	if length >= 0 && length < n {
		n = length
	}
	return &reader{ctx: ctx, sr: io.NewSectionReader(f, offset, n), f: f}, nil
}

// Stat describes the object under key.
func (l *Local) Stat(ctx context.Context, key string) (storage.Object, error) {
	obj, err := l.stat(ctx, key)
	if err != nil {
		return storage.Object{}, &storage.OpError{Op: "stat", Key: key, Err: err}
	}
	return obj, nil
}

func (l *Local) stat(ctx context.Context, key string) (storage.Object, error) {
	if err := ctx.Err(); err != nil {
		return storage.Object{}, err
	}
	if err := checkKey(key); err != nil {
		return storage.Object{}, err
	}
	name, err := l.resolveFile(key)
	if err != nil {
		return storage.Object{}, err
	}
	fi, err := os.Stat(name)
	if err != nil {
		return storage.Object{}, notFound(err)
	}
	if !fi.Mode().IsRegular() {
		return storage.Object{}, storage.ErrNotFound
	}
	return storage.Object{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List returns the objects whose key starts with prefix, sorted by key. The
// prefix need not end at a "/": "job/2025" matches "job/2025-02-13_060001/…".
// Only the directories that can hold matching keys are read. List never
// returns temporary files of Puts in progress, directories or symbolic links.
func (l *Local) List(ctx context.Context, prefix string) ([]storage.Object, error) {
	objs, err := l.list(ctx, prefix)
	if err != nil {
		return nil, &storage.OpError{Op: "list", Key: prefix, Err: err}
	}
	return objs, nil
}

func (l *Local) list(ctx context.Context, prefix string) ([]storage.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := storage.ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	start := l.dir
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = l.path(prefix[:i])
		real, err := filepath.EvalSymlinks(start)
		if isNotExist(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if !l.inside(real) {
			return nil, fmt.Errorf("%w: %q leads outside the storage root through a symbolic link", storage.ErrInvalidKey, prefix)
		}
	}
	var objs []storage.Object
	err := filepath.WalkDir(start, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) {
				return nil // removed by a concurrent Delete
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if name == l.dir {
			return nil
		}
		key := l.keyOf(name)
		if d.IsDir() {
			if name != start && !strings.HasPrefix(key+"/", prefix) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || isTempName(d.Name()) || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if isNotExist(err) {
				return nil
			}
			return err
		}
		objs = append(objs, storage.Object{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The walk visits "a/b" before "a.b", but '.' sorts before '/'.
	slices.SortFunc(objs, func(a, b storage.Object) int { return strings.Compare(a.Key, b.Key) })
	return objs, nil
}

// Delete removes key and then the directories that this leaves empty, up
// to but not including the root. A missing key is not an error.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := l.delete(ctx, key); err != nil {
		return &storage.OpError{Op: "delete", Key: key, Err: err}
	}
	return nil
}

func (l *Local) delete(ctx context.Context, key string) error {
	name, dir, existing, err := l.locate(ctx, key)
	if err != nil {
		return err
	}
	if existing != dir {
		return nil
	}
	fi, err := os.Lstat(name)
	if isNotExist(err) || (err == nil && fi.IsDir()) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.Remove(name); err != nil && !isNotExist(err) {
		return err
	}
	l.removeEmptyDirs(dir)
	return nil
}

// Rename moves the object at from to to, replacing to. It fails with an
// error matching storage.ErrNotFound when from is missing.
func (l *Local) Rename(ctx context.Context, from, to string) error {
	if err := l.rename(ctx, from, to); err != nil {
		return &storage.OpError{Op: "rename", Key: from, Err: err}
	}
	return nil
}

func (l *Local) rename(ctx context.Context, from, to string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey(from); err != nil {
		return err
	}
	if err := checkKey(to); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	if _, err := l.resolveFile(from); err != nil {
		return err
	}
	src, dst := l.path(from), l.path(to)
	if fi, err := os.Stat(src); err != nil {
		return notFound(err)
	} else if !fi.Mode().IsRegular() {
		return storage.ErrNotFound
	}
	dstDir := filepath.Dir(dst)
	existing, err := l.deepestDir(dstDir)
	if err != nil {
		return fmt.Errorf("to %s: %w", to, err)
	}
	if from == to {
		return nil
	}
	for attempt := 0; ; attempt++ {
		err := mkdirAll(dstDir)
		if err == nil {
			if err = os.Rename(src, dst); err == nil {
				break
			}
			if _, serr := os.Lstat(src); isNotExist(serr) {
				return storage.ErrNotFound // moved or deleted meanwhile
			}
		}
		if !isNotExist(err) || attempt == retries {
			return fmt.Errorf("to %s: %w", to, err)
		}
		// A concurrent Delete removed dstDir, or a parent, while empty.
	}
	if err := syncDirs(dstDir, existing); err != nil {
		return err
	}
	srcDir := filepath.Dir(src)
	if srcDir != dstDir {
		if err := syncDir(srcDir); err != nil && !isNotExist(err) {
			return err
		}
		l.removeEmptyDirs(srcDir)
	}
	return nil
}

// locate checks ctx and key and returns the key's file name, its folder and
// the deepest existing ancestor of that folder, checked to be inside the root.
func (l *Local) locate(ctx context.Context, key string) (name, dir, existing string, err error) {
	if err := ctx.Err(); err != nil {
		return "", "", "", err
	}
	if err := checkKey(key); err != nil {
		return "", "", "", err
	}
	name = l.path(key)
	dir = filepath.Dir(name)
	existing, err = l.deepestDir(dir)
	return name, dir, existing, err
}

// path returns the file name of a valid key.
func (l *Local) path(key string) string {
	return filepath.Join(l.dir, filepath.FromSlash(key))
}

// inside reports whether the resolved name is the root or below it.
func (l *Local) inside(name string) bool {
	return name == l.dir || strings.HasPrefix(name, l.prefix)
}

// deepestDir returns dir, or its deepest ancestor that exists, after
// checking that it resolves to a place inside the root. An existing
// component that is a dangling symbolic link is refused too: following it
// could create directories outside the root.
func (l *Local) deepestDir(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		real, err := filepath.EvalSymlinks(d)
		if isNotExist(err) {
			if fi, lerr := os.Lstat(d); lerr == nil {
				// d exists after all: created meanwhile by a concurrent
				// Put, or a symbolic link that resolves to nothing.
				real, err = filepath.EvalSymlinks(d)
				if isNotExist(err) && fi.Mode()&fs.ModeSymlink != 0 {
					return "", fmt.Errorf("%w: %s is a dangling symbolic link", storage.ErrInvalidKey, l.keyOf(d))
				}
			}
		}
		if err == nil {
			if !l.inside(real) {
				return "", fmt.Errorf("%w: %s leads outside the storage root through a symbolic link", storage.ErrInvalidKey, l.keyOf(d))
			}
			return d, nil
		}
		if !isNotExist(err) {
			return "", err
		}
		if d == l.dir || !l.inside(d) {
			return "", fmt.Errorf("storage root %s: %w", l.root, err)
		}
	}
}

// resolveFile returns the file name of key with symbolic links resolved,
// after checking it stays inside the root. A missing key gives an error
// matching storage.ErrNotFound.
func (l *Local) resolveFile(key string) (string, error) {
	name := l.path(key)
	real, err := filepath.EvalSymlinks(name)
	if err == nil {
		if real == l.dir || !l.inside(real) {
			return "", fmt.Errorf("%w: %s leads outside the storage root through a symbolic link", storage.ErrInvalidKey, key)
		}
		return real, nil
	}
	if !isNotExist(err) {
		return "", err
	}
	// Do not tell "missing" from "outside": the parent decides.
	if _, derr := l.deepestDir(filepath.Dir(name)); derr != nil && errors.Is(derr, storage.ErrInvalidKey) {
		return "", derr
	}
	return "", notFound(err)
}

// keyOf returns the key of a name below the root.
func (l *Local) keyOf(name string) string {
	if !strings.HasPrefix(name, l.prefix) {
		return "."
	}
	return filepath.ToSlash(name[len(l.prefix):])
}

// createTempIn creates a temporary file for base in dir, creating dir first.
// It retries when a concurrent Delete removes dir as empty in between.
func (l *Local) createTempIn(dir, base string) (*os.File, string, error) {
	for attempt := 0; ; attempt++ {
		err := mkdirAll(dir)
		if err == nil {
			var f *os.File
			var name string
			f, name, err = createTemp(dir, base)
			if err == nil {
				return f, name, nil
			}
		}
		if !isNotExist(err) || attempt == retries {
			return nil, "", err
		}
	}
}

// mkdirAll is os.MkdirAll. A concurrent Delete can remove a directory it
// just found or made, while empty: it then fails with an error matching
// fs.ErrNotExist, and the caller tries again.
func mkdirAll(dir string) error {
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return err
	}
	if testHookMkdir != nil {
		testHookMkdir(dir)
	}
	return nil
}

// removeEmptyDirs removes dir and its ancestors while they are empty, up to
// but not including the root. It uses rmdir, which never removes a file or a
// symbolic link, and stops at the first directory that is not empty.
// AbortIncomplete removes the temporary files of unfinished Puts below
// prefix (a killed process leaves them; List never shows them), then the
// directories that are left empty. It implements storage.Aborter.
func (l *Local) AbortIncomplete(ctx context.Context, prefix string) error {
	if err := storage.ValidateKey(strings.TrimSuffix(prefix, "/")); err != nil {
		return &storage.OpError{Op: "abort incomplete", Key: prefix, Err: err}
	}
	top, _, existing, err := l.locate(ctx, strings.TrimSuffix(prefix, "/"))
	if err != nil {
		return &storage.OpError{Op: "abort incomplete", Key: prefix, Err: err}
	}
	if existing != filepath.Dir(top) {
		return nil // nothing was ever written there
	}
	var dirs []string
	err = filepath.WalkDir(top, func(name string, d fs.DirEntry, err error) error {
		switch {
		case isNotExist(err):
			return nil
		case err != nil:
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case d.IsDir():
			if d.Type()&fs.ModeSymlink == 0 {
				dirs = append(dirs, name)
			}
		case d.Type().IsRegular() && isTempName(d.Name()):
			if err := os.Remove(name); err != nil && !isNotExist(err) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return &storage.OpError{Op: "abort incomplete", Key: prefix, Err: err}
	}
	for i := len(dirs) - 1; i >= 0; i-- { // deepest first
		l.removeEmptyDirs(dirs[i])
	}
	return nil
}

func (l *Local) removeEmptyDirs(dir string) {
	for d := dir; d != l.dir && l.inside(d); d = filepath.Dir(d) {
		if err := syscall.Rmdir(d); err != nil {
			return
		}
	}
}

// FreeBytes reports the bytes available to an unprivileged user on the file
// system holding the root.
func (l *Local) FreeBytes() (uint64, error) {
	n, err := freeBytes(l.dir)
	if err != nil {
		return 0, fmt.Errorf("local storage root %s: free space: %w", l.root, err)
	}
	return n, nil
}

// checkKey applies storage.ValidateKey and refuses keys that would be
// mistaken for temporary files (and so never be listed).
func checkKey(key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	if isTempName(path.Base(key)) {
		return fmt.Errorf("%w %q: names of the form \".name.tmp-<16 hex digits>\" are reserved for writes in progress", storage.ErrInvalidKey, key)
	}
	return nil
}

// createTemp creates a new hidden temporary file for base in dir.
func createTemp(dir, base string) (*os.File, string, error) {
	if len(base) > tmpBaseMax {
		base = base[:tmpBaseMax]
		for len(base) > 0 && !utf8.ValidString(base) {
			base = base[:len(base)-1]
		}
	}
	for range 100 {
		r := strconv.FormatUint(rand.Uint64(), 16)
		name := filepath.Join(dir, "."+base+tmpMarker+strings.Repeat("0", tmpRandLen-len(r))+r)
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", fmt.Errorf("create temporary file in %s: too many name collisions", dir)
}

// isTempName reports whether a file name has the form createTemp gives.
func isTempName(name string) bool {
	const suffix = len(tmpMarker) + tmpRandLen
	if len(name) < 2+suffix || name[0] != '.' || name[len(name)-suffix:len(name)-tmpRandLen] != tmpMarker {
		return false
	}
	for _, c := range []byte(name[len(name)-tmpRandLen:]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// syncDirs fsyncs dir and, when Put or Rename created it, every directory
// up to the deepest one that already existed (whose entry for the first
// created directory must be made durable too). A directory that is gone was
// emptied and removed by a concurrent Delete: nothing is left to sync.
func syncDirs(dir, existing string) error {
	for d := dir; ; d = filepath.Dir(d) {
		if err := syncDir(d); err != nil && !isNotExist(err) {
			return err
		}
		if d == existing || filepath.Dir(d) == d {
			return nil
		}
	}
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	// Some file systems (FUSE, some network mounts) cannot fsync a
	// directory; the rename is as durable as they make it.
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil
	}
	return err
}

// isNotExist reports a missing file, or a path through a file (ENOTDIR).
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// notFound maps a missing file to storage.ErrNotFound and keeps the cause.
func notFound(err error) error {
	if isNotExist(err) {
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	}
	return err
}

// ctxReader stops a copy between two reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// reader is the ranged reader Open returns.
type reader struct {
	ctx context.Context
	sr  *io.SectionReader
	f   *os.File
}

func (r *reader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.sr.Read(p)
}

func (r *reader) Close() error { return r.f.Close() }

var (
	_ storage.Appender   = (*Local)(nil)
	_ storage.FreeSpacer = (*Local)(nil)
	_ storage.Aborter    = (*Local)(nil)
)

// Append adds p to the end of key with one write to a file opened with
// O_APPEND, creating it (and its folders) when missing, and syncs it. Lines
// appended by several processes never interleave within one call. Used for
// logs such as _system/cleanup.log; backups themselves are never appended to.
func (l *Local) Append(ctx context.Context, key string, p []byte) error {
	if err := l.append(ctx, key, p); err != nil {
		return &storage.OpError{Op: "append", Key: key, Err: err}
	}
	return nil
}

func (l *Local) append(ctx context.Context, key string, p []byte) error {
	name, dir, existing, err := l.locate(ctx, key)
	if err != nil {
		return err
	}
	if fi, err := os.Lstat(name); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", storage.ErrInvalidKey, key)
	}
	if err := mkdirAll(dir); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, filePerm)
	if err != nil {
		return err
	}
	_, werr := f.Write(p)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return err
	}
	return syncDirs(dir, existing)
}
