package manifest_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"

	"github.com/dataguardian/dataguardian/internal/sqltext"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage"
)

const benchSize = 256 << 20

// benchBlock is generated once, on first use, and streamed repeatedly.
var benchBlock = sync.OnceValue(func() []byte { return sqltext.Block(1, 16<<20) })

// cpuPerOp reports, when called after b.Loop, the process's CPU time
// (user and system, every goroutine) per operation as cpu-s/op: on a
// shared machine the wall time per operation measures the neighbours as
// much as the code, the CPU time much less so.
func cpuPerOp(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric((cpuTime()-start).Seconds()/float64(b.N), "cpu-s/op") }
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkCompressor measures the bare compressor on 256 MiB of SQL text:
// the ceiling the pipeline is compared with.
func BenchmarkCompressor(b *testing.B) {
	for _, c := range compressions {
		b.Run(string(c), func(b *testing.B) {
			b.SetBytes(benchSize)
			b.ReportAllocs()
			var out countWriter
			defer cpuPerOp(b)()
			for b.Loop() {
				out.n = 0
				zw, err := manifest.NewCompressor(&out, c, 0)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(zw, sqltext.Repeat(benchBlock(), benchSize)); err != nil {
					b.Fatal(err)
				}
				if err := zw.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out.n)/benchSize, "ratio")
		})
	}
}

// BenchmarkPipeline measures the whole backup pipeline (compress, split into
// 64 MiB parts, sha256 per part and whole, local atomic writes, manifest) on
// the same 256 MiB of SQL text.
func BenchmarkPipeline(b *testing.B) {
	for _, c := range compressions {
		b.Run(string(c), func(b *testing.B) {
			s, _ := newLocal(b)
			b.SetBytes(benchSize)
			b.ReportAllocs()
			var ratio float64
			defer cpuPerOp(b)()
			for b.Loop() {
				res, err := manifest.Write(context.Background(), []manifest.Destination{{Name: "disk", Storage: s}},
					manifest.WriteOptions{JobID: "bench", DatasourceType: "mysql", Compression: c, PartSize: 64 << 20},
					func(ctx context.Context, w io.Writer) (manifest.Metadata, error) {
						_, err := io.Copy(w, sqltext.Repeat(benchBlock(), benchSize))
						return manifest.Metadata{}, err
					})
				if err != nil {
					b.Fatal(err)
				}
				ratio = res.Manifest.CompressionRatio
			}
			b.ReportMetric(ratio, "ratio")
		})
	}
}

// discard is a storage that reads and drops everything: with it the
// pipeline benchmark measures DataGuardian's own work (compress, split,
// hash, fan out) without the cost of durable disk writes.
// discard is a storage that drops every byte but remembers which keys
// exist, as the run folder reservation checks.
type discard struct {
	mu   sync.Mutex
	keys map[string]bool
}

func (d *discard) Put(_ context.Context, key string, r io.Reader, _ *storage.PutOptions) error {
	_, err := io.Copy(io.Discard, r)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.keys == nil {
		d.keys = map[string]bool{}
	}
	d.keys[key] = true
	return err
}
func (*discard) Open(context.Context, string, int64, int64) (io.ReadCloser, error) {
	return nil, storage.ErrNotFound
}
func (*discard) Stat(context.Context, string) (storage.Object, error) {
	return storage.Object{}, storage.ErrNotFound
}
func (d *discard) List(_ context.Context, prefix string) ([]storage.Object, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []storage.Object
	for k := range d.keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, storage.Object{Key: k})
		}
	}
	return out, nil
}
func (d *discard) Delete(_ context.Context, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.keys, key)
	return nil
}
func (d *discard) Rename(_ context.Context, from, to string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.keys, from)
	d.keys[to] = true
	return nil
}

// BenchmarkPipelineNoDisk is BenchmarkPipeline into a storage that drops
// the bytes: the pipeline's overhead over the bare compressor, disk
// excluded; "+age" cases encrypt too (age, one X25519 recipient).
func BenchmarkPipelineNoDisk(b *testing.B) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range compressions {
		for _, enc := range []*manifest.Encrypt{nil, {Recipients: []string{id.Recipient().String()}}} {
			name := string(c)
			if enc != nil {
				name += "+age"
			}
			b.Run(name, func(b *testing.B) { benchNoDisk(b, c, enc) })
		}
	}
}

func benchNoDisk(b *testing.B, c manifest.Compression, enc *manifest.Encrypt) {
	b.SetBytes(benchSize)
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for b.Loop() {
		_, err := manifest.Write(context.Background(), []manifest.Destination{{Name: "null", Storage: &discard{}}},
			manifest.WriteOptions{JobID: "bench", DatasourceType: "mysql", Compression: c, PartSize: 64 << 20, Encrypt: enc},
			func(ctx context.Context, w io.Writer) (manifest.Metadata, error) {
				_, err := io.Copy(w, sqltext.Repeat(benchBlock(), benchSize))
				return manifest.Metadata{}, err
			})
		if err != nil {
			b.Fatal(err)
		}
	}
}
