package queue_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/engine/internal/storedb"
	"github.com/dataguardian/dataguardian/engine/internal/storetest"
	"github.com/dataguardian/dataguardian/engine/queue"
	"github.com/dataguardian/dataguardian/engine/queue/queuetest"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// storeURLs runs fn once for a fresh SQLite file and once for a fresh
// PostgreSQL database (skipped without a server unless
// DG_REQUIRE_SERVICES=1), passing the store URL: for tests that open the
// store in several processes.
func storeURLs(t *testing.T, fn func(t *testing.T, url string)) {
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); fn(t, storetest.SQLiteURL(t)) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); fn(t, testsvc.NewPostgresDatabase(t)) })
}

func TestStoreQueueConformance(t *testing.T) {
	t.Parallel()
	storeURLs(t, func(t *testing.T, _ string) {
		pg := strings.HasSuffix(t.Name(), "postgres")
		queuetest.Run(t, func(t *testing.T, opts *queue.Options) queue.Queue {
			url := storetest.SQLiteURL(t)
			if pg {
				url = testsvc.NewPostgresDatabase(t)
			}
			return queue.NewStoreQueue(storetest.Open(t, url), opts)
		})
	})
}

func TestDefaultBackoff(t *testing.T) {
	t.Parallel()
	for attempt, want := range map[int]time.Duration{
		0: 30 * time.Second, 1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute,
		5: 8 * time.Minute, 6: 10 * time.Minute, 60: 10 * time.Minute,
	} {
		for range 50 {
			if got := queue.DefaultBackoff(attempt); got > want || got < want*4/5 {
				t.Fatalf("DefaultBackoff(%d) = %s, want within [%s, %s]", attempt, got, want*4/5, want)
			}
		}
	}
}

