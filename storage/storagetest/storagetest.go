package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/dataguardian/dataguardian/storage"
)

// FaultAt returns a reader of r that calls fault once, as soon as at bytes
// have been read: a remote storage's tests kill or cut off the server in
// the middle of a Put with it.
func FaultAt(r io.Reader, at int64, fault func()) io.Reader {
	return &faultReader{r: r, at: at, fault: fault}
}

type faultReader struct {
	r     io.Reader
	at, n int64
	fault func()
}

func (f *faultReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	f.n += int64(n)
	if f.fault != nil && f.n >= f.at {
		f.fault()
		f.fault = nil
	}
	return n, err
}

// Run runs the conformance suite against the storage newStorage returns.
// newStorage is called once per subtest and must return an empty storage;
// it should release it with t.Cleanup.
func Run(t *testing.T, newStorage func(t *testing.T) storage.Storage) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"RoundTrip", testRoundTrip},
		{"ReaderShapes", testReaderShapes},
		{"OddKeys", testOddKeys},
		{"Overwrite", testOverwrite},
		{"IfNotExist", testIfNotExist},
		{"RangedRead", testRangedRead},
		{"MissingKey", testMissingKey},
		{"Delete", testDelete},
		{"List", testList},
		{"ListEmpty", testListEmpty},
		{"InvisibleUntilPutReturns", testInvisibleUntilPutReturns},
		{"InvalidKeys", testInvalidKeys},
		{"FailingReader", testFailingReader},
		{"CancelledPut", testCancelledPut},
		{"ConcurrentDistinctKeys", testConcurrentDistinctKeys},
		{"ConcurrentSameKey", testConcurrentSameKey},
		{"ConcurrentIfNotExist", testConcurrentIfNotExist},
		{"ConcurrentPutDelete", testConcurrentPutDelete},
		{"Rename", func(t *testing.T, s storage.Storage) { testRename(t, s) }},
		{"RenameFallback", func(t *testing.T, s storage.Storage) {
			// Hide any Renamer so storage.Rename takes Open, Put, Delete.
			testRename(t, struct{ storage.Storage }{s})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStorage(t)
			if s == nil {
				t.Fatal("newStorage returned nil")
			}
			tt.fn(t, s)
		})
	}
}

func testRoundTrip(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const mib = 1 << 20
	for i, size := range []int{0, 1, 1000, 64 << 10, mib - 1, mib, mib + 1, 3 * mib} {
		key := fmt.Sprintf("roundtrip/%d/backup.dump.gz", size)
		want := randomBytes(uint64(i), size)
		if err := s.Put(ctx, key, plainReader(want), nil); err != nil {
			t.Fatalf("Put %s (%d bytes): %v", key, size, err)
		}
		obj, err := s.Stat(ctx, key)
		if err != nil {
			t.Fatalf("Stat %s: %v", key, err)
		}
		if obj.Key != key || obj.Size != int64(size) || obj.ModTime.IsZero() {
			t.Errorf("Stat %s = {Key: %q, Size: %d, ModTime: %v}, want key %q, size %d, a ModTime", key, obj.Key, obj.Size, obj.ModTime, key, size)
		}
		wantContent(t, s, key, want)
	}
	wantKeys(t, s, "roundtrip/", []string{
		"roundtrip/0/backup.dump.gz",
		"roundtrip/1/backup.dump.gz",
		"roundtrip/1000/backup.dump.gz",
		"roundtrip/1048575/backup.dump.gz",
		"roundtrip/1048576/backup.dump.gz",
		"roundtrip/1048577/backup.dump.gz",
		"roundtrip/3145728/backup.dump.gz",
		"roundtrip/65536/backup.dump.gz",
	})
}

// testReaderShapes puts through readers that return short reads, one byte
// at a time, and data together with io.EOF.
func testReaderShapes(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	data := randomBytes(7, 100_000)
	readers := map[string]func() io.Reader{
		"one-byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data[:5000])) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"data-eof": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
		"chunks":   func() io.Reader { return &chunkReader{data: data, chunk: 4093} },
	}
	for name, r := range readers {
		key := "shapes/" + name
		if err := s.Put(ctx, key, r(), nil); err != nil {
			t.Fatalf("Put %s: %v", key, err)
		}
		want := data
		if name == "one-byte" {
			want = data[:5000]
		}
		wantContent(t, s, key, want)
	}
}

