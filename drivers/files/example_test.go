package files_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/files"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage/local"
)

// Back up a directory as a tar archive and restore it somewhere else.
func Example() {
	dir, err := os.MkdirTemp("", "files-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	site := filepath.Join(dir, "site")
	if err := os.MkdirAll(filepath.Join(site, "css"), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(site, "css", "main.css"), []byte("body{}"), 0o644); err != nil {
		log.Fatal(err)
	}

	st, err := local.New(filepath.Join(dir, "backups"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	driver := files.New()
	res, err := manifest.Write(ctx, []manifest.Destination{{Name: "local", Storage: st}},
		manifest.WriteOptions{
			JobID:          "site",
			DatasourceType: driver.Type(),
			Compression:    manifest.Zstd,
			PartSize:       64 << 20,
			Now:            func() time.Time { return time.Date(2025, 2, 13, 6, 0, 1, 0, time.UTC) },
		},
		func(ctx context.Context, w io.Writer) (manifest.Metadata, error) {
			return driver.Dump(ctx, drivers.Source{Path: site}, w, nil)
		})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Dir + "/" + res.Manifest.Chunks[0].File)

	restored := filepath.Join(dir, "restored")
	_, err = manifest.Read(ctx, st, res.Dir, func(ctx context.Context, r io.Reader) error {
		return driver.Restore(ctx, drivers.Source{Path: restored}, r, nil)
	})
	if err != nil {
		log.Fatal(err)
	}
	css, err := os.ReadFile(filepath.Join(restored, "css", "main.css"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(css))
	// Output:
	// site/2025-02-13_060001/backup.tar.zst
	// body{}
}
