// Package sqltext generates deterministic SQL-dump-like text for tests and
// benchmarks: INSERT statements with ids, names, cities, prices and
// timestamps, which compress like a real logical dump rather than like
// random bytes.
package sqltext

import (
	"fmt"
	"io"
	"math/rand/v2"
)

var (
	cities = []string{"São Paulo", "Rio de Janeiro", "Belo Horizonte", "Curitiba", "Porto Alegre", "Recife", "Salvador", "Fortaleza"}
	status = []string{"pending", "paid", "shipped", "delivered", "cancelled"}
)

// Block returns about size bytes of SQL text generated from seed.
func Block(seed uint64, size int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	buf := make([]byte, 0, size+256)
	buf = append(buf, "CREATE TABLE orders (id bigint PRIMARY KEY, customer text, city text, total numeric(10,2), status text, created_at timestamptz);\n"...)
	for id := 1; len(buf) < size; id++ {
		buf = fmt.Appendf(buf, "INSERT INTO orders VALUES (%d, 'customer_%d', '%s', %d.%02d, '%s', '2025-%02d-%02d %02d:%02d:%02d+00');\n",
			id, r.IntN(100000), cities[r.IntN(len(cities))], r.IntN(5000), r.IntN(100), status[r.IntN(len(status))],
			1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60))
	}
	return buf[:size]
}

// Reader returns a reader of exactly n bytes of SQL text made by repeating a
// 16 MiB block generated from seed (smaller n uses a smaller block).
func Reader(seed uint64, n int64) io.Reader {
	return Repeat(Block(seed, int(min(n, 16<<20))), n)
}

// Repeat returns a reader of exactly n bytes made by repeating block, so a
// benchmark can generate the text once and stream it many times.
func Repeat(block []byte, n int64) io.Reader {
	return &reader{block: block, left: n}
}

type reader struct {
	block []byte
	off   int
	left  int64
}

func (r *reader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := copy(p, r.block[r.off:])
	r.off = (r.off + n) % len(r.block)
	r.left -= int64(n)
	return n, nil
}

// WriteTo writes the remaining bytes to w in writes of at most 1 MiB, as a
// dump tool's pipe would deliver them.
func (r *reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for r.left > 0 {
		p := r.block[r.off:]
		p = p[:min(int64(len(p)), r.left, 1<<20)]
		n, err := w.Write(p)
		total += int64(n)
		r.off = (r.off + n) % len(r.block)
		r.left -= int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