// testOddKeys stores keys that are valid but unusual.
func testOddKeys(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	keys := []string{
		".hidden",
		"a",
		"..x",
		"with space/file name.txt",
		"ção/ünïcødé-文件.sql",
		"x:y=z,w;v@u+t~s!r'q(p)",
		"percent%20and%2F",
		"deep/1/2/3/4/5/6/7/8/9/10/backup.dump.gz.part-001",
		"job/2025-02-13_060001/backup.dump.gz",
		"job/2025-02-13_060001/manifest.json",
		strings.Repeat("n", 200),
	}
	for _, key := range keys {
		if err := storage.ValidateKey(key); err != nil {
			t.Fatalf("suite bug: %v", err)
		}
		if err := s.Put(ctx, key, plainReader([]byte(key)), nil); err != nil {
			t.Errorf("Put %q: %v", key, err)
			continue
		}
		wantContent(t, s, key, []byte(key))
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	wantKeys(t, s, "", want)
	for _, key := range keys {
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("Delete %q: %v", key, err)
		}
	}
	wantKeys(t, s, "", nil)
}

func testOverwrite(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const key = "overwrite/manifest.json"
	v1 := randomBytes(1, 300_000)
	v2 := randomBytes(2, 1234) // shorter: nothing of v1 may remain
	mustPut(t, s, key, v1)
	mustPut(t, s, key, v2)
	wantContent(t, s, key, v2)
	if obj, err := s.Stat(ctx, key); err != nil || obj.Size != int64(len(v2)) {
		t.Errorf("Stat after overwrite = %+v, %v; want size %d", obj, err, len(v2))
	}
	v3 := randomBytes(3, 500_000) // longer
	mustPut(t, s, key, v3)
	wantContent(t, s, key, v3)
	wantKeys(t, s, "", []string{key})
}

func testIfNotExist(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const key = "ifnotexist/manifest.json"
	old := randomBytes(1, 10_000)
	opts := &storage.PutOptions{IfNotExist: true}
	if err := s.Put(ctx, key, plainReader(old), opts); err != nil {
		t.Fatalf("Put IfNotExist of a new key: %v", err)
	}
	wantContent(t, s, key, old)
	err := s.Put(ctx, key, plainReader(randomBytes(2, 20_000)), opts)
	if !errors.Is(err, storage.ErrExist) {
		t.Errorf("Put IfNotExist of an existing key = %v, want an error matching storage.ErrExist", err)
	}
	wantContent(t, s, key, old)
	// Without the option, Put replaces.
	newer := randomBytes(3, 5_000)
	mustPut(t, s, key, newer)
	wantContent(t, s, key, newer)
	// A nil-options Put and an IfNotExist: false Put are the same.
	if err := s.Put(ctx, key, plainReader(old), &storage.PutOptions{}); err != nil {
		t.Errorf("Put with zero PutOptions over an existing key: %v", err)
	}
	wantContent(t, s, key, old)
	wantKeys(t, s, "", []string{key})
}

func testRangedRead(t *testing.T, s storage.Storage) {
	const key = "ranged/backup.dump.gz"
	const size = 1000
	data := randomBytes(9, size)
	mustPut(t, s, key, data)
	for _, c := range []struct {
		offset, length int64
		want           []byte
	}{
		{0, -1, data},
		{0, size, data},
		{0, 0, nil},
		{0, 10, data[:10]},
		{10, 20, data[10:30]},
		{500, -1, data[500:]},
		{990, -1, data[990:]},
		{999, 1, data[999:]},
		{990, 100, data[990:]}, // length past the end
		{0, size + 1, data},    // length past the end
		{size, -1, nil},        // offset at the end
		{size, 10, nil},        // offset at the end
	} {
		got, err := readRange(t.Context(), s, key, c.offset, c.length)
		if err != nil {
			t.Errorf("Open(%d, %d): %v", c.offset, c.length, err)
			continue
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("Open(%d, %d) read %d bytes, want %d%s", c.offset, c.length, len(got), len(c.want), firstDiff(got, c.want))
		}
	}
	// An empty object reads as empty at offset 0.
	mustPut(t, s, "ranged/empty", nil)
	if got, err := readRange(t.Context(), s, "ranged/empty", 0, 10); err != nil || len(got) != 0 {
		t.Errorf("Open empty object (0, 10) = %d bytes, %v; want 0 bytes, nil", len(got), err)
	}
}

