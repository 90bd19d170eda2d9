package httpapi_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian"

	"github.com/danielgtaylor/huma/v2/humatest"

	"github.com/dataguardian/dataguardian/engine"
	"github.com/dataguardian/dataguardian/httpapi"
)

const secret = "s3cr3t-Pa55word-never-returned"

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newEngine returns an Engine on SQLite in a temporary directory and the
// path of a small SQLite database to back up.
func newEngine(t *testing.T) (*engine.Engine, string) {
	t.Helper()
	dir := t.TempDir()
	app := filepath.Join(dir, "app.db")
	db, err := sql.Open("sqlite", app)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t (x); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	e, err := dataguardian.New(context.Background(), engine.Config{DataDir: filepath.Join(dir, "meta"), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, app
}

func newTestAPI(t *testing.T, e *engine.Engine) humatest.TestAPI {
	_, api := humatest.New(t, httpapi.Config(nil))
	httpapi.Register(api, e, &httpapi.Options{Logger: quiet()})
	return api
}

type problemJSON struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Errors []struct {
		Location string `json:"location"`
		Message  string `json:"message"`
	} `json:"errors"`
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func wantLocation(t *testing.T, p problemJSON, loc string) {
	t.Helper()
	for _, d := range p.Errors {
		if d.Location == loc {
			return
		}
	}
	t.Errorf("problem %+v does not name %s", p, loc)
}

func TestCreateDatasourceHandler(t *testing.T) {
	e, app := newEngine(t)
	api := newTestAPI(t, e)

	resp := api.Post("/api/datasources", map[string]any{"name": "app", "type": "sqlite", "path": app, "password": secret})
	if resp.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.Code, resp.Body)
	}
	if strings.Contains(resp.Body.String(), secret) || strings.Contains(resp.Body.String(), "password") {
		t.Errorf("create response exposes the password: %s", resp.Body)
	}
	ds := decode[httpapi.Datasource](t, resp.Body.Bytes())
	if ds.Status != "unknown" || ds.Name != "app" || ds.ID == "" {
		t.Errorf("created %+v", ds)
	}
	stored, err := e.Store().GetDatasource(context.Background(), ds.ID)
	if err != nil || len(stored.PasswordEncrypted) == 0 {
		t.Errorf("password not stored sealed: %v", err)
	}

	resp = api.Post("/api/datasources", map[string]any{"name": "app", "type": "sqlite", "path": app})
	if resp.Code != http.StatusConflict {
		t.Errorf("duplicate name: %d %s", resp.Code, resp.Body)
	}

	resp = api.Post("/api/datasources", map[string]any{"name": "x", "type": "oracle"})
	if resp.Code != http.StatusUnprocessableEntity {
		t.Fatalf("bad type: %d %s", resp.Code, resp.Body)
	}
	p := decode[problemJSON](t, resp.Body.Bytes())
	wantLocation(t, p, "body.type")
	if !strings.Contains(p.Detail, "sqlite") {
		t.Errorf("detail does not say what to set: %q", p.Detail)
	}

	resp = api.Post("/api/datasources", map[string]any{"name": "x", "type": "sqlite", "colour": "blue"})
	if resp.Code != http.StatusUnprocessableEntity {
		t.Fatalf("unknown field: %d %s", resp.Code, resp.Body)
	}
	if !strings.Contains(resp.Body.String(), "colour") {
		t.Errorf("unknown field not named: %s", resp.Body)
	}

	resp = api.Get("/api/datasources?type=postgres")
	if got := decode[[]httpapi.Datasource](t, resp.Body.Bytes()); len(got) != 0 {
		t.Errorf("type filter: %+v", got)
	}
	resp = api.Get("/api/datasources?type=sqlite")
	if got := decode[[]httpapi.Datasource](t, resp.Body.Bytes()); len(got) != 1 {
		t.Errorf("type filter: %+v", got)
	}
}

