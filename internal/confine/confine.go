// Package confine decides which paths of the server's file system the
// engine may read, write or connect to on behalf of an API caller: the
// directory of a files datasource, a SQLite file, a Unix socket, a CA
// certificate, the directory of a local storage location.
//
// A Policy holds the roots the operator allowed (nil roots: any absolute
// path) and the paths that are never reachable whatever the roots: the
// server's own data directory, metadata database and secret key. Every
// path is resolved through its symbolic links before it is compared, so a
// link inside a root that points elsewhere is judged by where it points.
package confine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Errors of a refused path; each message also says what to change.
var (
	// ErrRelative reports a path that is not absolute.
	ErrRelative = errors.New("relative path")
	// ErrFilesystemRoot reports "/" itself.
	ErrFilesystemRoot = errors.New("the file system root")
	// ErrOutside reports a path outside every allowed root.
	ErrOutside = errors.New("outside the allowed directories")
	// ErrProtected reports a path overlapping the server's own data.
	ErrProtected = errors.New("the server's own data")
	// ErrOverlap reports a path overlapping another one it must stay apart
	// from (a datasource inside a storage location, or around one).
	ErrOverlap = errors.New("overlaps")
)

// Policy says which paths may be used. A nil *Policy allows every
// absolute path but "/". It is safe for concurrent use.
type Policy struct {
	roots     []string // resolved; nil when unconfined
	protected []string // resolved
	widen     string   // how the operator widens the roots, for messages
}

// Options configure New.
type Options struct {
	// Roots are the directories under which paths are allowed (each root
	// itself included). nil means every absolute path; an empty non-nil
	// slice allows none. "/" is refused as a root: name the directories.
	Roots []string
	// Protected are never usable, whatever the roots: a datasource may not
	// be inside one nor hold one; a storage location may not hold one.
	Protected []string
	// Widen tells the operator how to allow more, e.g. "start the server
	// with --allow-path DIR"; "" means "add it to the allowed roots".
	Widen string
}

// New returns the Policy of o. Roots and protected paths are made
// absolute and resolved through existing symbolic links.
func New(o Options) (*Policy, error) {
	p := &Policy{widen: o.Widen}
	if p.widen == "" {
		p.widen = "add its directory to the allowed roots"
	}
	if o.Roots != nil {
		p.roots = []string{}
	}
	for _, r := range o.Roots {
		abs, err := filepath.Abs(r)
		if err != nil {
			return nil, fmt.Errorf("allowed root %q: %w", r, err)
		}
		if abs == string(filepath.Separator) {
			return nil, fmt.Errorf("allowed root %q: %w would allow every file of the machine: name the directories to allow", r, ErrFilesystemRoot)
		}
		res, err := resolve(abs)
		if err != nil {
			return nil, fmt.Errorf("allowed root %q: %w", r, err)
		}
		p.roots = append(p.roots, res)
	}
	// A root inside another adds nothing: drop it, so messages list each
	// allowed tree once.
	p.roots = slices.DeleteFunc(p.roots, func(r string) bool {
		return slices.ContainsFunc(p.roots, func(o string) bool { return o != r && within(r, o) })
	})
	slices.Sort(p.roots)
	p.roots = slices.Compact(p.roots)
	for _, r := range o.Protected {
		abs, err := filepath.Abs(r)
		if err != nil {
			return nil, fmt.Errorf("protected path %q: %w", r, err)
		}
		res, err := resolve(abs)
		if err != nil {
			return nil, fmt.Errorf("protected path %q: %w", r, err)
		}
		p.protected = append(p.protected, res)
	}
	return p, nil
}

// Roots returns the resolved allowed roots; nil means unconfined.
func (p *Policy) Roots() []string {
	if p == nil || p.roots == nil {
		return nil
	}
	return append([]string{}, p.roots...)
}