func testMissingKey(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustPut(t, s, "missing/present", []byte("x"))
	for _, key := range []string{"missing/absent", "absent", "missing/present/below", "missing/presen", "missing"} {
		rc, err := s.Open(ctx, key, 0, -1)
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Open(%q) = %v, want an error matching storage.ErrNotFound", key, err)
		}
		if rc != nil {
			t.Errorf("Open(%q) returned a reader with error %v", key, err)
			rc.Close()
		}
		if _, err := s.Open(ctx, key, 5, 10); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Open(%q, 5, 10) = %v, want an error matching storage.ErrNotFound", key, err)
		}
		if obj, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat(%q) = %+v, %v; want an error matching storage.ErrNotFound", key, obj, err)
		}
	}
}

func testDelete(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if err := s.Delete(ctx, "never/was/here"); err != nil {
		t.Errorf("Delete of a missing key = %v, want nil", err)
	}
	mustPut(t, s, "del/x/1", []byte("one"))
	mustPut(t, s, "del/x/2", []byte("two"))
	mustPut(t, s, "del/y", []byte("y"))
	if err := s.Delete(ctx, "del/x/1"); err != nil {
		t.Fatalf("Delete del/x/1: %v", err)
	}
	if _, err := s.Stat(ctx, "del/x/1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after Delete = %v, want an error matching storage.ErrNotFound", err)
	}
	if _, err := s.Open(ctx, "del/x/1", 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Open after Delete = %v, want an error matching storage.ErrNotFound", err)
	}
	if err := s.Delete(ctx, "del/x/1"); err != nil {
		t.Errorf("second Delete = %v, want nil", err)
	}
	wantContent(t, s, "del/x/2", []byte("two")) // siblings survive
	wantKeys(t, s, "", []string{"del/x/2", "del/y"})
	if err := s.Delete(ctx, "del/x/2"); err != nil {
		t.Fatalf("Delete del/x/2: %v", err)
	}
	wantKeys(t, s, "", []string{"del/y"})
	mustPut(t, s, "del/x/3", []byte("three")) // the emptied prefix is usable again
	wantContent(t, s, "del/x/3", []byte("three"))
	if err := s.Delete(ctx, "del/x"); err != nil { // a "directory", not an object
		t.Errorf("Delete of a prefix that is not a key = %v, want nil", err)
	}
	wantKeys(t, s, "", []string{"del/x/3", "del/y"})
}

// testList stores 1,500 keys across nested prefixes and checks List is
// complete, sorted and filtered by prefix.
func testList(t *testing.T, s storage.Storage) {
	var keys []string
	for i := range 1500 {
		var k string
		switch i % 5 {
		case 0:
			k = fmt.Sprintf("list/a/%04d", i)
		case 1:
			k = fmt.Sprintf("list/ab-%04d", i)
		case 2:
			k = fmt.Sprintf("list/b/c/%04d", i)
		case 3:
			k = fmt.Sprintf("list/b/c/d/%04d.part-%03d", i, i%7+1)
		default:
			k = fmt.Sprintf("list/%04d.txt", i)
		}
		keys = append(keys, k)
	}
	// Ordering traps: '-' and '.' sort before '/', which a directory walk
	// visits first.
	keys = append(keys, "list/a.b", "list/a-b", "list.txt", "list-x/1", "lisz", "list/b/c.d")

	putConcurrently(t, s, keys)
	slices.Sort(keys)

	for _, prefix := range []string{
		"", "l", "list", "list/", "list/a", "list/a/", "list/a/00", "list/a.b",
		"list/ab", "list/b/c", "list/b/c/", "list/b/c/d", "list/b/c/d/", "list/0",
		"list/zzz", "nope/", "list/a/0005",
	} {
		var want []string
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		objs := wantKeys(t, s, prefix, want)
		for _, o := range objs {
			if o.Size != int64(len(o.Key)) || o.ModTime.IsZero() {
				t.Errorf("List(%q) entry %q: size %d, ModTime %v; want size %d and a ModTime", prefix, o.Key, o.Size, o.ModTime, len(o.Key))
				break
			}
		}
	}
}

