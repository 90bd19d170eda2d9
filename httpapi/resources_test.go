package httpapi_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dataguardian/dataguardian/engine"
	"github.com/dataguardian/dataguardian/httpapi"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage/local"
)

const missingID = "00000000-0000-0000-0000-000000000000"

type resClient struct {
	t   *testing.T
	url string
}

func (c resClient) do(method, path string, body any, hdr ...string) (int, []byte, http.Header) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.url+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// create POSTs body to path, fails the test unless it answers 201, and
// returns the created object.
func create[T any](c resClient, path string, body any) T {
	c.t.Helper()
	code, b, _ := c.do("POST", path, body)
	if code != http.StatusCreated {
		c.t.Fatalf("POST %s: %d %s", path, code, b)
	}
	return decode[T](c.t, b)
}

func newServer(t *testing.T, e *engine.Engine) resClient {
	srv := httptest.NewServer(httpapi.New(e, &httpapi.Options{Logger: quiet()}))
	t.Cleanup(srv.Close)
	return resClient{t: t, url: srv.URL}
}

// runQueued runs a queued backup synchronously, as a worker would.
func runQueued(t *testing.T, e *engine.Engine, id string) {
	t.Helper()
	if err := e.ExecuteBackup(context.Background(), id); err != nil {
		t.Fatalf("backup %s: %v", id, err)
	}
}

