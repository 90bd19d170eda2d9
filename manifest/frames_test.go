package manifest

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/dataguardian/dataguardian/internal/sqltext"
	"github.com/klauspost/compress/zstd"
)

// Streams of every awkward length compress into frames that our readers
// and the command-line tools decompress back byte for byte.
func TestFramesRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []Compression{Zstd, LZ4} {
		for _, n := range []int{0, 1, frameSize - 1, frameSize, frameSize + 1, 3*frameSize + 7} {
			// Compressible, not trivially (about 2:1, zstd's fastest
			// level), then SQL text (10:1, its default level).
			data := make([]byte, n/2, n)
			for i := range data {
				data[i] = "abcdefgh0123"[rng.IntN(12)]
			}
			data = append(data, sqltext.Block(uint64(n), n-len(data))...)
			var out bytes.Buffer
			zw, err := NewCompressor(&out, c, 3)
			if err != nil {
				t.Fatal(err)
			}
			for p := data; len(p) > 0; { // odd write sizes
				k := min(len(p), 1+rng.IntN(1<<20))
				if _, err := zw.Write(p[:k]); err != nil {
					t.Fatal(err)
				}
				p = p[k:]
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			zr, err := NewDecompressor(bytes.NewReader(out.Bytes()), c)
			if err != nil {
				t.Fatalf("%s %d: %v", c, n, err)
			}
			got, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s, %d bytes: read back %d bytes, %v", c, n, len(got), err)
			}
			tool := map[Compression][]string{Zstd: {"zstd", "-dc"}, LZ4: {"lz4", "-dc"}}[c]
			if _, err := exec.LookPath(tool[0]); err != nil {
				continue // .ci/run installs both; a developer machine may lack them
			}
			cmd := exec.Command(tool[0], tool[1:]...)
			cmd.Stdin = bytes.NewReader(out.Bytes())
			got, err = cmd.Output()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s -dc of %d bytes: %d bytes back, %v", tool[0], n, len(got), err)
			}
		}
	}
}

// Each zstd frame gets its level from a sample: the fastest for data that
// compresses about 2:1, the default for text that compresses far better,
// and the default for a frame too short to sample.
func TestZstdLevel(t *testing.T) {
	fastest, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	def, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	defer fastest.Close()
	defer def.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	hex := make([]byte, frameSize)
	for i := range hex {
		hex[i] = "0123456789abcdef"[rng.IntN(16)]
	}
	for name, c := range map[string]struct {
		src  []byte
		want *zstd.Encoder
	}{
		"hex digits":  {hex, fastest},
		"SQL text":    {sqltext.Block(1, frameSize), def},
		"zeros":       {make([]byte, frameSize), def},
		"short frame": {hex[:2*zstdSample-1], def},
	} {
		if got := zstdLevel(fastest, def, nil, c.src); got != c.want {
			t.Errorf("%s: got the %s encoder", name, map[bool]string{true: "fastest", false: "default"}[got == fastest])
		}
	}
}

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errors.New("disk full")
	}
	w.after--
	return len(p), nil
}

// A failing destination stops the compressor: the error comes back from
// Write or Close, never swallowed.
func TestFramesWriteError(t *testing.T) {
	for _, c := range []Compression{Zstd, LZ4} {
		zw, err := NewCompressor(&failingWriter{after: 1}, c, 2)
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("0123456789"), frameSize/2)
		var werr error
		for range 5 {
			if _, werr = zw.Write(data); werr != nil {
				break
			}
		}
		cerr := zw.Close()
		if werr == nil && cerr == nil {
			t.Fatalf("%s: a destination failing after one frame went unnoticed", c)
		}
	}
}