func testListEmpty(t *testing.T, s storage.Storage) {
	wantKeys(t, s, "", nil)
	wantKeys(t, s, "job/", nil)
	wantKeys(t, s, "job/2025", nil)
	mustPut(t, s, "job/x", []byte("x"))
	wantKeys(t, s, "job/y", nil)
	wantKeys(t, s, "job/x/", nil)
	wantKeys(t, s, "other", nil)
}

// testInvisibleUntilPutReturns holds a Put mid-stream and checks that its
// object cannot be seen until Put returns.
func testInvisibleUntilPutReturns(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const key = "inflight/backup.dump.gz"
	mustPut(t, s, "inflight/other", []byte("other"))
	data := randomBytes(4, 300_000)
	r := &gateReader{data: data, at: 100_000, reached: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- s.Put(ctx, key, r, nil) }()
	select {
	case <-r.reached:
	case err := <-done:
		t.Fatalf("Put returned %v before reading the whole stream", err)
	}
	if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat during Put = %v, want an error matching storage.ErrNotFound", err)
	}
	if _, err := s.Open(ctx, key, 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Open during Put = %v, want an error matching storage.ErrNotFound", err)
	}
	wantKeys(t, s, "", []string{"inflight/other"})
	close(r.release)
	if err := <-done; err != nil {
		t.Fatalf("Put: %v", err)
	}
	wantContent(t, s, key, data)
	wantKeys(t, s, "", []string{key, "inflight/other"})
}

// invalidKeys lists keys every Storage must refuse with ErrInvalidKey.
var invalidKeys = []string{
	"", ".", "..", "/abs", "/", "../x", "a/../../x", "a/..", "a\\b", "a/./b",
	"./a", "a//b", "a/", "a\x00b",
}

func testInvalidKeys(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const valid = "valid/key"
	mustPut(t, s, valid, []byte("valid"))
	for _, key := range invalidKeys {
		if storage.ValidateKey(key) == nil {
			t.Fatalf("suite bug: ValidateKey accepts %q", key)
		}
		if err := s.Put(ctx, key, plainReader([]byte("payload")), nil); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want an error matching storage.ErrInvalidKey", key, err)
		}
		if err := s.Put(ctx, key, plainReader(nil), &storage.PutOptions{IfNotExist: true}); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Put(%q, IfNotExist) = %v, want an error matching storage.ErrInvalidKey", key, err)
		}
		rc, err := s.Open(ctx, key, 0, -1)
		if !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Open(%q) = %v, want an error matching storage.ErrInvalidKey", key, err)
		}
		if rc != nil {
			rc.Close()
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Stat(%q) = %v, want an error matching storage.ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want an error matching storage.ErrInvalidKey", key, err)
		}
		if err := storage.Rename(ctx, s, key, "renamed"); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Rename(%q, \"renamed\") = %v, want an error matching storage.ErrInvalidKey", key, err)
		}
		if err := storage.Rename(ctx, s, valid, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Rename(%q, %q) = %v, want an error matching storage.ErrInvalidKey", valid, key, err)
		}
		if storage.ValidatePrefix(key) != nil {
			if objs, err := s.List(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("List(%q) = %d objects, %v; want an error matching storage.ErrInvalidKey", key, len(objs), err)
			}
		}
	}
	wantContent(t, s, valid, []byte("valid"))
	wantKeys(t, s, "", []string{valid})
}

var errBoom = errors.New("storagetest: reader failed on purpose")

// testFailingReader checks that a Put whose reader fails mid-stream
// returns that error and leaves the old object, or nothing.
func testFailingReader(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const existing = "fail/existing"
	old := randomBytes(1, 200_000)
	mustPut(t, s, existing, old)
	for _, key := range []string{existing, "fail/new", "fail/deeper/new/key"} {
		for _, opts := range []*storage.PutOptions{nil, {IfNotExist: true}} {
			if opts != nil && key == existing {
				continue // refused before reading
			}
			r := io.MultiReader(&chunkReader{data: randomBytes(2, 300_000), chunk: 64 << 10}, iotest.ErrReader(errBoom))
			err := s.Put(ctx, key, r, opts)
			if !errors.Is(err, errBoom) {
				t.Errorf("Put(%q, %+v) with a failing reader = %v, want an error wrapping the reader's error", key, opts, err)
			}
		}
	}
	wantContent(t, s, existing, old)
	for _, key := range []string{"fail/new", "fail/deeper/new/key"} {
		if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat(%q) after a failed Put = %v, want an error matching storage.ErrNotFound", key, err)
		}
	}
	wantKeys(t, s, "", []string{existing})
}

