package engine

import (
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/engine/internal/storedb"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// BenchmarkEnqueueDue enqueues 1,000 due backup jobs per op (two batches
// of 500, as the Scheduler does) on SQLite and PostgreSQL.
func BenchmarkEnqueueDue(b *testing.B) {
	const jobs = 1000
	for name, url := range map[string]func(b *testing.B) string{
		"sqlite":   func(b *testing.B) string { return "sqlite://" + b.TempDir() + "/meta.db" },
		"postgres": func(b *testing.B) string { return testsvc.NewPostgresDatabase(b) },
	} {
		b.Run(name, func(b *testing.B) {
			ctx := b.Context()
			e, err := newEngine(ctx, Config{DataDir: b.TempDir(), DatabaseURL: url(b), SecretKey: testKey, Logger: discardLogger})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			ds := &Datasource{Name: "app", Type: "sqlite", Path: b.TempDir() + "/app.db"}
			loc := &StorageLocation{Name: "disk", Type: "local", Config: map[string]string{"path": b.TempDir()}}
			if err := e.Store().CreateDatasource(ctx, ds); err != nil {
				b.Fatal(err)
			}
			if err := e.Store().CreateStorageLocation(ctx, loc); err != nil {
				b.Fatal(err)
			}
			due := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
			addDueJobs(b, e, ds.ID, []string{loc.ID}, jobs, due)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				due = due.Add(-time.Second) // a new due time: new run IDs
				if _, err := e.Store().DB(storedb.Key{}).NewUpdate().Model((*BackupJob)(nil)).
					Set("next_execution_at = ?", due).Where("1 = 1").Exec(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				total := 0
				for total < jobs {
					n, err := e.EnqueueDueBackups(ctx, e.Queue(), 500)
					if err != nil {
						b.Fatal(err)
					}
					if n == 0 {
						b.Fatalf("enqueued %d of %d", total, jobs)
					}
					total += n
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*jobs), "µs/job")
		})
	}
}