// TestStoreQueueOptions covers what the conformance suite leaves to the
// implementation: per-kind attempts, defaults, Prune.
func TestStoreQueueOptions(t *testing.T) {
	t.Parallel()
	storeURLs(t, func(t *testing.T, url string) {
		ctx := t.Context()
		s := storetest.Open(t, url)
		clock := time.Now()
		q := queue.NewStoreQueue(s, &queue.Options{
			KindMaxAttempts: map[string]int{queue.TaskRestore: 1},
			Now:             func() time.Time { return clock },
		})

		// A restore has one attempt; a backup the default three.
		if err := q.Enqueue(ctx, queue.Task{ID: "r", Kind: queue.TaskRestore, ExecutionID: "e"}); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Claim(ctx, nil, "w", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := q.Retry(ctx, "r", "w", time.Time{}, "boom"); !errors.Is(err, queue.ErrAttemptsExhausted) {
			t.Errorf("Retry of a restore with KindMaxAttempts 1 = %v, want ErrAttemptsExhausted", err)
		}
		if err := q.Enqueue(ctx, queue.Task{ID: "b", Kind: queue.TaskBackup, ExecutionID: "e"}); err != nil {
			t.Fatal(err)
		}
		for attempt := 1; attempt <= queue.DefaultMaxAttempts; attempt++ {
			if _, err := q.Claim(ctx, nil, "w", time.Minute); err != nil {
				t.Fatalf("claim attempt %d: %v", attempt, err)
			}
			err := q.Retry(ctx, "b", "w", clock, "boom")
			if exhausted := errors.Is(err, queue.ErrAttemptsExhausted); exhausted != (attempt == queue.DefaultMaxAttempts) {
				t.Fatalf("Retry of attempt %d = %v", attempt, err)
			}
		}
		if err := q.Enqueue(ctx, queue.Task{Kind: "", ExecutionID: "e"}); err == nil {
			t.Errorf("Enqueue without a kind = nil, want an error")
		}
		if _, err := q.Claim(ctx, nil, "w", 0); err == nil {
			t.Errorf("Claim with a zero lease = nil, want an error")
		}

		// Prune deletes finished tasks only.
		if err := q.Enqueue(ctx, queue.Task{ID: "d", Kind: queue.TaskBackup, ExecutionID: "e"}); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Claim(ctx, nil, "w", time.Minute); err != nil {
			t.Fatal(err)
		}
		mustNoErr(t, "Complete", q.Complete(ctx, "d", "w"))
		mustNoErr(t, "Enqueue", q.Enqueue(ctx, queue.Task{ID: "waiting", Kind: queue.TaskBackup, ExecutionID: "e", RunAt: time.Now().Add(time.Hour)}))
		n, err := q.Prune(ctx, clock.Add(time.Second))
		if err != nil || n != 3 { // r, b (failed), d (done)
			t.Errorf("Prune = %d, %v; want 3 finished tasks", n, err)
		}
		if st, err := q.Stats(ctx); err != nil || st.Scheduled != 1 || st.Failed != 0 {
			t.Errorf("Stats after Prune = %+v, %v; want the scheduled task only", st, err)
		}

		// RecoverTasks tells the failed from the queued again.
		mustNoErr(t, "Enqueue", q.Enqueue(ctx, queue.Task{ID: "r2", Kind: queue.TaskRestore, ExecutionID: "e", RunAt: clock.Add(-2 * time.Second)}))
		mustNoErr(t, "Enqueue", q.Enqueue(ctx, queue.Task{ID: "b2", Kind: queue.TaskBackup, ExecutionID: "e", RunAt: clock.Add(-time.Second)}))
		for range 2 {
			if _, err := q.Claim(ctx, nil, "w", time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		clock = clock.Add(time.Minute)
		got, err := q.Recover(ctx)
		mustNoErr(t, "RecoverTasks", err)
		failed := map[string]bool{}
		for _, r := range got {
			failed[r.ID] = r.Failed
		}
		if len(got) != 2 || !failed["r2"] || failed["b2"] {
			t.Errorf("RecoverTasks = %+v; want r2 failed (one attempt) and b2 queued again", got)
		}
	})
}

func mustNoErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Environment of the helper process (TestQueueHelperProcess).
const (
	envHelper = "DG_QUEUE_HELPER" // "drain" or "hang"
	envURL    = "DG_QUEUE_URL"
	envOwner  = "DG_QUEUE_OWNER"
	envStart  = "DG_QUEUE_START" // unix nanoseconds: start claiming then
)

// helperLease is the lease of the "hang" helper, which heartbeats. It is
// long: a stalled machine must not make the helper lose its lease; the
// test moves its own clock past it instead of waiting.
const helperLease = time.Minute

// TestQueueHelperProcess is not a test: the multi-process tests run the test
// binary again with envHelper set, and this function is then the child.
//
//   - drain: claim tasks until none is due; for each, record the claim in
//     queue_claims and complete it.
//   - hang: claim one task, record it, print "CLAIMED <id>", then heartbeat
//     (Extend, print "EXTENDED", pause 50 ms) until killed.
func TestQueueHelperProcess(t *testing.T) {
	mode := os.Getenv(envHelper)
	if mode == "" {
		return
	}
	ctx := context.Background()
	s, err := store.Open(ctx, os.Getenv(envURL))
	mustNoErr(t, "OpenStore", err)
	defer s.Close()
	q := queue.NewStoreQueue(s, nil)
	owner := os.Getenv(envOwner)
	if ns, err := strconv.ParseInt(os.Getenv(envStart), 10, 64); err == nil {
		time.Sleep(time.Until(time.Unix(0, ns)))
	}
	record := func(id string) {
		_, err := s.DB(storedb.Key{}).NewRaw("INSERT INTO queue_claims (task_id, owner) VALUES (?, ?)", id, owner).Exec(ctx)
		mustNoErr(t, "record claim", err)
	}
	switch mode {
	case "drain":
		for {
			task, err := q.Claim(ctx, nil, owner, 30*time.Second)
			if errors.Is(err, queue.ErrEmpty) {
				return
			}
			mustNoErr(t, "Claim", err)
			record(task.ID)
			mustNoErr(t, "Complete", q.Complete(ctx, task.ID, owner))
		}
	case "hang":
		task, err := q.Claim(ctx, nil, owner, helperLease)
		mustNoErr(t, "Claim", err)
		record(task.ID)
		fmt.Printf("CLAIMED %s\n", task.ID)
		// Until killed; the minute bounds an orphan if the parent died.
		for end := time.Now().Add(time.Minute); time.Now().Before(end); {
			time.Sleep(50 * time.Millisecond) // pacing only
			mustNoErr(t, "Extend", q.Extend(ctx, task.ID, owner, helperLease))
			fmt.Println("EXTENDED")
		}
	}
}

// helper starts the test binary as a TestQueueHelperProcess child.
func helper(t *testing.T, mode, url, owner string, start time.Time) *exec.Cmd {
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestQueueHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHelper+"="+mode, envURL+"="+url, envOwner+"="+owner,
		envStart+"="+strconv.FormatInt(start.UnixNano(), 10))
	return cmd
}

func createClaimsTable(t *testing.T, s *store.Store) {
	_, err := s.DB(storedb.Key{}).NewRaw("CREATE TABLE queue_claims (task_id VARCHAR NOT NULL, owner VARCHAR NOT NULL)").Exec(t.Context())
	mustNoErr(t, "create queue_claims", err)
}

// TestStoreQueueProcesses: three processes drain 300 tasks from one
// PostgreSQL database; each task is claimed and completed exactly once.
func TestStoreQueueProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	t.Parallel()
	const tasks, procs = 300, 3
	url := testsvc.NewPostgresDatabase(t)
	s := storetest.Open(t, url)
	ctx := t.Context()
	createClaimsTable(t, s)
	mustNoErr(t, "EnqueueBulk", queue.EnqueueBulk(ctx, s, tasks, queue.TaskBackup, time.Now().Add(-time.Minute)))

	start := time.Now().Add(time.Second) // all children claim from the same moment
	var wg sync.WaitGroup
	outs := make([][]byte, procs)
	errs := make([]error, procs)
	for i := range procs {
		cmd := helper(t, "drain", url, fmt.Sprintf("proc-%d", i), start)
		wg.Go(func() { outs[i], errs[i] = cmd.CombinedOutput() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, outs[i])
		}
	}

	var perTask []struct {
		TaskID string `bun:"task_id"`
		N      int    `bun:"n"`
	}
	err := s.DB(storedb.Key{}).NewRaw("SELECT task_id, COUNT(*) AS n FROM queue_claims GROUP BY task_id").Scan(ctx, &perTask)
	mustNoErr(t, "count claims", err)
	for _, c := range perTask {
		if c.N != 1 {
			t.Errorf("task %s claimed %d times", c.TaskID, c.N)
		}
	}
	if len(perTask) != tasks {
		t.Errorf("%d tasks claimed, want %d", len(perTask), tasks)
	}
	var perOwner []struct {
		Owner string `bun:"owner"`
		N     int    `bun:"n"`
	}
	err = s.DB(storedb.Key{}).NewRaw("SELECT owner, COUNT(*) AS n FROM queue_claims GROUP BY owner ORDER BY owner").Scan(ctx, &perOwner)
	mustNoErr(t, "count claims per process", err)
	t.Logf("claims per process: %+v", perOwner)
	if len(perOwner) < 2 {
		t.Errorf("only %d process claimed tasks: the test did not run them concurrently", len(perOwner))
	}
	st, err := queue.NewStoreQueue(s, nil).Stats(ctx)
	mustNoErr(t, "Stats", err)
	if st != (queue.Stats{}) {
		t.Errorf("Stats after draining = %+v, want zero", st)
	}
}

func ExampleStoreQueue() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "dg-example")
	defer os.RemoveAll(dir)
	store, err := store.Open(ctx, "sqlite://"+dir+"/meta.db")
	if err != nil {
		panic(err)
	}
	defer store.Close()
	q := queue.NewStoreQueue(store, nil)

	// The scheduler (or "run now") enqueues; a worker claims, heartbeats with
	// Extend while it works, and completes.
	_ = q.Enqueue(ctx, queue.Task{Kind: queue.TaskBackup, ExecutionID: "exec-1"})
	task, err := q.Claim(ctx, []string{queue.TaskBackup}, "host-1:4242", 30*time.Second)
	if err != nil {
		panic(err)
	}
	fmt.Println("claimed", task.ExecutionID, "attempt", task.Attempt)
	_ = q.Extend(ctx, task.ID, "host-1:4242", 30*time.Second)
	if err := q.Complete(ctx, task.ID, "host-1:4242"); err != nil {
		panic(err)
	}
	_, err = q.Claim(ctx, nil, "host-1:4242", 30*time.Second)
	fmt.Println(errors.Is(err, queue.ErrEmpty))
	// Output:
	// claimed exec-1 attempt 1
	// true
}

