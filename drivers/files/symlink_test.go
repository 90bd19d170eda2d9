package files_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/drivertest"
	"github.com/dataguardian/dataguardian/drivers/files"
)

// linkTo returns a source whose path is a symbolic link (in a directory of
// its own) to the directory of src.
func linkTo(t *testing.T, src drivers.Source) drivers.Source {
	t.Helper()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(src.Path, link); err != nil {
		t.Fatal(err)
	}
	return drivers.Source{Type: "files", Path: link}
}

// A path that is a symbolic link to a directory backs up that directory,
// as `tar -C path .` does: the same archive as the directory's own path.
func TestDumpSymlinkedRoot(t *testing.T) {
	src := newSource(t)
	link := linkTo(t, src)
	want, wantMD := drivertest.Dump(t, files.New(), src)
	got, md := drivertest.Dump(t, files.New(), link)
	if !bytes.Equal(got, want) {
		t.Fatalf("archive through the link: %d bytes, %v; through the directory: %d bytes, %v", len(got), md.Extra, len(want), wantMD.Extra)
	}
	if md.Extra["files"] != int64(7) || md.Extra["directories"] != wantMD.Extra["directories"] || md.Extra["resolved_path"] != src.Path {
		t.Errorf("metadata %v; want 7 files and resolved_path %s", md.Extra, src.Path)
	}
	if h := files.New().Ping(t.Context(), link); h.Status != drivers.HealthOK || h.Metadata["resolved_path"] != src.Path {
		t.Errorf("Ping through the link: %+v", h)
	}
	target := newTarget(t)
	if err := files.New().Restore(t.Context(), target, bytes.NewReader(got), nil); err != nil {
		t.Fatal(err)
	}
	equal(t, src, target)
}

// The conformance suite passes for a source reached through a link.
func TestConformanceSymlinkedSource(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		Driver:    files.New(),
		NewSource: func(t *testing.T) drivers.Source { return linkTo(t, newSource(t)) },
		Mutate:    mutate,
		NewTarget: newTarget,
		Equal:     equal,
	})
}

// A restore over a symbolic link to a directory replaces the directory's
// contents and keeps the link; a link that leads nowhere is refused.
func TestRestoreOverSymlinkedRoot(t *testing.T) {
	src := newSource(t)
	archive, _ := drivertest.Dump(t, files.New(), src)

	old := newSource(t)
	mutate(t, old)
	link := linkTo(t, old)
	if err := files.New().Restore(t.Context(), link, bytes.NewReader(archive), &drivers.RestoreOptions{Logf: t.Logf}); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(link.Path); err != nil || got != old.Path {
		t.Fatalf("the link now reads %q, %v; want it kept pointing at %s", got, err, old.Path)
	}
	equal(t, src, old)
	for _, dir := range []string{filepath.Dir(old.Path), filepath.Dir(link.Path)} {
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) != 1 {
			t.Errorf("%s holds %v (%v), want only the tree or the link", dir, entries, err)
		}
	}

	dangling := drivers.Source{Type: "files", Path: filepath.Join(t.TempDir(), "dangling")}
	if err := os.Symlink(filepath.Join(t.TempDir(), "missing"), dangling.Path); err != nil {
		t.Fatal(err)
	}
	err := files.New().Restore(t.Context(), dangling, bytes.NewReader(archive), nil)
	if !errors.Is(err, drivers.ErrInvalidSource) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("restore over a dangling link: %v; want ErrInvalidSource naming the link", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dangling.Path)); len(entries) != 1 {
		t.Errorf("a refused restore left %v", entries)
	}
}

func TestInspector(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	mkdir(t, empty)
	full := newSource(t)
	d := files.New()
	t.Run("Missing", func(t *testing.T) { drivertest.RunInspector(t, d, newTarget(t), full) })
	t.Run("EmptyDir", func(t *testing.T) { drivertest.RunInspector(t, d, drivers.Source{Type: "files", Path: empty}, full) })
	t.Run("Links", func(t *testing.T) {
		drivertest.RunInspector(t, d, linkTo(t, drivers.Source{Path: empty}), linkTo(t, full))
	})
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Empty(t.Context(), drivers.Source{Path: file}); !errors.Is(err, drivers.ErrInvalidSource) {
		t.Errorf("Empty of a file: %v; want ErrInvalidSource", err)
	}
}

func TestCheck(t *testing.T) {
	var fe *drivers.FieldError
	if err := files.New().Check(drivers.Source{Type: "files"}); !errors.As(err, &fe) || fe.Field != "path" || !errors.Is(err, drivers.ErrInvalidSource) {
		t.Fatalf("Check without a path: %v; want a FieldError naming path", err)
	}
	if err := files.New().Check(drivers.Source{Type: "files", Path: "/srv/data"}); err != nil {
		t.Fatal(err)
	}
}
