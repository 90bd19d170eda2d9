package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/internal/servertest"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// startServer starts `dataguardian serve` (the binary TestMain built) with
// opts, which may be nil.
func startServer(t *testing.T, opts *servertest.Options) *servertest.Server {
	t.Helper()
	var o servertest.Options
	if opts != nil {
		o = *opts
	}
	o.Binary = binary
	return servertest.Start(t, &o)
}

// tokenCreate creates a token in the store of srv with `dataguardian token
// create` while srv runs and returns its secret.
func tokenCreate(t *testing.T, srv *servertest.Server, name, perms string) string {
	t.Helper()
	res := dg(t, []string{envDataDir + "=" + srv.DataDir}, "token", "create", "--name", name, "--permissions", perms)
	secret := strings.TrimSpace(res.stdout)
	if res.code != exitOK || !strings.HasPrefix(secret, "dgt_") || strings.Contains(secret, "\n") {
		t.Fatalf("token create: want one dgt_ secret on stdout, got %v", res)
	}
	return secret
}

// expectStatus sends a request to srv and fails t unless it answers want.
func expectStatus(t *testing.T, srv *servertest.Server, method, path, token string, body any, want int) []byte {
	t.Helper()
	got, b := srv.Do(t, method, path, token, body)
	if got != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, got, want, b)
	}
	return b
}

// readmeBlock returns the ```sh block of the README between the markers
// <!-- NAME:begin --> and <!-- NAME:end -->, without its code fence.
func readmeBlock(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	q := regexp.QuoteMeta(name)
	m := regexp.MustCompile("(?s)<!-- " + q + ":begin -->\\s*```sh\\n(.*?)```\\s*<!-- " + q + ":end -->").FindSubmatch(b)
	if m == nil {
		t.Fatalf("README.md has no ```sh block between <!-- %s:begin --> and <!-- %s:end -->", name, name)
	}
	return string(m[1])
}

// The README's curl session, run verbatim in the repository root against a
// server on a free port (DG_URL) and its data directory (DG_DATA_DIR),
// creates a token, registers a datasource and a job, runs a backup to
// completion and lists it; the backup's manifest is on disk.
func TestREADMECurlSession(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl"} {
		_, err := exec.LookPath(tool)
		testsvc.Require(t, tool+" (the README session runs with it)", err)
	}
	session := readmeBlock(t, "curl-session")
	// As the README says: the server runs in the repository root, whose
	// directories the API may then use (the default --allow-path).
	srv := startServer(t, &servertest.Options{Dir: "../..", Env: []string{servertest.AllowPathsEnv + "="}})
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", session)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "DG_URL="+srv.URL, envDataDir+"="+srv.DataDir, envDatabaseURL+"=")
	out, err := cmd.CombinedOutput()
	t.Logf("README session output:\n%s", out)
	if err != nil {
		t.Fatalf("README session: %v", err)
	}
	text := string(out)
	if !regexp.MustCompile(`execution [0-9a-f-]{36}: completed`).MatchString(text) {
		t.Fatal("the session did not report a completed execution")
	}
	m := regexp.MustCompile(`"status":"completed".*?"backup_path":"([^"]+)"`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("the session did not list a completed backup with its backup_path")
	}
	manifest := filepath.Join(srv.DataDir, "backups", filepath.FromSlash(m[1]), "manifest.json")
	if _, err := os.Stat(manifest); err != nil {
		t.Fatalf("the listed backup has no manifest on disk: %v", err)
	}
	if !strings.Contains(text, "manifest.json") {
		t.Error("the session's ls of the run folder does not show manifest.json")
	}
}