// testCancelledPut cancels the context of a Put mid-stream.
func testCancelledPut(t *testing.T, s storage.Storage) {
	const existing = "cancel/existing"
	old := randomBytes(1, 100_000)
	mustPut(t, s, existing, old)
	for _, key := range []string{"cancel/new", existing} {
		ctx, cancel := context.WithCancel(t.Context())
		// The reader cancels after 1 MiB and goes on supplying data, so
		// an implementation ignoring ctx would succeed.
		r := &cancelReader{cancel: cancel, at: 1 << 20, n: 32 << 20}
		err := s.Put(ctx, key, r, nil)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Put(%q) with its context cancelled mid-stream = %v, want an error matching context.Canceled", key, err)
		}
	}
	// Cancelled before the call.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Put(ctx, "cancel/before", plainReader([]byte("x")), nil); err == nil {
		t.Error("Put with a cancelled context = nil, want an error")
	}
	if _, err := s.Stat(t.Context(), "cancel/new"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after a cancelled Put = %v, want an error matching storage.ErrNotFound", err)
	}
	wantContent(t, s, existing, old)
	wantKeys(t, s, "", []string{existing})
}

func testConcurrentDistinctKeys(t *testing.T, s storage.Storage) {
	const n = 32
	var keys []string
	for i := range n {
		keys = append(keys, fmt.Sprintf("conc/%02d/backup.dump.gz.part-%03d", i%4, i))
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, key := range keys {
		wg.Go(func() {
			errs[i] = s.Put(t.Context(), key, &chunkReader{data: randomBytes(uint64(i), 50_000+i), chunk: 8 << 10}, nil)
		})
	}
	wg.Wait()
	for i, key := range keys {
		if errs[i] != nil {
			t.Errorf("Put %s: %v", key, errs[i])
			continue
		}
		wantContent(t, s, key, randomBytes(uint64(i), 50_000+i))
	}
	slices.Sort(keys)
	wantKeys(t, s, "", keys)
}

// testConcurrentSameKey has writers race on one key while readers watch:
// every read and the final object must equal one written version exactly.
func testConcurrentSameKey(t *testing.T, s storage.Storage) {
	const key = "same/manifest.json"
	const writers = 8
	versions := make([][]byte, writers)
	for i := range versions {
		versions[i] = randomBytes(uint64(100+i), 256<<10+i*1000)
	}
	isVersion := func(b []byte) bool {
		return slices.ContainsFunc(versions, func(v []byte) bool { return bytes.Equal(v, b) })
	}
	for round := range 3 {
		var wg sync.WaitGroup
		errs := make([]error, writers)
		stop := make(chan struct{})
		var readErr error
		var readWG sync.WaitGroup
		readWG.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				b, err := readRange(t.Context(), s, key, 0, -1)
				if errors.Is(err, storage.ErrNotFound) && round == 0 {
					continue
				}
				if err != nil {
					readErr = fmt.Errorf("Open during concurrent Puts: %w", err)
					return
				}
				if !isVersion(b) {
					readErr = fmt.Errorf("read %d bytes during concurrent Puts that match no written version", len(b))
					return
				}
			}
		})
		for i := range writers {
			wg.Go(func() {
				errs[i] = s.Put(t.Context(), key, &chunkReader{data: versions[i], chunk: 16 << 10}, nil)
			})
		}
		wg.Wait()
		close(stop)
		readWG.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d: Put by writer %d: %v", round, i, err)
			}
		}
		if readErr != nil {
			t.Errorf("round %d: %v", round, readErr)
		}
		got, err := readRange(t.Context(), s, key, 0, -1)
		if err != nil {
			t.Fatalf("round %d: Open: %v", round, err)
		}
		if !isVersion(got) {
			t.Fatalf("round %d: final object (%d bytes) equals no written version: writes were mixed", round, len(got))
		}
	}
	wantKeys(t, s, "", []string{key})
}

