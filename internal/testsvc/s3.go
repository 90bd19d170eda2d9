package testsvc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Server is a real S3 server process on loopback: versitygw serving a
// temporary directory (its posix backend), started by StartS3.
type S3Server struct {
	// Endpoint is its URL, e.g. http://127.0.0.1:41234.
	Endpoint string
	// AccessKey and SecretKey are its root credentials.
	AccessKey, SecretKey string
	// Dir is the directory it serves: one folder per bucket.
	Dir string

	bin string
	cmd *exec.Cmd
}

// StartS3 starts versitygw (`go install
// github.com/versity/versitygw/cmd/versitygw@v1.8.0`; .ci/run installs
// it) on a free loopback port and stops it when t ends. Without the
// binary it skips t, or fails it with DG_REQUIRE_SERVICES=1.
func StartS3(t testing.TB) *S3Server {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	Require(t, "the S3 server versitygw (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)", err)
	s := &S3Server{AccessKey: "dgtest-access", SecretKey: "dgtest-secret-" + uuid.NewString()[:8], Dir: t.TempDir(), bin: bin}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.start(port)
		if err == nil {
			break
		}
		if attempt == 2 {
			t.Fatalf("versitygw did not listen on 127.0.0.1:%d: %v\n%s", port, err, out)
		}
	}
	t.Cleanup(s.Kill)
	return s
}

// RestartS3 starts s again, after a Kill, on the same address, directory
// and credentials, and returns it.
func RestartS3(t testing.TB, s *S3Server) *S3Server {
	t.Helper()
	s.Kill()
	port, _ := strconv.Atoi(s.Endpoint[strings.LastIndexByte(s.Endpoint, ':')+1:])
	if out, err := s.start(port); err != nil {
		t.Fatalf("restart versitygw on port %d: %v\n%s", port, err, out)
	}
	return s
}

// start runs the server on port and waits until it listens.
func (s *S3Server) start(port int) (string, error) {
	s.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
	s.cmd = exec.Command(s.bin, "--port", fmt.Sprintf("127.0.0.1:%d", port), "posix", s.Dir)
	// Root credentials through the environment, never the argv.
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &lockedBuilder{}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		return "", err
	}
	if err := waitListening(port, 10*time.Second); err != nil {
		s.Kill()
		return out.String(), err
	}
	return "", nil
}

// lockedBuilder is a strings.Builder safe for the process's two streams.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Kill stops the server at once (as a crash would).
func (s *S3Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Client returns a client of the server with its root credentials.
func (s *S3Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(strings.TrimPrefix(s.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), BucketLookup: minio.BucketLookupPath,
		Transport: http.DefaultTransport})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// NewBucket creates a uniquely named bucket and returns its name.
func (s *S3Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := "dg-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitListening(port int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Join(errors.New("timed out"), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
