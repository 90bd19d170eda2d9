// Command apiseed fills a DataGuardian data directory with a realistic
// fleet for bench/api-latency.sh: N datasources (postgres, mysql, mariadb,
// sqlite, files), one backup job each over one or two of three local storage
// locations, and M finished backup executions with sizes, checksums,
// manifest metadata, per-storage statuses and log lines, spread over the
// jobs by schedule (one "hot" job every 15 minutes holds -hot of them).
//
// It goes through the engine's public Go API only (engine.New with DataDir,
// CreateDatasource, CreateStorageLocation, CreateBackupJob, and the Store's
// CreateExecution, SetExecutionStorage, AppendExecutionLog), so the data
// directory is what `dataguardian serve --data-dir DIR` opens.
//
// Once done it writes DIR/apiseed.json with the counts. Run again on the
// same directory with the same counts, it seeds nothing; with other counts
// it refuses (remove the directory first). Either way it prints the hot
// job's ID on stdout; progress goes to stderr.
//
// The jobs' next runs are set 30 days ahead so no scheduled backup fires
// while a benchmark runs against the directory.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dataguardian/dataguardian"

	"github.com/dataguardian/dataguardian/engine"
)

// markerFile records, in the data directory, what was seeded.
const markerFile = "apiseed.json"

// counts is what a seeded directory holds; it is the marker file's content.
type counts struct {
	Datasources    int    `json:"datasources"`
	Executions     int    `json:"executions"`
	HotExecutions  int    `json:"hot_executions"`
	Seed           uint64 `json:"seed"`
	HotJobID       string `json:"hot_job_id,omitempty"`
	SeededAt       string `json:"seeded_at,omitempty"`
	SeedDurationMS int64  `json:"seed_duration_ms,omitempty"`
}

func (c counts) same(o counts) bool {
	return c.Datasources == o.Datasources && c.Executions == o.Executions &&
		c.HotExecutions == o.HotExecutions && c.Seed == o.Seed
}

