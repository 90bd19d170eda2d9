package manifest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/internal/sqltext"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage"
	"github.com/dataguardian/dataguardian/storage/local"
)

var compressions = []manifest.Compression{manifest.Gzip, manifest.Zstd, manifest.LZ4, manifest.None}

func newLocal(t testing.TB) (*local.Local, string) {
	t.Helper()
	root := t.TempDir()
	s, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func opts(c manifest.Compression, partSize int64) manifest.WriteOptions {
	return manifest.WriteOptions{JobID: "job-1", ExecutionID: "exec-1", DatasourceType: "postgres", Compression: c, PartSize: partSize}
}

// dumpBytes is a DumpFunc writing data in uneven writes.
func dumpBytes(data []byte) manifest.DumpFunc {
	return func(ctx context.Context, w io.Writer) (manifest.Metadata, error) {
		for p := data; len(p) > 0; {
			n := min(len(p), 7919)
			if _, err := w.Write(p[:n]); err != nil {
				return manifest.Metadata{}, err
			}
			p = p[n:]
		}
		return manifest.Metadata{DatabaseVersion: "test 1", TablesBackedUp: 1, RowsApproximate: int64(len(data))}, nil
	}
}

func readBack(t *testing.T, s storage.Storage, dir string) []byte {
	t.Helper()
	var got bytes.Buffer
	if _, err := manifest.Read(context.Background(), s, dir, func(_ context.Context, r io.Reader) error {
		_, err := io.Copy(&got, r)
		return err
	}); err != nil {
		t.Fatalf("read back %s: %v", dir, err)
	}
	return got.Bytes()
}

func TestRoundTripEveryCompression(t *testing.T) {
	data := sqltext.Block(1, 3<<20+12345)
	for _, c := range compressions {
		for _, partSize := range []int64{1 << 30, 64 << 10, 1} {
			if partSize == 1 && c != manifest.LZ4 {
				continue // one-byte parts once is enough
			}
			t.Run(fmt.Sprintf("%s/part%d", c, partSize), func(t *testing.T) {
				s, root := newLocal(t)
				src := data
				if partSize == 1 {
					src = data[:3000]
				}
				res, err := manifest.Write(context.Background(), []manifest.Destination{{Name: "disk", Storage: s}}, opts(c, partSize), dumpBytes(src))
				if err != nil {
					t.Fatal(err)
				}
				m := res.Manifest
				if m.TotalSizeBytes != int64(len(src)) {
					t.Errorf("total_size_bytes = %d, want %d", m.TotalSizeBytes, len(src))
				}
				if c != manifest.None && m.CompressionRatio >= 0.5 {
					t.Errorf("compression ratio %.3f on SQL text: compression not applied", m.CompressionRatio)
				}
				base, _ := manifest.BaseName("postgres", c)
				files := listDir(t, filepath.Join(root, res.Dir))
				wantParts := int((m.CompressedSizeBytes + partSize - 1) / partSize)
				if len(m.Chunks) != wantParts || len(files) != wantParts+3 {
					t.Fatalf("%d chunks, files %v; want %d parts, manifest, %s and %s", len(m.Chunks), files, wantParts, manifest.RecoveryFileName, manifest.SumsFileName)
				}
				// Sorted: RECOVERY.txt, SHA256SUMS, the parts, manifest.json.
				if files[0] != manifest.RecoveryFileName || files[1] != manifest.SumsFileName {
					t.Errorf("files %v lack the recovery aids", files[:2])
				}
				files = files[2:]
				if wantParts == 1 && files[0] != base {
					t.Errorf("unsplit backup named %q, want %q", files[0], base)
				}
				if wantParts > 1 && files[0] != base+".part-001" {
					t.Errorf("first part named %q, want %s.part-001", files[0], base)
				}
				if !bytes.Equal(readBack(t, s, res.Dir), src) {
					t.Fatal("restored stream differs from the dump")
				}
			})
		}
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func TestEmptyDumpHasOnePart(t *testing.T) {
	s, _ := newLocal(t)
	res, err := manifest.Write(context.Background(), []manifest.Destination{{Name: "disk", Storage: s}}, opts(manifest.None, 1024), dumpBytes(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Manifest.Chunks) != 1 || res.Manifest.Chunks[0].File != "backup.dump" || res.Manifest.Chunks[0].SizeBytes != 0 {
		t.Fatalf("chunks = %+v", res.Manifest.Chunks)
	}
	if got := readBack(t, s, res.Dir); len(got) != 0 {
		t.Fatalf("read %d bytes from an empty backup", len(got))
	}
}

// A person recovers a split backup with cat, sha256sum and the decompressor.
func TestRecoverByHandWithStandardTools(t *testing.T) {
	tools := map[manifest.Compression][]string{manifest.Gzip: {"gunzip", "-c"}, manifest.Zstd: {"zstd", "-d", "-c"}, manifest.LZ4: {"lz4", "-d", "-c"}}
	data := sqltext.Block(2, 2<<20)
	for c, decomp := range tools {
		t.Run(string(c), func(t *testing.T) {
			for _, tool := range []string{"cat", "sha256sum", decomp[0]} {
				if _, err := exec.LookPath(tool); err != nil {
					requireTool(t, tool)
				}
			}
			s, root := newLocal(t)
			res, err := manifest.Write(context.Background(), []manifest.Destination{{Name: "disk", Storage: s}}, opts(c, 100<<10), dumpBytes(data))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Manifest.Chunks) < 2 {
				t.Fatalf("want a split backup, got %d part", len(res.Manifest.Chunks))
			}
			dir := filepath.Join(root, res.Dir)
			base, _ := manifest.BaseName("postgres", c)
			script := fmt.Sprintf("cd %q && cat %s.part-* > /tmp/joined.$$ && sha256sum /tmp/joined.$$ | cut -d' ' -f1 && %s /tmp/joined.$$ | sha256sum | cut -d' ' -f1; rm -f /tmp/joined.$$",
				dir, base, strings.Join(decomp, " "))
			out, err := exec.Command("sh", "-c", script).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", script, err, out)
			}
			lines := strings.Fields(string(out))
			raw := sha256.Sum256(data)
			if len(lines) != 2 || "sha256:"+lines[0] != res.Manifest.Checksum || lines[1] != hex.EncodeToString(raw[:]) {
				t.Fatalf("hand recovery: got %q; want checksum %s and data sha %x", lines, res.Manifest.Checksum, raw)
			}
		})
	}
}

func requireTool(t *testing.T, tool string) {
	t.Helper()
	if os.Getenv("DG_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s not installed (DG_REQUIRE_SERVICES=1): apt-get install %s", tool, tool)
	}
	t.Skipf("%s not installed: apt-get install %s to run this test", tool, tool)
}

func TestBadOptions(t *testing.T) {
	s, _ := newLocal(t)
	dests := []manifest.Destination{{Name: "disk", Storage: s}}
	cases := []struct {
		name string
		o    manifest.WriteOptions
		want error
		text string
	}{
		{"unknown compression", opts("rar", 1), manifest.ErrUnknownCompression, "use gzip, zstd, lz4 or none"},
		{"zero part size", opts(manifest.Gzip, 0), manifest.ErrInvalidOptions, "max_file_size_mb must be a positive"},
		{"negative part size", opts(manifest.Gzip, -5), manifest.ErrInvalidOptions, "max_file_size_mb"},
		{"bad job id", manifest.WriteOptions{JobID: "../x", DatasourceType: "postgres", Compression: manifest.Gzip, PartSize: 1}, manifest.ErrInvalidOptions, "job id"},
		{"unknown type", manifest.WriteOptions{JobID: "j", DatasourceType: "excel", Compression: manifest.Gzip, PartSize: 1}, manifest.ErrUnknownType, "excel"},
	}
	for _, tc := range cases {
		_, err := manifest.NewWriter(context.Background(), dests, tc.o)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: err = %v; want %v mentioning %q", tc.name, err, tc.want, tc.text)
		}
	}
	if _, err := manifest.NewWriter(context.Background(), nil, opts(manifest.Gzip, 1)); !errors.Is(err, manifest.ErrInvalidOptions) {
		t.Errorf("no destinations: err = %v", err)
	}
}

