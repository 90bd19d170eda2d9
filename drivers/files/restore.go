package files

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
)

// Restore makes the directory target.Path hold exactly the tree in the tar
// archive r. The archive is extracted into a new directory beside the target
// ("<target>.restore-<random>"); only when every entry extracted cleanly is
// the old tree moved aside ("<target>.old-<random>"), the new one renamed
// into place and the old one removed. On any error the new directory is
// removed and the target is untouched.
//
// When target.Path is a symbolic link to a directory, that directory is
// what the restore replaces (as Dump backs it up): the new tree is
// extracted beside it and swapped into its place, and the link is left as
// it is. A link that does not lead to a directory is refused with
// drivers.ErrInvalidSource.
//
// Entries are refused with drivers.ErrUnsafeArchive, naming the entry, when
// their name is absolute or contains "..", when their path goes through a
// symbolic link of the archive, when they are hard links to anything but a
// regular file extracted earlier, and when they are symbolic links that
// resolve outside the tree (unless AllowExternalSymlinks is set). Every file
// is created through an os.Root, so nothing is ever written outside the new
// directory. Modes and modification times are restored (directories after
// their contents; symbolic links keep the restore time), and so are owners
// when the process runs as root. Other entry types (devices, fifos) are
// skipped with a log line.
func (d *Driver) Restore(ctx context.Context, target drivers.Source, r io.Reader, opts *drivers.RestoreOptions) error {
	logf := opts.Log
	if target.Path == "" {
		return fmt.Errorf("restore files: %w: target has no path: set the directory to restore into", drivers.ErrInvalidSource)
	}
	dst := filepath.Clean(target.Path)
	if fi, err := os.Lstat(dst); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		real, err := filepath.EvalSymlinks(dst)
		if err != nil {
			return fmt.Errorf("restore files: %w: %s is a symbolic link that does not resolve (%v): point it at a directory or remove it", drivers.ErrInvalidSource, dst, err)
		}
		if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
			return fmt.Errorf("restore files: %w: %s is a symbolic link to %s, which is not a directory", drivers.ErrInvalidSource, dst, real)
		}
		logf("restore files: %s is a symbolic link to %s: replacing that directory, the link stays", dst, real)
		dst = real
	}
	parent := filepath.Dir(dst)
	if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
		return fmt.Errorf("restore files: %w: directory %s of %s does not exist: create it first", drivers.ErrInvalidSource, parent, dst)
	}
	if fi, err := os.Lstat(dst); err == nil && !fi.IsDir() {
		return fmt.Errorf("restore files: %w: %s exists and is not a directory", drivers.ErrInvalidSource, dst)
	}
	tmp, err := os.MkdirTemp(parent, filepath.Base(dst)+".restore-")
	if err != nil {
		return fmt.Errorf("restore files %s: %w", dst, err)
	}
	err = d.extract(ctx, tmp, r, logf)
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = swap(dst, tmp, logf)
	}
	if err != nil {
		if rmErr := removeTree(tmp); rmErr != nil {
			logf("restore files: remove %s: %v; delete it by hand", tmp, rmErr)
		}
		return fmt.Errorf("restore files %s: %w", dst, err)
	}
	logf("restore files: replaced %s", dst)
	return nil
}

