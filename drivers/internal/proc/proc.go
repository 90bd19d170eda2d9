// Package proc runs the database tools drivers stream through (pg_dump,
// pg_restore, mariadb-dump, mariadb, ...): argument slices, never a shell;
// secrets only in the environment; stderr captured with a bound and passed
// on line by line; the whole process group ended when the context is done.
package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrToolFailed reports a tool that exited with a non-zero status.
var ErrToolFailed = errors.New("tool failed")

// MaxStderr is how many trailing bytes of a tool's stderr are kept for its error.
const MaxStderr = 16 << 10

// ToolError is a tool's non-zero exit, with the tail of what it printed on
// stderr. It matches ErrToolFailed.
type ToolError struct {
	Tool     string // base name, e.g. "pg_dump"
	ExitCode int
	Stderr   string // last MaxStderr bytes, trimmed
	Err      error  // the *exec.ExitError or start error
}

func (e *ToolError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("%s exited with status %d: %s", e.Tool, e.ExitCode, msg)
}

// Is reports whether target is ErrToolFailed.
func (e *ToolError) Is(target error) bool { return target == ErrToolFailed }

// Unwrap returns the underlying error.
func (e *ToolError) Unwrap() error { return e.Err }

// Cmd is one tool invocation.
type Cmd struct {
	Path   string    // the executable, absolute or looked up in PATH
	Args   []string  // arguments, never containing a secret
	Env    []string  // "KEY=value" added to the process environment (secrets go here)
	Drop   []string  // names removed from the inherited environment (e.g. PGPASSWORD)
	Stdin  io.Reader // nil: no input
	Stdout io.Writer // nil: discarded
	// BufferStdout runs the tool under `stdbuf -o 1M` (where coreutils
	// has it) when Stdout is not a file: for a tool that writes its output
	// through stdio a few KiB at a time (see stdoutToolBuffer).
	BufferStdout bool
	// Logf receives each stderr line as the tool prints it; nil drops them.
	Logf func(format string, args ...any)
	// WaitDelay bounds how long Run waits for the pipes after the process
	// ends or is killed; 0 means 5 s.
	WaitDelay time.Duration
}

// Run starts the tool in its own process group and waits for it. When ctx
// is done the whole group gets SIGKILL and Run returns an error matching
// ctx.Err(). A non-zero exit is a *ToolError carrying the tool's message.
func (c Cmd) Run(ctx context.Context) error {
	path, args := c.Path, c.Args
	_, toFile := c.Stdout.(*os.File)
	piped := c.Stdout != nil && !toFile
	if sb := stdbuf(); c.BufferStdout && piped && sb != "" {
		path, args = sb, append([]string{"-o", stdoutToolBuffer, c.Path}, c.Args...)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = environ(c.Drop, c.Env)
	cmd.Stdin = c.Stdin
	cmd.Stdout = c.Stdout
	if piped {
		cmd.Stdout = stdout{c.Stdout}
	}
	stderr := &tail{logf: c.Logf, tool: baseName(c.Path)}
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// Negative pid: the whole group, so children of the tool end too.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = c.WaitDelay
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 5 * time.Second
	}
	err := cmd.Run()
	stderr.flush()
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", baseName(c.Path), ctxErr)
	}
	te := &ToolError{Tool: baseName(c.Path), ExitCode: -1, Stderr: stderr.String(), Err: err}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		te.ExitCode = exit.ExitCode()
	}
	return te
}

func baseName(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// environ is the current environment without the dropped names and without
// any name set in add, followed by add.
func environ(drop, add []string) []string {
	skip := make(map[string]bool, len(drop)+len(add))
	for _, k := range drop {
		skip[k] = true
	}
	for _, kv := range add {
		k, _, _ := strings.Cut(kv, "=")
		skip[k] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !skip[k] {
			env = append(env, kv)
		}
	}
	return append(env, add...)
}

// tail keeps the last MaxStderr bytes written to it and passes complete
// lines to logf.
type tail struct {
	mu   sync.Mutex
	buf  []byte
	line []byte
	logf func(string, ...any)
	tool string
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - MaxStderr; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	if t.logf != nil {
		t.line = append(t.line, p...)
		for {
			i := bytes.IndexByte(t.line, '\n')
			if i < 0 {
				break
			}
			t.emit(t.line[:i])
			t.line = t.line[i+1:]
		}
		if len(t.line) > 4096 { // a runaway line without newline
			t.emit(t.line)
			t.line = t.line[:0]
		}
	}
	return len(p), nil
}

func (t *tail) emit(line []byte) {
	if s := strings.TrimSpace(string(line)); s != "" {
		t.logf("%s: %s", t.tool, s)
	}
}

func (t *tail) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.logf != nil && len(t.line) > 0 {
		t.emit(t.line)
		t.line = nil
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
