package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/sqlite"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage/local"
)

// Back up a SQLite file through the streaming pipeline into a local storage.
func Example() {
	dir, err := os.MkdirTemp("", "sqlite-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// A small database to back up.
	path := filepath.Join(dir, "app.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('hello'), ('olá')`); err != nil {
		log.Fatal(err)
	}
	db.Close()

	st, err := local.New(filepath.Join(dir, "backups"))
	if err != nil {
		log.Fatal(err)
	}
	driver := sqlite.New()
	src := drivers.Source{Type: driver.Type(), Path: path}
	res, err := manifest.Write(context.Background(), []manifest.Destination{{Name: "local", Storage: st}},
		manifest.WriteOptions{
			JobID:          "notes",
			DatasourceType: driver.Type(),
			Compression:    manifest.Gzip,
			PartSize:       64 << 20,
			Now:            func() time.Time { return time.Date(2025, 2, 13, 6, 0, 1, 0, time.UTC) },
		},
		func(ctx context.Context, w io.Writer) (manifest.Metadata, error) {
			return driver.Dump(ctx, src, w, nil)
		})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Dir + "/" + res.Manifest.Chunks[0].File)
	fmt.Println("tables:", res.Manifest.Metadata.TablesBackedUp, "rows:", res.Manifest.Metadata.RowsApproximate)
	// Output:
	// notes/2025-02-13_060001/backup.db.gz
	// tables: 1 rows: 2
}
