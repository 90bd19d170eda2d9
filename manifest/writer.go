package manifest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/dataguardian/dataguardian/storage"
)

// ErrInvalidOptions reports WriteOptions that cannot produce a backup.
var ErrInvalidOptions = errors.New("invalid backup options")

// ReservationName is the file that marks a run folder as taken while its
// backup is written; it holds the execution ID (WriteOptions.ExecutionID)
// and is removed once manifest.json is in place. Cleanup removes only the
// abandoned run folders that hold it.
const ReservationName = ".dataguardian-run"

// Destination is one storage a backup is written to.
type Destination struct {
	Name    string // shown in errors and results, e.g. the storage location name
	Storage storage.Storage
}

// DestinationResult tells whether a backup reached one destination.
type DestinationResult struct {
	Name string
	Err  error // nil when the complete backup, manifest included, is there
}

// WriteOptions configure one backup.
type WriteOptions struct {
	JobID          string // first path element; must be one valid key element
	ExecutionID    string
	DatasourceType string      // decides the file format (FormatFor)
	BackupType     string      // "" means "full"
	Compression    Compression // required: gzip, zstd, lz4 or none
	// PartSize is the largest part in bytes (a job's max_file_size_mb × MiB).
	// It must be positive.
	PartSize int64
	// Concurrency bounds the compressor's goroutines; 0 means GOMAXPROCS.
	Concurrency int
	// Encrypt, when set, encrypts the compressed stream with age before it
	// is split (see Encrypt); nil stores it in clear.
	Encrypt *Encrypt
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

func (o *WriteOptions) validate() (base string, err error) {
	bad := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	if o.JobID == "" || strings.Contains(o.JobID, "/") || strings.HasPrefix(o.JobID, "_") || storage.ValidateKey(o.JobID) != nil {
		return bad("job id %q: use a single folder name without slashes that does not start with \"_\" (a UUID)", o.JobID)
	}
	if o.PartSize <= 0 {
		return bad("part size %d: max_file_size_mb must be a positive number of MiB", o.PartSize)
	}
	if o.Concurrency < 0 {
		return bad("concurrency %d: use 0 for one goroutine per CPU or a positive number", o.Concurrency)
	}
	if o.BackupType == "" {
		o.BackupType = "full"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return BaseName(o.DatasourceType, o.Compression)
}

// Writer is the streaming backup pipeline: bytes written to it are
// compressed, split into parts of at most PartSize bytes, hashed (per part
// and whole) and sent to every destination as they are produced. Nothing is
// buffered beyond a few compressor blocks.
//
// Call Commit after the last Write to finish the backup, or Abort to discard
// it. A Writer is not safe for concurrent use.
type Writer struct {
	ctx       context.Context
	opts      WriteOptions
	base      string
	dir       string
	createdAt time.Time
	dests     []*dest
	comp      io.WriteCloser
	enc       io.WriteCloser // age, between the compressor and async; nil in clear
	encInfo   *Encryption
	async     *asyncWriter // compressor (or encryption) output → splitter, on its own goroutine
	total     int64
	split     splitter
	done      bool
}

type dest struct {
	Destination
	err      error // first failure; the destination is then left out
	reserved bool
	pw       *io.PipeWriter
	put      chan error   // result of the open part's Put
	pending  []pendingPut // closed parts whose Put may still be syncing
}

// NewWriter reserves a new run folder "{JobID}/{YYYY-MM-DD_HHmmss}" on every
// destination and returns a Writer into it. A folder that already exists on
// any destination is never reused: the next free second is taken instead.
// Destinations that fail are reported by Commit; NewWriter fails only when
// none is usable.
func NewWriter(ctx context.Context, dests []Destination, opts WriteOptions) (*Writer, error) {
	base, err := opts.validate()
	if err != nil {
		return nil, err
	}
	if len(dests) == 0 {
		return nil, fmt.Errorf("%w: no destination storage: give the job at least one storage location", ErrInvalidOptions)
	}
	w := &Writer{ctx: ctx, opts: opts, base: base, createdAt: opts.Now().UTC()}
	for _, d := range dests {
		w.dests = append(w.dests, &dest{Destination: d})
	}
	if err := w.reserve(ctx); err != nil {
		return nil, err
	}
	w.split = splitter{w: w, sums: newStreamHash()}
	w.async = newAsyncWriter(&w.split)
	var out io.Writer = w.async
	if opts.Encrypt != nil {
		if w.enc, w.encInfo, err = encryptTo(w.async, opts.Encrypt); err != nil {
			w.Abort()
			return nil, err
		}
		w.base += "." + AgeFormat
		out = w.enc
	}
	w.comp, err = NewCompressor(out, opts.Compression, opts.Concurrency)
	if err != nil {
		w.Abort()
		return nil, err
	}
	return w, nil
}

// Dir returns the run folder key, such as "job-id/2025-02-13_060001".
func (w *Writer) Dir() string { return w.dir }

func (w *Writer) reserve(ctx context.Context) error {
	t := w.createdAt.Truncate(time.Second)
	for range 3600 {
		dir := w.opts.JobID + "/" + RunFolder(t)
		taken := false
		for _, d := range w.live() {
			objs, err := d.Storage.List(ctx, dir+"/")
			if err != nil {
				d.fail(fmt.Errorf("list %s: %w", dir, err))
				continue
			}
			if len(objs) > 0 {
				taken = true
				break
			}
			err = d.Storage.Put(ctx, dir+"/"+ReservationName, strings.NewReader(w.opts.ExecutionID+"\n"), &storage.PutOptions{IfNotExist: true})
			if errors.Is(err, storage.ErrExist) {
				taken = true
				break
			}
			if err != nil {
				d.fail(fmt.Errorf("reserve run folder %s: %w", dir, err))
				continue
			}
			d.reserved = true
			// A run that held the folder and already finished (its
			// reservation gone) left its files: look again now that
			// the reservation is ours.
			if objs, err = d.Storage.List(ctx, dir+"/"); err != nil || len(objs) != 1 {
				taken = true
				break
			}
		}
		if err := ctx.Err(); err != nil {
			w.dir = dir
			w.Abort()
			return fmt.Errorf("reserve run folder: %w", err)
		}
		if !taken {
			w.dir = dir
			if len(w.live()) == 0 {
				return w.allFailed("reserve run folder " + dir)
			}
			return nil
		}
		w.dir = dir
		w.release(ctx)
		t = t.Add(time.Second)
	}
	return fmt.Errorf("reserve run folder for job %s: no free folder name in the next hour", w.opts.JobID)
}

// release removes the reservation of w.dir from every destination.
func (w *Writer) release(ctx context.Context) {
	for _, d := range w.dests {
		if d.reserved {
			_ = d.Storage.Delete(ctx, w.dir+"/"+ReservationName)
			d.reserved = false
		}
	}
}

func (w *Writer) live() []*dest {
	out := make([]*dest, 0, len(w.dests))
	for _, d := range w.dests {
		if d.err == nil {
			out = append(out, d)
		}
	}
	return out
}

func (d *dest) fail(err error) {
	if d.err == nil {
		d.err = fmt.Errorf("destination %s: %w", d.Name, err)
	}
	if d.pw != nil {
		d.pw.CloseWithError(err)
	}
}

func (w *Writer) allFailed(what string) error {
	errs := make([]error, 0, len(w.dests))
	for _, d := range w.dests {
		errs = append(errs, d.err)
	}
	return fmt.Errorf("%s: every destination failed: %w", what, errors.Join(errs...))
}

// Write compresses p into the backup.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("write backup: writer already committed or aborted")
	}
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.comp.Write(p)
	w.total += int64(n)
	return n, err
}

