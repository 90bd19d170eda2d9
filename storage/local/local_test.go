package local_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/dataguardian/dataguardian/storage"
	"github.com/dataguardian/dataguardian/storage/local"
	"github.com/dataguardian/dataguardian/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage { return newLocal(t, t.TempDir()) })
}

func newLocal(t testing.TB, root string) *local.Local {
	t.Helper()
	l, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// files returns every file and directory under root, slash-separated.
func files(t *testing.T, root string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name != root {
			rel, _ := filepath.Rel(root, name)
			if d.IsDir() {
				rel += "/"
			}
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestNewCreatesRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b", "backups")
	l := newLocal(t, root)
	fi, err := os.Stat(root)
	if err != nil || !fi.IsDir() {
		t.Fatalf("root after New: %v, %v", fi, err)
	}
	if l.Root() != root {
		t.Errorf("Root() = %q, want %q", l.Root(), root)
	}
	if got := files(t, root); len(got) != 0 {
		t.Errorf("New left %q in the root", got)
	}
	if n, err := l.FreeBytes(); err != nil || n == 0 {
		t.Errorf("FreeBytes() = %d, %v; want > 0, nil", n, err)
	}
}

func TestNewUnusableRoot(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{filepath.Join(file, "sub"), file, ""} {
		_, err := local.New(root)
		if err == nil {
			t.Errorf("New(%q) = nil error, want one", root)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, root) {
			t.Errorf("New(%q) error %q does not name the root", root, msg)
		}
		if !strings.Contains(msg, "directory") {
			t.Errorf("New(%q) error %q does not say what to do", root, msg)
		}
	}
}

// TestNewUnwritableRoot gives New a directory it may not create files in.
// Root ignores directory permissions (and CI runs as root), so as root the
// directory is /sys, where the kernel refuses new files to everyone: the
// same error path, with nothing to clean up.
func TestNewUnwritableRoot(t *testing.T) {
	root := "/sys"
	if os.Geteuid() != 0 {
		root = t.TempDir()
		if err := os.Chmod(root, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(root, 0o755) })
	} else if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		t.Skipf("running as root without %s (not Linux?): no directory root cannot write into", root)
	}
	_, err := local.New(root)
	if err == nil || !strings.Contains(err.Error(), "not writable") || !strings.Contains(err.Error(), root) ||
		!strings.Contains(err.Error(), "give the user running DataGuardian write permission") {
		t.Errorf("New of a read-only root = %v, want a not-writable error naming it and saying what to do", err)
	}
}

