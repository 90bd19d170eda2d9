// Package e2e holds black-box tests of the reference server: each test
// starts `dataguardian serve` as a process and talks to it over HTTP only.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/dataguardian/dataguardian/httpapi"
	"github.com/dataguardian/dataguardian/internal/servertest"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage/local"
)

// client calls one server with one token.
type client struct {
	t     *testing.T
	srv   *servertest.Server
	token string
}

// call sends body (JSON, nil for none) and returns the status and the
// response body.
func (c client) call(method, path string, body any) (int, []byte) {
	c.t.Helper()
	return c.srv.Do(c.t, method, path, c.token, body)
}

// must is call that fails the test unless the status is want, decoding the
// answer into out (when not nil).
func (c client) must(want int, method, path string, body, out any) []byte {
	c.t.Helper()
	code, b := c.call(method, path, body)
	if code != want {
		c.t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return b
}

// waitExecution polls an execution until it leaves queued/running.
func (c client) waitExecution(id string) httpapi.Execution {
	c.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var x httpapi.Execution
		c.must(http.StatusOK, "GET", "/api/executions/"+id, nil, &x)
		if x.Status != "queued" && x.Status != "running" {
			return x
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("execution %s still %s after 90 s", id, x.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sqliteApp creates a SQLite database of n rows and returns its path.
func sqliteApp(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := db.Exec(`INSERT INTO orders (item) VALUES (?)`, fmt.Sprintf("item-%d-ação", i)); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// mustExec runs statement on the SQLite database at path.
func mustExec(t *testing.T, path, statement string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(statement); err != nil {
		t.Fatalf("%s: %v", statement, err)
	}
}

// content is the row count and a checksum of the orders table.
func content(t *testing.T, path string) (int, string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, item FROM orders ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	h, n := sha256.New(), 0
	for rows.Next() {
		var id int
		var item string
		if err := rows.Scan(&id, &item); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%d\t%s\n", id, item)
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n, hex.EncodeToString(h.Sum(nil))
}

// events reads the server's event stream into a channel of event types
// and entity IDs ("type entity status").
func events(t *testing.T, c client) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", c.srv.URL+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(resp.Body)
	if line, err := r.ReadString('\n'); err != nil || line != ": connected\n" {
		t.Fatalf("events: first line %q, %v", line, err)
	}
	out := make(chan string, 64)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: ")
			if !ok {
				continue
			}
			var ev struct {
				Type     string `json:"type"`
				EntityID string `json:"entity_id"`
				Status   string `json:"status"`
			}
			if json.Unmarshal([]byte(data), &ev) == nil {
				select {
				case out <- ev.Type + " " + ev.EntityID + " " + ev.Status:
				default:
				}
			}
		}
	}()
	return out
}

// TestEveryEndpoint drives every endpoint DESIGN §6 names through a server
// process: the spec's paths and verbs, the statuses and shapes it describes.
func TestEveryEndpoint(t *testing.T) {
	srv := servertest.Start(t, nil)
	c := client{t, srv, srv.Token}
	app := sqliteApp(t, 500)
	wantRows, wantSum := content(t, app)

	// Public endpoints.
	public := client{t, srv, ""}
	public.must(http.StatusOK, "GET", "/health", nil, nil)
	if b := public.must(http.StatusOK, "GET", "/metrics", nil, nil); !bytes.Contains(b, []byte("dataguardian_")) {
		t.Errorf("/metrics has no dataguardian_ metrics")
	}
	if code, _ := public.call("GET", "/api/datasources", nil); code != http.StatusUnauthorized {
		t.Errorf("/api without a token: %d", code)
	}

	// Datasource, the default storage location, a job.
	var ds httpapi.Datasource
	c.must(http.StatusCreated, "POST", "/api/datasources", map[string]any{"name": "app", "type": "sqlite", "path": app}, &ds)
	var dss []httpapi.Datasource
	c.must(http.StatusOK, "GET", "/api/datasources", nil, &dss)
	if len(dss) != 1 || dss[0].ID != ds.ID {
		t.Fatalf("datasources: %+v", dss)
	}
	var hc httpapi.HealthCheck
	c.must(http.StatusOK, "POST", "/api/datasources/"+ds.ID+"/health-check", nil, &hc)
	if hc.Status != "ok" {
		t.Errorf("health check: %+v", hc)
	}
	var hcs []httpapi.HealthCheck
	c.must(http.StatusOK, "GET", "/api/datasources/"+ds.ID+"/health-checks", nil, &hcs)
	if len(hcs) == 0 || hcs[0].Status != "ok" {
		t.Errorf("health checks: %+v", hcs)
	}
	var locs []httpapi.StorageLocation
	c.must(http.StatusOK, "GET", "/api/storage-locations", nil, &locs)
	if len(locs) != 1 || locs[0].Type != "local" {
		t.Fatalf("default storage locations: %+v", locs)
	}
	var job httpapi.BackupJob
	c.must(http.StatusCreated, "POST", "/api/backup-jobs", map[string]any{"name": "nightly", "datasource_id": ds.ID,
		"storage_location_ids": []string{locs[0].ID}, "compression": "gzip"}, &job)

	// Manual backup (spec "Fluxo de backup manual"): 202 queued → completed,
	// with SSE events on the way.
	evs := events(t, c)
	var run httpapi.Execution
	c.must(http.StatusAccepted, "POST", "/api/backup-jobs/"+job.ID+"/run", nil, &run)
	if run.Status != "queued" || run.Operation != "backup" {
		t.Errorf("run: %+v", run)
	}
	backup := c.waitExecution(run.ID)
	if backup.Status != "completed" || backup.BackupPath == "" || !strings.HasPrefix(backup.Checksum, "sha256:") {
		t.Fatalf("backup: %+v", backup)
	}
	seen := map[string]bool{}
	for deadline := time.After(10 * time.Second); !seen["running"] || !seen["completed"]; {
		select {
		case ev := <-evs:
			if f := strings.Fields(ev); len(f) == 3 && f[0] == "execution:status-changed" && f[1] == run.ID {
				seen[f[2]] = true
			}
		case <-deadline:
			t.Fatalf("events seen for the backup: %v", seen)
		}
	}

	// The run folder is on disk and the download is its file, byte for byte.
	m, err := manifest.Load(t.Context(), mustLocal(t, locs[0].Config["path"]), backup.BackupPath)
	if err != nil {
		t.Fatalf("manifest on disk: %v", err)
	}
	dl := c.must(http.StatusOK, "GET", "/api/executions/"+run.ID+"/download", nil, nil)
	if sum := sha256.Sum256(dl); "sha256:"+hex.EncodeToString(sum[:]) != m.Checksum || m.Checksum != backup.Checksum {
		t.Errorf("download sha256 %x, manifest %s, execution %s", sum, m.Checksum, backup.Checksum)
	}
	var xs []httpapi.Execution
	c.must(http.StatusOK, "GET", "/api/backup-jobs/"+job.ID+"/executions?status=completed&limit=1", nil, &xs)
	if len(xs) != 1 || xs[0].ID != run.ID {
		t.Errorf("job executions: %+v", xs)
	}
	if b := c.must(http.StatusOK, "GET", "/api/executions/"+run.ID+"/logs", nil, nil); !bytes.Contains(b, []byte("[BACKUP]")) {
		t.Errorf("logs without [BACKUP]: %s", b)
	}
	c.must(http.StatusOK, "POST", "/api/executions/"+run.ID+"/retry-upload", nil, nil)

	// Backups tab.
	var bds []httpapi.BackupDatasource
	c.must(http.StatusOK, "GET", "/api/backups/datasources", nil, &bds)
	if len(bds) != 1 || bds[0].BackupCount != 1 || bds[0].LastBackupExecutionID != run.ID {
		t.Errorf("backups datasources: %+v", bds)
	}
	var bs []httpapi.Backup
	c.must(http.StatusOK, "GET", "/api/backups/datasources/"+ds.ID, nil, &bs)
	if len(bs) != 1 || !bs[0].Restorable || len(bs[0].Storages) != 1 || bs[0].Storages[0].Status != "available" {
		t.Errorf("datasource backups: %+v", bs)
	}

	// Restore flow (spec "Fluxo de restore"): a wrong phrase is 422 and
	// queues nothing; RESTAURAR brings the data back.
	countExecutions := func() int {
		var all []httpapi.Execution
		c.must(http.StatusOK, "GET", "/api/backup-jobs/"+job.ID+"/executions?limit=1000", nil, &all)
		return len(all)
	}
	before := countExecutions()
	code, b := c.call("POST", "/api/backups/"+run.ID+"/restore", map[string]any{"confirmation_phrase": "restaurar"})
	if code != http.StatusUnprocessableEntity || !bytes.Contains(b, []byte("confirmation_phrase")) {
		t.Errorf("wrong phrase: %d %s", code, b)
	}
	if after := countExecutions(); after != before {
		t.Errorf("a refused restore created an execution: %d → %d", before, after)
	}
	mustExec(t, app, `DELETE FROM orders WHERE id % 2 = 0; UPDATE orders SET item = 'damaged'`)
	var restore httpapi.Execution
	c.must(http.StatusAccepted, "POST", "/api/backups/"+run.ID+"/restore", map[string]any{"confirmation_phrase": "RESTAURAR"}, &restore)
	if x := c.waitExecution(restore.ID); x.Status != "completed" || x.Operation != "restore" {
		t.Fatalf("restore: %+v", x)
	}
	if n, sum := content(t, app); n != wantRows || sum != wantSum {
		t.Errorf("after restore: %d rows %s, want %d rows %s", n, sum, wantRows, wantSum)
	}
	var marked httpapi.Execution
	c.must(http.StatusOK, "POST", "/api/executions/"+run.ID+"/mark-restored",
		map[string]any{"restored_by": "operador", "reason": "rollback após deploy"}, &marked)
	if marked.RestoredBy != "operador" || marked.RestoredAt == nil {
		t.Errorf("mark-restored: %+v", marked)
	}

	// Notifications: the backup and the restore produced some.
	var ns []httpapi.Notification
	c.must(http.StatusOK, "GET", "/api/notifications?type=backup_completed", nil, &ns)
	if len(ns) == 0 || ns[0].Type != "backup_completed" {
		t.Fatalf("notifications: %+v", ns)
	}
	var n httpapi.Notification
	c.must(http.StatusOK, "PUT", "/api/notifications/"+ns[0].ID+"/read", nil, &n)
	if !n.Read {
		t.Errorf("marked read: %+v", n)
	}
	c.must(http.StatusOK, "PUT", "/api/notifications/read-all", nil, nil)
	c.must(http.StatusNoContent, "DELETE", "/api/notifications/"+ns[0].ID, nil, nil)
	if code, _ := c.call("PUT", "/api/notifications/"+ns[0].ID+"/read", nil); code != http.StatusNotFound {
		t.Errorf("deleted notification: %d", code)
	}

	// Templates: versions are immutable.
	var tpl httpapi.NotificationTemplate
	c.must(http.StatusCreated, "POST", "/api/system/notification-templates",
		map[string]any{"type": "backup_failed", "channel": "webhook", "body": "falhou: {{.Message}}"}, &tpl)
	var v2, v3 httpapi.NotificationTemplate
	c.must(http.StatusOK, "PUT", "/api/system/notification-templates/"+tpl.ID, map[string]any{"body": "v2 {{.Message}}"}, &v2)
	c.must(http.StatusCreated, "POST", "/api/system/notification-templates/"+tpl.ID+"/new-version", map[string]any{}, &v3)
	var tpls []httpapi.NotificationTemplate
	c.must(http.StatusOK, "GET", "/api/system/notification-templates", nil, &tpls)
	if v2.Version != tpl.Version+1 || v3.Version != tpl.Version+2 || v3.Body != tpl.Body {
		t.Errorf("template versions: %d %d %d (v3 body %q)", tpl.Version, v2.Version, v3.Version, v3.Body)
	}

	// Health and dashboard.
	var h httpapi.APIHealth
	c.must(http.StatusOK, "GET", "/api/health", nil, &h)
	if h.Services.Database.Status != "ok" || len(h.Services.Storages) != 1 {
		t.Errorf("api health: %+v", h)
	}
	c.must(http.StatusOK, "GET", "/api/health/datasources", nil, nil)
	c.must(http.StatusOK, "GET", "/api/health/storage", nil, nil)
	var ov map[string]any
	c.must(http.StatusOK, "GET", "/api/dashboard/overview", nil, &ov)
	if len(ov) == 0 {
		t.Errorf("empty dashboard")
	}
}

// mustLocal opens the local storage at path the server wrote to.
func mustLocal(t *testing.T, path string) *local.Local {
	t.Helper()
	if path == "" {
		t.Fatal("storage location without a path")
	}
	s, err := local.New(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
