package files

import (
	"archive/tar"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// The dump never archives a root that is not a directory (a link the walk
// did not follow), and never passes an empty archive of a directory that
// has entries.
func TestDumpGuards(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	dw := dumper{ctx: t.Context(), root: link, tw: tar.NewWriter(io.Discard), log: slog.Default()}
	if err := filepath.WalkDir(link, dw.add); err == nil {
		t.Errorf("walking a link as the root archived it: %d entries", dw.entries)
	}
	if err := checkNothingMissed(dir); !errors.Is(err, errNothingArchived) {
		t.Errorf("a directory with a file: %v; want errNothingArchived", err)
	}
	if err := checkNothingMissed(t.TempDir()); err != nil {
		t.Errorf("an empty directory: %v", err)
	}
}