// Commit flushes the last part, gives every part its final name, writes
// the by-hand recovery aids (SHA256SUMS, RECOVERY.txt) and then
// manifest.json (last, atomically) on every destination still healthy. It
// returns the manifest and fails only when no destination holds the backup;
// Results tells which destinations did. md is stored as the manifest metadata.
func (w *Writer) Commit(md Metadata) (*Manifest, error) {
	if w.done {
		return nil, errors.New("commit backup: writer already committed or aborted")
	}
	if err := w.flush(); err != nil {
		w.Abort()
		return nil, err
	}
	w.done = true
	ctx := w.ctx
	names := make([]string, len(w.split.chunks))
	for i := range w.split.chunks {
		names[i] = w.base
		if len(names) > 1 {
			names[i] = PartName(w.base, i+1)
		}
		w.split.chunks[i].File = names[i]
	}
	for _, d := range w.live() {
		for i, name := range names {
			if err := storage.Rename(ctx, d.Storage, w.partialKey(i+1), w.dir+"/"+name); err != nil {
				d.fail(fmt.Errorf("name part %s: %w", name, err))
				break
			}
		}
	}
	m := w.manifest(md)
	data, err := m.Marshal()
	if err != nil {
		w.cleanup(names)
		return nil, err
	}
	for _, d := range w.live() {
		if err := WriteRecoveryFiles(ctx, d.Storage, w.dir, m); err != nil {
			d.fail(err)
		}
	}
	for _, d := range w.live() {
		if err := d.Storage.Put(ctx, w.dir+"/"+FileName, bytes.NewReader(data), &storage.PutOptions{IfNotExist: true}); err != nil {
			d.fail(fmt.Errorf("write manifest: %w", err))
		}
	}
	w.cleanup(names)
	if len(w.live()) == 0 {
		return nil, w.allFailed("commit backup " + w.dir)
	}
	return m, nil
}

