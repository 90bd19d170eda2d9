package e2e

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/httpapi"
	"github.com/dataguardian/dataguardian/internal/servertest"
)

// sparseSource is a directory holding one sparse file of size bytes: a
// files datasource whose backup reads (and, uncompressed, writes) that
// many zero bytes while using no disk itself. It returns the directory
// and the file.
func sparseSource(t *testing.T, size int64) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	file = filepath.Join(dir, "big.bin")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

// filesJob creates a files datasource of dir and a backup job of it to the
// server's default storage location, and returns the job and that
// location's directory.
func filesJob(c client, dir string, job map[string]any) (httpapi.BackupJob, string) {
	c.t.Helper()
	var ds httpapi.Datasource
	c.must(http.StatusCreated, "POST", "/api/datasources", map[string]any{"name": "big files", "type": "files", "path": dir}, &ds)
	var locs []httpapi.StorageLocation
	c.must(http.StatusOK, "GET", "/api/storage-locations", nil, &locs)
	if len(locs) != 1 {
		c.t.Fatalf("default storage locations: %+v", locs)
	}
	job["name"], job["datasource_id"], job["storage_location_ids"] = "big nightly", ds.ID, []string{locs[0].ID}
	var j httpapi.BackupJob
	c.must(http.StatusCreated, "POST", "/api/backup-jobs", job, &j)
	return j, locs[0].Config["path"]
}