// /api needs a valid token holding the operation's permission; /health and
// /metrics are public; tokens are created, listed and revoked by the local
// token command while the server runs, and no secret reaches the logs.
func TestServeAuth(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	expectStatus(t, srv, "GET", "/health", "", nil, 200)
	// The document names the server as clients reach it (the listen address).
	var doc struct{ Servers []struct{ URL string } }
	if err := json.Unmarshal(expectStatus(t, srv, "GET", "/openapi.json", "", nil, 200), &doc); err != nil ||
		len(doc.Servers) != 2 || doc.Servers[0].URL != srv.URL || doc.Servers[1].URL != "/" {
		t.Errorf("servers of the OpenAPI document: %+v (%v), want %s then /", doc.Servers, err, srv.URL)
	}
	if b := expectStatus(t, srv, "GET", "/metrics", "", nil, 200); !strings.Contains(string(b), "# TYPE") {
		t.Errorf("/metrics is not in the Prometheus text format: %.200s", b)
	}
	expectStatus(t, srv, "GET", "/api/datasources", "", nil, 401)
	expectStatus(t, srv, "GET", "/api/datasources", "dgt_wrong-token-wrong-token-wrong-token-xx", nil, 401)
	expectStatus(t, srv, "GET", "/api/datasources", srv.Token, nil, 200)

	reader := tokenCreate(t, srv, "reader", "read")
	expectStatus(t, srv, "GET", "/api/storage-locations", reader, nil, 200)
	ds := map[string]any{"name": "tmp", "type": "files", "path": t.TempDir()}
	expectStatus(t, srv, "POST", "/api/datasources", reader, ds, 403)
	expectStatus(t, srv, "POST", "/api/datasources", srv.Token, ds, 201)

	list := dg(t, []string{envDataDir + "=" + srv.DataDir}, "token", "list")
	if list.code != exitOK || !strings.Contains(list.stdout, "reader") || strings.Contains(list.stdout, reader) ||
		strings.Contains(list.stdout, srv.Token) {
		t.Fatalf("token list: want the reader token listed without any secret, got %v", list)
	}
	id := regexp.MustCompile(`(?m)^([0-9a-f-]{36})\s+reader\s+read\s`).FindStringSubmatch(list.stdout)
	if id == nil {
		t.Fatalf("token list: no row \"ID reader read\":\n%s", list.stdout)
	}
	if res := dg(t, []string{envDataDir + "=" + srv.DataDir}, "token", "revoke", id[1]); res.code != exitOK {
		t.Fatalf("token revoke: %v", res)
	}
	expectStatus(t, srv, "GET", "/api/storage-locations", reader, nil, 401)

	bad := dg(t, []string{envDataDir + "=" + srv.DataDir}, "token", "create", "--name", "x", "--permissions", "read,backups.delete")
	if bad.code != exitUsage || !strings.Contains(bad.stderr, `"backups.delete"`) || !strings.Contains(bad.stderr, "backups.restore_verify") {
		t.Errorf("token create with an unknown permission: want a usage error naming it and listing the valid ones, got %v", bad)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{srv.Token, reader} {
		if strings.Contains(srv.Stderr(), secret) {
			t.Error("a token secret appears in the server's output")
		}
	}
}

// SIGTERM stops a server within a few seconds with status 0, also while a
// client follows the event stream (which would otherwise hold the shutdown
// for its whole timeout).
func TestServeGracefulShutdown(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	expectStatus(t, srv, "GET", "/api/datasources", srv.Token, nil, 200)
	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+srv.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /api/events: status %d, first line %q, %v", resp.StatusCode, line, err)
	}
	start := time.Now()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v, want under 5s", d)
	}
	if !strings.Contains(srv.Stderr(), "msg=stopped") {
		t.Errorf("the server did not log that it stopped:\n%s", srv.Stderr())
	}
}

// A start that cannot work exits 1 with one line naming the flag or
// variable to fix, and never prints the database password.
func TestServeStartupErrors(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		env   []string
		args  []string
		code  int
		wants []string
	}{
		{name: "port taken (flag)", args: []string{"--listen", addr}, code: exitFail,
			wants: []string{addr, "address already in use", "--listen or DG_LISTEN"}},
		{name: "port taken (env)", env: []string{envListen + "=" + addr}, code: exitFail,
			wants: []string{"address already in use", "--listen or DG_LISTEN"}},
		{name: "database unreachable", args: []string{"--listen", "127.0.0.1:0"},
			env:  []string{envDatabaseURL + "=postgres://dg:s3cr3t-pw@127.0.0.1:1/dg?sslmode=disable"},
			code: exitFail, wants: []string{"127.0.0.1:1", "--database-url or DG_DATABASE_URL"}},
		{name: "data dir not a directory", args: []string{"--listen", "127.0.0.1:0", "--data-dir", filepath.Join(notDir, "data")},
			code: exitFail, wants: []string{"--data-dir or DG_DATA_DIR"}},
		{name: "bad log level", args: []string{"--log-level", "loud"}, code: exitUsage,
			wants: []string{"--log-level or DG_LOG_LEVEL", "debug, info, warn or error"}},
		{name: "relative public URL", args: []string{"--public-url", "backup.example.com"}, code: exitUsage,
			wants: []string{"--public-url or DG_PUBLIC_URL", "https://backup.example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := append([]string{envDataDir + "=" + t.TempDir()}, tc.env...)
			res := dg(t, env, append([]string{"serve"}, tc.args...)...)
			if res.code != tc.code {
				t.Fatalf("exit %d, want %d:\n%v", res.code, tc.code, res)
			}
			for _, w := range tc.wants {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, res.stderr)
				}
			}
			if strings.Contains(res.stderr, "s3cr3t-pw") || strings.Contains(res.stderr, readyPrefix) {
				t.Errorf("stderr shows the database password or a ready line:\n%s", res.stderr)
			}
		})
	}
}

