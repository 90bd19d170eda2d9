package manifest

import (
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

const (
	// frameSize is how much input one frame holds: large enough that
	// cutting the stream costs little ratio (zstd's window is 4 MiB
	// anyway), small enough that the frames in flight stay a few tens of
	// MiB.
	frameSize = 4 << 20
	// maxFrameWorkers bounds the frames in flight whatever the number of
	// CPUs: at most that many inputs and outputs of frameSize each.
	maxFrameWorkers = 8
)

// frameFunc appends to dst one complete, independent frame holding src.
// It is called from several goroutines at once.
type frameFunc func(dst, src []byte) ([]byte, error)

// frameWriter compresses a stream as a sequence of independent frames, up
// to workers of them at once, and writes them to w in order. A sequence of
// frames is itself a valid stream for zstd and lz4 (their command-line
// tools and readers decode the concatenation), so the output recovers with
// standard tools. Memory is bounded by the frames in flight (being
// compressed or waiting for their turn to be written): at most workers
// (up to maxFrameWorkers) of them, plus the frame being filled.
type frameWriter struct {
	w       io.Writer
	compose frameFunc
	cur     []byte          // the frame being filled
	order   chan chan frame // frames in input order, each delivered when compressed
	sem     chan struct{}   // one token per frame in flight, until it is written
	done    chan struct{}   // closed when the writer goroutine ended
	inputs  sync.Pool       // *[]byte of frameSize capacity
	outputs sync.Pool       // *[]byte
	mu      sync.Mutex
	err     error // first error of a frame or of w
	written bool  // a frame was started (an empty stream still gets one)
	closed  bool
}

type frame struct {
	in, out *[]byte
	err     error
}

func newFrameWriter(w io.Writer, workers int, compose frameFunc) *frameWriter {
	workers = min(max(workers, 1), maxFrameWorkers)
	f := &frameWriter{
		w:       w,
		compose: compose,
		order:   make(chan chan frame, workers),
		sem:     make(chan struct{}, workers),
		done:    make(chan struct{}),
	}
	f.cur = f.input()[:0]
	go f.run()
	return f
}

func (f *frameWriter) input() []byte {
	if p, ok := f.inputs.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, frameSize)
}

// run writes the compressed frames in order.
func (f *frameWriter) run() {
	defer close(f.done)
	for next := range f.order {
		fr := <-next
		if err := f.failed(); err == nil {
			if fr.err != nil {
				f.fail(fr.err)
			} else if _, err := f.w.Write(*fr.out); err != nil {
				f.fail(err)
			}
		}
		f.outputs.Put(fr.out)
		<-f.sem
	}
}

func (f *frameWriter) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *frameWriter) failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Write buffers p into frames, handing every full one to a worker.
func (f *frameWriter) Write(p []byte) (int, error) {
	if f.closed {
		return 0, errors.New("write to a closed compressor")
	}
	n := len(p)
	for len(p) > 0 {
		if err := f.failed(); err != nil {
			return n - len(p), err
		}
		k := min(len(p), frameSize-len(f.cur))
		f.cur = append(f.cur, p[:k]...)
		p = p[k:]
		if len(f.cur) == frameSize {
			f.flush()
		}
	}
	return n, nil
}

// flush hands the current frame to a worker, waiting while workers frames
// are in flight.
func (f *frameWriter) flush() {
	f.sem <- struct{}{}
	in := f.cur
	f.cur = f.input()
	f.written = true
	next := make(chan frame, 1)
	f.order <- next
	go func() {
		out, _ := f.outputs.Get().(*[]byte)
		if out == nil {
			out = new([]byte)
		}
		b, err := f.compose((*out)[:0], in)
		*out = b
		f.inputs.Put(&in)
		next <- frame{out: out, err: err}
	}()
}

// Close compresses what is buffered, waits for every frame to be written
// and reports the first error. It does not close w.
func (f *frameWriter) Close() error {
	if f.closed {
		return f.failed()
	}
	f.closed = true
	if len(f.cur) > 0 || !f.written {
		f.flush()
	}
	close(f.order)
	<-f.done
	return f.failed()
}

// zstdFrames compresses with zstd, one frame per frameSize of input,
// several at once: the zstd stream encoder compresses one block after
// another whatever its concurrency.
//
// Each frame gets the level that suits it (see zstdLevel): the fastest on
// data that compresses about 2:1 or worse, the default on text that
// compresses far better.
func zstdFrames(w io.Writer, workers int) (io.WriteCloser, error) {
	var encs [2]*zstd.Encoder
	for i, level := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault} {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(workers), zstd.WithEncoderLevel(level),
			zstd.WithWindowSize(frameSize), zstd.WithEncoderCRC(true))
		if err != nil {
			return nil, err
		}
		encs[i] = enc
	}
	fastest, def := encs[0], encs[1]
	return &closeAlso{newFrameWriter(w, workers, func(dst, src []byte) ([]byte, error) {
		return zstdLevel(fastest, def, dst, src).EncodeAll(src, dst), nil
	}), func() error { fastest.Close(); return def.Close() }}, nil
}

const (
	// zstdSample is how much of a frame zstdLevel compresses to choose
	// its level: 1/64 of it, about 1% of its compression time.
	zstdSample = 64 << 10
	// zstdTextRatio is the sample ratio under which a frame is compressed
	// at the default level.
	zstdTextRatio = 0.3
)

// zstdLevel returns the encoder for src: the default level when a sample
// of it compresses better than zstdTextRatio with the fastest, else the
// fastest. Measured on 4 MiB frames, one goroutine: on the dumps of the
// realistic tables of bench/ (hex digits of random bytes beside text and
// numbers, about 2.5:1) the fastest level is both quicker and smaller than
// the default (mariadb-dump: 304 against 163 MB/s, ratio 0.380 against
// 0.392; pg_dump -Fc -Z0: 300 against 157 MB/s, 0.382 against 0.402),
// while on repetitive SQL text (internal/sqltext) the default is 6%
// smaller (0.187 against 0.198) for 20% less speed, and on pgbench's 100:1
// about as fast and 6% smaller. dst is only scratch space here.
func zstdLevel(fastest, def *zstd.Encoder, dst, src []byte) *zstd.Encoder {
	if len(src) < 2*zstdSample {
		return def
	}
	sample := fastest.EncodeAll(src[:zstdSample], dst[:0])
	if float64(len(sample)) < zstdTextRatio*zstdSample {
		return def
	}
	return fastest
}

// lz4Frames compresses with lz4 as the lz4 tool does by default (see
// appendLZ4Frame), one frame per frameSize of input, several at once.
func lz4Frames(w io.Writer, workers int) (io.WriteCloser, error) {
	return newFrameWriter(w, workers, func(dst, src []byte) ([]byte, error) {
		return appendLZ4Frame(dst, src), nil
	}), nil
}

// closeAlso is a WriteCloser whose Close also runs release.
type closeAlso struct {
	io.WriteCloser
	release func() error
}

func (c *closeAlso) Close() error {
	return errors.Join(c.WriteCloser.Close(), c.release())
}
