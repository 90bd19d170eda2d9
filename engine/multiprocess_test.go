package engine_test

// Multi-process tests of the engine (issue 5, "Measured: multi-process"):
// several engine processes share one PostgreSQL metadata database and one
// storage directory; each due backup runs exactly once, and a process
// killed with SIGKILL in the middle of a backup has its execution recovered
// by the others without anything running twice.
//
// The engine processes are this test binary run again with envMPChild set
// (TestMultiProcessChild). bench/multiprocess.sh runs the tests with -v and
// prints the timings they log.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", for the fixtures

	"github.com/dataguardian/dataguardian/defaults"
	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/files"
	"github.com/dataguardian/dataguardian/drivers/sqlite"
	"github.com/dataguardian/dataguardian/engine"
	"github.com/dataguardian/dataguardian/engine/internal/storedb"
	"github.com/dataguardian/dataguardian/internal/testsvc"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage"
	"github.com/dataguardian/dataguardian/storage/local"
)

// Environment of an engine child process (TestMultiProcessChild).
const (
	envMPChild   = "DG_TEST_ENGINE_CHILD"   // metadata database URL; set: run as an engine process
	envMPDataDir = "DG_TEST_ENGINE_DATADIR" // the child's Config.DataDir
	envMPOwner   = "DG_TEST_ENGINE_OWNER"   // the child's Worker.Owner
	envMPGate    = "DG_TEST_ENGINE_GATE"    // gate file of the files driver (gatedFiles); "" means none
)

// Options of every engine process of these tests.
const (
	mpLease       = 2 * time.Second
	mpPoll        = 50 * time.Millisecond
	mpTick        = 100 * time.Millisecond
	mpConcurrency = 2
)

// mpKey is the SecretKey shared by every process of a test.
var mpKey = bytes.Repeat([]byte{9}, 32)

var mpDiscard = slog.New(slog.NewTextHandler(io.Discard, nil))

// mpGateHeld is the file a gated dump creates (gate+mpGateHeld) once it
// waits at the gate: the backup is then in the middle of its dump.
const mpGateHeld = ".held"

// mpGateAfter is how many bytes a gated dump writes before it waits.
const mpGateAfter = 1 << 20

// gatedFiles is the files driver, except that the dump of a directory whose
// name starts with "slow" waits, once it wrote mpGateAfter bytes, for as
// long as the file gate exists: a backup that can be killed half done at a
// moment the test chooses, and run in full later.
type gatedFiles struct {
	*files.Driver
	gate string
}

func (d gatedFiles) Dump(ctx context.Context, src drivers.Source, w io.Writer, opts *drivers.DumpOptions) (drivers.Metadata, error) {
	if d.gate != "" && strings.HasPrefix(filepath.Base(src.Path), "slow") {
		w = &gateWriter{ctx: ctx, w: w, gate: d.gate}
	}
	return d.Driver.Dump(ctx, src, w, opts)
}

type gateWriter struct {
	ctx  context.Context
	w    io.Writer
	gate string
	n    int64
}