// 50 concurrent "run now" requests of one job queue at most two backups
// (one running, one queued): every answer is 202 naming one of them, and
// both complete. Each run sets the job's last_execution_at, and its
// notification names the job and the datasource.
func TestRunNowConcurrentRequests(t *testing.T) {
	srv := servertest.Start(t, nil)
	c := client{t, srv, srv.Token}
	// Long enough to read that the requests all arrive while it runs.
	dir, _ := sparseSource(t, 1<<30)
	job, _ := filesJob(c, dir, map[string]any{"compression": "gzip"})

	const n = 50
	answers := make([]httpapi.Execution, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			code, b, err := post(c, "/api/backup-jobs/"+job.ID+"/run")
			if err != nil || code != http.StatusAccepted {
				t.Errorf("run now %d: %d %s, %v; want 202", i, code, b, err)
				return
			}
			if err := json.Unmarshal(b, &answers[i]); err != nil {
				t.Errorf("run now %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	var xs []httpapi.Execution
	c.must(http.StatusOK, "GET", "/api/backup-jobs/"+job.ID+"/executions?limit=1000", nil, &xs)
	ids := map[string]bool{}
	for _, x := range xs {
		ids[x.ID] = true
	}
	named := map[string]int{}
	for _, a := range answers {
		named[a.ID]++
		if !ids[a.ID] {
			t.Errorf("an answer names execution %s, not one of the job's %v", a.ID, ids)
		}
	}
	t.Logf("%d requests: %d executions, answers per execution %v", n, len(xs), named)
	if len(xs) == 0 || len(xs) > 2 {
		t.Fatalf("%d concurrent run-now requests made %d executions; want one running and at most one queued", n, len(xs))
	}
	for _, x := range xs {
		if got := c.waitExecution(x.ID); got.Status != "completed" {
			t.Fatalf("execution %s: %s (%s)", x.ID, got.Status, got.ErrorMessage)
		}
	}

	var j httpapi.BackupJob
	c.must(http.StatusOK, "GET", "/api/backup-jobs/"+job.ID, nil, &j)
	if j.LastExecutionAt == nil {
		t.Errorf("last_execution_at of a job that ran on demand is null")
	}
	var ns []httpapi.Notification
	c.must(http.StatusOK, "GET", "/api/notifications?type=backup_completed", nil, &ns)
	if len(ns) != len(xs) {
		t.Fatalf("%d backup_completed notifications; want %d", len(ns), len(xs))
	}
	for _, n := range ns {
		if !strings.Contains(n.Title, "big nightly") || !strings.Contains(n.Message, `"big files"`) || !strings.Contains(n.Message, "GiB") {
			t.Errorf("notification %q: %q; want the job's name in the title, the datasource and the size in the message", n.Title, n.Message)
		}
	}
}

// post sends an empty POST with c's token; unlike client.call it may run
// on any goroutine.
func post(c client, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(c.t.Context(), "POST", c.srv.URL+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// incompletePart matches the name manifest.Writer gives a part until the
// backup commits.
var incompletePart = regexp.MustCompile(`^\.incomplete-part-\d{3}$`)

// incompleteParts lists the files under root named as parts of a backup
// not committed, and the hidden temporary files of such parts still being
// written (local storage's ".{name}.tmp-…").
func incompleteParts(t *testing.T, root string) (parts, temps []string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch {
		case incompletePart.MatchString(d.Name()):
			parts = append(parts, path)
		case strings.Contains(d.Name(), ".incomplete-part-"):
			temps = append(temps, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return parts, temps
}

// A server killed with SIGKILL in the middle of a backup, then started
// again on the same data directory, takes the backup back at once instead
// of a lease (2 min) later: the execution leaves running, runs again as
// attempt 2 (the API and the log agree) and completes, and the parts the
// killed run left are removed.
func TestRestartAfterKill(t *testing.T) {
	dataDir := t.TempDir()
	srv := servertest.Start(t, &servertest.Options{DataDir: dataDir})
	c := client{t, srv, srv.Token}
	// Uncompressed into 1 MiB parts: the killed run has written parts.
	dir, big := sparseSource(t, 64<<30)
	job, root := filesJob(c, dir, map[string]any{"compression": "none", "max_file_size_mb": 1})

	var x httpapi.Execution
	c.must(http.StatusAccepted, "POST", "/api/backup-jobs/"+job.ID+"/run", nil, &x)
	deadline := time.Now().Add(60 * time.Second)
	var parts []string
	for {
		c.must(http.StatusOK, "GET", "/api/executions/"+x.ID, nil, &x)
		if parts, _ = incompleteParts(t, root); x.Status == "running" && len(parts) >= 2 {
			break
		}
		if x.Status != "queued" && x.Status != "running" {
			t.Fatalf("the backup to kill ended first: %+v", x)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backup did not write two parts within 60 s: %+v", x)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed during attempt %d with parts %v", x.Attempt, parts)
	if err := os.Truncate(big, 4096); err != nil { // the next attempt is quick
		t.Fatal(err)
	}

	restarted := time.Now()
	srv = servertest.Start(t, &servertest.Options{DataDir: dataDir})
	c = client{t, srv, srv.Token}
	for {
		c.must(http.StatusOK, "GET", "/api/executions/"+x.ID, nil, &x)
		if x.Status != "queued" && x.Status != "running" {
			break
		}
		// The killed run's lease is 2 min: a minute means it was not waited for.
		if time.Since(restarted) > time.Minute {
			t.Fatalf("execution still %s (attempt %d) a minute after the restart", x.Status, x.Attempt)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("execution %s at attempt %d, %s after the restart", x.Status, x.Attempt, time.Since(restarted).Round(time.Millisecond))
	if x.Status != "completed" || x.Attempt != 2 {
		t.Fatalf("after the restart: %s at attempt %d (%s); want completed at attempt 2", x.Status, x.Attempt, x.ErrorMessage)
	}
	logs := string(c.must(http.StatusOK, "GET", "/api/executions/"+x.ID+"/logs", nil, nil))
	if !strings.Contains(logs, "queued again as attempt 2") {
		t.Errorf("the execution's log does not say it runs again as attempt 2:\n%s", logs)
	}
	for _, line := range strings.Split(srv.Stderr(), "\n") {
		if strings.Contains(line, "re-queued") && strings.Contains(line, x.ID) && !strings.Contains(line, "attempt=2") {
			t.Errorf("the server log disagrees with the API (attempt 2): %s", line)
		}
	}
	left, temps := incompleteParts(t, root)
	if len(left) > 0 {
		t.Errorf("parts of the killed run left: %v", left)
	}
	if len(temps) > 0 {
		t.Errorf("temporary files of the part the kill interrupted are left: %v", temps)
	}
}