// TestStoreQueueSIGKILL: a process claims a task and heartbeats; while it
// lives nobody else gets the task, and each heartbeat moves its lease on.
// Killed with SIGKILL, its lease is left to expire: Recover, once its
// clock passes the lease, returns the task and another worker runs it as
// attempt 2. Nothing waits on the clock: the test follows the helper's
// heartbeats, and moves its own queue's clock past the lease.
func TestStoreQueueSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	t.Parallel()
	storeURLs(t, func(t *testing.T, url string) {
		ctx := t.Context()
		s := storetest.Open(t, url)
		createClaimsTable(t, s)
		var skew atomic.Int64 // added to this queue's clock
		q := queue.NewStoreQueue(s, &queue.Options{Backoff: func(int) time.Duration { return 0 },
			Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
		mustNoErr(t, "Enqueue", q.Enqueue(ctx, queue.Task{ID: "victim", Kind: queue.TaskBackup, ExecutionID: "e"}))

		cmd := helper(t, "hang", url, "doomed", time.Now())
		stdout, err := cmd.StdoutPipe()
		mustNoErr(t, "StdoutPipe", err)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		mustNoErr(t, "start helper", cmd.Start())
		defer cmd.Process.Kill()
		sc := bufio.NewScanner(stdout)
		next := func(prefix string) {
			t.Helper()
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), prefix) {
					return
				}
			}
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper ended before printing %q: %v\n%s", prefix, sc.Err(), stderr.String())
		}
		next("CLAIMED victim")
		leaseEnd := func() time.Time {
			t.Helper()
			var at time.Time
			mustNoErr(t, "read lease", s.DB(storedb.Key{}).NewRaw("SELECT lease_expires_at FROM queue_tasks WHERE id = ?", "victim").Scan(ctx, &at))
			return at
		}

		// Alive and heartbeating: the task is its, and every heartbeat
		// moves the lease on.
		prev := leaseEnd()
		for range 3 {
			next("EXTENDED")
			next("EXTENDED") // a heartbeat begun after prev was read has committed
			if end := leaseEnd(); !end.After(prev) {
				t.Fatalf("lease ends at %s after a heartbeat, before at %s; want later", end, prev)
			} else {
				prev = end
			}
			if got, err := q.Recover(ctx); err != nil || len(got) != 0 {
				t.Fatalf("Recover while the owner heartbeats = %+v, %v; want nothing", got, err)
			}
			if task, err := q.Claim(ctx, nil, "thief", time.Minute); !errors.Is(err, queue.ErrEmpty) {
				t.Fatalf("Claim while the owner heartbeats = %+v, %v; want ErrQueueEmpty", task, err)
			}
		}

		mustNoErr(t, "kill helper", cmd.Process.Kill()) // SIGKILL
		cmd.Wait()
		if got, err := q.Recover(ctx); err != nil || len(got) != 0 {
			t.Fatalf("Recover before the dead owner's lease ended = %+v, %v; want nothing", got, err)
		}
		skew.Store(int64(time.Until(leaseEnd()) + time.Second)) // the lease has ended
		got, err := q.Recover(ctx)
		mustNoErr(t, "Recover", err)
		if len(got) != 1 || got[0].ID != "victim" || got[0].Failed || got[0].Attempt != 2 || got[0].LeaseOwner != "doomed" {
			t.Fatalf("Recover once the lease ended = %+v; want victim queued again as attempt 2, lease of doomed", got)
		}
		task, err := q.Claim(ctx, nil, "survivor", time.Minute)
		mustNoErr(t, "Claim after recovery", err)
		if task.ID != "victim" || task.Attempt != 2 {
			t.Fatalf("claimed %+v after recovery, want victim attempt 2", task)
		}
		mustNoErr(t, "Complete", q.Complete(ctx, task.ID, "survivor"))
		n, err := s.DB(storedb.Key{}).NewSelect().TableExpr("queue_claims").Count(ctx)
		mustNoErr(t, "count claims", err)
		if n != 1 {
			t.Errorf("%d claims recorded by helpers, want 1", n)
		}
	})
}