func TestUnwritableStorageRoot(t *testing.T) {
	root := t.TempDir()
	s, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	// Turn the job folder's place into a file: nothing can be created under it.
	if err := os.WriteFile(filepath.Join(root, "job-1"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = manifest.Write(context.Background(), []manifest.Destination{{Name: "disk", Storage: s}}, opts(manifest.Gzip, 1<<20), dumpBytes([]byte("data")))
	if err == nil || !strings.Contains(err.Error(), "every destination failed") || !strings.Contains(err.Error(), "disk") {
		t.Fatalf("err = %v; want a failure naming the destination", err)
	}
}

// writeSplit writes a backup split into several parts and returns it.
func writeSplit(t *testing.T, c manifest.Compression) (storage.Storage, string, *manifest.Result, []byte) {
	t.Helper()
	s, root := newLocal(t)
	data := sqltext.Block(3, 1<<20)
	res, err := manifest.Write(context.Background(), []manifest.Destination{{Name: "disk", Storage: s}}, opts(c, 32<<10), dumpBytes(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Manifest.Chunks) < 3 {
		t.Fatalf("want >= 3 parts, got %d", len(res.Manifest.Chunks))
	}
	return s, filepath.Join(root, res.Dir), res, data
}

func TestDamagedBackupsAreRefusedBeforeRestore(t *testing.T) {
	faults := []struct {
		name   string
		damage func(t *testing.T, dir string, m *manifest.Manifest)
		want   error
		text   string
	}{
		{"flipped byte", func(t *testing.T, dir string, m *manifest.Manifest) {
			flipByte(t, filepath.Join(dir, m.Chunks[1].File), 100)
		}, manifest.ErrChecksumMismatch, "part-002"},
		{"missing part", func(t *testing.T, dir string, m *manifest.Manifest) {
			os.Remove(filepath.Join(dir, m.Chunks[2].File))
		}, manifest.ErrMissingPart, "part-003"},
		{"truncated part", func(t *testing.T, dir string, m *manifest.Manifest) {
			os.Truncate(filepath.Join(dir, m.Chunks[0].File), m.Chunks[0].SizeBytes-10)
		}, manifest.ErrSizeMismatch, "truncated"},
		{"wrong manifest checksum", func(t *testing.T, dir string, m *manifest.Manifest) {
			m.Checksum = "sha256:" + strings.Repeat("0", 64)
			data, _ := m.Marshal()
			os.WriteFile(filepath.Join(dir, manifest.FileName), data, 0o644)
		}, manifest.ErrChecksumMismatch, "whole stream"},
		{"no manifest", func(t *testing.T, dir string, m *manifest.Manifest) {
			os.Remove(filepath.Join(dir, manifest.FileName))
		}, manifest.ErrNoManifest, "incomplete"},
		{"garbage manifest", func(t *testing.T, dir string, m *manifest.Manifest) {
			os.WriteFile(filepath.Join(dir, manifest.FileName), []byte("{not json"), 0o644)
		}, manifest.ErrInvalidManifest, "manifest.json"},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			s, dir, res, _ := writeSplit(t, manifest.Zstd)
			before := snapshotDir(t, dir)
			f.damage(t, dir, res.Manifest)
			damaged := snapshotDir(t, dir)
			called := false
			_, err := manifest.Read(context.Background(), s, res.Dir, func(context.Context, io.Reader) error {
				called = true
				return nil
			})
			if !errors.Is(err, f.want) || !strings.Contains(err.Error(), f.text) {
				t.Fatalf("err = %v; want %v mentioning %q", err, f.want, f.text)
			}
			if called {
				t.Fatal("restore was called on a damaged backup")
			}
			if !equalMaps(damaged, snapshotDir(t, dir)) {
				t.Fatal("reading a damaged backup changed its files")
			}
			_ = before
		})
	}
}

// A part replaced between the verification pass and the restore pass is still caught.
func TestStreamChecksPartsAgain(t *testing.T) {
	s, dir, res, _ := writeSplit(t, manifest.None)
	m := res.Manifest
	rc, err := manifest.OpenStream(context.Background(), s, res.Dir, m)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	flipByte(t, filepath.Join(dir, m.Chunks[2].File), 5)
	_, err = io.Copy(io.Discard, rc)
	if !errors.Is(err, manifest.ErrChecksumMismatch) {
		t.Fatalf("err = %v; want ErrChecksumMismatch", err)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	f.ReadAt(b, off)
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			sum := sha256.Sum256(b)
			out[p] = hex.EncodeToString(sum[:])
		}
		return nil
	})
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRunFoldersNeverOverwritten(t *testing.T) {
	s, root := newLocal(t)
	fixed := time.Date(2025, 2, 13, 6, 0, 1, 0, time.UTC)
	o := opts(manifest.Gzip, 1<<20)
	o.Now = func() time.Time { return fixed }
	var dirs []string
	for i := range 3 {
		res, err := manifest.Write(context.Background(), []manifest.Destination{{Name: "disk", Storage: s}}, o, dumpBytes([]byte(fmt.Sprintf("dump %d", i))))
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, res.Dir)
	}
	want := []string{"job-1/2025-02-13_060001", "job-1/2025-02-13_060002", "job-1/2025-02-13_060003"}
	for i := range want {
		if dirs[i] != want[i] {
			t.Fatalf("run folders %v; want %v", dirs, want)
		}
		if got := string(readBack(t, s, dirs[i])); got != fmt.Sprintf("dump %d", i) {
			t.Fatalf("%s holds %q", dirs[i], got)
		}
	}
	// Nothing but parts, manifests and recovery aids remains
	// (reservations are removed).
	for _, d := range dirs {
		if files := listDir(t, filepath.Join(root, d)); len(files) != 4 {
			t.Errorf("%s holds %v", d, files)
		}
	}
}

