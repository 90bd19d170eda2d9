package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRunStreamsAndReportsFailure(t *testing.T) {
	var out bytes.Buffer
	var lines []string
	err := Cmd{Path: "sh", Args: []string{"-c", `cat; echo "warning: one" >&2; echo "fatal: $SECRET_OK" >&2; exit 3`},
		Env: []string{"SECRET_OK=from-env"}, Stdin: strings.NewReader("payload"), Stdout: &out,
		Logf: func(f string, a ...any) { lines = append(lines, strings.TrimSpace(sprintf(f, a...))) }}.Run(context.Background())
	var te *ToolError
	if !errors.As(err, &te) || !errors.Is(err, ErrToolFailed) || te.ExitCode != 3 || !strings.Contains(err.Error(), "fatal: from-env") {
		t.Fatalf("err = %v", err)
	}
	if out.String() != "payload" || len(lines) != 2 || lines[0] != "sh: warning: one" {
		t.Fatalf("stdout %q, stderr lines %q", out.String(), lines)
	}
}

func TestStderrIsBounded(t *testing.T) {
	err := Cmd{Path: "sh", Args: []string{"-c", `head -c 200000 /dev/zero | tr '\0' x >&2; echo END >&2; exit 1`}}.Run(context.Background())
	var te *ToolError
	if !errors.As(err, &te) || len(te.Stderr) > MaxStderr || !strings.HasSuffix(strings.TrimSpace(te.Stderr), "END") {
		t.Fatalf("stderr kept %d bytes (max %d), ends %q", len(te.Stderr), MaxStderr, te.Stderr[max(0, len(te.Stderr)-10):])
	}
}

// Cancelling ends the whole process group, grandchildren included.
func TestCancelKillsProcessGroup(t *testing.T) {
	pidFile := t.TempDir() + "/pid"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Cmd{Path: "sh", Args: []string{"-c", `sleep 60 & echo $! > "$1"; wait`, "sh", pidFile}}.Run(ctx)
	}()
	var pid []byte
	for deadline := time.Now().Add(5 * time.Second); len(pid) == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		pid, _ = os.ReadFile(pidFile)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := os.Stat("/proc/" + strings.TrimSpace(string(pid))); err == nil {
		stat, _ := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/stat")
		if !strings.Contains(string(stat), ") Z ") {
			t.Fatalf("grandchild %s still running after cancel", pid)
		}
	}
}

func TestEnvironmentDropsAndOverrides(t *testing.T) {
	t.Setenv("PGPASSWORD", "inherited")
	t.Setenv("DG_KEEP", "kept")
	var out bytes.Buffer
	err := Cmd{Path: "sh", Args: []string{"-c", `echo "${PGPASSWORD:-unset} $DG_KEEP $MYSQL_PWD"`},
		Drop: []string{"PGPASSWORD"}, Env: []string{"MYSQL_PWD=p w'\"$;&|"}, Stdout: &out}.Run(context.Background())
	if err != nil || strings.TrimSpace(out.String()) != `unset kept p w'"$;&|` {
		t.Fatalf("out %q, err %v", out.String(), err)
	}
}

func sprintf(f string, a ...any) string { return fmt.Sprintf(f, a...) }

// blockingWriter holds its first write until release is closed.
type blockingWriter struct {
	release chan struct{}
	n       int
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	w.n += len(p)
	return len(p), nil
}

// A tool's stdout pipe holds far more than Linux's default 64 KiB: the tool
// writes 900 kB and reports it on stderr while the first write down the
// pipeline is still held.
func TestStdoutPipeIsLarge(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the pipe size is set on Linux only")
	}
	w := &blockingWriter{release: make(chan struct{})}
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- Cmd{Path: "sh", Args: []string{"-c", `head -c 900000 /dev/zero; echo written >&2`}, Stdout: w,
			Logf: func(f string, a ...any) {
				if strings.Contains(sprintf(f, a...), "written") {
					once.Do(func() { close(w.release) })
				}
			}}.Run(context.Background())
	}()
	select {
	case err := <-done:
		if err != nil || w.n != 900000 {
			t.Fatalf("%d bytes passed on, err %v", w.n, err)
		}
	case <-time.After(30 * time.Second):
		close(w.release)
		t.Fatal("the tool blocked on a full stdout pipe")
	}
}

// A tool asked to (BufferStdout) whose output we read through a pipe runs
// under stdbuf with a large stdout buffer, where stdbuf exists (it tells
// the tool through _STDBUF_O); not one writing to a file, nor one not asked.
func TestStdoutBufferedByStdbuf(t *testing.T) {
	if stdbuf() == "" {
		t.Skip("no stdbuf on this system: tools keep their own buffering")
	}
	var out strings.Builder
	err := Cmd{Path: "sh", Args: []string{"-c", `printf %s "$_STDBUF_O"`}, Stdout: &out, BufferStdout: true}.Run(context.Background())
	if err != nil || out.String() != "1048576" { // stdoutToolBuffer, in bytes
		t.Fatalf("_STDBUF_O=%q, %v; want 1048576", out.String(), err)
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := (Cmd{Path: "sh", Args: []string{"-c", `printf %s "$_STDBUF_O"`}, Stdout: f, BufferStdout: true}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(f.Name()); len(b) != 0 {
		t.Fatalf("a tool writing to a file ran under stdbuf: %q", b)
	}
	out.Reset()
	if err := (Cmd{Path: "sh", Args: []string{"-c", `printf %s "$_STDBUF_O"`}, Stdout: &out}).Run(context.Background()); err != nil || out.Len() != 0 {
		t.Fatalf("a tool not asked to ran under stdbuf: %q, %v", out.String(), err)
	}
}
