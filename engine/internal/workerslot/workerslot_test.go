package workerslot

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func mustNoErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// A worker's identity belongs to its data directory: a process holds it
// while it runs (a second one at the same time gets another), and the
// next process on the directory gets it back.
func TestWorkerSlots(t *testing.T) {
	dir := filepath.Join(t.TempDir(), Dir)
	a, err := Take(dir)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no file locks here: workers run without a stable identity")
	}
	mustNoErr(t, "take a slot", err)
	b, err := Take(dir)
	mustNoErr(t, "take a second slot", err)
	if a.ID == b.ID {
		t.Fatalf("two live workers got one identity %s", a.ID)
	}
	a.Release() // the process of a stopped
	c, err := Take(dir)
	mustNoErr(t, "take a slot again", err)
	if c.ID != a.ID {
		t.Fatalf("the next worker got identity %s; want the stopped one's, %s", c.ID, a.ID)
	}
	b.Release()
	c.Release()
	if fi, err := os.Stat(filepath.Join(dir, slotName+"0")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("slot file: %v, %v; want mode 0600", fi, err)
	}
}