// faulty fails every Put after failAfter bytes have been written to it.
type faulty struct {
	storage.Storage
	failAfter int64
	written   atomic.Int64
}

var errInjected = errors.New("injected disk failure")

func (f *faulty) Put(ctx context.Context, key string, r io.Reader, o *storage.PutOptions) error {
	return f.Storage.Put(ctx, key, readerFunc(func(p []byte) (int, error) {
		if f.written.Load() >= f.failAfter {
			return 0, errInjected
		}
		n, err := r.Read(p)
		f.written.Add(int64(n))
		return n, err
	}), o)
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestFailingDestinationDoesNotFailOthers(t *testing.T) {
	good, goodRoot := newLocal(t)
	badBase, badRoot := newLocal(t)
	bad := &faulty{Storage: badBase, failAfter: 200 << 10}
	data := sqltext.Block(4, 4<<20)
	dests := []manifest.Destination{{Name: "good", Storage: good}, {Name: "bad", Storage: bad}}
	res, err := manifest.Write(context.Background(), dests, opts(manifest.None, 64<<10), dumpBytes(data))
	if err != nil {
		t.Fatal(err)
	}
	if res.Destinations[0].Err != nil || !errors.Is(res.Destinations[1].Err, errInjected) {
		t.Fatalf("results = %+v", res.Destinations)
	}
	if !bytes.Equal(readBack(t, good, res.Dir), data) {
		t.Fatal("good destination holds wrong data")
	}
	// The failed destination keeps nothing of this backup.
	if objs, _ := badBase.List(context.Background(), res.Dir); len(objs) != 0 {
		t.Fatalf("failed destination still holds %v", objs)
	}
	_ = goodRoot
	_ = badRoot
	// When every destination fails, the backup fails.
	bad2 := &faulty{Storage: badBase, failAfter: 1}
	_, err = manifest.Write(context.Background(), []manifest.Destination{{Name: "bad", Storage: bad2}}, opts(manifest.None, 64<<10), dumpBytes(data))
	if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "every destination failed") {
		t.Fatalf("all failing: err = %v", err)
	}
}

