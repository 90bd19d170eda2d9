// Package servertest runs the reference server, `dataguardian serve`, as a
// real process for black-box tests: it builds ./examples/dataguardian once
// per test binary, starts it on a free port with a temporary data
// directory and a known admin token, and stops it with SIGTERM at the end
// of the test, failing the test unless it exited cleanly.
package servertest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Lines the server prints on stderr (examples/dataguardian/serve.go).
const (
	readyPrefix     = "listening on http://"
	adminTokenLabel = "admin token: "
)

// Timeouts of a server's life in a test.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
)

// Options configure Start. A nil *Options means every default.
type Options struct {
	// Env is appended to the server's environment, after the variables
	// Start sets (DG_LISTEN=127.0.0.1:0, DG_DATA_DIR, DG_ADMIN_TOKEN), so it
	// overrides them: "DG_ADMIN_TOKEN=" starts without a known token (the
	// server then prints a generated one on first start, see Server.Token).
	Env []string
	// Args are appended to "serve".
	Args []string
	// DataDir is the data directory; "" means a new temporary one. Two
	// servers started one after the other on one DataDir share their state.
	DataDir string
	// Binary is the dataguardian binary to run; "" means Binary(t).
	Binary string
	// Dir is the server's working directory; "" means the test's. It is
	// the default root of --allow-path, which Start replaces (see
	// AllowPathsEnv) unless Env sets DG_ALLOW_PATHS itself.
	Dir string
}

// AllowPathsEnv is the variable naming the directories the server lets
// datasources and storage locations use. Unless Options.Env sets it, Start
// sets it to the parent of t.TempDir(): every directory the test creates
// with t.TempDir, the server's data directory among them (which the server
// never lets the API use all the same). "DG_ALLOW_PATHS=" in Env restores
// the server's own default, its working directory (Options.Dir).
const AllowPathsEnv = "DG_ALLOW_PATHS"

// Server is a running `dataguardian serve` process.
type Server struct {
	// URL is the API's base URL, e.g. http://127.0.0.1:41234 (no slash).
	URL string
	// Token is an admin token: DG_ADMIN_TOKEN, or the token the server
	// generated and printed on this start; "" if neither.
	Token string
	// DataDir is the server's data directory.
	DataDir string

	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, set before done is closed

	stopOnce sync.Once
	stopErr  error
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary builds ./examples/dataguardian of this module with CGO_ENABLED=0,
// once per test binary, and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { buildPath, buildErr = build() })
	if buildErr != nil {
		t.Fatalf("build dataguardian: %v", buildErr)
	}
	return buildPath
}

func build() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("find the module: not inside a Go module")
	}
	pruneStaleBuilds()
	dir, err := os.MkdirTemp("", buildDirPrefix)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "dataguardian")
	cmd := exec.Command("go", "build", "-o", bin, "./examples/dataguardian")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./examples/dataguardian: %w\n%s", err, out)
	}
	return bin, nil
}

// Start starts `dataguardian serve` and returns once it accepts
// connections. The server is stopped at t's cleanup (see Stop), which
// fails t unless the process exits with status 0; its stderr goes to
// t.Log when t failed.
func Start(t testing.TB, opts *Options) *Server {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Binary == "" {
		o.Binary = Binary(t)
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	s := &Server{DataDir: o.DataDir, Token: randomToken(), stderr: &lockedBuffer{}, done: make(chan struct{})}
	env := append(withoutServerEnv(os.Environ()), "DG_LISTEN=127.0.0.1:0", "DG_DATA_DIR="+o.DataDir, "DG_ADMIN_TOKEN="+s.Token,
		AllowPathsEnv+"="+filepath.Dir(t.TempDir()))
	env = append(env, o.Env...)
	if v, ok := lastValue(env, "DG_ADMIN_TOKEN"); ok {
		s.Token = v
	}
	s.cmd = exec.Command(o.Binary, append([]string{"serve"}, o.Args...)...)
	s.cmd.Env = env
	s.cmd.Dir = o.Dir
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatalf("start dataguardian serve: %v", err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start dataguardian serve: %v", err)
	}
	ready := make(chan string, 1)
	generated := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.stderr.writeLine(line)
			if _, tok, ok := strings.Cut(line, adminTokenLabel); ok {
				select {
				case generated <- strings.TrimSpace(tok):
				default:
				}
			}
			if _, addr, ok := strings.Cut(line, readyPrefix); ok {
				select {
				case ready <- "http://" + strings.TrimSpace(addr):
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-copied // Wait closes the pipe: read it all first
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("dataguardian serve did not stop cleanly: %v", err)
		}
		if t.Failed() {
			t.Logf("dataguardian serve stderr:\n%s", s.Stderr())
		}
	})
	select {
	case s.URL = <-ready:
	case <-s.done:
		t.Fatalf("dataguardian serve exited before it was ready: %v\nstderr:\n%s", s.err, s.Stderr())
	case <-time.After(startTimeout):
		t.Fatalf("dataguardian serve did not print %q within %v", readyPrefix, startTimeout)
	}
	select {
	case s.Token = <-generated: // printed before the ready line
	default:
	}
	return s
}