func TestResourcesServerFlow(t *testing.T) {
	e, app := newEngine(t)
	c := newServer(t, e)
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "backups")

	code, b, _ := c.do("POST", "/api/storage-locations", map[string]any{"name": "disk", "type": "local",
		"config": map[string]string{"path": root, "secret_key": "hunter2"}})
	if code != http.StatusCreated || bytes.Contains(b, []byte("hunter2")) {
		t.Fatalf("create storage: %d %s", code, b)
	}
	loc := decode[httpapi.StorageLocation](t, b)
	if loc.Config["path"] != root || !loc.Enabled {
		t.Fatalf("storage %+v", loc)
	}
	code, b, _ = c.do("POST", "/api/datasources", map[string]any{"name": "app", "type": "sqlite", "path": app})
	if code != http.StatusCreated {
		t.Fatalf("create datasource: %d %s", code, b)
	}
	ds := decode[httpapi.Datasource](t, b)
	code, b, _ = c.do("POST", "/api/backup-jobs", map[string]any{"name": "nightly", "datasource_id": ds.ID,
		"schedule": "0 6 * * *", "timezone": "America/Sao_Paulo", "storage_location_ids": []string{loc.ID},
		"compression": "gzip", "retention": map[string]any{"max_backups": 3, "auto_delete": true}})
	if code != http.StatusCreated {
		t.Fatalf("create job: %d %s", code, b)
	}
	job := decode[httpapi.BackupJob](t, b)
	if job.NextExecutionAt == nil || job.Retention.MaxBackups != 3 || !job.Retention.AutoDelete || !job.Enabled ||
		job.MaxFileSizeMB == 0 || job.Compression != "gzip" {
		t.Fatalf("job %s", b)
	}

	code, b, _ = c.do("POST", "/api/backup-jobs/"+job.ID+"/run", nil)
	if code != http.StatusAccepted {
		t.Fatalf("run: %d %s", code, b)
	}
	run := decode[httpapi.Execution](t, b)
	// Not completed yet: no download.
	if code, b, _ = c.do("GET", "/api/executions/"+run.ID+"/download", nil); code != http.StatusConflict {
		t.Errorf("download of a queued backup: %d %s", code, b)
	}
	runQueued(t, e, run.ID)

	code, b, _ = c.do("GET", "/api/backup-jobs/"+job.ID+"/executions?status=completed", nil)
	if xs := decode[[]httpapi.Execution](t, b); code != 200 || len(xs) != 1 || xs[0].ID != run.ID {
		t.Fatalf("executions: %d %s", code, b)
	}
	code, b, _ = c.do("GET", "/api/executions/"+run.ID, nil)
	if run = decode[httpapi.Execution](t, b); code != 200 || run.Status != "completed" || run.BackupPath == "" {
		t.Fatalf("get execution: %d %s", code, b)
	}
	code, b, _ = c.do("GET", "/api/executions/"+run.ID+"/logs", nil)
	logs := decode[[]httpapi.ExecutionLog](t, b)
	if code != 200 || len(logs) == 0 || !strings.HasPrefix(logs[0].Message, "[BACKUP]") {
		t.Fatalf("logs: %d %s", code, b)
	}
	for i := 1; i < len(logs); i++ {
		if logs[i].At.Before(logs[i-1].At) {
			t.Errorf("logs not oldest first: %s", b)
		}
	}

	// Download: the single part as is, with Range.
	st, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Load(ctx, st, run.BackupPath)
	if err != nil || len(m.Chunks) != 1 {
		t.Fatalf("manifest: %v %+v", err, m)
	}
	rc, err := st.Open(ctx, run.BackupPath+"/"+m.Chunks[0].File, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := io.ReadAll(rc)
	rc.Close()
	code, b, hdr := c.do("GET", "/api/executions/"+run.ID+"/download", nil)
	if code != 200 || !bytes.Equal(b, want) {
		t.Fatalf("download: %d, %d bytes, want %d", code, len(b), len(want))
	}
	if hdr.Get("Content-Length") != itoa(len(want)) || !strings.Contains(hdr.Get("Content-Disposition"), m.Chunks[0].File) ||
		hdr.Get("Accept-Ranges") != "bytes" {
		t.Errorf("download headers: %v", hdr)
	}
	code, b, hdr = c.do("GET", "/api/executions/"+run.ID+"/download", nil, "Range", "bytes=2-9")
	if code != http.StatusPartialContent || !bytes.Equal(b, want[2:10]) || hdr.Get("Content-Range") == "" {
		t.Errorf("range: %d %q %v", code, b, hdr)
	}

	// Retry-upload on a healthy backup: nothing to do, 200.
	code, b, _ = c.do("POST", "/api/executions/"+run.ID+"/retry-upload", nil)
	if res := decode[httpapi.RetryUploadResult](t, b); code != 200 || res.Execution.ID != run.ID ||
		len(res.Storages) != 1 || res.Storages[0].Status != "available" {
		t.Errorf("retry-upload: %d %s", code, b)
	}

	// Mark restored.
	code, b, _ = c.do("POST", "/api/executions/"+run.ID+"/mark-restored", map[string]any{
		"restored_at": "2025-02-13T10:30:00Z", "restored_by": "operador",
		"reason": "Rollback após deploy com bug na migração de dados"})
	if x := decode[httpapi.Execution](t, b); code != 200 || x.RestoredBy != "operador" || x.RestoredAt == nil ||
		x.RestoredAt.Format("2006-01-02T15:04:05Z07:00") != "2025-02-13T10:30:00Z" || !strings.HasPrefix(x.RestoreReason, "Rollback") {
		t.Fatalf("mark-restored: %d %s", code, b)
	}
	stored, _ := e.Store().GetExecution(ctx, run.ID)
	if stored.RestoredBy != "operador" {
		t.Errorf("stored %+v", stored)
	}
	code, b, _ = c.do("POST", "/api/executions/"+run.ID+"/mark-restored", map[string]any{"restored_by": "op"})
	if code != 422 || !bytes.Contains(b, []byte("required property reason")) {
		t.Errorf("mark-restored without reason: %d %s", code, b)
	}
	code, b, _ = c.do("POST", "/api/executions/"+run.ID+"/mark-restored", map[string]any{"restored_by": "op",
		"reason": "r", "restored_at": "2999-01-01T00:00:00Z"})
	if p := decode[problemJSON](t, b); code != 422 {
		t.Errorf("mark-restored in the future: %d %s", code, b)
	} else {
		wantLocation(t, p, "body.restored_at")
	}

	// Update: re-validated, next_execution_at recomputed on a schedule change.
	code, b, _ = c.do("PUT", "/api/backup-jobs/"+job.ID, map[string]any{"name": "nightly", "schedule": "30 1 * * *",
		"storage_location_ids": []string{loc.ID}, "enabled": false})
	upd := decode[httpapi.BackupJob](t, b)
	if code != 200 || upd.Schedule != "30 1 * * *" || upd.Enabled || upd.NextExecutionAt == nil ||
		upd.NextExecutionAt.Equal(*job.NextExecutionAt) || upd.Retention.MaxBackups != 0 {
		t.Fatalf("update job: %d %s", code, b)
	}
	code, b, _ = c.do("PUT", "/api/backup-jobs/"+job.ID, map[string]any{"name": "nightly", "schedule": "not cron",
		"storage_location_ids": []string{loc.ID}})
	if p := decode[problemJSON](t, b); code != 422 {
		t.Errorf("bad schedule: %d %s", code, b)
	} else {
		wantLocation(t, p, "body.schedule")
	}
	code, b, _ = c.do("PUT", "/api/backup-jobs/"+job.ID, map[string]any{"name": "nightly",
		"storage_location_ids": []string{missingID}})
	if p := decode[problemJSON](t, b); code != 422 {
		t.Errorf("unknown storage: %d %s", code, b)
	} else {
		wantLocation(t, p, "body.storage_location_ids")
	}

	// A storage location in use cannot be deleted; a job can, keeping its backups.
	if code, b, _ = c.do("DELETE", "/api/storage-locations/"+loc.ID, nil); code != http.StatusConflict {
		t.Errorf("delete storage in use: %d %s", code, b)
	}
	if code, b, _ = c.do("DELETE", "/api/backup-jobs/"+job.ID, nil); code != http.StatusNoContent {
		t.Fatalf("delete job: %d %s", code, b)
	}
	if code, _, _ = c.do("GET", "/api/backup-jobs/"+job.ID, nil); code != 404 {
		t.Errorf("deleted job: %d", code)
	}
	code, b, _ = c.do("GET", "/api/executions/"+run.ID+"/download", nil)
	if code != 200 || !bytes.Equal(b, want) {
		t.Errorf("download after the job was deleted: %d", code)
	}
	if code, b, _ = c.do("DELETE", "/api/storage-locations/"+loc.ID, nil); code != http.StatusNoContent {
		t.Errorf("delete storage: %d %s", code, b)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestSplitBackupDownloadZip(t *testing.T) {
	e, _ := newEngine(t)
	ctx := context.Background()
	dir := t.TempDir()
	app := filepath.Join(dir, "big.db")
	db, err := sql.Open("sqlite", app)
	if err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, 3<<20)
	rand.Read(blob)
	if _, err := db.Exec(`CREATE TABLE t (b BLOB)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO t VALUES (?)`, blob); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ds := &engine.Datasource{Name: "big", Type: "sqlite", Path: app}
	if err := e.CreateDatasource(ctx, ds, ""); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "backups")
	loc := &engine.StorageLocation{Name: "disk", Type: "local", Config: map[string]string{"path": root}}
	if err := e.CreateStorageLocation(ctx, loc); err != nil {
		t.Fatal(err)
	}
	job := &engine.BackupJob{Name: "big", DatasourceID: ds.ID, StorageLocationIDs: []string{loc.ID},
		Compression: "none", MaxFileSizeMB: 1}
	if err := e.CreateBackupJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	x, err := e.RunBackup(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := local.New(root)
	m, err := manifest.Load(ctx, st, x.BackupPath)
	if err != nil || len(m.Chunks) < 2 {
		t.Fatalf("want a split backup: %v %d", err, len(m.Chunks))
	}

	c := newServer(t, e)
	code, b, hdr := c.do("GET", "/api/executions/"+x.ID+"/download", nil)
	if code != 200 || hdr.Get("Content-Type") != "application/zip" || !strings.Contains(hdr.Get("Content-Disposition"), ".zip") {
		t.Fatalf("download: %d %v", code, hdr)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	sums := map[string]string{}
	for _, f := range zr.File {
		if f.Method != zip.Store {
			t.Errorf("%s: method %d, want stored", f.Name, f.Method)
		}
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		r.Close()
		sums[f.Name] = "sha256:" + hex.EncodeToString(h.Sum(nil))
	}
	if _, ok := sums[manifest.FileName]; !ok || len(sums) != len(m.Chunks)+1 {
		t.Fatalf("zip entries %v", sums)
	}
	for _, ch := range m.Chunks {
		if sums[filepath.Base(ch.File)] != ch.Checksum {
			t.Errorf("%s: sha256 %s, manifest %s", ch.File, sums[filepath.Base(ch.File)], ch.Checksum)
		}
	}

	// A damaged part: checksums are verified first, nothing is sent.
	key := x.BackupPath + "/" + m.Chunks[1].File
	if err := st.Put(ctx, key, bytes.NewReader(make([]byte, m.Chunks[1].SizeBytes)), nil); err != nil {
		t.Fatal(err)
	}
	code, b, hdr = c.do("GET", "/api/executions/"+x.ID+"/download", nil)
	if code != http.StatusConflict || hdr.Get("Content-Type") != "application/problem+json" {
		t.Errorf("damaged backup: %d %s", code, b)
	}
}

func TestResourcesHandlers(t *testing.T) {
	e, app := newEngine(t)
	api := newTestAPI(t, e)
	ctx := context.Background()

	// Storage locations: validation, secrets, CRUD, pagination.
	resp := api.Post("/api/storage-locations", map[string]any{"name": "bad", "type": "ftp", "config": map[string]string{}})
	if resp.Code != 422 {
		t.Fatalf("bad type: %d %s", resp.Code, resp.Body)
	}
	wantLocation(t, decode[problemJSON](t, resp.Body.Bytes()), "body.type")
	resp = api.Post("/api/storage-locations", map[string]any{"name": "bad", "config": map[string]string{}})
	if resp.Code != 422 {
		t.Fatalf("no path: %d %s", resp.Code, resp.Body)
	}
	wantLocation(t, decode[problemJSON](t, resp.Body.Bytes()), "body.config.path")
	var locs []httpapi.StorageLocation
	for _, n := range []string{"a", "b", "c"} {
		resp = api.Post("/api/storage-locations", map[string]any{"name": n,
			"config": map[string]string{"path": filepath.Join(t.TempDir(), n), "password": "pw-" + n}})
		if resp.Code != 201 {
			t.Fatalf("create %s: %d %s", n, resp.Code, resp.Body)
		}
		locs = append(locs, decode[httpapi.StorageLocation](t, resp.Body.Bytes()))
	}
	resp = api.Get("/api/storage-locations?limit=1&offset=1")
	if got := decode[[]httpapi.StorageLocation](t, resp.Body.Bytes()); resp.Code != 200 || len(got) != 1 || got[0].Name != "b" {
		t.Errorf("page: %d %s", resp.Code, resp.Body)
	}
	if strings.Contains(resp.Body.String(), "pw-") {
		t.Errorf("secret returned: %s", resp.Body)
	}
	// Renamed and disabled, the secret left out: kept (stored sealed).
	resp = api.Put("/api/storage-locations/"+locs[0].ID, map[string]any{"name": "a2", "config": map[string]string{"path": locs[0].Config["path"]}, "enabled": false})
	if got := decode[httpapi.StorageLocation](t, resp.Body.Bytes()); resp.Code != 200 || got.Name != "a2" || got.Enabled {
		t.Errorf("update storage: %d %s", resp.Code, resp.Body)
	}
	stored, _ := e.Store().GetStorageLocation(ctx, locs[0].ID)
	if pw := stored.Config["password"]; !strings.HasPrefix(pw, "sealed:") || strings.Contains(pw, "pw-a") {
		t.Errorf("an omitted secret was not kept sealed: %v", stored.Config)
	}
	// Moved elsewhere, the secret left out: refused, it does not follow.
	newPath := filepath.Join(t.TempDir(), "moved")
	resp = api.Put("/api/storage-locations/"+locs[0].ID, map[string]any{"name": "a2", "config": map[string]string{"path": newPath}})
	if resp.Code != 422 {
		t.Fatalf("moved without the secret: %d %s", resp.Code, resp.Body)
	}
	wantLocation(t, decode[problemJSON](t, resp.Body.Bytes()), "body.config.password")
	resp = api.Put("/api/storage-locations/"+locs[0].ID, map[string]any{"name": "a2", "config": map[string]string{"path": newPath, "password": "pw-new"}})
	if got := decode[httpapi.StorageLocation](t, resp.Body.Bytes()); resp.Code != 200 || got.Config["path"] != newPath {
		t.Errorf("moved with the secret: %d %s", resp.Code, resp.Body)
	}
	resp = api.Get("/api/storage-locations/" + locs[0].ID)
	if resp.Code != 200 || strings.Contains(resp.Body.String(), "pw-a") {
		t.Errorf("get storage: %d %s", resp.Code, resp.Body)
	}

	// Backup jobs: validation naming fields, reserved names, hidden sync jobs.
	ds := &engine.Datasource{Name: "app", Type: "sqlite", Path: app}
	if err := e.CreateDatasource(ctx, ds, ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"name": "j", "datasource_id": missingID, "storage_location_ids": []string{locs[1].ID}}, "body.datasource_id"},
		{map[string]any{"name": "j", "datasource_id": ds.ID, "storage_location_ids": []string{missingID}}, "body.storage_location_ids"},
		{map[string]any{"name": "j", "datasource_id": ds.ID, "storage_location_ids": []string{locs[1].ID}, "timezone": "Mars/Base", "schedule": "0 6 * * *"}, "body.timezone"},
		{map[string]any{"name": "sync:x", "datasource_id": ds.ID, "storage_location_ids": []string{locs[1].ID}}, "body.name"},
		{map[string]any{"name": "j", "datasource_id": ds.ID, "storage_location_ids": []string{locs[1].ID}, "compression": "rar"}, "body.compression"},
		{map[string]any{"name": "j", "datasource_id": ds.ID, "storage_location_ids": []string{locs[1].ID}, "retention": map[string]any{"max_backups": -1}}, "body.retention.max_backups"},
	} {
		resp = api.Post("/api/backup-jobs", tc.body)
		if resp.Code != 422 {
			t.Errorf("%v: %d %s", tc.body, resp.Code, resp.Body)
			continue
		}
		wantLocation(t, decode[problemJSON](t, resp.Body.Bytes()), tc.field)
	}
	resp = api.Post("/api/backup-jobs", map[string]any{"name": "j", "datasource_id": ds.ID,
		"storage_location_ids": []string{locs[1].ID}, "enabled": false})
	if resp.Code != 201 {
		t.Fatalf("create job: %d %s", resp.Code, resp.Body)
	}
	job := decode[httpapi.BackupJob](t, resp.Body.Bytes())
	if job.Enabled || job.NextExecutionAt != nil {
		t.Errorf("job %s", resp.Body)
	}
	hidden := &engine.BackupJob{Name: engine.SyncBackupJobName(missingID), DatasourceID: ds.ID, StorageLocationIDs: []string{locs[1].ID}}
	if err := e.CreateBackupJob(ctx, hidden); err != nil {
		t.Fatal(err)
	}
	resp = api.Get("/api/backup-jobs")
	if got := decode[[]httpapi.BackupJob](t, resp.Body.Bytes()); resp.Code != 200 || len(got) != 1 || got[0].ID != job.ID {
		t.Errorf("list jobs: %d %s", resp.Code, resp.Body)
	}
	if resp = api.Delete("/api/backup-jobs/" + hidden.ID); resp.Code != http.StatusConflict {
		t.Errorf("delete a sync job's backup job: %d %s", resp.Code, resp.Body)
	}

	// Sync jobs.
	tgtPath := filepath.Join(t.TempDir(), "copy.db")
	tgt := &engine.Datasource{Name: "copy", Type: "sqlite", Path: tgtPath}
	if err := e.CreateDatasource(ctx, tgt, ""); err != nil {
		t.Fatal(err)
	}
	resp = api.Post("/api/sync-jobs", map[string]any{"name": "s", "source_datasource_id": ds.ID,
		"target_datasource_id": ds.ID, "storage_location_id": locs[1].ID})
	if resp.Code != 422 {
		t.Fatalf("sync onto itself: %d %s", resp.Code, resp.Body)
	}
	wantLocation(t, decode[problemJSON](t, resp.Body.Bytes()), "body.target_datasource_id")
	resp = api.Post("/api/sync-jobs", map[string]any{"name": "s", "source_datasource_id": ds.ID,
		"target_datasource_id": tgt.ID, "storage_location_id": locs[1].ID, "schedule": "0 3 * * *"})
	if resp.Code != 201 {
		t.Fatalf("create sync: %d %s", resp.Code, resp.Body)
	}
	sj := decode[httpapi.SyncJob](t, resp.Body.Bytes())
	if !sj.Enabled || sj.NextExecutionAt == nil {
		t.Errorf("sync job %s", resp.Body)
	}
	if resp = api.Get("/api/sync-jobs"); resp.Code != 200 || len(decode[[]httpapi.SyncJob](t, resp.Body.Bytes())) != 1 {
		t.Errorf("list sync: %d %s", resp.Code, resp.Body)
	}
	if resp = api.Get("/api/sync-jobs/" + sj.ID); resp.Code != 200 {
		t.Errorf("get sync: %d %s", resp.Code, resp.Body)
	}
	resp = api.Post("/api/sync-jobs/" + sj.ID + "/run")
	sx := decode[httpapi.SyncExecution](t, resp.Body.Bytes())
	if resp.Code != http.StatusAccepted || sx.Status != "queued" || sx.SyncJobID != sj.ID {
		t.Fatalf("run sync: %d %s", resp.Code, resp.Body)
	}
	resp = api.Get("/api/sync-jobs/" + sj.ID + "/executions?limit=10")
	if got := decode[[]httpapi.SyncExecution](t, resp.Body.Bytes()); resp.Code != 200 || len(got) != 1 || got[0].ID != sx.ID {
		t.Errorf("sync executions: %d %s", resp.Code, resp.Body)
	}
	if resp = api.Get("/api/sync-jobs/" + sj.ID + "/executions?offset=1"); resp.Code != 200 || resp.Body.String() != "[]\n" && resp.Body.String() != "[]" {
		t.Errorf("sync executions offset: %d %q", resp.Code, resp.Body)
	}
	if resp = api.Delete("/api/storage-locations/" + locs[1].ID); resp.Code != http.StatusConflict {
		t.Errorf("delete storage used by jobs: %d %s", resp.Code, resp.Body)
	}

	// 404s are problem JSON.
	for _, r := range []struct{ method, path string }{
		{"GET", "/api/storage-locations/" + missingID}, {"PUT", "/api/backup-jobs/" + missingID},
		{"DELETE", "/api/storage-locations/" + missingID}, {"DELETE", "/api/backup-jobs/" + missingID},
		{"GET", "/api/backup-jobs/" + missingID}, {"GET", "/api/sync-jobs/" + missingID},
		{"POST", "/api/sync-jobs/" + missingID + "/run"}, {"GET", "/api/sync-jobs/" + missingID + "/executions"},
		{"GET", "/api/executions/" + missingID}, {"GET", "/api/executions/" + missingID + "/logs"},
		{"GET", "/api/executions/" + missingID + "/download"}, {"POST", "/api/executions/" + missingID + "/retry-upload"},
		{"POST", "/api/executions/" + missingID + "/mark-restored"},
	} {
		var body any
		switch {
		case strings.HasSuffix(r.path, "mark-restored"):
			body = map[string]any{"restored_by": "op", "reason": "r"}
		case r.method == "PUT":
			body = map[string]any{"name": "x", "storage_location_ids": []string{locs[1].ID}}
		}
		var args []any
		if body != nil {
			args = append(args, body)
		}
		resp = api.Do(r.method, r.path, args...)
		if resp.Code != 404 || resp.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %d %s %s", r.method, r.path, resp.Code, resp.Header().Get("Content-Type"), resp.Body)
		}
	}
}