func TestCancelledDumpLeavesNothing(t *testing.T) {
	s, root := newLocal(t)
	ctx, cancel := context.WithCancel(context.Background())
	data := sqltext.Block(5, 2<<20)
	_, err := manifest.Write(ctx, []manifest.Destination{{Name: "disk", Storage: s}}, opts(manifest.Gzip, 64<<10), func(ctx context.Context, w io.Writer) (manifest.Metadata, error) {
		for i := 0; ; i++ {
			if i == 40 {
				cancel()
			}
			if _, err := w.Write(data[(i*8192)%len(data):][:8192]); err != nil {
				return manifest.Metadata{}, err
			}
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
	var left []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Fatalf("cancelled backup left %v", left)
	}
}

// A part damaged after verification is named as a checksum mismatch even
// when the decompressor trips over it first.
func TestStreamNamesDamageUnderCompression(t *testing.T) {
	for _, c := range compressions {
		t.Run(string(c), func(t *testing.T) {
			s, dir, res, _ := writeSplit(t, c)
			m := res.Manifest
			flipByte(t, filepath.Join(dir, m.Chunks[len(m.Chunks)-1].File), m.Chunks[len(m.Chunks)-1].SizeBytes/2)
			rc, err := manifest.OpenStream(context.Background(), s, res.Dir, m)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if _, err := io.Copy(io.Discard, rc); !errors.Is(err, manifest.ErrChecksumMismatch) {
				t.Fatalf("err = %v; want ErrChecksumMismatch", err)
			}
		})
	}
}

// Aborted backups release every goroutine they started (compressor workers,
// the splitter, uploads).
func TestAbortLeaksNoGoroutines(t *testing.T) {
	s, _ := newLocal(t)
	data := sqltext.Block(6, 1<<20)
	before := runtime.NumGoroutine()
	for _, c := range compressions {
		for range 5 {
			ctx, cancel := context.WithCancel(context.Background())
			_, err := manifest.Write(ctx, []manifest.Destination{{Name: "disk", Storage: s}}, opts(c, 64<<10), func(ctx context.Context, w io.Writer) (manifest.Metadata, error) {
				w.Write(data)
				cancel()
				_, err := w.Write(data)
				return manifest.Metadata{}, err
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("%s: err = %v", c, err)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after 20 aborted backups:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// Backups of one job started in the same second, concurrently, each get a
// run folder of their own.
func TestConcurrentRunsGetDistinctFolders(t *testing.T) {
	s, _ := newLocal(t)
	fixed := time.Date(2025, 2, 13, 6, 0, 1, 0, time.UTC)
	const n = 6
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			o := opts(manifest.Zstd, 1<<20)
			o.Now = func() time.Time { return fixed }
			var res *manifest.Result
			res, errs[i] = manifest.Write(context.Background(), []manifest.Destination{{Name: "disk", Storage: s}}, o, dumpBytes([]byte(fmt.Sprintf("dump %d", i))))
			dirs[i] = res.Dir
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[dirs[i]] {
			t.Fatalf("two runs share %s: %v", dirs[i], dirs)
		}
		seen[dirs[i]] = true
		if got := string(readBack(t, s, dirs[i])); got != fmt.Sprintf("dump %d", i) {
			t.Fatalf("%s holds %q, want dump %d", dirs[i], got, i)
		}
	}
}