// TestStoreQueueAdopt: a worker takes back, whatever their leases, the
// tasks leased under its identity ("id" or "id/…") and no other, however
// alike the other owners' names are.
func TestStoreQueueAdopt(t *testing.T) {
	t.Parallel()
	storeURLs(t, func(t *testing.T, url string) {
		ctx := t.Context()
		q := queue.NewStoreQueue(storetest.Open(t, url), &queue.Options{MaxAttempts: 2})
		owners := map[string]string{ // task → owner
			"mine-1": "dg_1/host:1:a", "mine-2": "dg_1", "like-1": "dgx1/host:2:b", "like-2": "dg_10/host:3:c",
			"like-3": "dg_", "other": "other/host:4:d",
		}
		for _, id := range []string{"like-1", "like-2", "like-3", "mine-1", "mine-2", "other"} {
			mustNoErr(t, "Enqueue", q.Enqueue(ctx, queue.Task{ID: id, Kind: queue.TaskBackup, ExecutionID: id, RunAt: time.Now().Add(-time.Hour)}))
			task, err := q.Claim(ctx, nil, owners[id], time.Hour)
			mustNoErr(t, "Claim", err)
			if task.ID != id {
				t.Fatalf("claimed %s, want %s", task.ID, id)
			}
		}
		got, err := q.Adopt(ctx, "dg_1", "dg_1/host:9:new", time.Minute)
		mustNoErr(t, "Adopt", err)
		if len(got) != 2 || got[0].ID != "mine-1" || got[1].ID != "mine-2" || got[0].LeaseOwner != "dg_1/host:9:new" {
			t.Fatalf("Adopt(dg_1) = %+v; want mine-1 and mine-2, now leased to dg_1/host:9:new", got)
		}
		if again, err := q.Adopt(ctx, "dg_1", "dg_1/host:9:new", time.Minute); err != nil || len(again) != 0 {
			t.Fatalf("Adopt again = %+v, %v; want nothing: they are the new owner's", again, err)
		}
		// The new owner holds them: it hands one back and finishes the other.
		mustNoErr(t, "Retry", q.Retry(ctx, "mine-1", "dg_1/host:9:new", time.Now(), "its process stopped"))
		mustNoErr(t, "Complete", q.Complete(ctx, "mine-2", "dg_1/host:9:new"))
		for id, owner := range owners {
			if strings.HasPrefix(id, "mine") {
				continue
			}
			if err := q.Extend(ctx, id, owner, time.Hour); err != nil {
				t.Errorf("task %s of %s after Adopt(dg_1): %v; want it still %s's", id, owner, err, owner)
			}
		}
		task, err := q.Claim(ctx, nil, "w", time.Minute)
		mustNoErr(t, "Claim the handed-back task", err)
		if task.ID != "mine-1" || task.Attempt != 2 {
			t.Fatalf("claimed %+v; want mine-1 at attempt 2", task)
		}
	})
}

