package manifest_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage/local"
)

// Write a backup split into parts to a local storage, then read it back:
// Read verifies every part before the restore function sees a byte.
func Example() {
	root, _ := os.MkdirTemp("", "manifest-example-")
	defer os.RemoveAll(root)
	disk, err := local.New(root)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	dump := strings.Repeat("INSERT INTO t VALUES (1, 'olá');\n", 2000)

	res, err := manifest.Write(ctx, []manifest.Destination{{Name: "disk", Storage: disk}},
		manifest.WriteOptions{JobID: "job-1", DatasourceType: "mysql", Compression: manifest.None, PartSize: 30000},
		func(ctx context.Context, w io.Writer) (manifest.Metadata, error) {
			_, err := io.WriteString(w, dump)
			return manifest.Metadata{TablesBackedUp: 1, RowsApproximate: 2000}, err
		})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range res.Manifest.Chunks {
		fmt.Println(c.Number, c.File, c.SizeBytes)
	}

	_, err = manifest.Read(ctx, disk, res.Dir, func(ctx context.Context, r io.Reader) error {
		b, err := io.ReadAll(r)
		fmt.Println("restored", len(b), "bytes, identical:", string(b) == dump)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// 1 backup.sql.part-001 30000
	// 2 backup.sql.part-002 30000
	// 3 backup.sql.part-003 8000
	// restored 68000 bytes, identical: true
}