// Stop sends SIGTERM and waits for the process to exit; it returns an
// error unless the exit status was 0 within stopTimeout (after which the
// process is killed). Calls after the first return the first result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-s.done:
			if s.err != nil {
				s.stopErr = fmt.Errorf("exit after SIGTERM: %w", s.err)
			}
		case <-time.After(stopTimeout):
			s.cmd.Process.Kill()
			<-s.done
			s.stopErr = fmt.Errorf("still running %v after SIGTERM: killed", stopTimeout)
		}
	})
	return s.stopErr
}

// Kill ends the server with SIGKILL, as a crash or the OOM killer would,
// and waits until the process is gone. The test's cleanup (Stop) then
// expects nothing more of it.
func (s *Server) Kill() error {
	var err error
	s.stopOnce.Do(func() {
		select {
		case <-s.done:
			err = fmt.Errorf("already exited: %v", s.err)
		default:
			err = s.cmd.Process.Kill()
			<-s.done
		}
	})
	return err
}

// Stderr returns what the server printed on stderr so far.
func (s *Server) Stderr() string { return s.stderr.String() }

// Response is an answer of the server.
type Response struct {
	Code   int
	Header http.Header
	Body   []byte
}

// Send sends body as it is (nil sends none; a body is sent as
// application/json) with token as bearer token ("" sends none) and returns
// the answer. Transport errors fail t.
func (s *Server) Send(t testing.TB, method, path, token string, body []byte) Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return Response{Code: resp.StatusCode, Header: resp.Header, Body: b}
}

// Do is Send with body, when not nil, encoded as JSON; it returns the
// status and the response body.
func (s *Server) Do(t testing.TB, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatalf("encode request body: %v", err)
		}
	}
	res := s.Send(t, method, path, token, b)
	return res.Code, res.Body
}

// buildDirPrefix names the temporary directories of the built binaries.
const buildDirPrefix = "dataguardian-servertest-"

// staleBuildAge is the age after which a build directory is removed: twice
// the README's test timeout (15 minutes), which no test binary outlives.
const staleBuildAge = 30 * time.Minute

// pruneStaleBuilds removes the build directories of earlier test binaries:
// with no TestMain of its own, this package cannot remove its build when
// the test binary ends. A directory older than staleBuildAge belongs to a
// run that has ended.
func pruneStaleBuilds() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), buildDirPrefix+"*"))
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && time.Since(fi.ModTime()) > staleBuildAge {
			os.RemoveAll(d)
		}
	}
}

// randomToken is an admin token secret for one server.
func randomToken() string {
	b := make([]byte, 24)
	rand.Read(b)
	return "servertest_" + hex.EncodeToString(b)
}

// withoutServerEnv drops the variables that configure the server from env,
// so a developer's settings never leak into a test.
func withoutServerEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "DG_LISTEN", "DG_DATA_DIR", "DG_DATABASE_URL", "DG_ADMIN_TOKEN", "DG_SECRET_KEY",
			"DG_LOG_LEVEL", "DG_LOG_FORMAT", "DG_SHUTDOWN_TIMEOUT", "DG_STORAGE_DIR", AllowPathsEnv,
			"DG_METRICS_AUTH":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// lastValue returns the value of the last name=value in env, as exec uses it.
func lastValue(env []string, name string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// lockedBuffer collects lines written by one goroutine and read by others.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) writeLine(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(line)
	b.buf.WriteByte('\n')
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