// BenchmarkStoreQueueClaim measures Claim+Complete of one task: serial, and
// with 8 workers claiming concurrently.
func BenchmarkStoreQueueClaim(b *testing.B) {
	for _, db := range []string{"sqlite", "postgres"} {
		for _, workers := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/workers=%d", db, workers), func(b *testing.B) {
				var url string
				if db == "postgres" {
					url = testsvc.NewPostgresDatabase(b)
				} else {
					url = "sqlite://" + b.TempDir() + "/meta.db"
				}
				s, err := store.Open(b.Context(), url)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				if err := queue.EnqueueBulk(b.Context(), s, b.N, queue.TaskBackup, time.Now().Add(-time.Minute)); err != nil {
					b.Fatal(err)
				}
				q := queue.NewStoreQueue(s, nil)
				var next sync.Mutex
				left := b.N
				take := func() bool {
					next.Lock()
					defer next.Unlock()
					left--
					return left >= 0
				}
				b.ResetTimer()
				var wg sync.WaitGroup
				for w := range workers {
					owner := fmt.Sprintf("w%d", w)
					wg.Go(func() {
						for take() {
							task, err := q.Claim(b.Context(), nil, owner, time.Minute)
							if err == nil {
								err = q.Complete(b.Context(), task.ID, owner)
							}
							if err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
			})
		}
	}
}
