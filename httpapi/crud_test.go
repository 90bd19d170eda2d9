package httpapi_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dataguardian/dataguardian"

	"github.com/dataguardian/dataguardian/engine"
	"github.com/dataguardian/dataguardian/httpapi"
	"github.com/dataguardian/dataguardian/storage"
	"github.com/dataguardian/dataguardian/storage/local"
)

// wantProblem fails unless the answer is problem JSON with status code,
// naming field (when not empty) and saying every one of words.
func wantProblem(t *testing.T, what string, code int, b []byte, wantCode int, field string, words ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("%s: %d %s, want %d", what, code, b, wantCode)
		return
	}
	p := decode[problemJSON](t, b)
	if field != "" {
		wantLocation(t, p, field)
	}
	for _, w := range words {
		if !strings.Contains(string(b), w) {
			t.Errorf("%s: %s does not say %q", what, b, w)
		}
	}
}

func sqliteFile(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDatasourceUpdateDelete(t *testing.T) {
	e, app := newEngine(t)
	c := newServer(t, e)
	ctx := context.Background()

	tls := map[string]string{"sslmode": "verify-full"} // a password goes to another machine over TLS only
	code, b, _ := c.do("POST", "/api/datasources", map[string]any{"name": "pg", "type": "postgres", "host": "db1",
		"database": "app", "username": "u", "password": secret, "options": tls})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	ds := decode[httpapi.Datasource](t, b)
	password := func() string {
		t.Helper()
		stored, err := e.Store().GetDatasource(ctx, ds.ID)
		if err != nil {
			t.Fatal(err)
		}
		src, err := e.Source(stored)
		if err != nil {
			t.Fatal(err)
		}
		return src.Password
	}

	// Password omitted: kept while the connection stays; enabled omitted: kept.
	code, b, _ = c.do("PUT", "/api/datasources/"+ds.ID, map[string]any{"name": "pg main", "host": "db1",
		"database": "app", "username": "u", "options": tls})
	got := decode[httpapi.Datasource](t, b)
	if code != 200 || got.Name != "pg main" || got.Host != "db1" || got.Type != "postgres" || !got.Enabled ||
		strings.Contains(string(b), secret) || strings.Contains(string(b), "password") {
		t.Fatalf("update: %d %s", code, b)
	}
	if pw := password(); pw != secret {
		t.Errorf("password %q after an update without one", pw)
	}
	// Another host without the password: the stored one does not follow.
	code, b, _ = c.do("PUT", "/api/datasources/"+ds.ID, map[string]any{"name": "pg main", "host": "db2",
		"database": "app", "username": "u", "options": tls})
	wantProblem(t, "move without the password", code, b, 422, "body.password", "host changed")
	if pw := password(); pw != secret {
		t.Errorf("password %q after a refused move", pw)
	}
	code, b, _ = c.do("PUT", "/api/datasources/"+ds.ID, map[string]any{"name": "pg main", "type": "postgres",
		"host": "db2", "database": "app", "options": tls, "password": "new-" + secret, "enabled": false})
	if got = decode[httpapi.Datasource](t, b); code != 200 || got.Enabled || strings.Contains(string(b), secret) {
		t.Fatalf("update password: %d %s", code, b)
	}
	if pw := password(); pw != "new-"+secret {
		t.Errorf("password %q, want the new one", pw)
	}
	code, b, _ = c.do("PUT", "/api/datasources/"+ds.ID, map[string]any{"name": "pg main", "host": "db2", "database": "app",
		"clear_password": true})
	if code != 200 || password() != "" {
		t.Errorf("clear password: %d %s, password %q", code, b, password())
	}

	// 422 naming the field, 409, 404.
	code, b, _ = c.do("PUT", "/api/datasources/"+ds.ID, map[string]any{"name": "pg main", "type": "mysql"})
	wantProblem(t, "type change", code, b, 422, "body.type", "type cannot change")
	code, b, _ = c.do("PUT", "/api/datasources/"+ds.ID, map[string]any{"name": "pg main", "type": "oracle"})
	wantProblem(t, "unknown type", code, b, 422, "body.type")
	code, b, _ = c.do("PUT", "/api/datasources/"+ds.ID, map[string]any{"name": "pg main", "password": "x", "clear_password": true})
	wantProblem(t, "password and clear_password", code, b, 422, "body.clear_password")
	code, b, _ = c.do("PUT", "/api/datasources/"+ds.ID, map[string]any{"name": ""})
	wantProblem(t, "empty name", code, b, 422, "body.name")
	appDS := create[httpapi.Datasource](c, "/api/datasources", map[string]any{"name": "app", "type": "sqlite", "path": app})
	code, b, _ = c.do("PUT", "/api/datasources/"+ds.ID, map[string]any{"name": "app", "host": "db2", "database": "app"})
	wantProblem(t, "duplicate name", code, b, http.StatusConflict, "")
	code, b, _ = c.do("PUT", "/api/datasources/"+missingID, map[string]any{"name": "x"})
	wantProblem(t, "update missing", code, b, http.StatusNotFound, "")
	code, b, _ = c.do("DELETE", "/api/datasources/"+missingID, nil)
	wantProblem(t, "delete missing", code, b, http.StatusNotFound, "")

	// A sync job may not end up copying a database onto itself.
	copyDS := create[httpapi.Datasource](c, "/api/datasources", map[string]any{"name": "copy", "type": "sqlite", "path": sqliteFile(t, "copy.db")})
	loc := create[httpapi.StorageLocation](c, "/api/storage-locations", map[string]any{"name": "disk", "config": map[string]string{"path": t.TempDir()}})
	code, b, _ = c.do("POST", "/api/sync-jobs", map[string]any{"name": "to copy", "source_datasource_id": appDS.ID,
		"target_datasource_id": copyDS.ID, "storage_location_id": loc.ID})
	if code != http.StatusCreated {
		t.Fatalf("create sync job: %d %s", code, b)
	}
	sj := decode[httpapi.SyncJob](t, b)
	code, b, _ = c.do("PUT", "/api/datasources/"+copyDS.ID, map[string]any{"name": "copy", "path": app})
	wantProblem(t, "target onto source", code, b, 422, "body.path", "to copy")

	// Delete: refused while jobs use it, naming them and the fix.
	code, b, _ = c.do("POST", "/api/backup-jobs", map[string]any{"name": "nightly", "datasource_id": appDS.ID,
		"storage_location_ids": []string{loc.ID}})
	if code != http.StatusCreated {
		t.Fatalf("create job: %d %s", code, b)
	}
	job := decode[httpapi.BackupJob](t, b)
	code, b, _ = c.do("DELETE", "/api/datasources/"+appDS.ID, nil)
	wantProblem(t, "delete with a job", code, b, http.StatusConflict, "", "nightly", job.ID, "delete them first")
	if code, b, _ = c.do("DELETE", "/api/backup-jobs/"+job.ID, nil); code != http.StatusNoContent {
		t.Fatalf("delete job: %d %s", code, b)
	}
	code, b, _ = c.do("DELETE", "/api/datasources/"+appDS.ID, nil)
	wantProblem(t, "delete with a sync job", code, b, http.StatusConflict, "", "to copy", sj.ID)
	if code, b, _ = c.do("DELETE", "/api/sync-jobs/"+sj.ID, nil); code != http.StatusNoContent {
		t.Fatalf("delete sync job: %d %s", code, b)
	}
	if code, b, _ = c.do("DELETE", "/api/datasources/"+appDS.ID, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", code, b)
	}
	if code, _, _ = c.do("GET", "/api/datasources/"+appDS.ID, nil); code != http.StatusNotFound {
		t.Errorf("deleted datasource: %d", code)
	}

	// A datasource with backups stays: it is disabled instead.
	backedUp := &engine.Datasource{Name: "app again", Type: "sqlite", Path: app}
	if err := e.CreateDatasource(ctx, backedUp, ""); err != nil {
		t.Fatal(err)
	}
	bj := &engine.BackupJob{Name: "once", DatasourceID: backedUp.ID, StorageLocationIDs: []string{loc.ID}}
	if err := e.CreateBackupJob(ctx, bj); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RunBackup(ctx, bj.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteBackupJob(ctx, bj.ID); err != nil {
		t.Fatal(err)
	}
	code, b, _ = c.do("DELETE", "/api/datasources/"+backedUp.ID, nil)
	wantProblem(t, "delete with backups", code, b, http.StatusConflict, "", "execution(s)", "set enabled to false")
}

func TestSyncJobUpdateDelete(t *testing.T) {
	e, app := newEngine(t)
	c := newServer(t, e)
	ctx := context.Background()
	src := &engine.Datasource{Name: "app", Type: "sqlite", Path: app}
	tgt := &engine.Datasource{Name: "copy", Type: "sqlite", Path: sqliteFile(t, "copy.db")}
	loc := &engine.StorageLocation{Name: "disk", Type: "local", Config: map[string]string{"path": t.TempDir()}}
	for _, err := range []error{e.CreateDatasource(ctx, src, ""), e.CreateDatasource(ctx, tgt, ""), e.CreateStorageLocation(ctx, loc)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	body := map[string]any{"name": "to copy", "source_datasource_id": src.ID, "target_datasource_id": tgt.ID,
		"storage_location_id": loc.ID, "schedule": "0 3 * * *"}
	code, b, _ := c.do("POST", "/api/sync-jobs", body)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	sj := decode[httpapi.SyncJob](t, b)

	body["name"], body["schedule"], body["timezone"], body["enabled"] = "renamed", "30 4 * * *", "America/Sao_Paulo", false
	code, b, _ = c.do("PUT", "/api/sync-jobs/"+sj.ID, body)
	got := decode[httpapi.SyncJob](t, b)
	if code != 200 || got.Name != "renamed" || got.Enabled || got.Timezone != "America/Sao_Paulo" ||
		got.NextExecutionAt == nil || got.NextExecutionAt.Equal(*sj.NextExecutionAt) {
		t.Fatalf("update: %d %s", code, b)
	}
	delete(body, "enabled")
	code, b, _ = c.do("PUT", "/api/sync-jobs/"+sj.ID, body)
	if again := decode[httpapi.SyncJob](t, b); code != 200 || again.Enabled || !again.NextExecutionAt.Equal(*got.NextExecutionAt) {
		t.Errorf("update without enabled or schedule change: %d %s", code, b)
	}
	bad := map[string]any{"name": "renamed", "source_datasource_id": src.ID, "target_datasource_id": src.ID,
		"storage_location_id": loc.ID}
	code, b, _ = c.do("PUT", "/api/sync-jobs/"+sj.ID, bad)
	wantProblem(t, "onto itself", code, b, 422, "body.target_datasource_id")
	bad["target_datasource_id"], bad["schedule"] = tgt.ID, "every day"
	code, b, _ = c.do("PUT", "/api/sync-jobs/"+sj.ID, bad)
	wantProblem(t, "bad schedule", code, b, 422, "body.schedule")
	code, b, _ = c.do("PUT", "/api/sync-jobs/"+missingID, body)
	wantProblem(t, "update missing", code, b, http.StatusNotFound, "")

	// Its hidden backup job is neither listed nor changed through /api/backup-jobs.
	code, b, _ = c.do("POST", "/api/sync-jobs/"+sj.ID+"/run", nil)
	if code != http.StatusAccepted {
		t.Fatalf("run: %d %s", code, b)
	}
	run := decode[httpapi.SyncExecution](t, b)
	x, err := e.Store().GetSyncExecution(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	x.Status = engine.ExecutionRunning
	if err := e.Store().UpdateSyncExecution(ctx, x, "status"); err != nil {
		t.Fatal(err)
	}
	code, b, _ = c.do("DELETE", "/api/sync-jobs/"+sj.ID, nil)
	wantProblem(t, "delete while running", code, b, http.StatusConflict, "", run.ID)
	x.Status = engine.ExecutionFailed
	if err := e.Store().UpdateSyncExecution(ctx, x, "status"); err != nil {
		t.Fatal(err)
	}
	hidden := &engine.BackupJob{Name: engine.SyncBackupJobName(sj.ID), DatasourceID: src.ID, StorageLocationIDs: []string{loc.ID}}
	if err := e.CreateBackupJob(ctx, hidden); err != nil {
		t.Fatal(err)
	}
	code, b, _ = c.do("PUT", "/api/backup-jobs/"+hidden.ID, map[string]any{"name": "mine", "storage_location_ids": []string{loc.ID}})
	wantProblem(t, "update hidden job", code, b, http.StatusConflict, "", "/api/sync-jobs/"+sj.ID)
	code, b, _ = c.do("DELETE", "/api/backup-jobs/"+hidden.ID, nil)
	wantProblem(t, "delete hidden job", code, b, http.StatusConflict, "", "/api/sync-jobs/"+sj.ID)

	if code, b, _ = c.do("DELETE", "/api/sync-jobs/"+sj.ID, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", code, b)
	}
	if code, _, _ = c.do("GET", "/api/sync-jobs/"+sj.ID, nil); code != http.StatusNotFound {
		t.Errorf("deleted sync job: %d", code)
	}
	code, b, _ = c.do("DELETE", "/api/sync-jobs/"+sj.ID, nil)
	wantProblem(t, "delete again", code, b, http.StatusNotFound, "")
}

func TestRetryUploadPartialFailure(t *testing.T) {
	e, app := newEngine(t)
	c := newServer(t, e)
	ctx := context.Background()
	ds := &engine.Datasource{Name: "app", Type: "sqlite", Path: app}
	if err := e.CreateDatasource(ctx, ds, ""); err != nil {
		t.Fatal(err)
	}
	var roots, ids []string
	for _, n := range []string{"good", "broken"} {
		root := filepath.Join(t.TempDir(), n)
		loc := &engine.StorageLocation{Name: n, Type: "local", Config: map[string]string{"path": root}}
		if err := e.CreateStorageLocation(ctx, loc); err != nil {
			t.Fatal(err)
		}
		roots, ids = append(roots, root), append(ids, loc.ID)
	}
	job := &engine.BackupJob{Name: "nightly", DatasourceID: ds.ID, StorageLocationIDs: ids}
	if err := e.CreateBackupJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	x, err := e.RunBackup(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The second storage's directory becomes a regular file: every write
	// there fails, even for root.
	if err := os.RemoveAll(roots[1]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(roots[1], []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}

	code, b, _ := c.do("POST", "/api/executions/"+x.ID+"/retry-upload", nil)
	res := decode[httpapi.RetryUploadResult](t, b)
	if code != http.StatusOK || res.Complete || res.Execution.ID != x.ID || len(res.Storages) != 2 {
		t.Fatalf("retry-upload with a broken storage: %d %s", code, b)
	}
	for _, s := range res.Storages {
		want := map[string]string{ids[0]: "available", ids[1]: "unreachable"}[s.StorageLocationID]
		if s.Status != want || (want == "unreachable") != (s.ErrorMessage != "") {
			t.Errorf("storage %s (%s): %+v, want %s", s.StorageLocationName, s.StorageLocationID, s, want)
		}
	}

	// Repaired: complete.
	if err := os.Remove(roots[1]); err != nil {
		t.Fatal(err)
	}
	code, b, _ = c.do("POST", "/api/executions/"+x.ID+"/retry-upload", nil)
	if res = decode[httpapi.RetryUploadResult](t, b); code != 200 || !res.Complete || res.Storages[0].Status != "available" ||
		res.Storages[1].Status != "available" {
		t.Fatalf("retry-upload after repair: %d %s", code, b)
	}

	// No copy left anywhere: 409, not 500.
	for _, r := range roots {
		if err := os.RemoveAll(filepath.Join(r, filepath.FromSlash(x.BackupPath))); err != nil {
			t.Fatal(err)
		}
	}
	code, b, _ = c.do("POST", "/api/executions/"+x.ID+"/retry-upload", nil)
	wantProblem(t, "no copy", code, b, http.StatusConflict, "", "no storage holds a verified copy")
}

func TestListFilters(t *testing.T) {
	e, _ := newEngine(t)
	c := newServer(t, e)
	ctx := context.Background()
	for _, d := range []struct{ name, typ, status string }{
		{"a", "postgres", "healthy"}, {"b", "postgres", "critical"}, {"c", "mysql", "critical"}, {"d", "postgres", "critical"},
	} {
		ds := &engine.Datasource{Name: d.name, Type: d.typ, Host: "h-" + d.name, Database: "app", Username: "u"}
		if err := e.CreateDatasource(ctx, ds, ""); err != nil {
			t.Fatal(err)
		}
		ds.Status = engine.DatasourceStatus(d.status)
		if err := e.Store().UpdateDatasource(ctx, ds, "status"); err != nil {
			t.Fatal(err)
		}
	}
	names := func(path string) string {
		t.Helper()
		code, b, _ := c.do("GET", path, nil)
		if code != 200 {
			t.Fatalf("%s: %d %s", path, code, b)
		}
		var out []string
		for _, d := range decode[[]httpapi.Datasource](t, b) {
			out = append(out, d.Name)
		}
		return strings.Join(out, ",")
	}
	for path, want := range map[string]string{
		"/api/datasources":                                  "a,b,c,d",
		"/api/datasources?type=postgres":                    "a,b,d",
		"/api/datasources?status=critical":                  "b,c,d",
		"/api/datasources?type=postgres&status=critical":    "b,d",
		"/api/datasources?type=postgres&limit=1&offset=1":   "b",
		"/api/datasources?status=critical&limit=5&offset=2": "d",
		"/api/datasources?offset=9":                         "",
	} {
		if got := names(path); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
	// Paging by the Link header: the filter kept, offset advanced, none
	// on the last page.
	var pages []string
	for path := "/api/datasources?type=postgres&limit=2"; path != ""; {
		code, b, hdr := c.do("GET", path, nil)
		if code != 200 || len(pages) > 3 {
			t.Fatalf("%s: %d %s (pages so far %v)", path, code, b, pages)
		}
		var names []string
		for _, d := range decode[[]httpapi.Datasource](t, b) {
			names = append(names, d.Name)
		}
		pages = append(pages, strings.Join(names, ","))
		path = ""
		if link := hdr.Get("Link"); link != "" {
			next, ok := strings.CutSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
			if !ok || !strings.Contains(next, "type=postgres") {
				t.Fatalf("Link %q", link)
			}
			path = next
		}
	}
	if got := strings.Join(pages, " | "); got != "a,b | d" {
		t.Errorf("pages by Link: %q, want \"a,b | d\"", got)
	}
	if _, _, hdr := c.do("GET", "/api/datasources?limit=4", nil); hdr.Get("Link") != "" {
		t.Errorf("a last page that is full has a Link: %q", hdr.Get("Link"))
	}

	code, b, _ := c.do("GET", "/api/datasources?status=sick", nil)
	wantProblem(t, "bad status", code, b, 422, "query.status")
	code, b, _ = c.do("GET", "/api/datasources?limit=0", nil)
	wantProblem(t, "bad limit", code, b, 422, "query.limit")
}

// TestAPIHealthDoesNotProbeStorage counts the storage opens behind
// /api/health: the first call has no recorded result and probes; later
// calls serve the last result, until a check with refresh=true.
func TestAPIHealthDoesNotProbeStorage(t *testing.T) {
	var opens atomic.Int64
	e, err := dataguardian.New(context.Background(), engine.Config{DataDir: t.TempDir(), Logger: quiet(),
		StorageOpeners: map[string]engine.StorageOpener{"local": func(_ context.Context, loc *engine.StorageLocation) (storage.Storage, error) {
			opens.Add(1)
			return local.New(loc.Config["path"])
		}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	for _, n := range []string{"a", "b"} {
		if err := e.CreateStorageLocation(context.Background(), &engine.StorageLocation{Name: n, Type: "local",
			Config: map[string]string{"path": t.TempDir()}}); err != nil {
			t.Fatal(err)
		}
	}
	c := newServer(t, e)
	get := func(path string, wantOpens int64) {
		t.Helper()
		opens.Store(0)
		code, b, _ := c.do("GET", path, nil)
		if code != 200 || !strings.Contains(string(b), `"status":"ok"`) {
			t.Fatalf("%s: %d %s", path, code, b)
		}
		if got := opens.Load(); got != wantOpens {
			t.Errorf("%s: %d storage opens, want %d", path, got, wantOpens)
		}
	}
	get("/api/health", 2)
	for range 5 {
		get("/api/health", 0)
	}
	get("/api/health/storage", 0)
	get("/api/dashboard/overview", 0)
	get("/api/health/storage?refresh=true", 2)
	get("/api/health", 0)
}
