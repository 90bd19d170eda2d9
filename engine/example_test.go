package engine_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/dataguardian/dataguardian/defaults"
	"github.com/dataguardian/dataguardian/engine"
	_ "modernc.org/sqlite"
)

// With {"max_backups": 3, "auto_delete": true}, the 4th backup of a job
// removes the oldest (spec: retenção operacional) and logs it in
// _system/cleanup.log.
func ExampleEngine_RunBackup_retention() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "engine-example-")
	defer os.RemoveAll(dir)
	app := filepath.Join(dir, "app.db")
	db, _ := sql.Open("sqlite", app)
	db.Exec(`CREATE TABLE t (x); INSERT INTO t VALUES (1)`)
	db.Close()

	// engine.New takes its plug-ins from the Config (dataguardian.New fills
	// in the built-ins by itself).
	e, err := engine.New(ctx, engine.Config{DataDir: filepath.Join(dir, "meta"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Drivers: defaults.Drivers(), StorageOpeners: defaults.StorageOpeners()})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	ds := &engine.Datasource{Name: "app", Type: "sqlite", Path: app}
	disk := &engine.StorageLocation{Name: "disk", Type: "local", Config: map[string]string{"path": filepath.Join(dir, "backups")}}
	must(e.CreateDatasource(ctx, ds, ""))
	must(e.CreateStorageLocation(ctx, disk))
	job := &engine.BackupJob{Name: "nightly", DatasourceID: ds.ID, StorageLocationIDs: []string{disk.ID},
		Retention: engine.Retention{MaxBackups: 3, AutoDelete: true}}
	must(e.CreateBackupJob(ctx, job))

	for range 4 {
		if _, err := e.RunBackup(ctx, job.ID); err != nil {
			log.Fatal(err)
		}
	}
	folders, _ := os.ReadDir(filepath.Join(dir, "backups", job.ID))
	fmt.Println("run folders kept:", len(folders))
	logData, _ := os.ReadFile(filepath.Join(dir, "backups", "_system", "cleanup.log"))
	fmt.Println("cleanup.log lines:", strings.Count(string(logData), "\n"))
	// Output:
	// run folders kept: 3
	// cleanup.log lines: 1
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