func (w *Writer) flush() error {
	if err := w.ctx.Err(); err != nil {
		return fmt.Errorf("finish backup: %w", err)
	}
	if err := w.comp.Close(); err != nil {
		return fmt.Errorf("finish compression: %w", err)
	}
	if w.enc != nil {
		if err := w.enc.Close(); err != nil {
			return fmt.Errorf("finish encryption: %w", err)
		}
	}
	if err := w.async.Close(); err != nil {
		return err
	}
	if w.split.n == 0 { // an empty stream still has one (empty) part
		if err := w.split.startPart(); err != nil {
			return err
		}
	}
	if w.split.open { // else the stream ended exactly at a part boundary
		if err := w.split.finishPart(); err != nil {
			return err
		}
	}
	w.collect(true)
	if len(w.live()) == 0 {
		return w.allFailed("store parts")
	}
	return nil
}

// pendingPut is a part whose Put was handed all its bytes.
type pendingPut struct {
	n   int
	put chan error
}

// collect records the outcome of finished part uploads; with wait it
// waits for all of them.
func (w *Writer) collect(wait bool) {
	for _, d := range w.dests {
		kept := d.pending[:0]
		for _, p := range d.pending {
			var err error
			if wait {
				err = <-p.put
			} else {
				select {
				case err = <-p.put:
				default:
					kept = append(kept, p)
					continue
				}
			}
			if err != nil {
				d.fail(fmt.Errorf("store part %d: %w", p.n, err))
			}
		}
		d.pending = kept
	}
}

func (w *Writer) manifest(md Metadata) *Manifest {
	ratio := 0.0
	if w.total > 0 {
		ratio = math.Round(float64(w.split.compressed)/float64(w.total)*1e4) / 1e4
	}
	return &Manifest{
		Version:             Version,
		CreatedAt:           w.createdAt,
		ExecutionID:         w.opts.ExecutionID,
		JobID:               w.opts.JobID,
		DatasourceType:      w.opts.DatasourceType,
		BackupType:          w.opts.BackupType,
		Compression:         w.opts.Compression,
		Encryption:          w.encInfo,
		TotalSizeBytes:      w.total,
		CompressedSizeBytes: w.split.compressed,
		CompressionRatio:    ratio,
		Checksum:            w.split.sums.wholeSum(),
		Chunks:              w.split.chunks,
		Metadata:            md,
	}
}

// Abort discards the backup: it stops the uploads and removes what was
// written into the run folder, including the reservation. It is safe to call
// more than once and after a failed Commit.
func (w *Writer) Abort() {
	if w.dir == "" {
		return
	}
	w.done = true
	// Stop the pipeline from the top: the sink refuses further output, the
	// compressor's goroutines (which write into the sink) end, and the
	// splitter goroutine stops, all before the destinations are touched.
	if w.async != nil {
		w.async.stop(errors.New("backup aborted"))
	}
	if w.comp != nil {
		w.comp.Close()
	}
	if w.async != nil {
		w.async.Close()
	}
	for _, d := range w.dests {
		if d.pw != nil {
			d.pw.CloseWithError(errors.New("backup aborted"))
			d.pending = append(d.pending, pendingPut{n: w.split.n, put: d.put})
			d.pw = nil
		}
	}
	w.collect(true)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 30*time.Second)
	defer cancel()
	for _, d := range w.dests {
		if !d.reserved {
			continue
		}
		for n := 1; n <= w.split.n; n++ {
			_ = d.Storage.Delete(ctx, w.partialKey(n))
		}
	}
	w.release(ctx)
}