func (g *gateWriter) Write(p []byte) (int, error) {
	if g.n >= mpGateAfter {
		for held := false; ; held = true {
			if _, err := os.Stat(g.gate); errors.Is(err, os.ErrNotExist) {
				break
			}
			if !held {
				if err := os.WriteFile(g.gate+mpGateHeld, []byte(fmt.Sprint(os.Getpid())), 0o600); err != nil {
					return 0, err
				}
			}
			select {
			case <-g.ctx.Done():
				return 0, g.ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	n, err := g.w.Write(p)
	g.n += int64(n)
	return n, err
}

// TestMultiProcessChild is not a test: the multi-process tests run the test
// binary again with envMPChild set, and this function is then one engine
// process. It prints "READY" once the engine is open, runs Start until its
// standard input ends (the parent stops it, or died) and exits.
func TestMultiProcessChild(t *testing.T) {
	url := os.Getenv(envMPChild)
	if url == "" {
		return
	}
	// Bounds an orphan whose parent vanished without closing the pipe.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()

	reg := &drivers.Registry{}
	reg.Register(sqlite.New())
	reg.Register(gatedFiles{Driver: files.New(), gate: os.Getenv(envMPGate)})
	owner := os.Getenv(envMPOwner)
	e, err := engine.New(ctx, engine.Config{
		DataDir: os.Getenv(envMPDataDir), DatabaseURL: url, SecretKey: mpKey, Drivers: reg,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("proc", owner),
		Worker: engine.WorkerOptions{Owner: owner, Poll: mpPoll, Lease: mpLease, Concurrency: mpConcurrency,
			ShutdownTimeout: 10 * time.Second},
		Scheduler: engine.SchedulerOptions{Tick: mpTick},
		Health:    engine.HealthOptions{Interval: time.Hour},
		StorageOpeners: map[string]engine.StorageOpener{"local": func(ctx context.Context, loc *engine.StorageLocation) (storage.Storage, error) {
			st, err := local.New(loc.Config["path"])
			return holdRelease{st, os.Getenv("DG_TEST_HOLD_RELEASE")}, err
		}},
	})
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	defer e.Close()
	fmt.Println("READY")
	if err := e.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

// mpChild is a running engine process.
type mpChild struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *mpBuffer
	ready chan struct{}
	done  chan struct{} // closed once the process exited; err is then set
	err   error
}

// mpBuffer is an output buffer written by the process and read by the test.
type mpBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *mpBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *mpBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startMPChild starts an engine process named name on the metadata database
// url; gate is its gatedFiles gate ("" for none). The process is killed
// (SIGKILL) and reaped when t ends, whatever happened.
func startMPChild(t *testing.T, name, url, gate string) *mpChild {
	t.Helper()
	c := &mpChild{name: name, out: &mpBuffer{}, ready: make(chan struct{}), done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestMultiProcessChild$", "-test.count=1")
	c.cmd.Env = append(os.Environ(), envMPChild+"="+url, envMPDataDir+"="+t.TempDir(),
		envMPOwner+"="+name, envMPGate+"="+gate)
	c.cmd.Stderr = c.out
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill() // no-op error once it exited
		<-c.done
		if t.Failed() {
			t.Logf("output of %s (%v):\n%s", name, c.err, c.out)
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "READY" {
				close(c.ready)
				continue
			}
			fmt.Fprintln(c.out, sc.Text())
		}
		_, _ = io.Copy(c.out, stdout)
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	return c
}

// waitReady waits until every child opened its engine.
func waitMPReady(t *testing.T, children ...*mpChild) {
	t.Helper()
	for _, c := range children {
		select {
		case <-c.ready:
		case <-c.done:
			t.Fatalf("%s exited before it was ready: %v\n%s", c.name, c.err, c.out)
		case <-time.After(60 * time.Second):
			t.Fatalf("%s not ready after 60 s:\n%s", c.name, c.out)
		}
	}
}

// stop ends the child gracefully (its standard input closes, Start
// returns) and checks that it exited cleanly: no error, no data race.
func (c *mpChild) stop(t *testing.T) {
	t.Helper()
	_ = c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop within 30 s of its stop", c.name)
	}
	if c.err != nil || strings.Contains(c.out.String(), "DATA RACE") {
		t.Fatalf("%s exited with %v:\n%s", c.name, c.err, c.out)
	}
}

// kill sends SIGKILL to the child and waits until it is gone.
func (c *mpChild) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", c.name, err)
	}
	<-c.done
}

func mpMust(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// mpWait polls cond every 100 ms until it holds, failing t after limit.
// cond may fail t itself (say, on an execution that failed).
func mpWait(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
	}
}

// mpSetup is the parent's side of a multi-process test: a fresh PostgreSQL
// metadata database, an engine on it (not started: it only records and
// checks) and one local storage directory for every job.
type mpSetup struct {
	url  string
	e    *engine.Engine
	root string
	loc  *engine.StorageLocation
}

func newMPSetup(t *testing.T) *mpSetup {
	t.Helper()
	if testing.Short() {
		t.Skip("starts engine processes")
	}
	s := &mpSetup{url: testsvc.NewPostgresDatabase(t), root: t.TempDir()}
	e, err := engine.New(t.Context(), engine.Config{DataDir: t.TempDir(), DatabaseURL: s.url, SecretKey: mpKey, Logger: mpDiscard,
		Drivers: defaults.Drivers(), StorageOpeners: defaults.StorageOpeners()})
	mpMust(t, "engine.New", err)
	t.Cleanup(func() { e.Close() })
	s.e = e
	s.loc = &engine.StorageLocation{Name: "shared", Type: "local", Config: map[string]string{"path": s.root}}
	mpMust(t, "create storage", e.CreateStorageLocation(t.Context(), s.loc))
	return s
}

// job creates a backup job of a new datasource, scheduled once a year so
// that it runs only once the test makes it due.
func (s *mpSetup) job(t *testing.T, name, typ, path string) *engine.BackupJob {
	t.Helper()
	ctx := t.Context()
	ds := &engine.Datasource{Name: name, Type: typ, Path: path}
	mpMust(t, "create datasource", s.e.CreateDatasource(ctx, ds, ""))
	j := &engine.BackupJob{Name: name, DatasourceID: ds.ID, StorageLocationIDs: []string{s.loc.ID},
		Schedule: "0 0 1 1 *", Compression: "gzip"}
	mpMust(t, "create job", s.e.CreateBackupJob(ctx, j))
	return j
}

// due makes the jobs due a minute ago.
func (s *mpSetup) due(t *testing.T, jobs ...*engine.BackupJob) {
	t.Helper()
	past := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	for _, j := range jobs {
		j.NextExecutionAt = &past
		mpMust(t, "make job due", s.e.Store().UpdateBackupJob(t.Context(), j, "next_execution_at"))
	}
}

// backups lists every backup execution.
func (s *mpSetup) backups(t *testing.T) []engine.Execution {
	t.Helper()
	xs, err := s.e.Store().ListExecutions(t.Context(), engine.ExecutionFilter{Operation: engine.OperationBackup, Limit: -1})
	mpMust(t, "list executions", err)
	return xs
}

// countCompleted counts completed backups, failing t on a failed or
// cancelled one (nothing here may fail).
func (s *mpSetup) countCompleted(t *testing.T) int {
	t.Helper()
	n := 0
	for _, x := range s.backups(t) {
		switch x.Status {
		case engine.ExecutionCompleted:
			n++
		case engine.ExecutionFailed, engine.ExecutionCancelled:
			t.Fatalf("execution %s of job %s is %s: %s", x.ID, x.JobID, x.Status, x.ErrorMessage)
		}
	}
	return n
}

// checkOncePerJob checks that every job in jobs has exactly one backup
// execution, completed, whose run folder is the only one with a manifest
// among the job's run folders and verifies. It returns the executions by
// job ID.
func (s *mpSetup) checkOncePerJob(t *testing.T, jobs []*engine.BackupJob) map[string]engine.Execution {
	t.Helper()
	byJob := map[string]engine.Execution{}
	for _, x := range s.backups(t) {
		if prev, ok := byJob[x.JobID]; ok {
			t.Errorf("job %s has two backup executions: %s (%s) and %s (%s)", x.JobID, prev.ID, prev.Status, x.ID, x.Status)
		}
		byJob[x.JobID] = x
		if x.Status != engine.ExecutionCompleted {
			t.Errorf("execution %s of job %s is %s, want completed (%s)", x.ID, x.JobID, x.Status, x.ErrorMessage)
		}
	}
	if len(byJob) != len(jobs) {
		t.Errorf("%d jobs have a backup execution; want %d", len(byJob), len(jobs))
	}
	for _, j := range jobs {
		x, ok := byJob[j.ID]
		if !ok {
			t.Errorf("job %s (%s) never ran", j.Name, j.ID)
			continue
		}
		withManifest := s.manifests(t, j.ID)
		if !slices.Equal(withManifest, []string{x.BackupPath}) {
			t.Errorf("job %s: run folders with a manifest %v; want only the completed execution's %q", j.Name, withManifest, x.BackupPath)
		}
		if err := s.e.VerifyBackup(t.Context(), x.ID); err != nil {
			t.Errorf("job %s: verify %s: %v", j.Name, x.BackupPath, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return byJob
}

// runFolders lists the run folders of job jobID on the shared storage
// ("jobID/2025-…"), each with whether it holds a manifest.
func (s *mpSetup) runFolders(t *testing.T, jobID string) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.root, jobID))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, d := range entries {
		_, err := os.Stat(filepath.Join(s.root, jobID, d.Name(), manifest.FileName))
		out[jobID+"/"+d.Name()] = err == nil
	}
	return out
}

func (s *mpSetup) manifests(t *testing.T, jobID string) []string {
	var out []string
	for dir, ok := range s.runFolders(t, jobID) {
		if ok {
			out = append(out, dir)
		}
	}
	slices.Sort(out)
	return out
}

// checkQueueDrained checks that no task is due, claimed or failed, and no
// execution is queued or running.
func (s *mpSetup) checkQueueDrained(t *testing.T) {
	t.Helper()
	st, err := s.e.Queue().Stats(t.Context())
	mpMust(t, "queue stats", err)
	// A process killed after its backup committed but before it completed
	// the task leaves that task to be recovered later (scheduled, after the
	// retry backoff); when it comes due the worker finds the execution
	// finished and completes it without running anything. Only such tasks
	// may remain scheduled.
	var finished int
	err = s.e.Store().DB(storedb.Key{}).NewRaw(`SELECT count(*) FROM queue_tasks t JOIN backup_executions x ON x.id = t.execution_id
		WHERE t.status = 'queued' AND x.status IN ('completed', 'failed', 'cancelled')`).Scan(t.Context(), &finished)
	mpMust(t, "count scheduled tasks of finished executions", err)
	if st.Depth != 0 || st.Running != 0 || st.Expired != 0 || st.Failed != 0 || st.Scheduled != finished {
		t.Errorf("queue stats at the end = %+v (%d scheduled for finished executions); want nothing due, claimed or failed", st, finished)
	}
	for _, status := range []engine.ExecutionStatus{engine.ExecutionQueued, engine.ExecutionRunning} {
		xs, err := s.e.Store().ListExecutions(t.Context(), engine.ExecutionFilter{Status: status, Limit: -1})
		mpMust(t, "list executions", err)
		for _, x := range xs {
			t.Errorf("execution %s (%s of job %s) left %s", x.ID, x.Operation, x.JobID, x.Status)
		}
	}
}

// mpTaskRow is what the tests read of a queue task (table queue_tasks).
type mpTaskRow struct {
	ExecutionID string `bun:"execution_id"`
	Attempt     int    `bun:"attempt"`
	Status      string `bun:"status"`
	LeaseOwner  string `bun:"lease_owner"`
}

// tasks reads the queue tasks: who ran what, at which attempt.
func (s *mpSetup) tasks(t *testing.T) map[string]mpTaskRow {
	t.Helper()
	var rows []mpTaskRow
	err := s.e.Store().DB(storedb.Key{}).NewRaw("SELECT execution_id, attempt, status, COALESCE(lease_owner, '') AS lease_owner FROM queue_tasks").Scan(t.Context(), &rows)
	mpMust(t, "read queue_tasks", err)
	out := map[string]mpTaskRow{}
	for _, r := range rows {
		if _, dup := out[r.ExecutionID]; dup {
			t.Errorf("execution %s has two queue tasks", r.ExecutionID)
		}
		out[r.ExecutionID] = r
	}
	return out
}

// makeMPSQLite writes a small SQLite database (rows of random blobs) at path.
func makeMPSQLite(t *testing.T, path string, rows int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	mpMust(t, "open sqlite", err)
	defer db.Close()
	_, err = db.Exec(`CREATE TABLE items (id INTEGER PRIMARY KEY, blob BLOB)`)
	mpMust(t, "create table", err)
	blob := make([]byte, 500)
	for range rows {
		rand.Read(blob)
		_, err := db.Exec(`INSERT INTO items (blob) VALUES (?)`, blob)
		mpMust(t, "insert", err)
	}
}

// sqliteJobs creates n jobs, each of its own small SQLite datasource.
func (s *mpSetup) sqliteJobs(t *testing.T, prefix string, n int) []*engine.BackupJob {
	t.Helper()
	dir := t.TempDir()
	template := filepath.Join(dir, "template.db")
	makeMPSQLite(t, template, 100)
	data, err := os.ReadFile(template)
	mpMust(t, "read template", err)
	jobs := make([]*engine.BackupJob, n)
	for i := range n {
		path := filepath.Join(dir, fmt.Sprintf("%s-%03d.db", prefix, i))
		mpMust(t, "write datasource", os.WriteFile(path, data, 0o600))
		jobs[i] = s.job(t, fmt.Sprintf("%s-%03d", prefix, i), "sqlite", path)
	}
	return jobs
}

// TestMultiProcessExactlyOnce: three engine processes share one PostgreSQL
// metadata database and one storage directory; 200 jobs become due at once.
// Each runs exactly once, every backup verifies, and the queue is left
// empty.
func TestMultiProcessExactlyOnce(t *testing.T) {
	const nJobs, nProcs = 200, 3
	s := newMPSetup(t)
	setupStart := time.Now()
	jobs := s.sqliteJobs(t, "app", nJobs)
	t.Logf("setup: %d sqlite datasources and jobs in %s", nJobs, time.Since(setupStart).Round(time.Millisecond))

	var children []*mpChild
	for i := range nProcs {
		children = append(children, startMPChild(t, fmt.Sprintf("proc-%c", 'A'+i), s.url, ""))
	}
	waitMPReady(t, children...)

	start := time.Now()
	s.due(t, jobs...)
	dueIn := time.Since(start)
	mpWait(t, fmt.Sprintf("%d completed backups", nJobs), 120*time.Second, func() bool { return s.countCompleted(t) >= nJobs })
	took := time.Since(start)
	time.Sleep(5 * mpTick) // a few more scheduler ticks: nothing may run again

	byJob := s.checkOncePerJob(t, jobs)
	s.checkQueueDrained(t)
	tasks := s.tasks(t)
	perOwner := map[string]int{}
	for _, x := range byJob {
		tk, ok := tasks[x.ID]
		if !ok || tk.Status != "done" {
			t.Errorf("execution %s: queue task %+v (found %v); want done", x.ID, tk, ok)
		}
		perOwner[tk.LeaseOwner]++
	}
	if len(perOwner) < 2 {
		t.Errorf("backups per process %v: the processes did not share the work", perOwner)
	}
	var first, last time.Time
	for _, x := range byJob {
		if first.IsZero() || x.StartedAt.Before(first) {
			first = *x.StartedAt
		}
		if x.FinishedAt.After(last) {
			last = *x.FinishedAt
		}
	}
	t.Logf("%d jobs made due in %s; all %d backups completed %s after (first started %s after, last finished %s after); per process %v",
		nJobs, dueIn.Round(time.Millisecond), nJobs, took.Round(time.Millisecond),
		first.Sub(start).Round(time.Millisecond), last.Sub(start).Round(time.Millisecond), perOwner)

	for _, c := range children {
		c.stop(t)
	}
}

// TestMultiProcessSIGKILL: process A is killed with SIGKILL in the middle of
// a backup (its dump waits at a gate, so the kill lands mid-dump); B and C
// keep running other jobs. Once A's lease expires the task is recovered for
// attempt 2 and B or C runs it in full: the job ends with exactly one
// completed execution, whose backup verifies, started after the kill; the
// killed attempt's run folder has no manifest; nothing is left queued or
// running.
func TestMultiProcessSIGKILL(t *testing.T) {
	t.Parallel()
	s := newMPSetup(t)
	ctx := t.Context()

	// The slow datasource: a few MiB of random files, its dump held at the
	// gate after its first MiB while the gate file exists.
	src := filepath.Join(t.TempDir(), "slow-files")
	mpMust(t, "mkdir", os.MkdirAll(src, 0o700))
	for i := range 4 {
		b := make([]byte, 1<<20)
		rand.Read(b)
		mpMust(t, "write", os.WriteFile(filepath.Join(src, fmt.Sprintf("f%d.bin", i)), b, 0o600))
	}
	gate := filepath.Join(t.TempDir(), "gate")
	mpMust(t, "gate", os.WriteFile(gate, nil, 0o600))
	slow := s.job(t, "slow", "files", src)
	others := s.sqliteJobs(t, "other", 20)

	a := startMPChild(t, "proc-A", s.url, gate)
	waitMPReady(t, a)
	s.due(t, slow)
	var slowRun engine.Execution
	mpWait(t, "proc-A to be in the middle of the slow backup", 30*time.Second, func() bool {
		xs, err := s.e.Store().ListExecutions(ctx, engine.ExecutionFilter{JobID: slow.ID, Limit: -1})
		mpMust(t, "list", err)
		if len(xs) != 1 || xs[0].Status != engine.ExecutionRunning {
			return false
		}
		slowRun = xs[0]
		_, err = os.Stat(gate + mpGateHeld)
		return err == nil
	})
	b := startMPChild(t, "proc-B", s.url, gate)
	c := startMPChild(t, "proc-C", s.url, gate)
	waitMPReady(t, b, c)
	if tk := s.tasks(t)[slowRun.ID]; tk.LeaseOwner != "proc-A" || tk.Status != "claimed" || tk.Attempt != 1 {
		t.Fatalf("slow task before the kill: %+v; want claimed by proc-A, attempt 1", tk)
	}
	killed := s.runFolders(t, slow.ID)

	killAt := time.Now()
	a.kill(t)
	mpMust(t, "open the gate", os.Remove(gate)) // attempt 2 runs in full
	s.due(t, others...)                         // B and C keep working meanwhile

	mpWait(t, "the slow backup to be recovered and completed", 90*time.Second, func() bool {
		x, err := s.e.Store().GetExecution(ctx, slowRun.ID)
		mpMust(t, "get", err)
		if x.Status.Terminal() && x.Status != engine.ExecutionCompleted {
			t.Fatalf("slow execution %s: %s", x.Status, x.ErrorMessage)
		}
		slowRun = *x
		return x.Status == engine.ExecutionCompleted
	})
	recoveredIn := time.Since(killAt)
	mpWait(t, "the other jobs", 60*time.Second, func() bool { return s.countCompleted(t) >= 1+len(others) })
	time.Sleep(5 * mpTick)

	s.checkOncePerJob(t, append([]*engine.BackupJob{slow}, others...))
	s.checkQueueDrained(t)

	tk := s.tasks(t)[slowRun.ID]
	// Attempt 2 normally; a later one when the machine is so loaded that a
	// survivor missed its 2 s lease too (its attempt then stopped unrecorded,
	// as the lease test checks): the run still completed once, by a survivor.
	if tk.Attempt < 2 || tk.Status != "done" || (tk.LeaseOwner != "proc-B" && tk.LeaseOwner != "proc-C") {
		t.Errorf("slow task after recovery: %+v; want done at attempt 2 or later by proc-B or proc-C", tk)
	}
	if !slowRun.StartedAt.After(killAt) {
		t.Errorf("the completed run started at %s, before the kill at %s", slowRun.StartedAt, killAt.UTC())
	}
	// The killed attempt's log says it started before the kill; the
	// recovered one started after it: they never overlapped.
	logs, err := s.e.ExecutionLogs(ctx, slowRun.ID)
	mpMust(t, "logs", err)
	var starts []time.Time
	var text strings.Builder
	for _, l := range logs {
		fmt.Fprintf(&text, "%s %s %s\n", l.At.UTC().Format("15:04:05.000"), l.Level, l.Message)
		if strings.Contains(l.Message, "backing up") {
			starts = append(starts, l.At)
		}
	}
	if len(starts) < 2 || len(starts) > tk.Attempt || !starts[0].Before(killAt) || slices.ContainsFunc(starts[1:], func(at time.Time) bool { return !at.After(killAt) }) {
		t.Errorf("want 2 to %d \"backing up\" lines, one before the kill (%s) and the others after; log:\n%s", tk.Attempt, killAt.UTC().Format("15:04:05.000"), text.String())
	}
	// The killed attempt left its run folder without a manifest (or it was
	// cleaned up); the only manifest is the completed run's.
	if len(killed) != 1 {
		t.Errorf("run folders while proc-A was held: %v; want one", killed)
	}
	for dir, hasManifest := range killed {
		if hasManifest {
			t.Errorf("the killed attempt's run folder %s has a manifest", dir)
		}
		if dir == slowRun.BackupPath {
			t.Errorf("the recovered run reused the killed attempt's folder %s", dir)
		}
	}
	t.Logf("proc-A killed mid-dump; recovered by %s at attempt %d and completed %s after the kill (lease %s + recovery backoff); leftover run folders %v; completed %s",
		tk.LeaseOwner, tk.Attempt, recoveredIn.Round(time.Millisecond), mpLease, s.runFolders(t, slow.ID), slowRun.BackupPath)
	if t.Failed() {
		t.Logf("execution log:\n%s", text.String())
	}

	b.stop(t)
	c.stop(t)
}

// TestMultiProcessKillDuringBulk: three processes work off 90 due jobs;
// once a third completed, proc-A is killed with SIGKILL while it holds
// tasks. Whatever it was doing, every job ends with exactly one completed
// execution whose backup verifies (the tasks A held are recovered and run
// by B or C), and nothing is left queued or running.
func TestMultiProcessKillDuringBulk(t *testing.T) {
	t.Parallel()
	const nJobs = 90
	s := newMPSetup(t)
	jobs := s.sqliteJobs(t, "bulk", nJobs)
	var children []*mpChild
	for i := range 3 {
		children = append(children, startMPChild(t, fmt.Sprintf("proc-%c", 'A'+i), s.url, ""))
	}
	waitMPReady(t, children...)

	start := time.Now()
	s.due(t, jobs...)
	var held []string // executions proc-A held a lease on just before the kill
	mpWait(t, "proc-A to hold a task after a third of the jobs completed", 60*time.Second, func() bool {
		if s.countCompleted(t) < nJobs/3 {
			return false
		}
		held = held[:0]
		for id, tk := range s.tasks(t) {
			if tk.Status == "claimed" && tk.LeaseOwner == "proc-A" {
				held = append(held, id)
			}
		}
		return len(held) > 0
	})
	killAt := time.Now()
	children[0].kill(t)
	mpWait(t, fmt.Sprintf("%d completed backups", nJobs), 90*time.Second, func() bool { return s.countCompleted(t) >= nJobs })
	took := time.Since(start)
	time.Sleep(5 * mpTick)

	s.checkOncePerJob(t, jobs)
	s.checkQueueDrained(t)
	var recovered []string
	perOwner := map[string]int{}
	for id, tk := range s.tasks(t) {
		perOwner[tk.LeaseOwner]++
		if tk.Attempt > 1 {
			recovered = append(recovered, id)
			if tk.LeaseOwner == "proc-A" {
				t.Errorf("task of %s: attempt %d by proc-A, which was killed", id, tk.Attempt)
			}
		}
	}
	t.Logf("proc-A killed %s after the jobs were due, holding %d task(s); %d task(s) recovered at a later attempt; all %d backups completed %s after they were due; per process %v",
		killAt.Sub(start).Round(time.Millisecond), len(held), len(recovered), nJobs, took.Round(time.Millisecond), perOwner)
	for _, c := range children[1:] {
		c.stop(t)
	}
}

type holdRelease struct {
	storage.Storage
	hold string
}

func (h holdRelease) Delete(ctx context.Context, key string) error {
	if h.hold != "" && strings.HasSuffix(key, "/.dataguardian-run") {
		if _, err := os.Stat(filepath.Join(h.hold, "armed")); err == nil {
			os.WriteFile(filepath.Join(h.hold, "held"), nil, 0o600)
			select {} // killed here: manifest written, execution not yet completed
		}
	}
	return h.Storage.Delete(ctx, key)
}

func TestMultiProcessKillAfterManifest(t *testing.T) {
	s := newMPSetup(t)
	hold := t.TempDir()
	os.WriteFile(filepath.Join(hold, "armed"), nil, 0o600)
	t.Setenv("DG_TEST_HOLD_RELEASE", hold)
	jobs := s.sqliteJobs(t, "x", 1)
	a := startMPChild(t, "proc-A", s.url, "")
	waitMPReady(t, a)
	s.due(t, jobs...)
	mpWait(t, "held", 30*time.Second, func() bool { _, err := os.Stat(filepath.Join(hold, "held")); return err == nil })
	a.kill(t)
	os.Remove(filepath.Join(hold, "armed"))
	b := startMPChild(t, "proc-B", s.url, "")
	waitMPReady(t, b)
	mpWait(t, "completed", 60*time.Second, func() bool { return s.countCompleted(t) >= 1 })
	t.Logf("run folders: %v", s.runFolders(t, jobs[0].ID))
	s.checkOncePerJob(t, jobs)
}