// Without DG_ADMIN_TOKEN the first start creates an admin token and prints
// it once; the next start on the same data directory prints none, and the
// first token still works.
func TestServeGeneratedAdminToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	noToken := []string{envAdminToken + "="}
	first := startServer(t, &servertest.Options{DataDir: dir, Env: noToken})
	if first.Token == "" || strings.Count(first.Stderr(), first.Token) != 1 {
		t.Fatalf("the first start did not print a generated admin token exactly once:\n%s", first.Stderr())
	}
	expectStatus(t, first, "POST", "/api/datasources", first.Token,
		map[string]any{"name": "tmp", "type": "files", "path": t.TempDir()}, 201)
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	second := startServer(t, &servertest.Options{DataDir: dir, Env: noToken})
	if strings.Contains(second.Stderr(), adminTokenLabel) || second.Token != "" {
		t.Fatalf("the second start printed a token:\n%s", second.Stderr())
	}
	expectStatus(t, second, "GET", "/api/tokens/me", first.Token, nil, 200)
}

// With --database-url (here DG_DATABASE_URL) the metadata lives in
// PostgreSQL: the server starts, creates its default storage there and
// serves the API.
func TestServePostgresMetadata(t *testing.T) {
	t.Parallel()
	url := testsvc.NewPostgresDatabase(t)
	srv := startServer(t, &servertest.Options{Env: []string{envDatabaseURL + "=" + url}})
	if b := expectStatus(t, srv, "GET", "/api/datasources", srv.Token, nil, 200); strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("GET /api/datasources on a new store: %s, want []", b)
	}
	b := expectStatus(t, srv, "GET", "/api/storage-locations", srv.Token, nil, 200)
	if !strings.Contains(string(b), `"name":"local"`) {
		t.Errorf("no default storage location: %s", b)
	}
	if _, err := os.Stat(filepath.Join(srv.DataDir, "dataguardian.db")); err == nil {
		t.Error("the server created a SQLite metadata database although --database-url is set")
	}
	if !strings.Contains(srv.Stderr(), `store="postgres://`) {
		t.Errorf("the server does not log its PostgreSQL store:\n%s", srv.Stderr())
	}
}

// TestServeStorageDir: DG_STORAGE_DIR puts the default storage location
// where the backup disk is mounted (the container sets /var/backups).
func TestServeStorageDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "disk")
	srv := startServer(t, &servertest.Options{Env: []string{envStorageDir + "=" + dir}})
	b := expectStatus(t, srv, "GET", "/api/storage-locations", srv.Token, nil, 200)
	if want := `"config":{"path":"` + dir + `"}`; !strings.Contains(string(b), want) {
		t.Errorf("default storage location: %s, want %s", b, want)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("storage directory not created: %v", err)
	}
}

// A start that cannot work is refused before anything is written: a short
// DG_ADMIN_TOKEN or a bad DG_SECRET_KEY leaves no data directory behind,
// and the refused value is not redacted from other text (the data
// directory's name holds the same word); --allow-path / is refused too.
func TestServeRefusesBeforeWriting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		env   []string
		args  []string
		wants []string
	}{
		{name: "short admin token", env: []string{envAdminToken + "=short"}, wants: []string{envAdminToken, "at least 32"}},
		{name: "bad secret key", env: []string{"DG_SECRET_KEY=short"}, wants: []string{"DG_SECRET_KEY", "base64"}},
		{name: "allow-path /", args: []string{"--allow-path", "/"}, wants: []string{"--allow-path", "below /"}},
		{name: "DG_ALLOW_PATHS /", env: []string{envAllowPaths + "=/"}, wants: []string{envAllowPaths, "below /"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "short-lived-data")
			env := append([]string{envDataDir + "=" + dir, envListen + "=127.0.0.1:0"}, tc.env...)
			res := dg(t, env, append([]string{"serve"}, tc.args...)...)
			if res.code == exitOK {
				t.Fatalf("serve started:\n%v", res)
			}
			for _, w := range tc.wants {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, res.stderr)
				}
			}
			if strings.Contains(res.stderr, "xxxxx") {
				t.Errorf("stderr redacts text that is no secret:\n%s", res.stderr)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the data directory exists after a refused start: %v", err)
			}
		})
	}
}