func TestNotFoundHandlers(t *testing.T) {
	e, _ := newEngine(t)
	api := newTestAPI(t, e)
	const missing = "00000000-0000-0000-0000-000000000000"
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/api/datasources/" + missing},
		{http.MethodGet, "/api/datasources/" + missing + "/health-checks"},
		{http.MethodPost, "/api/datasources/" + missing + "/health-check"},
		{http.MethodGet, "/api/backup-jobs/" + missing + "/executions"},
		{http.MethodPost, "/api/backup-jobs/" + missing + "/run"},
	} {
		resp := api.Do(tc.method, tc.path)
		if resp.Code != http.StatusNotFound {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, resp.Code, resp.Body)
			continue
		}
		if ct := resp.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s %s: content type %q", tc.method, tc.path, ct)
		}
		if p := decode[problemJSON](t, resp.Body.Bytes()); p.Status != 404 || !strings.Contains(p.Detail, "not found") {
			t.Errorf("%s %s: problem %+v", tc.method, tc.path, p)
		}
	}
}

func TestQueryValidation(t *testing.T) {
	e, _ := newEngine(t)
	api := newTestAPI(t, e)
	resp := api.Get("/api/backup-jobs/x/executions?status=exploded")
	if resp.Code != http.StatusUnprocessableEntity {
		t.Fatalf("bad status: %d %s", resp.Code, resp.Body)
	}
	wantLocation(t, decode[problemJSON](t, resp.Body.Bytes()), "query.status")
	resp = api.Get("/api/datasources/x/health-checks?limit=0")
	if resp.Code != http.StatusUnprocessableEntity {
		t.Fatalf("bad limit: %d %s", resp.Code, resp.Body)
	}
	wantLocation(t, decode[problemJSON](t, resp.Body.Bytes()), "query.limit")
}

