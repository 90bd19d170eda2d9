// Command quickstart shows DataGuardian as a library: it creates a demo
// SQLite database, backs it up twice into a local storage directory (once
// split into 1 MiB parts), verifies both backups, restores one into a new
// file, proves the data is identical, and prints the folder tree and a
// manifest. It exits 0 only if all of that held.
//
//	go run ./examples/quickstart --storage ./dataguardian-data/backups
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"slices"

	"github.com/dataguardian/dataguardian"
	_ "modernc.org/sqlite"
)

func main() {
	storageDir := flag.String("storage", filepath.Join("dataguardian-data", "backups"), "directory the backups are written to")
	dataDir := flag.String("data", "dataguardian-data", "directory of the metadata database and secret key")
	demoDir := flag.String("demo", "dataguardian-demo", "directory of the demo database and its restored copy "+
		"(apart from --data: the engine never backs up or restores over its own data directory)")
	flag.Parse()
	if err := run(context.Background(), *dataDir, *storageDir, *demoDir); err != nil {
		log.Fatalf("quickstart: %v", err)
	}
	fmt.Println("quickstart: OK — backed up, verified, restored and compared")
}

func run(ctx context.Context, dataDir, storageDir, demoDir string) error {
	// Datasources and storage locations take absolute paths.
	storageDir, err := filepath.Abs(storageDir)
	if err != nil {
		return err
	}
	if demoDir, err = filepath.Abs(demoDir); err != nil {
		return err
	}
	if err := os.MkdirAll(demoDir, 0o755); err != nil {
		return err
	}
	eng, err := dataguardian.New(ctx, dataguardian.Config{DataDir: dataDir})
	if err != nil {
		return err
	}
	defer eng.Close()

	demo := filepath.Join(demoDir, "demo.db")
	if err := createDemo(demo); err != nil {
		return fmt.Errorf("create demo database: %w", err)
	}
	// Reuse what an earlier run registered, so running the quickstart again
	// adds backups (which retention keeps at 3 per job) rather than jobs.
	ds, err := datasource(ctx, eng, demo)
	if err != nil {
		return err
	}
	disk, err := storageLocation(ctx, eng, storageDir)
	if err != nil {
		return err
	}
	var split *dataguardian.Execution
	for _, spec := range []dataguardian.BackupJob{
		{Name: "demo gzip", Compression: "gzip"},
		{Name: "demo zstd in 1 MiB parts", Compression: "zstd", MaxFileSizeMB: 1},
	} {
		job, err := backupJob(ctx, eng, spec, ds.ID, disk.ID)
		if err != nil {
			return err
		}
		exec, err := eng.RunBackup(ctx, job.ID)
		if err != nil {
			return err
		}
		if err := eng.VerifyBackup(ctx, exec.ID); err != nil {
			return err
		}
		fmt.Printf("%-26s -> %s (%d bytes, %d compressed), verified\n", job.Name, exec.BackupPath, exec.SizeBytes, exec.CompressedSizeBytes)
		split = exec
	}

	restored := filepath.Join(demoDir, "demo-restored.db")
	if _, err := eng.Restore(ctx, split.ID, dataguardian.Source{Type: "sqlite", Path: restored}, nil); err != nil {
		return err
	}
	want, err := tableDigest(demo)
	if err != nil {
		return err
	}
	got, err := tableDigest(restored)
	if err != nil {
		return err
	}
	if want != got {
		return fmt.Errorf("restored database differs: %s, want %s", got, want)
	}
	fmt.Printf("restored into %s: data identical (%s)\n\n", restored, want)

	fmt.Println(storageDir + ":")
	err = filepath.WalkDir(storageDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(storageDir, p)
		fmt.Printf("  %-70s %9d bytes\n", rel, info.Size())
		return nil
	})
	if err != nil {
		return err
	}
	runDir := filepath.Join(storageDir, filepath.FromSlash(split.BackupPath))
	m, err := os.ReadFile(filepath.Join(runDir, "manifest.json"))
	if err != nil {
		return err
	}
	fmt.Printf("\n%s/manifest.json:\n%s\n", split.BackupPath, m)
	return nil
}

