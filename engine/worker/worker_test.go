package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/engine/internal/storetest"
	"github.com/dataguardian/dataguardian/engine/internal/workerslot"
	"github.com/dataguardian/dataguardian/engine/queue"
	"github.com/dataguardian/dataguardian/engine/store"
)

// The tests run a Worker on the real StoreQueue (SQLite and PostgreSQL)
// and a Host that records what the worker asks of it.

func mustNoErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitFor polls cond every 10 ms until it holds, failing t after 60 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// clock is the queue's clock: real time moved forward by an offset, so a
// test expires leases without waiting for them.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// calls records, in order, what a worker asked of its host.
type calls struct {
	mu   sync.Mutex
	list []string
}

func (c *calls) add(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, fmt.Sprintf(format, args...))
}

func (c *calls) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.list)
}

// with lists the calls starting with prefix.
func (c *calls) with(prefix string) []string {
	var out []string
	for _, s := range c.all() {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// testHost records every call in c. The execution of a task works on the
// datasource "ds-{execution ID}" and runs run.
func testHost(t *testing.T, c *calls, run func(ctx context.Context, t *queue.Task) error) Host {
	return Host{
		DataDir: t.TempDir(),
		Log:     slog.New(slog.NewTextHandler(t.Output(), nil)),
		Prepare: func(_ context.Context, task *queue.Task) (Prepared, error) {
			return Prepared{Datasources: []string{"ds-" + task.ExecutionID}, Run: func(ctx context.Context) error {
				c.add("run %s %s attempt %d", task.Kind, task.ExecutionID, task.Attempt)
				return run(ctx, task)
			}}, nil
		},
		LockDatasource: func(context.Context, string) (func(), error) { return func() {}, nil },
		Requeue: func(_ context.Context, kind, executionID, reason string) int {
			c.add("requeue %s %s: %s", kind, executionID, reason)
			return 0
		},
		Fail: func(_ context.Context, kind, executionID, reason string) error {
			c.add("fail %s %s: %s", kind, executionID, reason)
			return nil
		},
		Abandon: func(_ context.Context, task *queue.Task) { c.add("abandon %s %s", task.Kind, task.ExecutionID) },
	}
}

// start runs w until the returned stop is called (or t ends); stop waits
// for Run to return and checks it returned nil.
func start(t *testing.T, w *Worker) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return within 30 s of its stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func enqueue(t *testing.T, q queue.Queue, id, kind, executionID string) {
	t.Helper()
	mustNoErr(t, "enqueue "+id, q.Enqueue(t.Context(), queue.Task{ID: id, Kind: kind, ExecutionID: executionID}))
}

func row(t *testing.T, q *queue.StoreQueue, id string) *queue.TaskRow {
	t.Helper()
	r, err := q.Row(t.Context(), id)
	mustNoErr(t, "read task "+id, err)
	return r
}

// onlyQueue is a queue without its optional capabilities (Recoverer,
// Adopter): nothing but this worker moves its tasks.
type onlyQueue struct{ queue.Queue }

// A worker whose heartbeat finds the lease lost (it expired: another
// process may own the task now) cancels the run with queue.ErrLeaseLost
// and leaves the task alone: it neither completes nor hands it back.
func TestLeaseLostStopsTheRun(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		c := &clock{}
		q := queue.NewStoreQueue(s, &queue.Options{Now: c.now})
		enqueue(t, q, "t1", queue.TaskBackup, "x1")
		var got calls
		started, ended := make(chan struct{}), make(chan struct{})
		var cause error
		var wasInterrupted bool
		h := testHost(t, &got, func(ctx context.Context, _ *queue.Task) error {
			close(started)
			<-ctx.Done()
			cause, wasInterrupted = context.Cause(ctx), Interrupted(ctx)
			close(ended)
			return ctx.Err()
		})
		w := New(onlyQueue{q}, h, Options{Owner: "me", Poll: 10 * time.Millisecond, Lease: 300 * time.Millisecond})
		stop := start(t, w)
		<-started
		c.advance(time.Hour) // the lease ends: the next heartbeat finds it lost
		select {
		case <-ended:
		case <-time.After(60 * time.Second):
			t.Fatal("the run went on after its lease was lost")
		}
		stop()
		if !errors.Is(cause, queue.ErrLeaseLost) || !wasInterrupted {
			t.Errorf("run cancelled with cause %v (interrupted %v); want ErrLeaseLost, interrupted", cause, wasInterrupted)
		}
		if r := row(t, q, "t1"); r.Status != queue.StatusClaimed || r.LeaseOwner != "me" || r.Attempt != 1 || r.LastError != "" {
			t.Errorf("task after the lost lease: %s by %q, attempt %d, last error %q; want left claimed by me at attempt 1",
				r.Status, r.LeaseOwner, r.Attempt, r.LastError)
		}
		if want := []string{"run backup x1 attempt 1"}; !slices.Equal(got.all(), want) {
			t.Errorf("host calls %q; want %q", got.all(), want)
		}
	})
}

