package e2e

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dataguardian/dataguardian/httpapi"
	"github.com/dataguardian/dataguardian/internal/servertest"
)

// A token with write and restore permissions reaches only the directories
// the operator allowed: no host file, no relative path, not "/", never the
// server's own data directory or metadata database, never a storage
// location's backups; and a datasource left outside the roots after a
// restart with narrower roots is not backed up.
func TestPathsStayInsideAllowedRoots(t *testing.T) {
	allowed, outside := t.TempDir(), t.TempDir()
	src := filepath.Join(allowed, "src")
	store := filepath.Join(allowed, "store")
	for _, d := range []string{src, store} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	escape := filepath.Join(allowed, "escape")
	if err := os.Symlink(outside, escape); err != nil {
		t.Fatal(err)
	}
	env := []string{servertest.AllowPathsEnv + "=" + allowed}
	srv := servertest.Start(t, &servertest.Options{Env: env})
	admin := client{t, srv, srv.Token}
	w := apiToken(admin, "read", "write", "backups.run", "backups.restore", "backups.download")

	files := func(path string) map[string]any { return map[string]any{"name": "f", "type": "files", "path": path} }
	for _, path := range []string{"/etc", "/", "../../etc", "relative", outside, escape, filepath.Join(escape, "x"),
		filepath.Join(allowed, "..", filepath.Base(outside)), srv.DataDir, filepath.Join(srv.DataDir, "backups")} {
		msg := w.problemAt("body.path", "POST", "/api/datasources", files(path))
		if path == outside && !strings.Contains(msg, "--allow-path") {
			t.Errorf("the refusal of %s does not say how to allow it: %s", path, msg)
		}
	}
	for _, path := range []string{filepath.Join(srv.DataDir, "dataguardian.db"), filepath.Join(srv.DataDir, "secret.key")} {
		w.problemAt("body.path", "POST", "/api/datasources", map[string]any{"name": "meta", "type": "sqlite", "path": path})
	}
	w.problemAt("body.options.socket", "POST", "/api/datasources", map[string]any{"name": "sock", "type": "mysql",
		"host": "localhost", "username": "root", "database": "mysql", "options": map[string]string{"socket": "/run/mysqld/mysqld.sock"}})
	w.problemAt("body.options.sslrootcert", "POST", "/api/datasources", map[string]any{"name": "ca", "type": "postgres",
		"host": "127.0.0.1", "database": "postgres", "options": map[string]string{"sslmode": "verify-full", "sslrootcert": "/etc/ssl/certs/ca-certificates.crt"}})

	var ds httpapi.Datasource
	w.must(http.StatusCreated, "POST", "/api/datasources", files(src), &ds)
	w.problemAt("body.path", "PUT", "/api/datasources/"+ds.ID, files("/etc"))
	w.problemAt("body.path", "PUT", "/api/datasources/"+ds.ID, files(srv.DataDir))

	loc := func(path string) map[string]any {
		return map[string]any{"name": "s", "type": "local", "config": map[string]string{"path": path}}
	}
	for _, path := range []string{"/", "backups", "../backups", outside, srv.DataDir, filepath.Dir(srv.DataDir), src, filepath.Join(src, "b")} {
		w.problemAt("body.config.path", "POST", "/api/storage-locations", loc(path))
	}
	var st httpapi.StorageLocation
	w.must(http.StatusCreated, "POST", "/api/storage-locations", loc(store), &st)
	w.problemAt("body.config.path", "PUT", "/api/storage-locations/"+st.ID, loc("/"))
	for _, path := range []string{store, filepath.Join(store, "x"), allowed} { // a restore would overwrite backups
		w.problemAt("body.path", "POST", "/api/datasources", files(path))
	}

	// A backup of the allowed datasource works; the same datasource is
	// refused at its next run once the operator narrows the roots.
	var job httpapi.BackupJob
	w.must(http.StatusCreated, "POST", "/api/backup-jobs", map[string]any{"name": "f", "datasource_id": ds.ID,
		"storage_location_ids": []string{st.ID}}, &job)
	var x httpapi.Execution
	w.must(http.StatusAccepted, "POST", "/api/backup-jobs/"+job.ID+"/run", nil, &x)
	if x = w.waitExecution(x.ID); x.Status != "completed" {
		t.Fatalf("backup of an allowed directory: %s", x.Status)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	srv = servertest.Start(t, &servertest.Options{DataDir: srv.DataDir,
		Env: []string{servertest.AllowPathsEnv + "=" + elsewhere}})
	w.srv = srv
	w.must(http.StatusAccepted, "POST", "/api/backup-jobs/"+job.ID+"/run", nil, &x)
	if x = w.waitExecution(x.ID); x.Status != "failed" || !strings.Contains(x.ErrorMessage, "outside the allowed directories") {
		t.Fatalf("backup of a directory no longer allowed: %s %q, want failed naming the allowed directories", x.Status, x.ErrorMessage)
	}
}

// fakePostgres is a PostgreSQL server on loopback that asks every client
// for its password in clear text and records what it is sent.
type fakePostgres struct {
	ln        net.Listener
	mu        sync.Mutex
	passwords []string
}

func startFakePostgres(t *testing.T) *fakePostgres {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePostgres{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(conn)
		}
	}()
	return f
}

