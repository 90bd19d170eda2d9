package manifest

import (
	"errors"
	"io"
	"sync/atomic"
)

// asyncWriter decouples the compressor from hashing and storage writes: it
// copies what it is given into a few fixed buffers that one goroutine hands
// to dst, so compression and the sink overlap. Memory is bounded by
// buffers × size whatever the stream length.
type asyncWriter struct {
	dst    io.Writer
	full   chan []byte
	free   chan []byte
	cur    []byte
	done   chan struct{}
	err    atomic.Pointer[error] // first error of dst
	closed bool
}

const (
	asyncBuffers    = 4
	asyncBufferSize = 1 << 20
)

func newAsyncWriter(dst io.Writer) *asyncWriter {
	a := &asyncWriter{
		dst:  dst,
		full: make(chan []byte, asyncBuffers),
		free: make(chan []byte, asyncBuffers),
		done: make(chan struct{}),
	}
	for range asyncBuffers - 1 {
		a.free <- make([]byte, 0, asyncBufferSize)
	}
	a.cur = make([]byte, 0, asyncBufferSize)
	go a.run()
	return a
}

func (a *asyncWriter) run() {
	defer close(a.done)
	for b := range a.full {
		if a.err.Load() == nil {
			if _, err := a.dst.Write(b); err != nil {
				a.err.Store(&err)
			}
		}
		a.free <- b[:0]
	}
}

func (a *asyncWriter) failed() error {
	if p := a.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Write copies p into the buffers, handing each full one to the goroutine.
// It returns the sink's first error once there is one.
func (a *asyncWriter) Write(p []byte) (int, error) {
	if a.closed {
		return 0, errors.New("write after close")
	}
	written := 0
	for len(p) > 0 {
		if err := a.failed(); err != nil {
			return written, err
		}
		n := copy(a.cur[len(a.cur):cap(a.cur)], p)
		a.cur = a.cur[:len(a.cur)+n]
		p, written = p[n:], written+n
		if len(a.cur) == cap(a.cur) {
			a.full <- a.cur
			a.cur = <-a.free
		}
	}
	return written, nil
}

// Close hands over the last buffer, waits until the sink has written
// everything and returns its first error. It is safe to call twice.
func (a *asyncWriter) Close() error {
	if !a.closed {
		a.closed = true
		if len(a.cur) > 0 {
			a.full <- a.cur
		}
		close(a.full)
		<-a.done
	}
	return a.failed()
}

// stop makes the sink refuse further writes and skip what is queued; the
// sink's own earlier error, if any, is kept. It may be called while another
// goroutine writes; Close must still be called once writers are done.
func (a *asyncWriter) stop(err error) {
	a.err.CompareAndSwap(nil, &err)
}
