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

// zstdFrames compresses with zstd at the default level, one frame per
// frameSize of input, several at once: the zstd stream encoder compresses
// one block after another whatever its concurrency.
func zstdFrames(w io.Writer, workers int) (io.WriteCloser, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(workers), zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithWindowSize(frameSize), zstd.WithEncoderCRC(true))
	if err != nil {
		return nil, err
	}
	return &closeAlso{newFrameWriter(w, workers, func(dst, src []byte) ([]byte, error) {
		return enc.EncodeAll(src, dst), nil
	}), enc.Close}, nil
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