func main() {
	var want counts
	dir := flag.String("data-dir", "", "data directory to seed (created if missing; required)")
	flag.IntVar(&want.Datasources, "datasources", 1000, "datasources, one backup job each")
	flag.IntVar(&want.Executions, "executions", 10000, "backup executions in all")
	flag.IntVar(&want.HotExecutions, "hot", 2000, "executions of the busiest job (every 15 minutes), included in -executions")
	flag.Uint64Var(&want.Seed, "seed", 1, "random seed")
	flag.Parse()
	if err := run(context.Background(), *dir, want); err != nil {
		fmt.Fprintln(os.Stderr, "apiseed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir string, want counts) error {
	switch {
	case dir == "":
		return errors.New("-data-dir is empty: name the directory to seed")
	case want.Datasources < 2:
		return fmt.Errorf("-datasources %d: use at least 2 (one hot job and the rest)", want.Datasources)
	case want.HotExecutions < 0 || want.HotExecutions > want.Executions:
		return fmt.Errorf("-hot %d: use 0 to -executions (%d)", want.HotExecutions, want.Executions)
	}
	marker := filepath.Join(dir, markerFile)
	if data, err := os.ReadFile(marker); err == nil {
		var have counts
		if err := json.Unmarshal(data, &have); err != nil {
			return fmt.Errorf("read %s: %w: remove the directory and seed again", marker, err)
		}
		if !have.same(want) {
			return fmt.Errorf("%s was seeded with %+v, not %+v: remove it and seed again", dir, have, want)
		}
		slog.Info("already seeded", "dir", dir, "datasources", have.Datasources, "executions", have.Executions)
		fmt.Println(have.HotJobID)
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read marker: %w", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		return fmt.Errorf("%s is not empty and has no %s (an interrupted seed?): remove it and seed again", dir, markerFile)
	}

	start := time.Now()
	e, err := dataguardian.New(ctx, engine.Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer e.Close()
	s := &seeder{e: e, dir: dir, rng: rand.New(rand.NewPCG(want.Seed, 0x5eed)), now: time.Now().UTC()}
	if err := s.fleet(ctx, want.Datasources); err != nil {
		return err
	}
	slog.Info("seeded datasources, storage locations and jobs", "datasources", want.Datasources, "took", time.Since(start).Round(time.Millisecond))
	if err := s.executions(ctx, want.Executions, want.HotExecutions); err != nil {
		return err
	}
	want.HotJobID = s.jobs[0].ID
	want.SeededAt = s.now.Format(time.RFC3339)
	want.SeedDurationMS = time.Since(start).Milliseconds()
	data, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(marker+".tmp", append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write marker: %w", err)
	}
	if err := os.Rename(marker+".tmp", marker); err != nil {
		return fmt.Errorf("write marker: %w", err)
	}
	slog.Info("seeded", "dir", dir, "executions", want.Executions, "took", time.Since(start).Round(time.Millisecond))
	fmt.Println(want.HotJobID)
	return nil
}

type seeder struct {
	e    *engine.Engine
	dir  string
	rng  *rand.Rand
	now  time.Time
	locs []engine.StorageLocation
	jobs []seededJob
}

// seededJob is a created job and how often it runs.
type seededJob struct {
	*engine.BackupJob
	ds     *engine.Datasource
	every  time.Duration
	weight float64 // share of the non-hot executions
}

// kind is a datasource type and how it is reached; hosts point at this
// machine so health checks, if the server runs them, answer fast.
type kind struct {
	typ, version string
	port         int
	share        float64
}

var kinds = []kind{
	{"postgres", "PostgreSQL 15.6", 5432, 0.50},
	{"mysql", "MySQL 8.0.36", 3306, 0.25},
	{"mariadb", "MariaDB 10.11.6", 3306, 0.10},
	{"sqlite", "SQLite 3.45.1", 0, 0.10},
	{"files", "", 0, 0.05},
}

var apps = []string{"erp", "crm", "billing", "auth", "catalog", "orders", "payments", "analytics", "wiki", "helpdesk"}
var envs = []string{"prod", "staging", "dev", "dr"}

// fleet creates three storage locations and n datasources with one backup
// job each. The first job is the hot one: every 15 minutes, two storages.
func (s *seeder) fleet(ctx context.Context, n int) error {
	for i, name := range []string{"local-primary", "nas-offsite", "cold-archive"} {
		loc := engine.StorageLocation{Name: name, Type: "local",
			Config: map[string]string{"path": filepath.Join(s.dir, "storage", fmt.Sprint(i))}}
		if err := s.e.CreateStorageLocation(ctx, &loc); err != nil {
			return err
		}
		s.locs = append(s.locs, loc)
	}
	statuses := []engine.DatasourceStatus{engine.DatasourceHealthy, engine.DatasourceHealthy, engine.DatasourceHealthy,
		engine.DatasourceHealthy, engine.DatasourceWarning, engine.DatasourceCritical}
	notDue := s.now.Add(30 * 24 * time.Hour)
	for i := range n {
		k := s.pickKind()
		app, env := apps[i%len(apps)], envs[(i/len(apps))%len(envs)]
		ds := &engine.Datasource{Name: fmt.Sprintf("%s-%s-%04d", app, env, i), Type: k.typ,
			Status: statuses[s.rng.IntN(len(statuses))], ConsecutiveFailures: 0}
		switch k.typ {
		case "sqlite":
			ds.Path = fmt.Sprintf("/var/lib/%s/%s-%04d.db", app, env, i)
		case "files":
			ds.Path = fmt.Sprintf("/srv/%s/%s-%04d/uploads", app, env, i)
		default:
			ds.Host, ds.Port, ds.Database, ds.Username = "127.0.0.1", k.port, fmt.Sprintf("%s_%s", app, env), fmt.Sprintf("backup_%04d", i)
			ds.Options = map[string]string{"sslmode": "disable"}
		}
		if ds.Status == engine.DatasourceCritical {
			ds.ConsecutiveFailures = 3 + s.rng.IntN(10)
		}
		checked := s.now.Add(-time.Duration(s.rng.IntN(300)) * time.Second)
		ds.LastHealthCheckAt = &checked
		password := ""
		if ds.Host != "" {
			password = fmt.Sprintf("seed-password-%04d", i)
		}
		if err := s.e.CreateDatasource(ctx, ds, password); err != nil {
			return err
		}
		sj := s.jobFor(i, ds)
		if err := s.e.CreateBackupJob(ctx, sj.BackupJob); err != nil {
			return err
		}
		sj.NextExecutionAt = &notDue
		if err := s.e.Store().UpdateBackupJob(ctx, sj.BackupJob, "next_execution_at"); err != nil {
			return err
		}
		s.jobs = append(s.jobs, sj)
	}
	return nil
}

func (s *seeder) pickKind() kind {
	r := s.rng.Float64()
	for _, k := range kinds {
		if r < k.share {
			return k
		}
		r -= k.share
	}
	return kinds[0]
}

// jobFor returns the (uncreated) job of the i-th datasource: job 0 every 15
// minutes, then 5% hourly, 20% every 6 hours, the rest daily.
func (s *seeder) jobFor(i int, ds *engine.Datasource) seededJob {
	sj := seededJob{ds: ds}
	var schedule string
	switch r := s.rng.Float64(); {
	case i == 0:
		schedule, sj.every = "*/15 * * * *", 15*time.Minute
	case r < 0.05:
		schedule, sj.every, sj.weight = fmt.Sprintf("%d * * * *", s.rng.IntN(60)), time.Hour, 24
	case r < 0.25:
		schedule, sj.every, sj.weight = fmt.Sprintf("%d */6 * * *", s.rng.IntN(60)), 6*time.Hour, 4
	default:
		schedule, sj.every, sj.weight = fmt.Sprintf("%d %d * * *", s.rng.IntN(60), s.rng.IntN(24)), 24*time.Hour, 1
	}
	locs := []string{s.locs[0].ID}
	if i == 0 || s.rng.IntN(3) == 0 {
		locs = append(locs, s.locs[1+s.rng.IntN(2)].ID)
	}
	compression := []string{"gzip", "gzip", "zstd", "lz4"}[s.rng.IntN(4)]
	if ds.Type == "files" {
		compression = "gzip"
	}
	sj.BackupJob = &engine.BackupJob{Name: "backup " + ds.Name, DatasourceID: ds.ID, Schedule: schedule,
		Timezone: "America/Sao_Paulo", StorageLocationIDs: locs, Compression: compression,
		Retention: engine.Retention{MaxBackups: 7 + s.rng.IntN(24), AutoDelete: true}}
	return sj
}

// executions creates total finished backups, hot of them for the hot job
// and the rest over the other jobs by weight, in time order (as a real
// store fills up).
func (s *seeder) executions(ctx context.Context, total, hot int) error {
	perJob := make([]int, len(s.jobs))
	perJob[0] = hot
	var sum float64
	for _, j := range s.jobs[1:] {
		sum += j.weight
	}
	cum := make([]float64, len(s.jobs))
	for i, j := range s.jobs {
		if i > 0 {
			cum[i] = cum[i-1] + j.weight/sum
		}
	}
	for range total - hot {
		i, _ := slices.BinarySearch(cum, s.rng.Float64())
		perJob[min(max(i, 1), len(s.jobs)-1)]++
	}
	type planned struct {
		job *seededJob
		at  time.Time
	}
	var plan []planned
	for i := range s.jobs {
		j := &s.jobs[i]
		offset := time.Duration(s.rng.IntN(int(j.every/time.Second))) * time.Second
		for k := range perJob[i] {
			at := s.now.Add(-time.Duration(k+1)*j.every - offset)
			plan = append(plan, planned{job: j, at: at.Truncate(time.Microsecond)})
		}
	}
	slices.SortFunc(plan, func(a, b planned) int { return a.at.Compare(b.at) })
	start := time.Now()
	for n, p := range plan {
		if err := s.execution(ctx, p.job, p.at); err != nil {
			return err
		}
		if (n+1)%2000 == 0 {
			slog.Info("executions", "done", n+1, "of", len(plan), "took", time.Since(start).Round(time.Millisecond))
		}
	}
	return nil
}

// execution records one finished backup of j created at `at`, as the
// worker would have: the row, its per-storage statuses and its log lines.
func (s *seeder) execution(ctx context.Context, j *seededJob, at time.Time) error {
	started := at.Add(time.Duration(500+s.rng.IntN(3000)) * time.Millisecond)
	size := int64(math.Exp(18 + 2.5*s.rng.NormFloat64())) // median ~65 MB, long tail
	ratio := 0.15 + 0.35*s.rng.Float64()
	duration := time.Duration(float64(size)/(40<<20)*float64(time.Second)) + time.Duration(s.rng.IntN(5000))*time.Millisecond
	finished := started.Add(duration)
	x := &engine.Execution{JobID: j.ID, DatasourceID: j.DatasourceID, Operation: engine.OperationBackup,
		StartedAt: &started, FinishedAt: &finished, DurationMS: duration.Milliseconds(), Compression: j.Compression,
		BackupPath: j.ID + "/" + at.Format("2006-01-02_150405"), Attempt: 1, CreatedAt: at}
	prefix := "[BACKUP] "
	logs := []string{fmt.Sprintf("%sbacking up %s datasource %q to %d storage(s) with %s compression",
		prefix, j.ds.Type, j.ds.Name, len(j.StorageLocationIDs), j.Compression)}
	switch r := s.rng.Float64(); {
	case r < 0.06:
		x.Status = engine.ExecutionFailed
		x.ErrorMessage = []string{
			"dump: pg_dump: error: connection to server at \"127.0.0.1\", port 5432 failed: FATAL: too many connections",
			"put part 1: write /backups/part-0001.gz: no space left on device",
			"dump: mysqldump: Got error: 2013: Lost connection to server during query",
		}[s.rng.IntN(3)]
		x.SizeBytes, x.CompressedSizeBytes = 0, 0
		logs = append(logs, prefix+"backup failed: "+x.ErrorMessage)
	case r < 0.07:
		x.Status = engine.ExecutionCancelled
		x.ErrorMessage = "context canceled"
		logs = append(logs, prefix+"backup cancelled: context canceled")
	default:
		x.Status = engine.ExecutionCompleted
		x.SizeBytes, x.CompressedSizeBytes = size, int64(float64(size)*ratio)
		x.Checksum = fmt.Sprintf("sha256:%016x%016x%016x%016x", s.rng.Uint64(), s.rng.Uint64(), s.rng.Uint64(), s.rng.Uint64())
		chunks := 1 + int(x.CompressedSizeBytes/(1<<30))
		x.Metadata = map[string]any{"manifest": s.manifestMetadata(j.ds.Type), "chunks": chunks, "compression_ratio": ratio}
		if s.rng.IntN(200) == 0 {
			restored := finished.Add(time.Duration(1+s.rng.IntN(48)) * time.Hour)
			x.RestoredAt, x.RestoredBy, x.RestoreReason = &restored, "ops@example.com", "rollback after a bad deploy"
		}
		logs = append(logs,
			fmt.Sprintf("%swrote %s: %d bytes, %d compressed (ratio %.3f) in %d part(s), %s", prefix, x.BackupPath,
				x.SizeBytes, x.CompressedSizeBytes, ratio, chunks, x.Checksum),
			fmt.Sprintf("%sbackup completed in %s", prefix, duration.Round(time.Millisecond)))
	}
	st := s.e.Store()
	if err := st.CreateExecution(ctx, x); err != nil {
		return err
	}
	for _, locID := range j.StorageLocationIDs {
		es := &engine.ExecutionStorage{ExecutionID: x.ID, StorageLocationID: locID, Status: engine.StorageAvailable}
		switch {
		case x.Status != engine.ExecutionCompleted:
			es.Status = engine.StorageMissing
		case s.rng.IntN(100) == 0:
			es.Status, es.ErrorMessage = engine.StorageUnreachable, "stat manifest.json: connection refused"
		}
		if err := st.SetExecutionStorage(ctx, es); err != nil {
			return err
		}
	}
	for _, line := range logs {
		if err := st.AppendExecutionLog(ctx, x.ID, "info", line); err != nil {
			return err
		}
	}
	return nil
}

// manifestMetadata is what a driver reports about a dump: version, tables
// and their row counts (5 to 60 tables).
func (s *seeder) manifestMetadata(typ string) map[string]any {
	if typ == "files" {
		return map[string]any{"files": 1000 + s.rng.IntN(100000)}
	}
	version := ""
	for _, k := range kinds {
		if k.typ == typ {
			version = k.version
		}
	}
	tables := 5 + s.rng.IntN(56)
	rows := make(map[string]int64, tables)
	var total int64
	for t := range tables {
		n := int64(math.Exp(8 + 3*s.rng.NormFloat64()))
		name := fmt.Sprintf("table_%02d", t)
		if typ == "postgres" {
			name = "public." + name
		}
		rows[name] = n
		total += n
	}
	return map[string]any{"database_version": version, "tables_backed_up": tables, "rows_approximate": total, "table_rows": rows}
}