// testConcurrentIfNotExist races IfNotExist Puts on one key: exactly one
// must win and the object must be the winner's.
func testConcurrentIfNotExist(t *testing.T, s storage.Storage) {
	const key = "once/manifest.json"
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			r := &chunkReader{data: randomBytes(uint64(i), 100_000), chunk: 8 << 10}
			errs[i] = s.Put(t.Context(), key, r, &storage.PutOptions{IfNotExist: true})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("IfNotExist Puts by writers %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, storage.ErrExist):
			t.Errorf("IfNotExist Put by writer %d = %v, want nil or an error matching storage.ErrExist", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no IfNotExist Put succeeded")
	}
	wantContent(t, s, key, randomBytes(uint64(winner), 100_000))
	wantKeys(t, s, "", []string{key})
}

// testConcurrentPutDelete puts and deletes keys under one prefix at the
// same time: a Delete emptying a "directory" must not make a Put fail.
func testConcurrentPutDelete(t *testing.T, s storage.Storage) {
	const n = 40
	var olds, news []string
	for i := range n {
		olds = append(olds, fmt.Sprintf("pd/d/old-%02d", i))
		news = append(news, fmt.Sprintf("pd/d/e/new-%02d", i))
	}
	putConcurrently(t, s, olds)
	var wg sync.WaitGroup
	putErrs := make([]error, n)
	delErrs := make([]error, n)
	for i := range n {
		wg.Go(func() { delErrs[i] = s.Delete(t.Context(), olds[i]) })
		wg.Go(func() { putErrs[i] = s.Put(t.Context(), news[i], plainReader([]byte(news[i])), nil) })
	}
	wg.Wait()
	for i := range n {
		if delErrs[i] != nil {
			t.Errorf("Delete %s: %v", olds[i], delErrs[i])
		}
		if putErrs[i] != nil {
			t.Errorf("Put %s alongside Deletes: %v", news[i], putErrs[i])
		}
	}
	wantKeys(t, s, "", news)
	for _, k := range news {
		wantContent(t, s, k, []byte(k))
	}

	// Churn: each writer puts and deletes its own key under a shared prefix
	// that keeps becoming empty.
	const churners, rounds = 16, 100
	errs := make([]error, churners)
	for g := range churners {
		wg.Go(func() {
			key := fmt.Sprintf("churn/a/b/k%d", g)
			for i := range rounds {
				if err := s.Put(t.Context(), key, plainReader([]byte(key)), nil); err != nil {
					errs[g] = fmt.Errorf("round %d: Put %s: %w", i, key, err)
					return
				}
				if err := s.Delete(t.Context(), key); err != nil {
					errs[g] = fmt.Errorf("round %d: Delete %s: %w", i, key, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	wantKeys(t, s, "churn/", nil)
}

func testRename(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	a := randomBytes(1, 70_000)
	b := randomBytes(2, 1_000)
	mustPut(t, s, "r/a", a)
	if err := storage.Rename(ctx, s, "r/a", "r/b"); err != nil {
		t.Fatalf("Rename r/a → r/b: %v", err)
	}
	if _, err := s.Stat(ctx, "r/a"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat of the old key after Rename = %v, want an error matching storage.ErrNotFound", err)
	}
	wantContent(t, s, "r/b", a)

	// Onto an existing key: replaced.
	mustPut(t, s, "r/c", b)
	if err := storage.Rename(ctx, s, "r/c", "r/b"); err != nil {
		t.Fatalf("Rename r/c → existing r/b: %v", err)
	}
	wantContent(t, s, "r/b", b)

	// Into a prefix that does not exist yet, and out of an emptied one.
	mustPut(t, s, "r/tmp/x/part", a)
	if err := storage.Rename(ctx, s, "r/tmp/x/part", "r/final/2025-02-13_060001/backup.dump.gz.part-001"); err != nil {
		t.Fatalf("Rename into a new prefix: %v", err)
	}
	wantContent(t, s, "r/final/2025-02-13_060001/backup.dump.gz.part-001", a)

	// A missing source.
	if err := storage.Rename(ctx, s, "r/missing", "r/d"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Rename of a missing key = %v, want an error matching storage.ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, "r/d"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat of the target of a failed Rename = %v, want an error matching storage.ErrNotFound", err)
	}
	wantKeys(t, s, "", []string{"r/b", "r/final/2025-02-13_060001/backup.dump.gz.part-001"})
}

// ---- helpers ----

func randomBytes(seed uint64, n int) []byte {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// plainReader hides io.WriterTo, io.Seeker and the like, so a Storage
// cannot depend on them.
func plainReader(b []byte) io.Reader { return struct{ io.Reader }{bytes.NewReader(b)} }

func mustPut(t *testing.T, s storage.Storage, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, plainReader(data), nil); err != nil {
		t.Fatalf("Put %s: %v", key, err)
	}
}

func putConcurrently(t *testing.T, s storage.Storage, keys []string) {
	t.Helper()
	const workers = 16
	ch := make(chan string)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for k := range ch {
				if err := s.Put(t.Context(), k, plainReader([]byte(k)), nil); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("Put %s: %w", k, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, k := range keys {
		ch <- k
	}
	close(ch)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}

func readRange(ctx context.Context, s storage.Storage, key string, offset, length int64) ([]byte, error) {
	rc, err := s.Open(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	return b, err
}

func wantContent(t *testing.T, s storage.Storage, key string, want []byte) {
	t.Helper()
	got, err := readRange(t.Context(), s, key, 0, -1)
	if err != nil {
		t.Errorf("read %s: %v", key, err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("read %s: %d bytes, want %d%s", key, len(got), len(want), firstDiff(got, want))
	}
}

// wantKeys checks that List(prefix) returns exactly want, in order.
func wantKeys(t *testing.T, s storage.Storage, prefix string, want []string) []storage.Object {
	t.Helper()
	objs, err := s.List(t.Context(), prefix)
	if err != nil {
		t.Errorf("List(%q): %v", prefix, err)
		return nil
	}
	got := make([]string, len(objs))
	for i, o := range objs {
		got[i] = o.Key
	}
	if slices.Equal(got, want) {
		return objs
	}
	if !slices.IsSorted(got) {
		t.Errorf("List(%q) is not sorted by key", prefix)
	}
	var missing, extra []string
	for _, k := range want {
		if !slices.Contains(got, k) {
			missing = append(missing, k)
		}
	}
	for _, k := range got {
		if !slices.Contains(want, k) {
			extra = append(extra, k)
		}
	}
	t.Errorf("List(%q) returned %d keys, want %d; missing %s; unexpected %s",
		prefix, len(got), len(want), head(missing), head(extra))
	return objs
}

func head(keys []string) string {
	if len(keys) > 5 {
		return fmt.Sprintf("%q and %d more", keys[:5], len(keys)-5)
	}
	return fmt.Sprintf("%q", keys)
}

func firstDiff(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf(" (first difference at byte %d)", i)
		}
	}
	return ""
}

// chunkReader returns data in chunks of at most chunk bytes, yielding the
// processor between reads so concurrent writers interleave.
type chunkReader struct {
	data  []byte
	chunk int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	runtime.Gosched()
	n := copy(p[:min(len(p), r.chunk)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// gateReader supplies data up to at, then signals reached and waits for
// release before supplying the rest.
type gateReader struct {
	data     []byte
	at, off  int
	reached  chan struct{}
	release  chan struct{}
	signaled bool
}

func (r *gateReader) Read(p []byte) (int, error) {
	if r.off == r.at && !r.signaled {
		r.signaled = true
		close(r.reached)
		<-r.release
	}
	if r.off == len(r.data) {
		return 0, io.EOF
	}
	end := len(r.data)
	if r.off < r.at {
		end = r.at
	}
	n := copy(p, r.data[r.off:end])
	r.off += n
	return n, nil
}

// cancelReader supplies n zero bytes and calls cancel once at bytes are read.
type cancelReader struct {
	cancel   context.CancelFunc
	at, n    int
	off      int
	canceled bool
}

func (r *cancelReader) Read(p []byte) (int, error) {
	if r.off >= r.at && !r.canceled {
		r.canceled = true
		r.cancel()
	}
	if r.off == r.n {
		return 0, io.EOF
	}
	m := min(len(p), r.n-r.off, 64<<10)
	clear(p[:m])
	r.off += m
	return m, nil
}