// At the shutdown deadline a worker cancels its running tasks with
// ErrShutdown and hands each back: queued again for its next attempt, due
// at once, its execution queued again (Host.Requeue); or, when the task
// used its attempts, its execution failed (Host.Fail).
func TestShutdownHandsBack(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		q := queue.NewStoreQueue(s, &queue.Options{KindMaxAttempts: map[string]int{queue.TaskRestore: 1}})
		enqueue(t, q, "tb", queue.TaskBackup, "b1")
		enqueue(t, q, "tr", queue.TaskRestore, "r1")
		var got calls
		var running sync.WaitGroup
		running.Add(2)
		causes := make(chan error, 2)
		h := testHost(t, &got, func(ctx context.Context, _ *queue.Task) error {
			running.Done()
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return ctx.Err()
		})
		w := New(q, h, Options{Owner: "me", Poll: 10 * time.Millisecond, Lease: time.Minute, ShutdownTimeout: 50 * time.Millisecond})
		stop := start(t, w)
		running.Wait()
		stop()
		stopped := time.Now()
		for range 2 {
			if cause := <-causes; !errors.Is(cause, ErrShutdown) {
				t.Errorf("run cancelled with cause %v; want ErrShutdown", cause)
			}
		}
		if r := row(t, q, "tb"); r.Status != queue.StatusQueued || r.Attempt != 2 || r.LastError != ErrShutdown.Error() || r.RunAt.After(stopped) {
			t.Errorf("backup task after the shutdown: %s, attempt %d, last error %q, due %s; want queued for attempt 2 at once",
				r.Status, r.Attempt, r.LastError, r.RunAt)
		}
		if r := row(t, q, "tr"); r.Status != queue.StatusFailed {
			t.Errorf("restore task after the shutdown: %s; want failed, its one attempt used", r.Status)
		}
		want := []string{
			"requeue backup b1: " + ErrShutdown.Error(),
			"fail restore r1: " + ErrShutdown.Error() + " and no attempt is left",
		}
		if got := append(got.with("requeue"), got.with("fail")...); !slices.Equal(got, want) {
			t.Errorf("host calls %q; want %q", got, want)
		}
	})
}

