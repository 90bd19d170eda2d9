// Command scheduler measures the engine's Scheduler (issue 5, "Measured"):
// N backup jobs with schedule "* * * * *" all due at one time T, the lag
// from T to each run's execution row (p50/p99/max), then the process's CPU
// while the scheduler runs with nothing due.
//
// Only the scheduler runs in the process (no workers, no health checks).
// With -database-url postgres://… (a user that may create databases) it
// creates a fresh database for the run and drops it after; without, it
// uses SQLite in a temporary directory.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/dataguardian/dataguardian"

	"github.com/google/uuid"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/dataguardian/dataguardian/engine"
)

func main() {
	dbURL := flag.String("database-url", "", "postgres://USER@HOST:PORT/DB?sslmode=disable of a server to create a scratch database on; empty: SQLite")
	jobs := flag.Int("jobs", 10000, "backup jobs due at once")
	tick := flag.Duration("tick", 250*time.Millisecond, "Scheduler tick")
	lead := flag.Duration("lead", 3*time.Second, "how far ahead of now the common due time is")
	idle := flag.Duration("idle", 30*time.Second, "how long to measure CPU with nothing due")
	flag.Parse()
	if err := run(*dbURL, *jobs, *tick, *lead, *idle); err != nil {
		fmt.Fprintln(os.Stderr, "scheduler bench:", err)
		os.Exit(1)
	}
}

func run(adminURL string, jobs int, tick, lead, idle time.Duration) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "dg-sched-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dbURL, kind := "sqlite://"+filepath.Join(dir, "meta.db"), "sqlite"
	if adminURL != "" {
		u, drop, err := scratchPostgres(ctx, adminURL)
		if err != nil {
			return err
		}
		defer drop()
		dbURL, kind = u, "postgres"
	}
	key := make([]byte, 32)
	rand.Read(key)
	e, err := dataguardian.New(ctx, engine.Config{DataDir: dir, DatabaseURL: dbURL, SecretKey: key,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer e.Close()
	st := e.Store()
	ds := &engine.Datasource{Name: "app", Type: "sqlite", Path: filepath.Join(dir, "app.db"), Enabled: true}
	loc := &engine.StorageLocation{Name: "disk", Type: "local", Config: map[string]string{"path": filepath.Join(dir, "backups")}}
	if err := st.CreateDatasource(ctx, ds); err != nil {
		return err
	}
	if err := st.CreateStorageLocation(ctx, loc); err != nil {
		return err
	}

	// The jobs, in bulk (CreateBackupJob one by one would take minutes),
	// all due at T.
	T := time.Now().UTC().Add(lead).Truncate(time.Second)
	created := time.Now()
	now := time.Now().UTC().Truncate(time.Microsecond)
	rows := make([]engine.BackupJob, jobs)
	for i := range rows {
		rows[i] = engine.BackupJob{ID: uuid.NewString(), Name: fmt.Sprintf("job %05d", i), DatasourceID: ds.ID,
			StorageLocationIDs: []string{loc.ID}, Schedule: "* * * * *", Compression: "zstd", MaxFileSizeMB: engine.DefaultMaxFileSizeMB,
			Enabled: true, NextExecutionAt: &T, CreatedAt: now, UpdatedAt: now}
	}
	if err := st.InsertBackupJobs(ctx, rows); err != nil {
		return fmt.Errorf("create jobs: %w", err)
	}
	fmt.Printf("store: %s; %d jobs created in %s; all due at T=%s\n", kind, jobs, time.Since(created).Round(time.Millisecond), T.Format(time.RFC3339))
	if time.Now().After(T) {
		return fmt.Errorf("creating the jobs took past T: raise -lead")
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- engine.NewScheduler(e, e.Queue(), engine.SchedulerOptions{Tick: tick}).Run(runCtx)
	}()
	defer func() { stop(); <-done }()

	// Wait for every run.
	deadline := T.Add(2 * time.Minute)
	var seen time.Time
	for {
		counts, err := st.ExecutionCounts(ctx, time.Time{})
		if err != nil {
			return err
		}
		n := 0
		for _, c := range counts {
			n += c.N
		}
		if n >= jobs {
			seen = time.Now()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d runs enqueued by %s", n, jobs, deadline)
		}
		time.Sleep(20 * time.Millisecond)
	}
	xs, err := st.ListExecutions(ctx, engine.ExecutionFilter{Limit: -1})
	if err != nil {
		return err
	}
	lags := make([]time.Duration, len(xs))
	for i := range xs {
		lags[i] = xs[i].CreatedAt.Sub(T)
	}
	slices.Sort(lags)
	q := func(p float64) time.Duration {
		return lags[min(len(lags)-1, int(p*float64(len(lags))))].Round(time.Millisecond)
	}
	p99 := q(0.99)
	fmt.Printf("enqueue lag (execution created_at - T) over %d runs: p50 %s  p99 %s  max %s\n", len(lags), q(0.5), p99, lags[len(lags)-1].Round(time.Millisecond))
	fmt.Printf("enqueue duration: first run %s after T, last %s after T (%s from first to last); all visible %s after T\n",
		lags[0].Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond), (lags[len(lags)-1] - lags[0]).Round(time.Millisecond),
		seen.Sub(T).Round(time.Millisecond))
	qs, err := e.Queue().Stats(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("queue: depth %d\n", qs.Depth)

	// Idle: nothing due for the whole window (the next minute's runs moved
	// out of it), only the scheduler's ticks.
	later := time.Now().UTC().Add(time.Hour)
	all, err := st.ListBackupJobs(ctx)
	if err != nil {
		return err
	}
	for i := range all {
		all[i].NextExecutionAt = &later
		if err := st.UpdateBackupJob(ctx, &all[i], "next_execution_at"); err != nil {
			return err
		}
	}
	time.Sleep(time.Second)
	u0, t0 := cpuTime(), time.Now()
	time.Sleep(idle)
	cpu, wall := cpuTime()-u0, time.Since(t0)
	idlePct := 100 * cpu.Seconds() / wall.Seconds()
	fmt.Printf("idle CPU: %s of CPU over %s with %d jobs, nothing due, tick %s = %.2f%% of one core\n",
		cpu.Round(time.Millisecond), wall.Round(time.Millisecond), jobs, tick, idlePct)

	ok := p99 < time.Second && idlePct < 5
	fmt.Printf("targets (p99 < 1s, idle CPU < 5%%): %s\n", map[bool]string{true: "met", false: "MISSED"}[ok])
	if !ok {
		return fmt.Errorf("targets missed")
	}
	return nil
}

// cpuTime is the user+system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// scratchPostgres creates a database on the server of adminURL and returns
// its URL and a function that drops it.
func scratchPostgres(ctx context.Context, adminURL string) (string, func(), error) {
	admin := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(adminURL)))
	name := "dgbench_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create scratch database: %w", err)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		admin.Close()
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), func() {
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintln(os.Stderr, "drop scratch database:", err)
		} else {
			fmt.Printf("dropped scratch database %s\n", name)
		}
		admin.Close()
	}, nil
}