func TestResourcesOpenAPI(t *testing.T) {
	e, _ := newEngine(t)
	api := newTestAPI(t, e)
	doc := api.OpenAPI()
	want := map[string]string{
		"list-storage-locations": "GET /api/storage-locations", "create-storage-location": "POST /api/storage-locations",
		"get-storage-location": "GET /api/storage-locations/{id}", "update-storage-location": "PUT /api/storage-locations/{id}",
		"delete-storage-location": "DELETE /api/storage-locations/{id}",
		"list-backup-jobs":        "GET /api/backup-jobs", "create-backup-job": "POST /api/backup-jobs",
		"get-backup-job": "GET /api/backup-jobs/{id}", "update-backup-job": "PUT /api/backup-jobs/{id}",
		"delete-backup-job": "DELETE /api/backup-jobs/{id}",
		"list-sync-jobs":    "GET /api/sync-jobs", "create-sync-job": "POST /api/sync-jobs", "get-sync-job": "GET /api/sync-jobs/{id}",
		"run-sync-job": "POST /api/sync-jobs/{id}/run", "list-sync-job-executions": "GET /api/sync-jobs/{id}/executions",
		"get-execution": "GET /api/executions/{id}", "list-execution-logs": "GET /api/executions/{id}/logs",
		"mark-execution-restored": "POST /api/executions/{id}/mark-restored",
		"retry-execution-upload":  "POST /api/executions/{id}/retry-upload",
		"download-execution":      "GET /api/executions/{id}/download",
		"update-datasource":       "PUT /api/datasources/{id}", "delete-datasource": "DELETE /api/datasources/{id}",
		"update-sync-job": "PUT /api/sync-jobs/{id}", "delete-sync-job": "DELETE /api/sync-jobs/{id}",
		"list-datasources":              "GET /api/datasources",
		"list-datasource-health-checks": "GET /api/datasources/{id}/health-checks",
		"list-backup-job-executions":    "GET /api/backup-jobs/{id}/executions",
	}
	for id, route := range want {
		method, path, _ := strings.Cut(route, " ")
		item := doc.Paths[path]
		if item == nil {
			t.Errorf("%s: no path %s", id, path)
			continue
		}
		op := map[string]*huma.Operation{"GET": item.Get, "POST": item.Post, "PUT": item.Put, "DELETE": item.Delete}[method]
		if op == nil || op.OperationID != id || op.Summary == "" || len(op.Tags) == 0 {
			t.Errorf("%s %s: %+v", method, path, op)
			continue
		}
		if strings.HasPrefix(id, "list-") && id != "list-execution-logs" {
			var names []string
			for _, p := range op.Parameters {
				names = append(names, p.Name)
			}
			if !strings.Contains(strings.Join(names, ","), "limit") || !strings.Contains(strings.Join(names, ","), "offset") {
				t.Errorf("%s: parameters %v, want limit and offset", id, names)
			}
		}
	}
	dl := doc.Paths["/api/executions/{id}/download"].Get
	if dl.Responses["200"] == nil || dl.Responses["200"].Content["application/zip"] == nil {
		t.Errorf("download responses: %+v", dl.Responses)
	}
}