// A worker without an Owner takes the identity of its data directory's
// first free slot; as it starts it takes back the tasks its dead
// predecessor held under that identity: the host cleans up after each
// (Abandon) and each is handed back, the backup to run again at once at
// attempt 2, the restore, out of attempts, failed. A task another live
// process holds is left alone.
func TestStartTakesBackThePredecessorsTasks(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		q := queue.NewStoreQueue(s, &queue.Options{KindMaxAttempts: map[string]int{queue.TaskRestore: 1}})
		var got calls
		h := testHost(t, &got, func(context.Context, *queue.Task) error { return nil })
		slot, err := workerslot.Take(filepath.Join(h.DataDir, workerslot.Dir))
		if errors.Is(err, errors.ErrUnsupported) {
			t.Skip("no file locks here: workers run without a stable identity")
		}
		mustNoErr(t, "take the slot", err)
		dead := slot.ID + "/host:1:dead"
		slot.Release() // its process died
		const live = "another-process/host:2:live"
		for _, c := range []struct{ id, kind, exec, owner string }{
			{"tb", queue.TaskBackup, "b1", dead},
			{"tr", queue.TaskRestore, "r1", dead},
			{"tv", queue.TaskVerify, "v1", live},
		} {
			enqueue(t, q, c.id, c.kind, c.exec)
			if tk, err := q.Claim(ctx, []string{c.kind}, c.owner, time.Hour); err != nil || tk.ID != c.id {
				t.Fatalf("claim %s as %s: %+v, %v", c.id, c.owner, tk, err)
			}
		}

		w := New(q, h, Options{Poll: 10 * time.Millisecond, Lease: time.Hour})
		stop := start(t, w)
		waitFor(t, "the backup to run again", func() bool { return row(t, q, "tb").Status == queue.StatusDone })
		stop()

		if r := row(t, q, "tb"); r.Attempt != 2 || !strings.HasPrefix(r.LeaseOwner, slot.ID+"/") || r.LeaseOwner == dead {
			t.Errorf("backup task: attempt %d by %q; want attempt 2 by a new incarnation of %s", r.Attempt, r.LeaseOwner, slot.ID)
		}
		if r := row(t, q, "tr"); r.Status != queue.StatusFailed || r.LastError != OwnerStoppedReason {
			t.Errorf("restore task: %s (%q); want failed: %s", r.Status, r.LastError, OwnerStoppedReason)
		}
		if r := row(t, q, "tv"); r.Status != queue.StatusClaimed || r.LeaseOwner != live || r.Attempt != 1 {
			t.Errorf("the live process's task: %s by %q, attempt %d; want left claimed by it", r.Status, r.LeaseOwner, r.Attempt)
		}
		want := []string{
			"abandon backup b1",
			"requeue backup b1: " + OwnerStoppedReason,
			"abandon restore r1",
			"fail restore r1: " + OwnerStoppedReason + " and no attempt is left",
			"run backup b1 attempt 2",
		}
		if !slices.Equal(got.all(), want) {
			t.Errorf("host calls\n%q\nwant\n%q", got.all(), want)
		}
	})
}

// The tasks whose lease expired (their process stopped) are recovered:
// queued again and run, their executions queued again (Host.Requeue), or,
// out of attempts, their executions failed (Host.Fail).
func TestRecoverExpiredTasks(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		c := &clock{}
		q := queue.NewStoreQueue(s, &queue.Options{Now: c.now, Backoff: func(int) time.Duration { return 0 },
			KindMaxAttempts: map[string]int{queue.TaskRestore: 1}})
		for _, tk := range []struct{ id, kind, exec string }{{"tb", queue.TaskBackup, "b1"}, {"tr", queue.TaskRestore, "r1"}} {
			enqueue(t, q, tk.id, tk.kind, tk.exec)
			if _, err := q.Claim(ctx, []string{tk.kind}, "gone/host:1:x", time.Minute); err != nil {
				t.Fatalf("claim %s: %v", tk.id, err)
			}
		}
		c.advance(2 * time.Minute) // both leases expired
		var got calls
		w := New(q, testHost(t, &got, func(context.Context, *queue.Task) error { return nil }),
			Options{Owner: "me", Poll: 10 * time.Millisecond, Lease: time.Minute})
		stop := start(t, w)
		waitFor(t, "the backup to run again", func() bool { return row(t, q, "tb").Status == queue.StatusDone })
		stop()
		if r := row(t, q, "tb"); r.Attempt != 2 || r.LeaseOwner != "me" {
			t.Errorf("backup task: attempt %d by %q; want attempt 2 by me", r.Attempt, r.LeaseOwner)
		}
		if r := row(t, q, "tr"); r.Status != queue.StatusFailed {
			t.Errorf("restore task: %s; want failed", r.Status)
		}
		want := []string{
			"requeue backup b1: " + queue.LeaseExpiredReason,
			"fail restore r1: " + queue.LeaseExpiredReason + " and no attempt is left",
			"run backup b1 attempt 2",
		}
		if !slices.Equal(got.all(), want) {
			t.Errorf("host calls\n%q\nwant\n%q", got.all(), want)
		}
	})
}

