// Command pipemem pushes a large SQL-like stream through the backup pipeline
// into local storage (and any -also destination: S3, SFTP) and reads it
// back from local storage, so bench/pipeline-memory.sh can show that
// memory stays flat whatever the stream size.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/dataguardian/dataguardian/defaults"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/internal/sqltext"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage/local"
)

func main() {
	size := flag.Int64("size-mb", 2048, "MiB of SQL text to back up")
	comp := flag.String("compression", "zstd", "gzip, zstd, lz4 or none")
	part := flag.Int64("part-mb", 256, "max_file_size_mb")
	dir := flag.String("storage", "", "storage root (default: a temporary directory, removed afterwards)")
	var also []string
	flag.Func("also", `another destination, as a storage location in JSON: {"type":"s3","config":{...}} (repeatable)`, func(v string) error {
		also = append(also, v)
		return nil
	})
	heapProfile := flag.String("heapprofile", "", "write a heap profile (in use) to this file, taken -heapprofile-after into the backup")
	heapAfter := flag.Duration("heapprofile-after", 2*time.Second, "when to take -heapprofile")
	flag.Parse()
	if *heapProfile != "" {
		time.AfterFunc(*heapAfter, func() {
			f, err := os.Create(*heapProfile)
			if err != nil {
				log.Fatal(err)
			}
			runtime.GC()
			if err := pprof.WriteHeapProfile(f); err != nil {
				log.Fatal(err)
			}
			f.Close()
		})
	}
	c, err := manifest.ParseCompression(*comp)
	if err != nil {
		log.Fatal(err)
	}
	root := *dir
	if root == "" {
		if root, err = os.MkdirTemp("", "pipemem-"); err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(root)
	}
	s, err := local.New(root)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	dests := []manifest.Destination{{Name: "disk", Storage: s}}
	for _, a := range also {
		var loc store.StorageLocation
		if err := json.Unmarshal([]byte(a), &loc); err != nil {
			log.Fatalf("-also %s: %v", a, err)
		}
		loc.Name = loc.Type
		open := defaults.StorageOpeners()[loc.Type]
		if open == nil {
			log.Fatalf("-also: unknown type %q", loc.Type)
		}
		st, err := open(ctx, &loc)
		if err != nil {
			log.Fatal(err)
		}
		dests = append(dests, manifest.Destination{Name: loc.Type, Storage: st})
	}
	n := *size << 20
	start := time.Now()
	res, err := manifest.Write(ctx, dests,
		manifest.WriteOptions{JobID: "pipemem", DatasourceType: "mysql", Compression: c, PartSize: *part << 20},
		func(ctx context.Context, w io.Writer) (manifest.Metadata, error) {
			_, err := io.Copy(w, sqltext.Reader(7, n))
			return manifest.Metadata{}, err
		})
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range res.Destinations {
		if d.Err != nil {
			log.Fatalf("%s: %v", d.Name, d.Err)
		}
	}
	backup := time.Since(start)
	start = time.Now()
	var read int64
	if _, err := manifest.Read(ctx, s, res.Dir, func(_ context.Context, r io.Reader) error {
		read, err = io.Copy(io.Discard, r)
		return err
	}); err != nil {
		log.Fatal(err)
	}
	if read != n {
		log.Fatalf("read back %d bytes, wrote %d", read, n)
	}
	fmt.Printf("backup: %d MiB %s in %d parts, ratio %.3f, %.0f MB/s; verify+restore read: %.0f MB/s\n",
		*size, c, len(res.Manifest.Chunks), res.Manifest.CompressionRatio,
		float64(n)/1e6/backup.Seconds(), float64(n)/1e6/time.Since(start).Seconds())
}