// swap moves the tree at tmp to dst, replacing what dst held.
func swap(dst, tmp string, logf func(string, ...any)) error {
	old := ""
	if _, err := os.Lstat(dst); err == nil {
		old = dst + ".old-" + rand.Text()[:12]
		if err := os.Rename(dst, old); err != nil {
			return fmt.Errorf("move the current tree aside: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		if old != "" {
			if backErr := os.Rename(old, dst); backErr != nil {
				return fmt.Errorf("move the restored tree into place: %w (and put the previous tree back from %s: %v)", err, old, backErr)
			}
		}
		return fmt.Errorf("move the restored tree into place: %w", err)
	}
	if dir, err := os.Open(filepath.Dir(dst)); err == nil {
		_ = dir.Sync() // make the renames durable where the platform can
		dir.Close()
	}
	if old != "" {
		if err := removeTree(old); err != nil {
			logf("restore files: remove the previous tree %s: %v; delete it by hand", old, err)
		}
	}
	return nil
}

// removeTree removes dir and everything under it, making read-only
// directories writable first when that is what stops the removal.
func removeTree(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err == nil && de.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// extractor writes the entries of one archive under an os.Root.
type extractor struct {
	ctx         context.Context
	root        *os.Root
	allowExt    bool
	chown       bool
	logf        func(string, ...any)
	symlinks    map[string]bool // symbolic links extracted so far
	regular     map[string]bool // regular files extracted so far (hard link targets)
	dirs        map[string]*tar.Header
	skippedKind int
}

func (d *Driver) extract(ctx context.Context, dir string, r io.Reader, logf func(string, ...any)) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	x := &extractor{
		ctx: ctx, root: root, allowExt: d.AllowExternalSymlinks, chown: os.Geteuid() == 0, logf: logf,
		symlinks: map[string]bool{}, regular: map[string]bool{}, dirs: map[string]*tar.Header{},
	}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
	// Read the stream to its end (padding after the archive's end marker)
	// so that a checking reader, such as manifest.Read's, has verified all
	// of it before the tree is swapped in.
	if _, err := io.Copy(io.Discard, ctxReader{ctx, r}); err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	if err := x.checkSymlinks(); err != nil {
		return err
	}
	return x.finishDirs()
}

func unsafeEntry(name, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", drivers.ErrUnsafeArchive, name, fmt.Sprintf(format, args...))
}

// entryName validates an archive name and returns it cleaned, "." for the
// root itself.
func entryName(raw string) (string, error) {
	switch {
	case raw == "":
		return "", unsafeEntry(raw, "empty name")
	case strings.HasPrefix(raw, "/") || filepath.IsAbs(raw) || filepath.VolumeName(raw) != "":
		return "", unsafeEntry(raw, "absolute path")
	case strings.ContainsRune(raw, 0):
		return "", unsafeEntry(raw, "NUL in name")
	}
	for _, el := range strings.Split(raw, "/") {
		if el == ".." {
			return "", unsafeEntry(raw, `name contains ".."`)
		}
	}
	name := path.Clean(raw)
	if name != "." && !filepath.IsLocal(filepath.FromSlash(name)) {
		return "", unsafeEntry(raw, "not a local path on this system")
	}
	return name, nil
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	name, err := entryName(hdr.Name)
	if err != nil {
		return err
	}
	for p := path.Dir(name); p != "."; p = path.Dir(p) {
		if x.symlinks[p] {
			return unsafeEntry(hdr.Name, "path goes through the symbolic link %q", p)
		}
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return unsafeEntry(hdr.Name, "the root of the tree must be a directory")
		}
		x.dirs[name] = hdr
		return nil
	}
	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
	case tar.TypeXGlobalHeader:
		return nil
	default:
		x.skippedKind++
		x.logf("restore files: skipping %s: entry type %q is not restored", hdr.Name, hdr.Typeflag)
		return nil
	}
	if dir := path.Dir(name); dir != "." {
		if err := x.root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
	}
	if err := x.clear(name, hdr.Typeflag == tar.TypeDir); err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		x.dirs[name] = hdr
		err = x.root.Mkdir(name, 0o700)
		if errors.Is(err, fs.ErrExist) {
			err = nil
		}
	case tar.TypeReg:
		err = x.writeFile(name, hdr, r)
	case tar.TypeSymlink:
		if err := x.checkLink(name, hdr.Linkname); err != nil {
			return unsafeEntry(hdr.Name, "%v", err)
		}
		if err = x.root.Symlink(hdr.Linkname, name); err == nil {
			x.symlinks[name] = true
			err = x.owner(name, hdr)
		}
	case tar.TypeLink:
		old, nameErr := entryName(hdr.Linkname)
		if nameErr != nil || !x.regular[old] {
			return unsafeEntry(hdr.Name, "hard link to %q, which is not a regular file extracted earlier", hdr.Linkname)
		}
		if err = x.root.Link(old, name); err == nil {
			x.regular[name] = true
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	return nil
}

// clear removes what an earlier entry put at name, as tar does when an
// archive holds the same name twice; a directory stays when the new entry
// is a directory too.
func (x *extractor) clear(name string, dir bool) error {
	fi, err := x.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if dir && fi.IsDir() {
		return nil
	}
	delete(x.symlinks, name)
	delete(x.regular, name)
	delete(x.dirs, name)
	return x.root.Remove(name)
}

// checkLink refuses a symbolic link target that leaves the tree, judged by
// its text; checkSymlinks later resolves every link for real.
func (x *extractor) checkLink(name, target string) error {
	if x.allowExt {
		return nil
	}
	if target == "" {
		return errors.New("empty symbolic link target")
	}
	if path.IsAbs(target) || filepath.IsAbs(target) || filepath.VolumeName(target) != "" {
		return fmt.Errorf("symbolic link to the absolute path %q (set AllowExternalSymlinks to accept it)", target)
	}
	if j := path.Join(path.Dir(name), target); j == ".." || strings.HasPrefix(j, "../") {
		return fmt.Errorf("symbolic link to %q resolves outside the restored tree (set AllowExternalSymlinks to accept it)", target)
	}
	return nil
}

// checkSymlinks resolves every extracted symbolic link inside the root:
// chains of links can leave the tree even when each link alone looks local.
// Dangling links that stay inside are fine.
func (x *extractor) checkSymlinks() error {
	if x.allowExt {
		return nil
	}
	names := make([]string, 0, len(x.symlinks))
	for n := range x.symlinks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := x.root.Stat(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return unsafeEntry(n, "symbolic link does not resolve inside the restored tree: %v", err)
		}
	}
	return nil
}

func (x *extractor) writeFile(name string, hdr *tar.Header, r io.Reader) error {
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(f, ctxReader{x.ctx, r}); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	x.regular[name] = true
	return x.attrs(name, hdr)
}

// owner restores the owner of name when the process may.
func (x *extractor) owner(name string, hdr *tar.Header) error {
	if !x.chown {
		return nil
	}
	return x.root.Lchown(name, hdr.Uid, hdr.Gid)
}

// attrs restores owner, mode and modification time of a file or directory.
func (x *extractor) attrs(name string, hdr *tar.Header) error {
	if err := x.owner(name, hdr); err != nil {
		return err
	}
	mode := hdr.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if err := x.root.Chmod(name, mode); err != nil {
		return err
	}
	return x.root.Chtimes(name, time.Time{}, hdr.ModTime)
}

// finishDirs sets the attributes of the directories, deepest first, once
// nothing more is written into them.
func (x *extractor) finishDirs() error {
	names := make([]string, 0, len(x.dirs))
	for n := range x.dirs {
		names = append(names, n)
	}
	depth := func(n string) int {
		if n == "." {
			return -1
		}
		return strings.Count(n, "/")
	}
	sort.Slice(names, func(i, j int) bool {
		if di, dj := depth(names[i]), depth(names[j]); di != dj {
			return di > dj
		}
		return names[i] < names[j]
	})
	for _, n := range names {
		if err := x.attrs(n, x.dirs[n]); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	return nil
}