// A task whose execution already finished, or cannot be loaded, is
// completed without running.
func TestFinishedOrMissingExecutionsDoNotRun(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		q := queue.NewStoreQueue(s, nil)
		enqueue(t, q, "t-done", queue.TaskBackup, "done")
		enqueue(t, q, "t-missing", queue.TaskBackup, "missing")
		var got calls
		h := testHost(t, &got, func(context.Context, *queue.Task) error { return nil })
		h.Prepare = func(_ context.Context, task *queue.Task) (Prepared, error) {
			got.add("prepare %s", task.ExecutionID)
			if task.ExecutionID == "missing" {
				return Prepared{}, store.ErrNotFound
			}
			return Prepared{Finished: true, Run: func(context.Context) error { got.add("run %s", task.ExecutionID); return nil }}, nil
		}
		stop := start(t, New(q, h, Options{Owner: "me", Poll: 10 * time.Millisecond}))
		waitFor(t, "both tasks to complete", func() bool {
			return row(t, q, "t-done").Status == queue.StatusDone && row(t, q, "t-missing").Status == queue.StatusDone
		})
		stop()
		if runs := got.with("run"); len(runs) != 0 {
			t.Errorf("ran %q; want nothing run", runs)
		}
	})
}

// Tasks of one datasource run one at a time, each holding the
// datasource's lock across processes (Host.LockDatasource) while it runs;
// a task whose lock cannot be taken is handed back, and failed once it
// used its attempts.
func TestOneTaskAtATimePerDatasource(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		q := queue.NewStoreQueue(s, nil)
		var got calls
		var running, most atomic.Int32
		var locked sync.Map // datasource → held across processes
		h := testHost(t, &got, func(ctx context.Context, task *queue.Task) error {
			if _, ok := locked.Load("shared"); !ok {
				t.Errorf("%s runs without the datasource's lock", task.ExecutionID)
			}
			n := running.Add(1)
			defer running.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(50 * time.Millisecond)
			return nil
		})
		prepare := h.Prepare
		h.Prepare = func(ctx context.Context, task *queue.Task) (Prepared, error) {
			p, err := prepare(ctx, task)
			if task.ExecutionID != "busy" {
				p.Datasources = []string{"shared"}
			}
			return p, err
		}
		h.LockDatasource = func(_ context.Context, id string) (func(), error) {
			if id == "ds-busy" {
				return nil, errors.New("the lock service is down")
			}
			if _, held := locked.LoadOrStore(id, true); held {
				t.Errorf("datasource %s locked twice", id)
			}
			return func() { locked.Delete(id) }, nil
		}
		for i := range 4 {
			enqueue(t, q, fmt.Sprintf("t%d", i), queue.TaskBackup, fmt.Sprintf("x%d", i))
		}
		enqueue(t, q, "t-busy", queue.TaskBackup, "busy")
		stop := start(t, New(q, h, Options{Owner: "me", Poll: 10 * time.Millisecond, Concurrency: 4}))
		waitFor(t, "every task to end", func() bool {
			for i := range 4 {
				if row(t, q, fmt.Sprintf("t%d", i)).Status != queue.StatusDone {
					return false
				}
			}
			return row(t, q, "t-busy").Status == queue.StatusFailed
		})
		stop()
		if m := most.Load(); m != 1 {
			t.Errorf("%d tasks of one datasource ran at once; want 1", m)
		}
		reason := ErrShutdown.Error()
		want := []string{"requeue backup busy: " + reason, "requeue backup busy: " + reason,
			"fail backup busy: " + reason + " and no attempt is left"}
		if got := append(got.with("requeue"), got.with("fail")...); !slices.Equal(got, want) {
			t.Errorf("host calls for the task without its lock %q; want %q", got, want)
		}
		if runs := got.with("run backup busy"); len(runs) != 0 {
			t.Errorf("the task without its lock ran: %q", runs)
		}
	})
}