// datasource returns the demo datasource, registering it on first use.
func datasource(ctx context.Context, eng *dataguardian.Engine, path string) (*dataguardian.Datasource, error) {
	all, err := eng.Store().ListDatasources(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Type == "sqlite" && all[i].Path == path {
			return &all[i], nil
		}
	}
	ds := &dataguardian.Datasource{Name: "demo " + path, Type: "sqlite", Path: path}
	return ds, eng.CreateDatasource(ctx, ds, "")
}

// storageLocation returns the local storage location of dir, registering it
// on first use.
func storageLocation(ctx context.Context, eng *dataguardian.Engine, dir string) (*dataguardian.StorageLocation, error) {
	all, err := eng.Store().ListStorageLocations(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Type == "local" && all[i].Config["path"] == dir {
			return &all[i], nil
		}
	}
	loc := &dataguardian.StorageLocation{Name: "disk " + dir, Type: "local", Config: map[string]string{"path": dir}}
	return loc, eng.CreateStorageLocation(ctx, loc)
}

// backupJob returns the job like spec backing up datasourceID to storageID,
// creating it on first use, with the spec's recommended retention.
func backupJob(ctx context.Context, eng *dataguardian.Engine, spec dataguardian.BackupJob, datasourceID, storageID string) (*dataguardian.BackupJob, error) {
	all, err := eng.Store().ListBackupJobs(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Name == spec.Name && all[i].DatasourceID == datasourceID && slices.Equal(all[i].StorageLocationIDs, []string{storageID}) {
			return &all[i], nil
		}
	}
	job := &spec
	job.DatasourceID, job.StorageLocationIDs = datasourceID, []string{storageID}
	job.Retention = dataguardian.Retention{MaxBackups: 3, AutoDelete: true}
	return job, eng.CreateBackupJob(ctx, job)
}

// createDemo makes a demo database of a few MiB, if it does not exist yet.
func createDemo(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{
		`CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT)`,
		`CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), total REAL, token TEXT)`,
		`CREATE INDEX orders_customer ON orders(customer_id)`,
	} {
		if _, err := tx.Exec(q); err != nil {
			return err
		}
	}
	cities := []string{"São Paulo", "Rio de Janeiro", "Curitiba", "Recife"}
	for i := 1; i <= 2000; i++ {
		if _, err := tx.Exec(`INSERT INTO customers VALUES (?, ?, ?)`, i, fmt.Sprintf("Cliente %d", i), cities[i%len(cities)]); err != nil {
			return err
		}
	}
	token := make([]byte, 24)
	for i := 1; i <= 40000; i++ {
		rand.Read(token) // incompressible enough that the zstd backup spans several 1 MiB parts
		if _, err := tx.Exec(`INSERT INTO orders VALUES (?, ?, ?, ?)`, i, 1+i%2000, float64(i%50000)/100, hex.EncodeToString(token)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// tableDigest returns row counts and a sha256 over every row of both tables.
func tableDigest(path string) (string, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return "", err
	}
	defer db.Close()
	h := sha256.New()
	var counts []int
	for _, q := range []string{`SELECT id, name || '|' || city FROM customers ORDER BY id`, `SELECT id, customer_id || '|' || total || '|' || token FROM orders ORDER BY id`} {
		rows, err := db.Query(q)
		if err != nil {
			return "", err
		}
		n := 0
		for rows.Next() {
			var id int
			var v string
			if err := rows.Scan(&id, &v); err != nil {
				rows.Close()
				return "", err
			}
			fmt.Fprintf(h, "%d|%s\n", id, v)
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return "", err
		}
		counts = append(counts, n)
	}
	return fmt.Sprintf("customers=%d orders=%d sha256=%x", counts[0], counts[1], h.Sum(nil)[:8]), nil
}
