package drivertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage/local"
)

// Harness tells Run how to exercise one driver.
type Harness struct {
	// Driver is the driver under test.
	Driver drivers.Driver
	// NewSource creates a populated datasource (cleaned up with t).
	NewSource func(t *testing.T) drivers.Source
	// Mutate changes the data of src: adds, changes and removes some of it,
	// so that Equal with the unchanged data fails (Run checks that it does).
	Mutate func(t *testing.T, src drivers.Source)
	// NewTarget returns a restore target that does not exist yet. For
	// drivers whose sources have a Path, it must be alone in a directory of
	// its own (cleaned up with t): Run checks that a refused restore leaves
	// that whole directory unchanged.
	NewTarget func(t *testing.T) drivers.Source
	// Equal fails t (Error, Fatal and the like) when a and b do not hold
	// the same data. Run also calls it with a t of its own, to check that
	// it tells a mutated source from a copy of the original.
	Equal func(t testing.TB, a, b drivers.Source)
}

// jobID is the job every backup of Run belongs to.
const jobID = "drivertest"

// compressions are the compressions every round trip runs with.
var compressions = []manifest.Compression{manifest.Gzip, manifest.Zstd, manifest.LZ4, manifest.None}

// Run runs the conformance suite against h: round trips through the real
// pipeline (manifest.Write and manifest.Read over storage/local) with every
// compression and with many parts, refused restores of corrupt, truncated
// and incomplete backups, cancellation of dump and restore, restore over an
// existing target, and Ping. It first checks that Equal notices what
// Mutate changes: otherwise the checks of the restores prove nothing.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Driver == nil || h.NewSource == nil || h.Mutate == nil || h.NewTarget == nil || h.Equal == nil {
		t.Fatal("drivertest: every Harness field must be set")
	}
	s := &suite{h: h, src: h.NewSource(t)}
	t.Run("Format", s.testFormat)
	t.Run("EqualNoticesMutate", s.testEqualNoticesMutate)
	t.Run("RoundTrip", func(t *testing.T) {
		for _, c := range compressions {
			t.Run(string(c), func(t *testing.T) { s.roundTrip(t, c, 0) })
		}
		t.Run("ManyParts", func(t *testing.T) { s.roundTrip(t, manifest.Zstd, -1) })
	})
	t.Run("CorruptPart", func(t *testing.T) {
		s.refusedRestore(t, manifest.ErrChecksumMismatch, func(t *testing.T, file string) {
			flipByte(t, file)
		})
	})
	t.Run("TruncatedPart", func(t *testing.T) {
		s.refusedRestore(t, manifest.ErrSizeMismatch, func(t *testing.T, file string) {
			fi, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(file, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("MissingPart", func(t *testing.T) {
		s.refusedRestore(t, manifest.ErrMissingPart, func(t *testing.T, file string) {
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("CancelDump", s.testCancelDump)
	t.Run("CancelRestore", s.testCancelRestore)
	t.Run("RestoreOverExisting", s.testRestoreOverExisting)
	t.Run("Ping", s.testPing)
}

// suite shares one source and its size between the subtests.
type suite struct {
	h        Harness
	src      drivers.Source // never mutated
	partSize int64          // a part size that splits a zstd backup of src in several parts
}

// testEqualNoticesMutate restores a copy of a fresh source, which Equal
// must find equal to it, then mutates the source, which Equal must notice.
func (s *suite) testEqualNoticesMutate(t *testing.T) {
	src := s.h.NewSource(t)
	st := newStorage(t)
	res := s.mustBackup(t, st, src, manifest.None, 0)
	dup := s.h.NewTarget(t)
	if err := s.restore(t.Context(), t, st, res.Dir, dup, nil); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if failed, msgs := probeEqual(t, s.h.Equal, src, dup); failed {
		t.Fatalf("Equal fails for a restored copy of an unchanged source:\n%s", msgs)
	}
	s.h.Mutate(t, src)
	if failed, _ := probeEqual(t, s.h.Equal, src, dup); !failed {
		t.Fatal("Equal does not tell the source changed by Mutate from a copy of the original: the restore checks would prove nothing")
	}
}

// probeEqual runs equal(a, b) with a t of its own and reports whether it
// failed, with what it said.
func probeEqual(t *testing.T, equal func(testing.TB, drivers.Source, drivers.Source), a, b drivers.Source) (bool, string) {
	t.Helper()
	p := &probeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		equal(p, a, b)
	}()
	<-done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed, strings.Join(p.msgs, "\n")
}

// probeTB records the failures of the function it is passed to instead of
// failing the test; Fatal and the like end the goroutine that calls them,
// as testing.T's do. Everything else goes to the real test.
type probeTB struct {
	testing.TB
	mu     sync.Mutex
	failed bool
	msgs   []string
}

func (p *probeTB) fail(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failed = true
	if msg != "" {
		p.msgs = append(p.msgs, msg)
	}
}

func (p *probeTB) Helper()                        {}
func (p *probeTB) Fail()                          { p.fail("") }
func (p *probeTB) FailNow()                       { p.fail(""); runtime.Goexit() }
func (p *probeTB) Error(args ...any)              { p.fail(fmt.Sprint(args...)) }
func (p *probeTB) Errorf(format string, a ...any) { p.fail(fmt.Sprintf(format, a...)) }
func (p *probeTB) Fatal(args ...any)              { p.fail(fmt.Sprint(args...)); runtime.Goexit() }
func (p *probeTB) Fatalf(format string, a ...any) {
	p.fail(fmt.Sprintf(format, a...))
	runtime.Goexit()
}
func (p *probeTB) Skip(args ...any) { p.fail("skipped: " + fmt.Sprint(args...)); runtime.Goexit() }
func (p *probeTB) Skipf(format string, a ...any) {
	p.fail("skipped: " + fmt.Sprintf(format, a...))
	runtime.Goexit()
}
func (p *probeTB) SkipNow()      { p.fail("skipped"); runtime.Goexit() }
func (p *probeTB) Failed() bool  { p.mu.Lock(); defer p.mu.Unlock(); return p.failed }
func (p *probeTB) Skipped() bool { return false }

func (s *suite) testFormat(t *testing.T) {
	want, err := manifest.FormatFor(s.h.Driver.Type())
	if err != nil {
		t.Fatalf("Type %q: %v", s.h.Driver.Type(), err)
	}
	if got := s.h.Driver.Format(); got != want {
		t.Errorf("Format() = %q, manifest expects %q for type %q", got, want, s.h.Driver.Type())
	}
}

// newStorage returns a storage/local in a fresh temporary directory.
func newStorage(t *testing.T) *local.Local {
	t.Helper()
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// backup writes one backup of src to st through manifest.Write. partSize 0
// means one part, -1 the suite's small part size. wrap, when set, wraps the
// writer the driver dumps into.
func (s *suite) backup(ctx context.Context, t *testing.T, st *local.Local, src drivers.Source, c manifest.Compression, partSize int64, wrap func(io.Writer) io.Writer) (*manifest.Result, error) {
	t.Helper()
	switch partSize {
	case 0:
		partSize = 1 << 40
	case -1:
		partSize = s.smallPartSize(t)
	}
	opts := manifest.WriteOptions{
		JobID:          jobID,
		ExecutionID:    t.Name(),
		DatasourceType: s.h.Driver.Type(),
		Compression:    c,
		PartSize:       partSize,
		Concurrency:    2,
	}
	dests := []manifest.Destination{{Name: "local", Storage: st}}
	return manifest.Write(ctx, dests, opts, func(ctx context.Context, w io.Writer) (manifest.Metadata, error) {
		if wrap != nil {
			w = wrap(w)
		}
		return s.h.Driver.Dump(ctx, src, w, nil)
	})
}

// mustBackup is backup that fails t on error and checks the result.
func (s *suite) mustBackup(t *testing.T, st *local.Local, src drivers.Source, c manifest.Compression, partSize int64) *manifest.Result {
	t.Helper()
	res, err := s.backup(t.Context(), t, st, src, c, partSize, nil)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	m := res.Manifest
	if m == nil || m.DatasourceType != s.h.Driver.Type() || m.Compression != c {
		t.Fatalf("backup: unexpected manifest %+v", m)
	}
	if m.Metadata.TablesBackedUp < 0 || m.Metadata.RowsApproximate < 0 {
		t.Errorf("backup: negative counts in metadata %+v", m.Metadata)
	}
	return res
}

// smallPartSize returns a part size that cuts a zstd backup of the shared
// source into about five parts, measured once.
func (s *suite) smallPartSize(t *testing.T) int64 {
	t.Helper()
	if s.partSize == 0 {
		res := s.mustBackup(t, newStorage(t), s.src, manifest.Zstd, 0)
		s.partSize = max(res.Manifest.CompressedSizeBytes/5, 64)
	}
	return s.partSize
}

// restore restores backup dir of st into target through manifest.Read.
// wrap, when set, wraps the verified stream the driver reads.
func (s *suite) restore(ctx context.Context, t *testing.T, st *local.Local, dir string, target drivers.Source, wrap func(io.Reader) io.Reader) error {
	t.Helper()
	_, err := manifest.Read(ctx, st, dir, func(ctx context.Context, r io.Reader) error {
		if wrap != nil {
			r = wrap(r)
		}
		return s.h.Driver.Restore(ctx, target, r, &drivers.RestoreOptions{Logf: t.Logf})
	})
	return err
}

func (s *suite) roundTrip(t *testing.T, c manifest.Compression, partSize int64) {
	src := s.src
	st := newStorage(t)
	res := s.mustBackup(t, st, src, c, partSize)
	if partSize != 0 && len(res.Manifest.Chunks) < 2 {
		t.Fatalf("backup has %d part(s), want several with part size %d", len(res.Manifest.Chunks), s.partSize)
	}
	target := s.h.NewTarget(t)
	if err := s.restore(t.Context(), t, st, res.Dir, target, nil); err != nil {
		t.Fatalf("restore: %v", err)
	}
	s.h.Equal(t, src, target)
}

// existingTarget returns a populated target that differs from the shared
// source, and a function that fails t when the target has changed since.
func (s *suite) existingTarget(t *testing.T) (drivers.Source, func()) {
	t.Helper()
	target := s.h.NewSource(t)
	s.h.Mutate(t, target)
	if target.Path != "" {
		dir := filepath.Dir(filepath.Clean(target.Path))
		before := fingerprint(t, dir)
		return target, func() {
			t.Helper()
			if after := fingerprint(t, dir); !slices.Equal(before, after) {
				t.Errorf("the target's directory changed:\nbefore %q\nafter  %q", before, after)
			}
		}
	}
	// No path: keep a reference copy of the target to compare with.
	st := newStorage(t)
	res := s.mustBackup(t, st, target, manifest.None, 0)
	ref := s.h.NewTarget(t)
	if err := s.restore(t.Context(), t, st, res.Dir, ref, nil); err != nil {
		t.Fatalf("restore reference copy: %v", err)
	}
	return target, func() { t.Helper(); s.h.Equal(t, ref, target) }
}

// refusedRestore damages part 2 of a multi-part backup with damage and
// checks that the restore fails with want and leaves the target untouched.
func (s *suite) refusedRestore(t *testing.T, want error, damage func(t *testing.T, file string)) {
	st := newStorage(t)
	res := s.mustBackup(t, st, s.src, manifest.Zstd, -1)
	if len(res.Manifest.Chunks) < 2 {
		t.Fatalf("backup has %d part(s), want several", len(res.Manifest.Chunks))
	}
	damage(t, filepath.Join(st.Root(), filepath.FromSlash(res.Dir+"/"+res.Manifest.Chunks[1].File)))
	target, unchanged := s.existingTarget(t)
	err := s.restore(t.Context(), t, st, res.Dir, target, nil)
	if !errors.Is(err, want) {
		t.Fatalf("restore of a damaged backup: got %v, want an error matching %v", err, want)
	}
	unchanged()
}

func (s *suite) testCancelDump(t *testing.T) {
	src := s.src
	st := newStorage(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	start := time.Now()
	res, err := s.backup(ctx, t, st, src, manifest.Gzip, -1, func(w io.Writer) io.Writer {
		return &cancelWriter{w: w, cancel: cancel}
	})
	if err == nil {
		t.Fatalf("backup with a cancelled context succeeded: %+v", res.Manifest)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("backup error %v does not match context.Canceled", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("cancelled dump took %v to stop", d)
	}
	objs, err := st.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if base := path.Base(o.Key); base == manifest.FileName || strings.HasPrefix(base, "backup.") {
			t.Errorf("cancelled backup left %s in storage", o.Key)
		}
	}
}

// cancelWriter cancels its context once some bytes went through.
type cancelWriter struct {
	w      io.Writer
	cancel context.CancelFunc
}

func (c *cancelWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if n > 0 {
		c.cancel()
	}
	return n, err
}

func (s *suite) testCancelRestore(t *testing.T) {
	st := newStorage(t)
	res := s.mustBackup(t, st, s.src, manifest.None, 0)
	target, unchanged := s.existingTarget(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	err := s.restore(ctx, t, st, res.Dir, target, func(r io.Reader) io.Reader {
		return CancelAfter(r, 1, cancel)
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("restore with a cancelled context: got %v, want an error matching context.Canceled", err)
	}
	unchanged()
}

// CancelAfter returns a reader of r that calls cancel once n bytes (at
// least one) have been read through it: a way to cancel a restore or a
// verification half-way through its input.
func CancelAfter(r io.Reader, n int64, cancel context.CancelFunc) io.Reader {
	return &cancelReader{r: r, left: max(n, 1), cancel: cancel}
}

type cancelReader struct {
	r      io.Reader
	left   int64
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.left -= int64(n); c.left <= 0 {
		c.cancel()
	}
	return n, err
}

func (s *suite) testRestoreOverExisting(t *testing.T) {
	src := s.src
	st := newStorage(t)
	res := s.mustBackup(t, st, src, manifest.LZ4, 0)
	target := s.h.NewSource(t)
	s.h.Mutate(t, target)
	if err := s.restore(t.Context(), t, st, res.Dir, target, nil); err != nil {
		t.Fatalf("restore over an existing target: %v", err)
	}
	s.h.Equal(t, src, target)
	if target.Path != "" {
		// Nothing of the restore (temporary or previous copies) is left beside it.
		want := filepath.Base(filepath.Clean(target.Path))
		entries, err := os.ReadDir(filepath.Dir(filepath.Clean(target.Path)))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != want && strings.HasPrefix(e.Name(), want) || strings.HasPrefix(e.Name(), "."+want) {
				t.Errorf("restore left %s beside the target", e.Name())
			}
		}
	}
}

func (s *suite) testPing(t *testing.T) {
	h := s.h.Driver.Ping(t.Context(), s.src)
	if h.Status != drivers.HealthOK {
		t.Fatalf("Ping of the source: status %q (%s), want %q", h.Status, h.ErrorText, drivers.HealthOK)
	}
	if h.Latency <= 0 {
		t.Errorf("Ping latency %v, want a positive duration", h.Latency)
	}
}

// flipByte inverts one byte in the middle of file.
func flipByte(t *testing.T, file string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	off := fi.Size() / 2
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// fingerprint lists everything under dir with its type, mode, size,
// modification time and content hash, in walk order.
func fingerprint(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		line := fmt.Sprintf("%s %v %d", filepath.ToSlash(rel), fi.Mode(), fi.Size())
		if rel != "." { // dir's own time changes with any temporary file
			line += fmt.Sprint(" ", fi.ModTime().UnixNano())
		}
		switch {
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			line += " " + hex.EncodeToString(sum[:])
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatalf("fingerprint %s: %v", dir, err)
	}
	return out
}
