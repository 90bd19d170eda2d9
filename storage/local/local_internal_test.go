package local

import (
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestDirRemovedBeforeUse removes the directory Put or Rename just
// created, as a concurrent Delete emptying it would, and checks they
// recreate it and succeed.
func TestDirRemovedBeforeUse(t *testing.T) {
	l, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	removals := 0
	testHookMkdir = func(dir string) {
		if removals < 2 {
			removals++
			if err := syscall.Rmdir(dir); err != nil {
				t.Errorf("rmdir %s: %v", dir, err)
			}
		}
	}
	t.Cleanup(func() { testHookMkdir = nil })
	ctx := t.Context()

	if err := l.Put(ctx, "a/b/c", strings.NewReader("x"), nil); err != nil {
		t.Fatalf("Put after its directory was removed: %v", err)
	}
	if removals != 2 {
		t.Fatalf("hook removed the directory %d times, want 2", removals)
	}
	removals = 0
	if err := l.Rename(ctx, "a/b/c", "d/e/f"); err != nil {
		t.Fatalf("Rename after its directory was removed: %v", err)
	}
	if removals != 2 {
		t.Fatalf("hook removed the directory %d times, want 2", removals)
	}
	rc, err := l.Open(ctx, "d/e/f", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "x" {
		t.Errorf("read %q, want x", b)
	}
	if _, err := os.Stat(l.path("a")); !os.IsNotExist(err) {
		t.Errorf("Rename left the emptied directory a: %v", err)
	}
}

func TestIsTempName(t *testing.T) {
	for name, want := range map[string]bool{
		".x.tmp-0123456789abcdef":              true,
		".backup.dump.gz.tmp-00000000000000ff": true,
		".x.tmp-0123456789ABCDEF":              false,
		".x.tmp-0123456789abcde":               false,
		"x.tmp-0123456789abcdef":               false,
		"..tmp-0123456789abcdef":               false,
		".tmp-0123456789abcdef":                false,
		".x.tmp-0123456789abcdeg":              false,
		".x":                                   false,
	} {
		if got := isTempName(name); got != want {
			t.Errorf("isTempName(%q) = %v, want %v", name, got, want)
		}
	}
	f, name, err := createTemp(t.TempDir(), strings.Repeat("é", 200))
	if err != nil {
		t.Fatalf("createTemp with a long base: %v", err)
	}
	f.Close()
	base := name[strings.LastIndexByte(name, '/')+1:]
	if !isTempName(base) || len(base) > 255 {
		t.Errorf("createTemp made %q (%d bytes): not a temporary name within NAME_MAX", base, len(base))
	}
}