func TestRootThroughSymlink(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	l := newLocal(t, link)
	ctx := t.Context()
	if err := l.Put(ctx, "a/b", strings.NewReader("x"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(real, "a", "b")); err != nil {
		t.Errorf("object not stored in the link target: %v", err)
	}
	if objs, err := l.List(ctx, ""); err != nil || len(objs) != 1 || objs[0].Key != "a/b" {
		t.Errorf("List = %+v, %v; want [a/b]", objs, err)
	}
}

// TestSymlinkOutsideRoot checks every method refuses a key that leads
// outside the root through a symbolic link.
func TestSymlinkOutsideRoot(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, outside, filepath.Join(root, "evil"))                               // dir outside
	mustSymlink(t, secret, filepath.Join(root, "leak"))                                // file outside
	mustSymlink(t, filepath.Join(outside, "nowhere"), filepath.Join(root, "dangling")) // dangling
	l := newLocal(t, root)
	ctx := t.Context()

	for _, key := range []string{"evil/x", "evil/sub/dir/x", "dangling/x", "dangling/sub/x"} {
		if err := l.Put(ctx, key, strings.NewReader("x"), nil); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want an error matching storage.ErrInvalidKey", key, err)
		}
		if err := l.Rename(ctx, "ok", key); !errors.Is(err, storage.ErrInvalidKey) && !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Rename(ok, %q) = %v", key, err)
		}
	}
	for _, key := range []string{"evil/secret", "leak", "evil/missing"} {
		if _, err := l.Open(ctx, key, 0, -1); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Open(%q) = %v, want an error matching storage.ErrInvalidKey", key, err)
		}
		if _, err := l.Stat(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Stat(%q) = %v, want an error matching storage.ErrInvalidKey", key, err)
		}
		if err := l.Rename(ctx, key, "moved"); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Rename(%q, moved) = %v, want an error matching storage.ErrInvalidKey", key, err)
		}
	}
	if err := l.Delete(ctx, "evil/secret"); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Delete(evil/secret) = %v, want an error matching storage.ErrInvalidKey", err)
	}
	if _, err := l.List(ctx, "evil/"); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("List(evil/) = %v, want an error matching storage.ErrInvalidKey", err)
	}
	if objs, err := l.List(ctx, ""); err != nil || len(objs) != 0 {
		t.Errorf("List() = %+v, %v; want nothing: links are not followed", objs, err)
	}

	if got := files(t, outside); !slices.Equal(got, []string{"secret"}) {
		t.Errorf("outside the root now holds %q, want only [secret]", got)
	}
	if b, err := os.ReadFile(secret); err != nil || string(b) != "secret" {
		t.Errorf("file outside the root changed: %q, %v", b, err)
	}
	// The links themselves are left alone.
	for _, name := range []string{"evil", "leak", "dangling"} {
		if _, err := os.Lstat(filepath.Join(root, name)); err != nil {
			t.Errorf("link %s: %v", name, err)
		}
	}
}

func TestSymlinkInsideRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, "real", filepath.Join(root, "alias"))
	l := newLocal(t, root)
	ctx := t.Context()
	if err := l.Put(ctx, "alias/x", strings.NewReader("via alias"), nil); err != nil {
		t.Fatalf("Put through a link inside the root: %v", err)
	}
	for _, key := range []string{"alias/x", "real/x"} {
		rc, err := l.Open(ctx, key, 0, -1)
		if err != nil {
			t.Fatalf("Open(%q): %v", key, err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != "via alias" {
			t.Errorf("Open(%q) read %q", key, b)
		}
	}
}

func TestNoTempFilesAfterFailures(t *testing.T) {
	root := t.TempDir()
	l := newLocal(t, root)
	ctx := t.Context()
	boom := errors.New("boom")
	if err := l.Put(ctx, "job/1/old", strings.NewReader("old"), nil); err != nil {
		t.Fatal(err)
	}
	// A failing reader, for a new and an existing key.
	for _, key := range []string{"job/1/old", "job/1/new", "job/2/deep/new"} {
		r := io.MultiReader(bytes.NewReader(make([]byte, 3<<20)), iotest.ErrReader(boom))
		if err := l.Put(ctx, key, r, nil); !errors.Is(err, boom) {
			t.Errorf("Put(%q) = %v, want boom", key, err)
		}
	}
	// A cancelled context.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.Put(cctx, "job/1/cancelled", strings.NewReader("x"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context = %v", err)
	}
	// IfNotExist on an existing key, both the early check and the link.
	if err := l.Put(ctx, "job/1/old", strings.NewReader("new"), &storage.PutOptions{IfNotExist: true}); !errors.Is(err, storage.ErrExist) {
		t.Errorf("Put IfNotExist = %v, want ErrExist", err)
	}
	want := []string{"job/", "job/1/", "job/1/old"}
	// job/2/deep/ may be left behind empty by the failed Put; that is allowed,
	// but no file may be.
	got := slices.DeleteFunc(files(t, root), func(s string) bool { return strings.HasPrefix(s, "job/2/") && strings.HasSuffix(s, "/") })
	if !slices.Equal(got, want) {
		t.Errorf("root holds %q, want %q", got, want)
	}
}

