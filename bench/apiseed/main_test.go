package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian"

	"github.com/dataguardian/dataguardian/engine"
	"github.com/dataguardian/dataguardian/httpapi"
)

// TestSeed seeds a small directory and checks what it holds, that a second
// run with the same counts seeds nothing and that other counts are refused.
func TestSeed(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "data")
	want := counts{Datasources: 20, Executions: 300, HotExecutions: 120, Seed: 7}
	if err := run(ctx, dir, want); err != nil {
		t.Fatal(err)
	}
	e, err := dataguardian.New(ctx, engine.Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	st := e.Store()
	dss, err := st.ListDatasources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := st.ListBackupJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	xs, err := st.ListExecutions(ctx, engine.ExecutionFilter{Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(dss) != 20 || len(jobs) != 20 || len(xs) != 300 {
		t.Fatalf("seeded %d datasources, %d jobs, %d executions; want 20, 20, 300", len(dss), len(jobs), len(xs))
	}
	hot := hotJob(t, dir)
	byStatus := map[engine.ExecutionStatus]int{}
	hotCount := 0
	for i, x := range xs {
		byStatus[x.Status]++
		if x.JobID == hot {
			hotCount++
		}
		if i > 0 && x.CreatedAt.After(xs[i-1].CreatedAt) {
			t.Fatalf("executions not newest first at %d", i)
		}
		if x.Status == engine.ExecutionCompleted && (x.SizeBytes == 0 || x.Checksum == "" || x.FinishedAt == nil) {
			t.Fatalf("completed execution %s lacks size, checksum or finish time: %+v", x.ID, x)
		}
	}
	if hotCount != 120 {
		t.Errorf("hot job %s has %d executions, want 120", hot, hotCount)
	}
	if byStatus[engine.ExecutionCompleted] == 0 || byStatus[engine.ExecutionFailed] == 0 {
		t.Errorf("statuses %v: want completed and failed ones", byStatus)
	}
	sts, err := st.ListExecutionStorages(ctx, xs[0].ID)
	if err != nil || len(sts) == 0 {
		t.Errorf("storage statuses of %s: %v, %v; want at least one", xs[0].ID, sts, err)
	}
	logs, err := st.ExecutionLogs(ctx, xs[0].ID)
	if err != nil || len(logs) < 2 {
		t.Errorf("logs of %s: %d lines, %v; want at least 2", xs[0].ID, len(logs), err)
	}
	for _, j := range jobs {
		if j.NextExecutionAt == nil || j.NextExecutionAt.Before(xs[0].CreatedAt.AddDate(0, 0, 20)) {
			t.Errorf("job %s next run %v: want about 30 days ahead, so no benchmark sees a run", j.Name, j.NextExecutionAt)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	if err := run(ctx, dir, want); err != nil {
		t.Errorf("second run with the same counts: %v", err)
	}
	if hotJob(t, dir) != hot {
		t.Errorf("second run changed the hot job")
	}
	other := want
	other.Executions++
	if err := run(ctx, dir, other); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("run with other counts: %v, want a refusal that says to remove the directory", err)
	}
}

func hotJob(t testing.TB, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, markerFile))
	if err != nil {
		t.Fatal(err)
	}
	var c counts
	if err := json.Unmarshal(data, &c); err != nil || c.HotJobID == "" {
		t.Fatalf("no hot_job_id in %s (%v)", data, err)
	}
	return c.HotJobID
}

// BenchmarkAPI measures the list endpoints in process (no network, no
// authentication) on a data directory seeded like bench/api-latency.sh's:
// DG_APISEED_DIR names one already seeded (e.g. by the script), otherwise
// one is seeded under the benchmark's temporary directory. Profile with
// go test -run '^$' -bench API -cpuprofile cpu.prof ./bench/apiseed
func BenchmarkAPI(b *testing.B) {
	ctx := context.Background()
	dir := os.Getenv("DG_APISEED_DIR")
	if dir == "" {
		dir = filepath.Join(b.TempDir(), "data")
		if err := run(ctx, dir, counts{Datasources: 1000, Executions: 10000, HotExecutions: 2000, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	job := hotJob(b, dir)
	e, err := dataguardian.New(ctx, engine.Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	h := httpapi.New(e, &httpapi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for _, c := range []struct{ name, path string }{
		{"datasources", "/api/datasources"},
		{"executions", fmt.Sprintf("/api/backup-jobs/%s/executions?limit=50", job)},
		{"executions-completed", fmt.Sprintf("/api/backup-jobs/%s/executions?status=completed&limit=50", job)},
		{"backup-jobs", "/api/backup-jobs"},
		{"backups-datasources", "/api/backups/datasources"},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, c.path, nil)
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("GET %s: %d %s", c.path, w.Code, w.Body)
				}
			}
		})
	}
}
