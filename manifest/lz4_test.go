package manifest

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/dataguardian/dataguardian/internal/sqltext"
	"github.com/pierrec/lz4/v4"
)

func TestXXH32(t *testing.T) {
	// Reference values of XXH32 with seed 0.
	for in, want := range map[string]uint32{
		"":    0x02CC5D05,
		"a":   0x550D7456,
		"abc": 0x32D153FF,
		"Nobody inspects the spammish repetition": 0xE2293B2F,
	} {
		if got := xxh32([]byte(in)); got != want {
			t.Errorf("xxh32(%q) = %#08x, want %#08x", in, got, want)
		}
	}
}

// lz4Inputs are data of every kind a block compressor can trip on: empty,
// shorter than a match can be, long runs, offsets of 1 to 8, random
// (incompressible), text, and lengths around the 4 MiB block.
func lz4Inputs() map[string][]byte {
	rng := rand.New(rand.NewPCG(3, 4))
	random := func(n int, alphabet string) []byte {
		b := make([]byte, n)
		for i := range b {
			if alphabet == "" {
				b[i] = byte(rng.Uint32())
			} else {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		return b
	}
	in := map[string][]byte{
		"empty":     {},
		"one":       {'x'},
		"twelve":    []byte("abcdabcdabcd"),
		"thirteen":  []byte("abcdabcdabcda"),
		"zeros":     make([]byte, 1<<20),
		"random":    random(1<<20, ""),
		"hex":       random(1<<20, "0123456789abcdef"),
		"sql":       sqltext.Block(5, 3<<20),
		"block":     sqltext.Block(6, lz4MaxBlock),
		"block+1":   sqltext.Block(7, lz4MaxBlock+1),
		"randomblk": random(lz4MaxBlock, ""),
		"longrun":   bytes.Repeat([]byte{7}, 70000),
		"longlit":   append(random(100000, ""), bytes.Repeat([]byte("ab"), 5000)...),
		"farmatch":  append(append(random(70000, ""), random(10, "")...), random(70000, "")...),
	}
	for off := 1; off <= 9; off++ {
		in["period"+string(rune('0'+off))] = bytes.Repeat(random(off, ""), 3000/off+20)
	}
	for n := range 40 { // every short length
		in["short"+string(rune('A'+n))] = random(n, "ab")
	}
	return in
}

// Every frame decodes back with pierrec/lz4's reader (which checks the
// header and content checksums) and, where installed, with lz4 -d.
func TestLZ4FrameRoundTrip(t *testing.T) {
	_, errTool := exec.LookPath("lz4")
	for name, data := range lz4Inputs() {
		frame := appendLZ4Frame([]byte("junk before"), data)[len("junk before"):]
		got, err := io.ReadAll(lz4.NewReader(bytes.NewReader(frame)))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s (%d bytes): read back %d bytes, %v", name, len(data), len(got), err)
		}
		if len(data) > 1000 && len(frame) > lz4CompressBound(len(data))+len(lz4Header)+16 {
			t.Errorf("%s: %d bytes in a frame of %d", name, len(data), len(frame))
		}
		if errTool != nil {
			continue
		}
		cmd := exec.Command("lz4", "-dc")
		cmd.Stdin = bytes.NewReader(frame)
		got, err = cmd.Output()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("lz4 -dc of %s (%d bytes): %d bytes back, %v", name, len(data), len(got), err)
		}
	}
}

// The blocks alone decode with pierrec/lz4's block decoder.
func FuzzLZ4Block(f *testing.F) {
	for _, data := range lz4Inputs() {
		if len(data) < 1<<16 {
			f.Add(data)
		}
	}
	var table lz4Table
	f.Fuzz(func(t *testing.T, data []byte) {
		block := lz4CompressBlock(nil, data, &table)
		got := make([]byte, len(data)+1)
		n, err := lz4.UncompressBlock(block, got)
		if err != nil || !bytes.Equal(got[:n], data) {
			t.Fatalf("%d bytes: %d back, %v", len(data), n, err)
		}
	})
}

// BenchmarkLZ4Block compresses 4 MiB blocks of SQL text and of the
// realistic dump's hex-heavy rows, ours against pierrec/lz4's.
func BenchmarkLZ4Block(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	var rows bytes.Buffer
	for rows.Len() < lz4MaxBlock {
		rows.WriteString("(1135,'2024-01-01 02:12:25','acct-1135','")
		for range 96 {
			rows.WriteByte("0123456789abcdef"[rng.IntN(16)])
		}
		rows.WriteString("',8053.46,'failed',NULL),\n")
	}
	for name, data := range map[string][]byte{"sql": sqltext.Block(1, lz4MaxBlock), "rows": rows.Bytes()[:lz4MaxBlock]} {
		b.Run(name+"/ours", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			var t lz4Table
			dst := make([]byte, 0, lz4CompressBound(len(data)))
			var n int
			for b.Loop() {
				n = len(lz4CompressBlock(dst, data, &t))
			}
			b.ReportMetric(float64(n)/float64(len(data)), "ratio")
		})
		b.Run(name+"/pierrec", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			var c lz4.Compressor
			dst := make([]byte, lz4CompressBound(len(data)))
			var n int
			for b.Loop() {
				n, _ = c.CompressBlock(data, dst)
			}
			b.ReportMetric(float64(n)/float64(len(data)), "ratio")
		})
	}
}
