package local

import "os"

// writebackChunk is how much Put writes before it asks the kernel to start
// writing it to disk.
const writebackChunk = 8 << 20

// writebackWriter writes to a new file and, every writebackChunk bytes,
// starts the writeback of what it wrote (where the system can: see
// startWriteback), without waiting for it. The disk then works while the
// backup streams, instead of all at once in the fsync that ends the Put:
// the kernel would otherwise keep up to gigabytes dirty (vm.dirty_ratio)
// and start writing them only at that fsync, which then takes seconds for
// a large part. The fsync is still what makes the part durable.
type writebackWriter struct {
	f       *os.File
	off     int64 // bytes written
	started int64 // bytes whose writeback was started
}

func (w *writebackWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.started >= writebackChunk {
		startWriteback(w.f, w.started, w.off-w.started)
		w.started = w.off
	}
	return n, err
}
