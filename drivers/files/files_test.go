package files_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/drivertest"
	"github.com/dataguardian/dataguardian/drivers/files"
)

var epoch = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// newSource builds a tree with nested and empty directories, an empty
// file, a 5 MiB file, a 0640 file, a symbolic link and unicode names, with
// fixed modification times.
func newSource(t *testing.T) drivers.Source {
	root := filepath.Join(t.TempDir(), "tree")
	big := make([]byte, 5<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	tree := []struct {
		name string
		data []byte
		mode fs.FileMode
	}{
		{"a/b/c/deep.txt", []byte("deep\n"), 0o644},
		{"a/readme.md", []byte("# hello\n"), 0o644},
		{"a/secret.conf", []byte("key=value\n"), 0o640},
		{"empty.txt", nil, 0o644},
		{"big.bin", big, 0o600},
		{"ünïcødé/日本語 ファイル.txt", []byte("こんにちは\n"), 0o644},
		{"run.sh", []byte("#!/bin/sh\necho hi\n"), 0o755},
	}
	for _, f := range tree {
		p := filepath.Join(root, filepath.FromSlash(f.name))
		mkdir(t, filepath.Dir(p))
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil { // beat the umask
			t.Fatal(err)
		}
	}
	mkdir(t, filepath.Join(root, "empty-dir"))
	if err := os.Symlink("a/b/c/deep.txt", filepath.Join(root, "link-to-deep")); err != nil {
		t.Fatal(err)
	}
	setTimes(t, root)
	return drivers.Source{Type: "files", Path: root}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// setTimes gives every file and directory under root a fixed, distinct
// modification time, directories after their contents.
func setTimes(t *testing.T, root string) {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err == nil && de.Type()&fs.ModeSymlink == 0 {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(paths) // contents before their directory
	for i, p := range paths {
		mt := epoch.Add(time.Duration(i) * time.Hour)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
}

func mutate(t *testing.T, src drivers.Source) {
	root := src.Path
	for _, err := range []error{
		os.WriteFile(filepath.Join(root, "a/readme.md"), []byte("changed\n"), 0o644),
		os.WriteFile(filepath.Join(root, "a/b/new.txt"), []byte("new\n"), 0o644),
		os.Remove(filepath.Join(root, "empty.txt")),
		os.Mkdir(filepath.Join(root, "empty-dir/sub"), 0o700),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func newTarget(t *testing.T) drivers.Source {
	return drivers.Source{Type: "files", Path: filepath.Join(t.TempDir(), "restored")}
}

// listing describes a tree: per entry its relative name, type and
// permissions, size, content sha256 or link target, and modification time
// to the second (not for symbolic links).
func listing(t testing.TB, root string) []string {
	t.Helper()
	if real, err := filepath.EvalSymlinks(root); err == nil {
		root = real // a tree reached through a link: list the tree
	}
	var out []string
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		line := fmt.Sprintf("%s %v", filepath.ToSlash(rel), fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return appendLine(&out, line+" -> "+target)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			line += fmt.Sprintf(" %d %s", len(data), hex.EncodeToString(sum[:]))
		}
		return appendLine(&out, line+" "+fi.ModTime().UTC().Truncate(time.Second).Format(time.RFC3339))
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func appendLine(out *[]string, line string) error {
	*out = append(*out, line)
	return nil
}

func equal(t testing.TB, a, b drivers.Source) {
	t.Helper()
	if la, lb := listing(t, a.Path), listing(t, b.Path); !slices.Equal(la, lb) {
		t.Errorf("trees differ:\n%s:\n%s\n%s:\n%s", a.Path, strings.Join(la, "\n"), b.Path, strings.Join(lb, "\n"))
	}
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		Driver:    files.New(),
		NewSource: newSource,
		Mutate:    mutate,
		NewTarget: newTarget,
		Equal:     equal,
	})
}

func TestDumpMetadataAndSkipped(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "f"), []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A socket is skipped, with a note in the metadata.
	l, err := net.Listen("unix", filepath.Join(root, "s.sock"))
	if err != nil {
		t.Skipf("no unix sockets here: %v", err)
	}
	defer l.Close()
	var buf bytes.Buffer
	md, err := files.New().Dump(t.Context(), drivers.Source{Type: "files", Path: root}, &buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if md.RowsApproximate != 1 || md.TablesBackedUp != 0 || md.Extra["bytes"] != int64(5) || md.Extra["directories"] != int64(1) {
		t.Errorf("metadata %+v", md)
	}
	if md.Extra["skipped"] != 1 || !slices.Equal(md.Extra["skipped_paths"].([]string), []string{"s.sock"}) {
		t.Errorf("skipped entries in metadata: %v, %v", md.Extra["skipped"], md.Extra["skipped_paths"])
	}
	var names []string
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, hdr.Name)
	}
	if want := []string{"./", "f"}; !slices.Equal(names, want) {
		t.Errorf("archive holds %q, want %q", names, want)
	}
}

func TestInvalidSource(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "missing"), file, ""} {
		if _, err := files.New().Dump(t.Context(), drivers.Source{Path: p}, &bytes.Buffer{}, nil); !errors.Is(err, drivers.ErrInvalidSource) {
			t.Errorf("Dump(%q): got %v, want ErrInvalidSource", p, err)
		}
		if h := files.New().Ping(t.Context(), drivers.Source{Path: p}); h.Status == drivers.HealthOK || h.ErrorText == "" {
			t.Errorf("Ping(%q) = %+v, want a failure with a message", p, h)
		}
	}
}

// entry is one header of a hand-built archive.
type entry struct {
	name, link string
	typ        byte
}

func buildTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, ModTime: epoch}
		var body []byte
		if e.typ == tar.TypeReg {
			body = []byte("pwned\n")
			hdr.Size = int64(len(body))
		}
		if e.typ == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var maliciousArchives = map[string][]entry{
	"parent":        {{name: "../evil", typ: tar.TypeReg}},
	"inner parent":  {{name: "a/", typ: tar.TypeDir}, {name: "a/../../evil", typ: tar.TypeReg}},
	"absolute":      {{name: "/abs", typ: tar.TypeReg}},
	"link to /etc":  {{name: "link", link: "/etc", typ: tar.TypeSymlink}, {name: "link/passwd", typ: tar.TypeReg}},
	"link upwards":  {{name: "x", link: "../../outside", typ: tar.TypeSymlink}},
	"through link":  {{name: "d/", typ: tar.TypeDir}, {name: "l", link: "d", typ: tar.TypeSymlink}, {name: "l/f", typ: tar.TypeReg}},
	"link chain":    {{name: "sub/", typ: tar.TypeDir}, {name: "sub/l", link: ".", typ: tar.TypeSymlink}, {name: "x", link: "sub/l/../../outside", typ: tar.TypeSymlink}},
	"hard link out": {{name: "h", link: "../outside", typ: tar.TypeLink}},
	"hard link abs": {{name: "h", link: "/etc/passwd", typ: tar.TypeLink}},
	"hard link to symlink": {
		{name: "d/", typ: tar.TypeDir}, {name: "l", link: "d", typ: tar.TypeSymlink},
		{name: "h", link: "l", typ: tar.TypeLink}, {name: "h/f", typ: tar.TypeReg},
	},
}

