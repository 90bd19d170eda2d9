package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/dataguardian/dataguardian"
)

// backedUp returns an engine on a temp data dir holding one completed
// backup of a small SQLite database, and that backup's execution ID.
func backedUp(t *testing.T) (*dataguardian.Engine, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	eng, err := dataguardian.New(ctx, dataguardian.Config{DataDir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })

	src := filepath.Join(dir, "app.db")
	db, err := sql.Open("sqlite", src)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('hello')`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	ds := &dataguardian.Datasource{Name: "app", Type: "sqlite", Path: src}
	if err := eng.CreateDatasource(ctx, ds, ""); err != nil {
		t.Fatal(err)
	}
	loc := &dataguardian.StorageLocation{Name: "disk", Type: "local", Config: map[string]string{"path": filepath.Join(dir, "backups")}}
	if err := eng.CreateStorageLocation(ctx, loc); err != nil {
		t.Fatal(err)
	}
	job := &dataguardian.BackupJob{Name: "app nightly", DatasourceID: ds.ID, StorageLocationIDs: []string{loc.ID}}
	if err := eng.CreateBackupJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	exec, err := eng.RunBackup(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	return eng, exec.ID
}

// call sends one request as user ("" for nobody) and returns the status and body.
func call(t *testing.T, method, url, user, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("X-Forwarded-User", user)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestHandler(t *testing.T) {
	eng, execID := backedUp(t)
	srv := httptest.NewServer(newHandler(eng, nil))
	defer srv.Close()
	restore := `{"confirmation_phrase":"RESTAURAR"}`

	for _, tc := range []struct {
		name, method, path, user, body string
		status                         int
		contains                       string
	}{
		{"own route, signed in", "GET", "/whoami", "bob", "", 200, "hello, bob"},
		{"own route, anonymous", "GET", "/whoami", "", "", 401, "sign in"},
		{"public health under the prefix", "GET", "/dataguardian/health", "", "", 200, `"status"`},
		{"API without our header", "GET", "/dataguardian/api/backups/datasources", "", "", 401, "sign in through the company SSO"},
		{"API, unknown user", "GET", "/dataguardian/api/backups/datasources", "mallory", "", 401, "sign in"},
		{"API through our auth", "GET", "/dataguardian/api/backups/datasources", "bob", "", 200, `"name":"app"`},
		{"restore refused without backups.restore", "POST", "/dataguardian/api/backups/" + execID + "/restore", "bob", restore, 403, "backups.restore"},
		{"restore queued with backups.restore", "POST", "/dataguardian/api/backups/" + execID + "/restore", "alice", restore, 202, `"operation":"restore"`},
		{"OpenAPI document under the prefix", "GET", "/dataguardian/openapi.json", "", "", 200, `"/api/backups/{executionId}/restore"`},
		{"OpenAPI document names the prefix", "GET", "/dataguardian/openapi.json", "", "", 200, `"servers":[{"description":"Relative to where this document is served","url":"/dataguardian"}]`},
		{"docs page links the document relative to itself", "GET", "/dataguardian/docs", "", "", 200, `<a href="openapi.json">`},
		{"API paths exist only under the prefix", "GET", "/api/backups/datasources", "bob", "", 404, ""},
		{"the console under the prefix", "GET", "/dataguardian/", "", "", 200, `src="assets/main.js"`},
		{"the console's assets beside it", "GET", "/dataguardian/assets/main.js", "", "", 200, "get-current-api-token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, tc.method, srv.URL+tc.path, tc.user, tc.body)
			if status != tc.status || !strings.Contains(body, tc.contains) {
				t.Fatalf("%s %s as %q: %d %s\nwant %d and a body containing %q", tc.method, tc.path, tc.user, status, body, tc.status, tc.contains)
			}
		})
	}
	// The docs page's relative link resolves under the prefix.
	docs, _ := url.Parse(srv.URL + "/dataguardian/docs")
	link := docs.ResolveReference(&url.URL{Path: "openapi.json"})
	if status, body := call(t, "GET", link.String(), "", ""); link.Path != "/dataguardian/openapi.json" || status != 200 ||
		!strings.Contains(body, `"/api/backups/{executionId}/restore"`) {
		t.Errorf("the docs page's link to openapi.json: GET %s: %d", link, status)
	}
}

// TestRunShutsDownGracefully runs the whole program (engine workers
// included) on a free port and stops it as SIGTERM would.
func TestRunShutsDownGracefully(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, t.TempDir(), t.TempDir()) }()

	url := "http://" + ln.Addr().String() + "/dataguardian/api/backups/datasources"
	if status, body := call(t, "GET", url, "bob", ""); status != 200 {
		t.Fatalf("GET %s: %d %s", url, status, body)
	}
	var list []json.RawMessage
	if _, body := call(t, "GET", url, "bob", ""); json.Unmarshal([]byte(body), &list) != nil || len(list) != 0 {
		t.Fatalf("a new data dir should have no backups, got %s", body)
	}

	// An open event stream must not hold the shutdown (30 s in run).
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/dataguardian/api/events", nil)
	req.Header.Set("X-Forwarded-User", "bob")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("event stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	streamEnded := make(chan struct{})
	go func() { io.Copy(io.Discard, resp.Body); close(streamEnded) }()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return within 10s of shutdown (an open event stream held it?)")
	}
	<-streamEnded
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("the listener still accepts connections after shutdown")
	}
}