// cleanup removes the reservation everywhere and, on destinations that
// failed, everything this backup put there.
func (w *Writer) cleanup(names []string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 30*time.Second)
	defer cancel()
	for _, d := range w.dests {
		if d.err == nil || !d.reserved {
			continue
		}
		for i, name := range names {
			_ = d.Storage.Delete(ctx, w.partialKey(i+1))
			_ = d.Storage.Delete(ctx, w.dir+"/"+name)
		}
		_ = d.Storage.Delete(ctx, w.dir+"/"+SumsFileName)
		_ = d.Storage.Delete(ctx, w.dir+"/"+RecoveryFileName)
	}
	w.release(ctx)
}

// Results reports, per destination, whether the backup reached it.
func (w *Writer) Results() []DestinationResult {
	out := make([]DestinationResult, len(w.dests))
	for i, d := range w.dests {
		out[i] = DestinationResult{Name: d.Name, Err: d.err}
	}
	return out
}

// partialKey is where part n lives until Commit names it. The leading dot
// keeps it out of shell globs such as backup.dump.gz.part-*.
func (w *Writer) partialKey(n int) string {
	return fmt.Sprintf("%s/.incomplete-part-%03d", w.dir, n)
}

// splitter cuts the compressed stream into parts, hashes it and fans each
// part out to every live destination.
type splitter struct {
	w          *Writer
	n          int   // number of the open part, 0 before the first
	open       bool  // a part is being written
	size       int64 // bytes in the open part
	sums       *streamHash
	chunks     []Chunk
	compressed int64
}

func (s *splitter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if !s.open {
			if err := s.startPart(); err != nil {
				return written, err
			}
		}
		chunk := p[:min(int64(len(p)), s.w.opts.PartSize-s.size)]
		if err := s.fanOut(chunk); err != nil {
			return written, err
		}
		s.sums.Write(chunk)
		s.size += int64(len(chunk))
		s.compressed += int64(len(chunk))
		written += len(chunk)
		p = p[len(chunk):]
		if s.size == s.w.opts.PartSize {
			if err := s.finishPart(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

func (s *splitter) startPart() error {
	s.n++
	s.open = true
	s.size = 0
	s.sums.startPart()
	key := s.w.partialKey(s.n)
	for _, d := range s.w.live() {
		pr, pw := io.Pipe()
		d.pw, d.put = pw, make(chan error, 1)
		go func(st storage.Storage, put chan<- error) {
			err := st.Put(s.w.ctx, key, pr, nil)
			if err != nil {
				pr.CloseWithError(err)
			} else {
				pr.CloseWithError(errors.New("storage finished the part before reading all of it"))
			}
			put <- err
		}(d.Storage, d.put)
	}
	return nil
}

func (s *splitter) fanOut(p []byte) error {
	live := s.w.live()
	if len(live) == 1 {
		if _, err := live[0].pw.Write(p); err != nil {
			live[0].fail(fmt.Errorf("write part %d: %w", s.n, err))
		}
	} else {
		var wg sync.WaitGroup
		errs := make([]error, len(live))
		for i, d := range live {
			wg.Go(func() { _, errs[i] = d.pw.Write(p) })
		}
		wg.Wait()
		for i, d := range live {
			if errs[i] != nil {
				d.fail(fmt.Errorf("write part %d: %w", s.n, errs[i]))
			}
		}
	}
	if len(s.w.live()) == 0 {
		return s.w.allFailed(fmt.Sprintf("write part %d", s.n))
	}
	return nil
}

func (s *splitter) finishPart() error {
	for _, d := range s.w.dests {
		if d.pw == nil {
			continue
		}
		// The Put finishes (fsync, rename) while the next part streams.
		d.pw.Close()
		d.pending = append(d.pending, pendingPut{n: s.n, put: d.put})
		d.pw = nil
	}
	s.w.collect(false)
	s.open = false
	s.chunks = append(s.chunks, Chunk{Number: s.n, Checksum: s.sums.partSum(), SizeBytes: s.size})
	if len(s.w.live()) == 0 {
		return s.w.allFailed(fmt.Sprintf("store part %d", s.n))
	}
	return nil
}