// sandbox returns an existing target tree base/work/tree and a function
// that fails t when the tree changed or anything else appeared under base.
func sandbox(t *testing.T) (drivers.Source, func()) {
	t.Helper()
	base := t.TempDir()
	work := filepath.Join(base, "work")
	root := filepath.Join(work, "tree")
	mkdir(t, root)
	if err := os.WriteFile(filepath.Join(root, "keep.txt"), []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := listing(t, root)
	return drivers.Source{Type: "files", Path: root}, func() {
		t.Helper()
		for dir, want := range map[string]string{base: "work", work: "tree"} {
			if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 || entries[0].Name() != want {
				t.Errorf("%s holds %v (%v), want only %s", dir, entries, err, want)
			}
		}
		if after := listing(t, root); !slices.Equal(before, after) {
			t.Errorf("restore changed the target:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
		}
	}
}

func TestRestoreRefusesUnsafeArchives(t *testing.T) {
	for name, entries := range maliciousArchives {
		t.Run(name, func(t *testing.T) {
			target, unchanged := sandbox(t)
			err := files.New().Restore(t.Context(), target, bytes.NewReader(buildTar(t, entries...)), nil)
			if !errors.Is(err, drivers.ErrUnsafeArchive) {
				t.Fatalf("got %v, want ErrUnsafeArchive", err)
			}
			t.Log(err)
			unchanged()
		})
	}
}

func TestRestoreExternalSymlinks(t *testing.T) {
	archive := buildTar(t, entry{name: "current", link: "/srv/releases/42", typ: tar.TypeSymlink})
	target, _ := sandbox(t)
	if err := files.New().Restore(t.Context(), target, bytes.NewReader(archive), nil); !errors.Is(err, drivers.ErrUnsafeArchive) {
		t.Fatalf("default driver: got %v, want ErrUnsafeArchive", err)
	}
	d := &files.Driver{AllowExternalSymlinks: true}
	if err := d.Restore(t.Context(), target, bytes.NewReader(archive), nil); err != nil {
		t.Fatalf("AllowExternalSymlinks: %v", err)
	}
	if got, err := os.Readlink(filepath.Join(target.Path, "current")); err != nil || got != "/srv/releases/42" {
		t.Errorf("link = %q, %v", got, err)
	}
	// Even then, nothing is extracted through a link.
	archive = buildTar(t, entry{name: "link", link: "/etc", typ: tar.TypeSymlink}, entry{name: "link/passwd", typ: tar.TypeReg})
	if err := d.Restore(t.Context(), target, bytes.NewReader(archive), nil); !errors.Is(err, drivers.ErrUnsafeArchive) {
		t.Fatalf("AllowExternalSymlinks, path through a link: got %v, want ErrUnsafeArchive", err)
	}
}

// FuzzRestore restores arbitrary archives: whatever happens, nothing may be
// written outside the target's directory, a failed restore leaves the
// target as it was, and a restored tree has no link leading out of it.
func FuzzRestore(f *testing.F) {
	for _, entries := range maliciousArchives {
		f.Add(buildTar(f, entries...))
	}
	f.Add(buildTar(f, entry{name: "a/", typ: tar.TypeDir}, entry{name: "a/f", typ: tar.TypeReg}, entry{name: "l", link: "a/f", typ: tar.TypeSymlink}, entry{name: "h", link: "a/f", typ: tar.TypeLink}))
	f.Fuzz(func(t *testing.T, data []byte) {
		target, unchanged := sandbox(t)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := files.New().Restore(ctx, target, bytes.NewReader(data), nil); err != nil {
			if ctx.Err() != nil {
				t.Fatalf("restore took too long: %v", err)
			}
			unchanged()
			return
		}
		entries, err := os.ReadDir(filepath.Dir(target.Path))
		if err != nil || len(entries) != 1 {
			t.Fatalf("beside the target: %v, %v", entries, err)
		}
		root, err := filepath.EvalSymlinks(target.Path)
		if err != nil {
			t.Fatal(err)
		}
		err = filepath.WalkDir(target.Path, func(p string, de fs.DirEntry, err error) error {
			if err != nil || de.Type()&fs.ModeSymlink == 0 {
				return err
			}
			if r, err := filepath.EvalSymlinks(p); err == nil && !strings.HasPrefix(r, root+string(filepath.Separator)) && r != root {
				t.Errorf("link %s leads out of the tree to %s", p, r)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