func (f *fakePostgres) port() int { return f.ln.Addr().(*net.TCPAddr).Port }

func (f *fakePostgres) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{}, f.passwords...)
}

// serve answers one connection: SSL request refused, startup message
// read, AuthenticationCleartextPassword sent, the password message
// recorded, then an error.
func (f *fakePostgres) serve(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	for {
		var n int32
		if err := binary.Read(r, binary.BigEndian, &n); err != nil || n < 8 || n > 1<<16 {
			return
		}
		body := make([]byte, n-4)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		if binary.BigEndian.Uint32(body) == 80877103 { // SSLRequest
			conn.Write([]byte{'N'})
			continue
		}
		break // the startup message
	}
	conn.Write([]byte{'R', 0, 0, 0, 8, 0, 0, 0, 3}) // AuthenticationCleartextPassword
	typ, err := r.ReadByte()
	if err != nil || typ != 'p' {
		return
	}
	var n int32
	if err := binary.Read(r, binary.BigEndian, &n); err != nil || n < 5 || n > 1<<16 {
		return
	}
	pw := make([]byte, n-4)
	if _, err := io.ReadFull(r, pw); err != nil {
		return
	}
	f.mu.Lock()
	f.passwords = append(f.passwords, strings.TrimRight(string(pw), "\x00"))
	f.mu.Unlock()
	msg := "SFATAL\x00C28P01\x00Mfake server\x00\x00"
	e := []byte{'E', 0, 0, 0, 0}
	binary.BigEndian.PutUint32(e[1:], uint32(4+len(msg)))
	conn.Write(append(e, msg...))
}

// A stored password is bound to where it goes: moving a datasource to
// another server (here only its port) needs the password again, and the
// stored one never reaches the new server; a password that would cross
// the network in clear is refused when it is registered.
func TestStoredPasswordStaysWithItsServer(t *testing.T) {
	srv := servertest.Start(t, nil)
	admin := client{t, srv, srv.Token}
	w := apiToken(admin, "read", "write")
	fake := startFakePostgres(t)
	const stored = "stored-password-b1nd1ng-7f3a"
	pg := map[string]any{"name": "pg", "type": "postgres", "host": "127.0.0.1", "port": 5432,
		"database": "postgres", "username": "postgres", "password": stored}
	var ds httpapi.Datasource
	w.must(http.StatusCreated, "POST", "/api/datasources", pg, &ds)

	moved := map[string]any{"name": "pg", "type": "postgres", "host": "127.0.0.1", "port": fake.port(),
		"database": "postgres", "username": "postgres"}
	w.problemAt("body.password", "PUT", "/api/datasources/"+ds.ID, moved)
	for _, change := range []map[string]any{
		{"host": "localhost"}, {"username": "other"}, {"database": "other"}, {"options": map[string]string{"sslmode": "disable"}},
	} {
		body := map[string]any{"name": "pg", "type": "postgres", "host": "127.0.0.1", "port": 5432, "database": "postgres", "username": "postgres"}
		for k, v := range change {
			body[k] = v
		}
		w.problemAt("body.password", "PUT", "/api/datasources/"+ds.ID, body)
	}
	// The refused move changed nothing: the health check still goes to
	// the real server, and the fake one has heard nothing.
	w.must(http.StatusOK, "POST", "/api/datasources/"+ds.ID+"/health-check", nil, nil)
	if got := fake.received(); len(got) != 0 {
		t.Fatalf("the new server received passwords %q before any move", got)
	}

	// Moving with a new password sends that one only.
	moved["password"] = "the-new-password"
	w.must(http.StatusOK, "PUT", "/api/datasources/"+ds.ID, moved, nil)
	w.must(http.StatusOK, "POST", "/api/datasources/"+ds.ID+"/health-check", nil, nil)
	got := fake.received()
	if len(got) == 0 || strings.Contains(strings.Join(got, " "), stored) {
		t.Fatalf("the new server received %q: want the new password only", got)
	}
	for _, p := range got {
		if p != "the-new-password" {
			t.Fatalf("the new server received %q, want only the new password", got)
		}
	}

	// A password is not registered for a connection without TLS to
	// another machine (refused before any connection is tried).
	remote := map[string]any{"name": "remote", "type": "postgres", "host": "db.example.com", "database": "app",
		"username": "backup", "password": "x-secret"}
	w.problemAt("body.options.sslmode", "POST", "/api/datasources", remote)
	remote["options"] = map[string]string{"sslmode": "disable"}
	w.problemAt("body.options.sslmode", "POST", "/api/datasources", remote)
	w.problemAt("body.options.tls", "POST", "/api/datasources", map[string]any{"name": "remote-my", "type": "mysql",
		"host": "db.example.com", "database": "app", "username": "backup", "password": "x-secret"})
}