// TestServer drives the API over real HTTP, as a client would.
func TestServer(t *testing.T) {
	ctx := context.Background()
	e, app := newEngine(t)
	srv := httptest.NewServer(httpapi.New(e, &httpapi.Options{Logger: quiet(), MaxBodyBytes: 4096}))
	defer srv.Close()

	do := func(method, path string, body any) (int, []byte, http.Header) {
		t.Helper()
		var r io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			r = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.URL+path, r)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s %s exposes the password: %s", method, path, b)
		}
		return resp.StatusCode, b, resp.Header
	}

	code, b, _ := do("GET", "/health", nil)
	if h := decode[httpapi.Health](t, b); code != 200 || h.Status != "ok" || h.MetadataStore != "ok" {
		t.Fatalf("health: %d %s", code, b)
	}

	code, b, _ = do("POST", "/api/datasources", map[string]any{"name": "app", "type": "sqlite", "path": app, "password": secret})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	ds := decode[httpapi.Datasource](t, b)

	code, b, _ = do("GET", "/api/datasources", nil)
	list := decode[[]map[string]any](t, b)
	if code != 200 || len(list) != 1 {
		t.Fatalf("list: %d %s", code, b)
	}
	for _, k := range []string{"id", "name", "type", "status", "last_health_check_at"} {
		if _, ok := list[0][k]; !ok {
			t.Errorf("list item lacks %q: %s", k, b)
		}
	}

	code, b, _ = do("POST", "/api/datasources/"+ds.ID+"/health-check", nil)
	if hc := decode[httpapi.HealthCheck](t, b); code != 200 || hc.Status != "ok" {
		t.Fatalf("health check: %d %s", code, b)
	}
	code, b, _ = do("GET", "/api/datasources/"+ds.ID+"/health-checks?limit=10", nil)
	if hcs := decode[[]httpapi.HealthCheck](t, b); code != 200 || len(hcs) != 1 || hcs[0].Status != "ok" {
		t.Fatalf("health checks: %d %s", code, b)
	}
	code, b, _ = do("GET", "/api/datasources/"+ds.ID, nil)
	if got := decode[httpapi.Datasource](t, b); code != 200 || got.Status != "healthy" || got.LastHealthCheckAt == nil {
		t.Fatalf("get after check: %d %s", code, b)
	}

	disk := &engine.StorageLocation{Name: "disk", Type: "local", Config: map[string]string{"path": filepath.Join(t.TempDir(), "backups")}}
	if err := e.CreateStorageLocation(ctx, disk); err != nil {
		t.Fatal(err)
	}
	job := &engine.BackupJob{Name: "nightly", DatasourceID: ds.ID, StorageLocationIDs: []string{disk.ID}}
	if err := e.CreateBackupJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	code, b, _ = do("POST", "/api/backup-jobs/"+job.ID+"/run", nil)
	run := decode[httpapi.Execution](t, b)
	if code != http.StatusAccepted || run.Status != "queued" || run.JobID != job.ID {
		t.Fatalf("run: %d %s", code, b)
	}
	code, b, _ = do("GET", "/api/backup-jobs/"+job.ID+"/executions?status=queued&limit=5", nil)
	if xs := decode[[]httpapi.Execution](t, b); code != 200 || len(xs) != 1 || xs[0].ID != run.ID {
		t.Fatalf("executions queued: %d %s", code, b)
	}
	code, b, _ = do("GET", "/api/backup-jobs/"+job.ID+"/executions?status=completed", nil)
	if xs := decode[[]httpapi.Execution](t, b); code != 200 || len(xs) != 0 {
		t.Fatalf("executions completed: %d %s", code, b)
	}

	code, b, hdr := do("GET", "/api/datasources/00000000-0000-0000-0000-000000000000", nil)
	if code != 404 || hdr.Get("Content-Type") != "application/problem+json" {
		t.Errorf("missing id: %d %s %s", code, hdr.Get("Content-Type"), b)
	}

	code, b, _ = do("POST", "/api/datasources", map[string]any{"name": "x", "type": "sqlite", "password": secret, "pasword": "typo"})
	if code != 422 || !bytes.Contains(b, []byte("pasword")) {
		t.Errorf("unknown field: %d %s", code, b)
	}
	code, b, _ = do("POST", "/api/datasources", map[string]any{"name": "x", "type": "nosuch"})
	if code != 422 || !bytes.Contains(b, []byte("body.type")) {
		t.Errorf("invalid type: %d %s", code, b)
	}
	code, b, _ = do("POST", "/api/datasources", map[string]any{"name": strings.Repeat("x", 8000), "type": "sqlite"})
	if code != http.StatusRequestEntityTooLarge {
		t.Errorf("large body: %d %s", code, b)
	}

	code, b, _ = do("GET", "/openapi.json", nil)
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || code != 200 {
		t.Fatalf("openapi.json: %d %v", code, err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	ops := 0
	for path, methods := range doc.Paths {
		for method, op := range methods {
			ops++
			if id, _ := op["operationId"].(string); id == "" {
				t.Errorf("%s %s has no operationId", method, path)
			}
			if s, _ := op["summary"].(string); s == "" {
				t.Errorf("%s %s has no summary", method, path)
			}
		}
	}
	if ops < 40 {
		t.Errorf("openapi has %d operations, want every endpoint of DESIGN §6 so far (40+)", ops)
	}
	if code, _, _ := do("GET", "/docs", nil); code != 200 {
		t.Errorf("docs: %d", code)
	}
}

func TestAuthHook(t *testing.T) {
	e, _ := newEngine(t)
	srv := httptest.NewServer(httpapi.New(e, &httpapi.Options{Logger: quiet(), Auth: func(r *http.Request) error {
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			*r = *r.WithContext(httpapi.WithPermissions(r.Context(), httpapi.PermissionSet{httpapi.PermRead}))
			return nil
		case "Bearer forgetful": // authenticates but attaches no permissions
			return nil
		case "Bearer reader":
			return httpapi.ErrForbidden
		}
		return errors.New("missing or invalid bearer token")
	}}))
	defer srv.Close()
	get := func(path, token string) int {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/health", "", 200},
		{"/openapi.json", "", 200},
		{"/api/datasources", "", 401},
		{"/api/datasources", "reader", 403},
		{"/api/datasources", "good", 200},
		{"/api/datasources", "forgetful", 403}, // fail closed
		{"/api/tokens", "good", 403},           // needs tokens.admin
	} {
		if got := get(tc.path, tc.token); got != tc.want {
			t.Errorf("GET %s token %q: %d, want %d", tc.path, tc.token, got, tc.want)
		}
	}
}
