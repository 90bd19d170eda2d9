package manifest

import (
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/pierrec/lz4/v4"
)

// Compression names a compression algorithm as written in manifest.json.
type Compression string

// The supported compressions.
const (
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
	LZ4  Compression = "lz4"
	None Compression = "none"
)

// ErrUnknownCompression reports a compression name DataGuardian does not know.
var ErrUnknownCompression = errors.New("unknown compression")

// ParseCompression parses a compression name. It accepts the manifest names
// and the file extensions ("gz", "zst"); "" means none.
func ParseCompression(s string) (Compression, error) {
	switch s {
	case "gzip", "gz":
		return Gzip, nil
	case "zstd", "zst":
		return Zstd, nil
	case "lz4":
		return LZ4, nil
	case "none", "":
		return None, nil
	}
	return "", fmt.Errorf("%w %q: use gzip, zstd, lz4 or none", ErrUnknownCompression, s)
}

func (c Compression) validate() error {
	_, err := ParseCompression(string(c))
	if err == nil && c != "" {
		return nil
	}
	if c == "" {
		return fmt.Errorf("%w \"\": set gzip, zstd, lz4 or none", ErrUnknownCompression)
	}
	return err
}

// Extension returns the file extension without the dot: "gz", "zst", "lz4",
// or "" for none.
func (c Compression) Extension() string {
	switch c {
	case Gzip:
		return "gz"
	case Zstd:
		return "zst"
	case LZ4:
		return "lz4"
	}
	return ""
}

// NewCompressor returns a writer that compresses into w with c, using up to
// concurrency goroutines (0 means GOMAXPROCS). Close flushes the stream but
// does not close w. gzip (pgzip) compresses blocks in parallel into one
// member; zstd and lz4 compress 4 MiB frames in parallel and write them in
// order: concatenated frames, which zstd -d, lz4 -d and the readers of
// NewDecompressor read as one stream.
func NewCompressor(w io.Writer, c Compression, concurrency int) (io.WriteCloser, error) {
	if concurrency <= 0 {
		concurrency = runtime.GOMAXPROCS(0)
	}
	switch c {
	case Gzip:
		zw := pgzip.NewWriter(w)
		if err := zw.SetConcurrency(1<<20, concurrency); err != nil {
			return nil, fmt.Errorf("configure gzip: %w", err)
		}
		return zw, nil
	case Zstd:
		return zstdFrames(w, concurrency)
	case LZ4:
		return lz4Frames(w, concurrency)
	case None:
		return nopWriteCloser{w}, nil
	}
	return nil, c.validate()
}

// NewDecompressor returns a reader of the data r holds compressed with c.
// Close releases the decompressor but does not close r.
func NewDecompressor(r io.Reader, c Compression) (io.ReadCloser, error) {
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("read gzip header: %w", err)
		}
		return zr, nil
	case Zstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, fmt.Errorf("open zstd stream: %w", err)
		}
		return zstdReadCloser{zr}, nil
	case LZ4:
		return io.NopCloser(lz4.NewReader(r)), nil
	case None:
		return io.NopCloser(r), nil
	}
	return nil, c.validate()
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

type zstdReadCloser struct{ *zstd.Decoder }

func (z zstdReadCloser) Close() error { z.Decoder.Close(); return nil }