func TestListSkipsTempFiles(t *testing.T) {
	root := t.TempDir()
	l := newLocal(t, root)
	ctx := t.Context()
	if err := l.Put(ctx, "job/x", strings.NewReader("x"), nil); err != nil {
		t.Fatal(err)
	}
	// What a crashed Put leaves behind.
	leftover := filepath.Join(root, "job", ".x.tmp-0123456789abcdef")
	if err := os.WriteFile(leftover, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Look-alikes are ordinary objects.
	for _, key := range []string{"job/.x.tmp-123", "job/.x.tmp-0123456789ABCDEF", "job/x.tmp-0123456789abcdef"} {
		if err := l.Put(ctx, key, strings.NewReader("y"), nil); err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
	}
	objs, err := l.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	want := []string{"job/.x.tmp-0123456789ABCDEF", "job/.x.tmp-123", "job/x", "job/x.tmp-0123456789abcdef"}
	if !slices.Equal(keys, want) {
		t.Errorf("List = %q, want %q", keys, want)
	}
	// The temporary-file form is reserved.
	const reserved = "job/.x.tmp-0123456789abcdef"
	if err := l.Put(ctx, reserved, strings.NewReader("y"), nil); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Put(%q) = %v, want ErrInvalidKey", reserved, err)
	}
	if _, err := l.Stat(ctx, reserved); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Stat(%q) = %v, want ErrInvalidKey", reserved, err)
	}
}

func TestDeleteRemovesEmptyDirs(t *testing.T) {
	root := t.TempDir()
	l := newLocal(t, root)
	ctx := t.Context()
	for _, key := range []string{"job/2025/a/b/backup", "job/2025/keep"} {
		if err := l.Put(ctx, key, strings.NewReader("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Delete(ctx, "job/2025/a/b/backup"); err != nil {
		t.Fatal(err)
	}
	if got, want := files(t, root), []string{"job/", "job/2025/", "job/2025/keep"}; !slices.Equal(got, want) {
		t.Errorf("after Delete the root holds %q, want %q", got, want)
	}
	if err := l.Delete(ctx, "job/2025/keep"); err != nil {
		t.Fatal(err)
	}
	if got := files(t, root); len(got) != 0 {
		t.Errorf("after deleting everything the root holds %q", got)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		t.Fatalf("root after deleting everything: %v", err)
	}
}

func TestErrorsNameOpAndKey(t *testing.T) {
	l := newLocal(t, t.TempDir())
	_, err := l.Stat(t.Context(), "job/x/backup.db.gz")
	var oe *storage.OpError
	if !errors.As(err, &oe) || oe.Op != "stat" || oe.Key != "job/x/backup.db.gz" {
		t.Fatalf("Stat error = %#v, want a *storage.OpError for stat job/x/backup.db.gz", err)
	}
	if !strings.HasPrefix(err.Error(), "stat job/x/backup.db.gz: ") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat error %q: want \"stat job/x/backup.db.gz: …\" keeping the cause", err)
	}
	if _, err := l.Open(t.Context(), "a", -1, 1); err == nil {
		t.Error("Open with a negative offset = nil error")
	}
}

func TestFileModes(t *testing.T) {
	root := t.TempDir()
	l := newLocal(t, root)
	if err := l.Put(t.Context(), "d/f", strings.NewReader("x"), nil); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "d", "f"))
	if err != nil {
		t.Fatal(err)
	}
	// Backups hold databases: 0640 less the umask, never readable by others;
	// the owner can always read and write.
	if m := fi.Mode().Perm(); m&^0o640 != 0 || m&0o600 != 0o600 {
		t.Errorf("file mode %v, want 0640 (less the umask)", m)
	}
	di, err := os.Stat(filepath.Join(root, "d"))
	if err != nil {
		t.Fatal(err)
	}
	if m := di.Mode().Perm(); m&^0o750 != 0 || m&0o700 != 0o700 {
		t.Errorf("directory mode %v, want 0750 (less the umask)", m)
	}
}

func mustSymlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPut64MiB measures Put throughput (fsync included) of a 64 MiB
// object; run with -benchtime=5x or more.
func BenchmarkPut64MiB(b *testing.B) {
	const size = 64 << 20
	l := newLocal(b, b.TempDir())
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	ctx := context.Background()
	r := bytes.NewReader(data)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.Reset(data)
		if err := l.Put(ctx, "bench/backup.dump.gz", struct{ io.Reader }{r}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// endlessReader supplies zeros, counting them, calls cancel once at bytes
// are read and stops at 64 MiB past that, so a Put ignoring its context
// ends too.
type endlessReader struct {
	cancel context.CancelFunc
	at, n  int64
}

func (r *endlessReader) Read(p []byte) (int, error) {
	if r.n >= r.at && r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
	if r.n >= r.at+64<<20 {
		return 0, io.EOF
	}
	clear(p)
	r.n += int64(len(p))
	return len(p), nil
}

func TestCancelStopsCopy(t *testing.T) {
	root := t.TempDir()
	l := newLocal(t, root)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := &endlessReader{cancel: cancel, at: 4 << 20}
	err := l.Put(ctx, "job/endless", r, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put = %v, want context.Canceled", err)
	}
	// One more buffer may be read after the cancel, not the whole stream.
	if r.n > r.at+2<<20 {
		t.Errorf("Put read %d bytes after its context was cancelled at %d", r.n-r.at, r.at)
	}
	if got := files(t, root); len(got) > 1 { // "job/" may remain
		t.Errorf("root holds %q after a cancelled Put", got)
	}
}

func TestAppend(t *testing.T) {
	root := t.TempDir()
	l := newLocal(t, root)
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if err := l.Append(ctx, "_system/cleanup.log", []byte(fmt.Sprintf("line %02d %s\n", i, strings.Repeat("x", 200)))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	data, err := os.ReadFile(filepath.Join(root, "_system", "cleanup.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	seen := map[string]bool{}
	for _, line := range lines {
		if len(line) != len("line 00 ")+200 {
			t.Fatalf("interleaved or torn line %q", line)
		}
		seen[line[:7]] = true
	}
	if len(lines) != 20 || len(seen) != 20 {
		t.Fatalf("%d lines, %d distinct; want 20", len(lines), len(seen))
	}
	if err := l.Append(ctx, "../escape", []byte("x")); !errors.Is(err, storage.ErrInvalidKey) {
		t.Fatalf("Append outside the root: %v", err)
	}
}

// A killed Put leaves a hidden temporary file that List never shows:
// AbortIncomplete removes those below a prefix (and the folders left
// empty), and nothing else.
func TestAbortIncomplete(t *testing.T) {
	root := t.TempDir()
	s, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.Put(ctx, "job/run/.dataguardian-run", strings.NewReader("x"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "job/other/keep", strings.NewReader("x"), nil); err != nil {
		t.Fatal(err)
	}
	leftovers := []string{filepath.Join(root, "job/run/..incomplete-part-001.tmp-00000000deadbeef"),
		filepath.Join(root, "job/run/sub/.x.tmp-0123456789abcdef")}
	notTemp := filepath.Join(root, "job/run/.looks.tmp-but-is-not")
	for _, f := range append(leftovers, notTemp) {
		if err := os.MkdirAll(filepath.Dir(f), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("half a part"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AbortIncomplete(ctx, "job/run/"); err != nil {
		t.Fatal(err)
	}
	for _, f := range leftovers {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s is still there: %v", f, err)
		}
	}
	for _, f := range []string{notTemp, filepath.Join(root, "job/run/.dataguardian-run"), filepath.Join(root, "job/other/keep")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s was removed: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "job/run/sub")); !os.IsNotExist(err) {
		t.Errorf("the emptied folder job/run/sub is still there: %v", err)
	}
	if err := s.AbortIncomplete(ctx, "never/written/"); err != nil {
		t.Errorf("a prefix never written: %v", err)
	}
}
