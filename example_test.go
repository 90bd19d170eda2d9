package dataguardian_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/dataguardian/dataguardian"
	_ "modernc.org/sqlite"
)

// Back up a SQLite database into a local storage directory and restore it
// into a new file, on embedded defaults (SQLite metadata in DataDir).
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "dataguardian-example-")
	defer os.RemoveAll(dir)

	app := filepath.Join(dir, "app.db")
	db, _ := sql.Open("sqlite", app)
	db.Exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('olá'), ('mundo')`)
	db.Close()

	eng, err := dataguardian.New(ctx, dataguardian.Config{DataDir: filepath.Join(dir, "meta"), Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	ds := &dataguardian.Datasource{Name: "app", Type: "sqlite", Path: app}
	disk := &dataguardian.StorageLocation{Name: "disk", Type: "local", Config: map[string]string{"path": filepath.Join(dir, "backups")}}
	if err := eng.CreateDatasource(ctx, ds, ""); err != nil {
		log.Fatal(err)
	}
	if err := eng.CreateStorageLocation(ctx, disk); err != nil {
		log.Fatal(err)
	}
	job := &dataguardian.BackupJob{Name: "nightly", DatasourceID: ds.ID, StorageLocationIDs: []string{disk.ID}, Compression: "zstd"}
	if err := eng.CreateBackupJob(ctx, job); err != nil {
		log.Fatal(err)
	}

	backup, err := eng.RunBackup(ctx, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "backups", backup.BackupPath, "*"))
	for _, f := range files {
		fmt.Println(filepath.Base(f))
	}

	restored := filepath.Join(dir, "restored.db")
	if _, err := eng.Restore(ctx, backup.ID, dataguardian.Source{Type: "sqlite", Path: restored}, nil); err != nil {
		log.Fatal(err)
	}
	db, _ = sql.Open("sqlite", restored)
	defer db.Close()
	var n int
	db.QueryRow(`SELECT count(*) FROM notes`).Scan(&n)
	fmt.Println("rows restored:", n)
	// Output:
	// RECOVERY.txt
	// SHA256SUMS
	// backup.db.zst
	// manifest.json
	// rows restored: 2
}