// Source checks a path a datasource reads and a restore writes (a
// directory tree, a database file, a socket, a certificate): it must be
// absolute, inside an allowed root, apart from the protected paths (neither
// inside nor around one) and apart from every path of avoid (the local
// storage locations, whose backups a restore would overwrite). It returns
// the resolved path.
func (p *Policy) Source(path string, avoid ...string) (string, error) {
	res, err := p.allowed(path)
	if err != nil {
		return "", err
	}
	for _, q := range p.protectedPaths() {
		if overlap(res, q) {
			return "", fmt.Errorf("%q overlaps %w at %s: use a path apart from it", path, ErrProtected, q)
		}
	}
	for _, a := range avoid {
		ra, err := resolve(a)
		if err != nil || !overlap(res, ra) {
			continue
		}
		return "", fmt.Errorf("%q %w the storage location at %s: a restore would overwrite its backups; use a path apart from every storage location", path, ErrOverlap, a)
	}
	return res, nil
}

// Storage checks the directory of a local storage location: it must be
// absolute, inside an allowed root, and hold no protected path (a storage
// location inside the data directory, such as its backups/ folder, is
// fine: backups are written below it and nothing above is reachable).
// avoid are the datasource paths it must stay apart from. It returns the
// resolved path.
func (p *Policy) Storage(path string, avoid ...string) (string, error) {
	res, err := p.allowed(path)
	if err != nil {
		return "", err
	}
	for _, q := range p.protectedPaths() {
		if within(q, res) {
			return "", fmt.Errorf("%q holds %w at %s: use a directory that does not contain it", path, ErrProtected, q)
		}
	}
	for _, a := range avoid {
		ra, err := resolve(a)
		if err != nil || !overlap(res, ra) {
			continue
		}
		return "", fmt.Errorf("%q %w the datasource path %s: a restore of it would overwrite the backups; use a directory apart from every datasource", path, ErrOverlap, a)
	}
	return res, nil
}

func (p *Policy) protectedPaths() []string {
	if p == nil {
		return nil
	}
	return p.protected
}

// allowed resolves path and checks that it is absolute, not "/", and
// inside a root.
func (p *Policy) allowed(path string) (string, error) {
	if strings.ContainsRune(path, 0) {
		return "", fmt.Errorf("%q: %w: a path cannot contain NUL", path, ErrRelative)
	}
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("%q is a %w: give an absolute path", path, ErrRelative)
	}
	res, err := resolve(filepath.Clean(path))
	if err != nil {
		return "", fmt.Errorf("%q: %w: choose a directory this server can create and write", path, err)
	}
	if res == string(filepath.Separator) {
		return "", fmt.Errorf("%q is %w: name a directory below it", path, ErrFilesystemRoot)
	}
	if p == nil || p.roots == nil {
		return res, nil
	}
	for _, r := range p.roots {
		if within(res, r) {
			return res, nil
		}
	}
	where := res
	if res != filepath.Clean(path) {
		where = fmt.Sprintf("%s (it resolves to %s)", path, res)
	}
	if len(p.roots) == 0 {
		return "", fmt.Errorf("%s is %w: no directory is allowed; %s", where, ErrOutside, p.widen)
	}
	return "", fmt.Errorf("%s is %w (%s): %s", where, ErrOutside, strings.Join(p.roots, ", "), p.widen)
}

// resolve returns the absolute, clean path with every symbolic link of its
// longest existing prefix resolved; the missing rest is appended as is. A
// dangling symbolic link on the way is an error: what it would create is
// unknown.
func resolve(path string) (string, error) {
	path = filepath.Clean(path)
	var rest []string
	cur := path
	for {
		real, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(append([]string{real}, rest...)...), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if fi, lerr := os.Lstat(cur); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return "", fmt.Errorf("%s is a symbolic link to a missing target: remove it or point it at an existing directory", cur)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return path, nil
		}
		rest = append([]string{filepath.Base(cur)}, rest...)
		cur = parent
	}
}

// within reports whether path is dir or below it (both resolved and clean).
func within(path, dir string) bool {
	if path == dir {
		return true
	}
	if dir == string(filepath.Separator) {
		return true
	}
	return strings.HasPrefix(path, dir+string(filepath.Separator))
}

// overlap reports whether a is inside b or b inside a.
func overlap(a, b string) bool { return within(a, b) || within(b, a) }
