package queuetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/engine/queue"
	"github.com/dataguardian/dataguardian/engine/store"
)

// NewQueue returns an empty queue for one subtest, configured with opts
// (clock, attempts, backoff). It registers its own cleanup on t.
type NewQueue func(t *testing.T, opts *queue.Options) queue.Queue

// Suite parameters: what opts asks of the queue.
const (
	maxAttempts = 3
	lease       = time.Minute
)

// backoff is the delay the suite asks for after attempt n: n minutes.
func backoff(n int) time.Duration { return time.Duration(n) * time.Minute }

// Clock is the suite's fake time. Its zero value is not usable; the suite
// makes one per subtest.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Run runs every conformance subtest against queues made by newQueue.
// Subtests run in parallel, each with its own queue and clock.
func Run(t *testing.T, newQueue NewQueue) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"EmptyQueue", testEmptyQueue},
		{"EnqueueClaimComplete", testEnqueueClaimComplete},
		{"EnqueueDefaults", testEnqueueDefaults},
		{"DuplicateID", testDuplicateID},
		{"FIFOByRunAt", testFIFOByRunAt},
		{"NotBeforeRunAt", testNotBeforeRunAt},
		{"KindsFilter", testKindsFilter},
		{"OneClaimPerTask", testOneClaimPerTask},
		{"WrongOwner", testWrongOwner},
		{"ExtendKeepsLease", testExtendKeepsLease},
		{"LeaseLostAfterExpiry", testLeaseLostAfterExpiry},
		{"CompleteTwice", testCompleteTwice},
		{"ExpiredLeaseRunsAgain", testExpiredLeaseRunsAgain},
		{"ExpiredLeaseFailsWhenExhausted", testExpiredLeaseFailsWhenExhausted},
		{"ConcurrentRecover", testConcurrentRecover},
		{"RetryWithBackoff", testRetryWithBackoff},
		{"RetryExhausted", testRetryExhausted},
		{"Stats", testStats},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := &Clock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
			q := newQueue(t, &queue.Options{MaxAttempts: maxAttempts, Backoff: backoff, Now: clock.Now})
			tc.fn(t, &harness{q: q, clock: clock, ctx: t.Context()})
		})
	}
}

type harness struct {
	q     queue.Queue
	clock *Clock
	ctx   context.Context
}

func (h *harness) now() time.Time { return h.clock.Now() }

func (h *harness) enqueue(t *testing.T, id, kind string, runAt time.Time) {
	t.Helper()
	if err := h.q.Enqueue(h.ctx, queue.Task{ID: id, Kind: kind, ExecutionID: "exec-" + id, Attempt: 1, RunAt: runAt}); err != nil {
		t.Fatalf("Enqueue(%s): %v", id, err)
	}
}

func (h *harness) claim(t *testing.T, owner string, kinds ...string) *queue.Task {
	t.Helper()
	task, err := h.q.Claim(h.ctx, kinds, owner, lease)
	if err != nil {
		t.Fatalf("Claim(%v, %s): %v", kinds, owner, err)
	}
	return task
}

func (h *harness) claimNone(t *testing.T, why string, kinds ...string) {
	t.Helper()
	task, err := h.q.Claim(h.ctx, kinds, "nobody", lease)
	if !errors.Is(err, queue.ErrEmpty) {
		t.Fatalf("Claim(%v) %s = %+v, %v; want ErrEmpty", kinds, why, task, err)
	}
}

func (h *harness) stats(t *testing.T) queue.Stats {
	t.Helper()
	st, err := h.q.Stats(h.ctx)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st
}

// expire moves the clock past a claim's lease and, for a Recoverer,
// runs Recover; it returns what Recover returned (nil otherwise).
func (h *harness) expire(t *testing.T) []queue.RecoveredTask {
	t.Helper()
	h.clock.Advance(lease)
	r, ok := h.q.(queue.Recoverer)
	if !ok {
		return nil
	}
	got, err := r.Recover(h.ctx)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	return got
}

func wantLeaseLost(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("%s = %v, want an error matching ErrLeaseLost", what, err)
	}
}

func testEmptyQueue(t *testing.T, h *harness) {
	h.claimNone(t, "on an empty queue")
	h.claimNone(t, "on an empty queue", queue.TaskBackup)
	if st := h.stats(t); st != (queue.Stats{}) {
		t.Errorf("Stats of an empty queue = %+v, want zero", st)
	}
}

func testEnqueueClaimComplete(t *testing.T, h *harness) {
	now := h.now()
	if err := h.q.Enqueue(h.ctx, queue.Task{ID: "t1", Kind: queue.TaskBackup, ExecutionID: "e1", Attempt: 1, RunAt: now}); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	got := h.claim(t, "worker-a")
	want := queue.Task{ID: "t1", Kind: queue.TaskBackup, ExecutionID: "e1", Attempt: 1, RunAt: now,
		LeaseOwner: "worker-a", LeaseExpiresAt: now.Add(lease)}
	if !got.RunAt.Equal(want.RunAt) || !got.LeaseExpiresAt.Equal(want.LeaseExpiresAt) {
		t.Errorf("claimed RunAt %v, LeaseExpiresAt %v; want %v, %v", got.RunAt, got.LeaseExpiresAt, want.RunAt, want.LeaseExpiresAt)
	}
	got.RunAt, got.LeaseExpiresAt = want.RunAt, want.LeaseExpiresAt
	if *got != want {
		t.Errorf("claimed %+v, want %+v", *got, want)
	}
	h.claimNone(t, "while the only task is claimed")
	if err := h.q.Complete(h.ctx, "t1", "worker-a"); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	h.clock.Advance(time.Hour)
	h.claimNone(t, "after the only task completed")
	h.expire(t)
	h.claimNone(t, "after the only task completed and leases expired")
}

func testEnqueueDefaults(t *testing.T, h *harness) {
	// Empty ID, zero RunAt, zero Attempt: a fresh ID, now, attempt 1.
	if err := h.q.Enqueue(h.ctx, queue.Task{Kind: queue.TaskSync, ExecutionID: "e1"}); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	if err := h.q.Enqueue(h.ctx, queue.Task{Kind: queue.TaskSync, ExecutionID: "e2"}); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	a, b := h.claim(t, "w"), h.claim(t, "w")
	if a.ID == "" || b.ID == "" || a.ID == b.ID {
		t.Errorf("IDs given to tasks enqueued without one: %q, %q; want two distinct", a.ID, b.ID)
	}
	for _, task := range []*queue.Task{a, b} {
		if task.Attempt != 1 || !task.RunAt.Equal(h.now()) {
			t.Errorf("task enqueued with zero Attempt and RunAt claimed as attempt %d at %v; want 1 at %v", task.Attempt, task.RunAt, h.now())
		}
	}
}

func testDuplicateID(t *testing.T, h *harness) {
	h.enqueue(t, "same", queue.TaskBackup, h.now())
	err := h.q.Enqueue(h.ctx, queue.Task{ID: "same", Kind: queue.TaskBackup, ExecutionID: "other", Attempt: 1, RunAt: h.now()})
	if !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("second Enqueue of one ID = %v, want an error matching ErrAlreadyExists", err)
	}
	if task := h.claim(t, "w"); task.ExecutionID != "exec-same" {
		t.Errorf("claimed execution %q, want the first enqueue's exec-same", task.ExecutionID)
	}
	h.claimNone(t, "after the one task was claimed")
}

func testFIFOByRunAt(t *testing.T, h *harness) {
	base := h.now()
	offsets := []int{3, -5, 0, -1, 7, -9, 2}
	for _, m := range offsets {
		h.enqueue(t, fmt.Sprintf("at%+d", m), queue.TaskBackup, base.Add(time.Duration(m)*time.Minute-10*time.Minute))
	}
	slices.Sort(offsets)
	for _, m := range offsets {
		if got, want := h.claim(t, "w").ID, fmt.Sprintf("at%+d", m); got != want {
			t.Fatalf("claimed %s, want %s (earliest RunAt first)", got, want)
		}
	}
	h.claimNone(t, "after every task was claimed")
}

func testNotBeforeRunAt(t *testing.T, h *harness) {
	h.enqueue(t, "later", queue.TaskBackup, h.now().Add(time.Minute))
	h.claimNone(t, "a minute before RunAt")
	h.clock.Advance(time.Minute - time.Millisecond)
	h.claimNone(t, "a millisecond before RunAt")
	h.clock.Advance(time.Millisecond)
	if got := h.claim(t, "w"); got.ID != "later" {
		t.Fatalf("claimed %s at RunAt, want later", got.ID)
	}
}

func testKindsFilter(t *testing.T, h *harness) {
	now := h.now()
	h.enqueue(t, "b", queue.TaskBackup, now.Add(-2*time.Second))
	h.enqueue(t, "r", queue.TaskRestore, now.Add(-time.Second))
	h.enqueue(t, "v", queue.TaskVerify, now)
	h.claimNone(t, "for a kind with no task", queue.TaskSync)
	if got := h.claim(t, "w", queue.TaskRestore, queue.TaskSync); got.ID != "r" {
		t.Errorf("Claim(restore, sync) = %s, want r", got.ID)
	}
	if got := h.claim(t, "w"); got.ID != "b" {
		t.Errorf("Claim(any kind) = %s, want b (earliest)", got.ID)
	}
	h.claimNone(t, "for kinds whose tasks are claimed", queue.TaskBackup, queue.TaskRestore)
	if got := h.claim(t, "w", queue.TaskVerify); got.ID != "v" {
		t.Errorf("Claim(verify) = %s, want v", got.ID)
	}
}

// testOneClaimPerTask has 8 goroutines claim 200 tasks at once: each task
// must be claimed exactly once.
func testOneClaimPerTask(t *testing.T, h *harness) {
	const tasks, workers = 200, 8
	for i := range tasks {
		h.enqueue(t, fmt.Sprintf("t%03d", i), queue.TaskBackup, h.now().Add(-time.Duration(tasks-i)*time.Millisecond))
	}
	claims := make([][]string, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			owner := fmt.Sprintf("worker-%d", w)
			for {
				task, err := h.q.Claim(h.ctx, nil, owner, lease)
				if errors.Is(err, queue.ErrEmpty) {
					return
				}
				if err == nil {
					err = h.q.Complete(h.ctx, task.ID, owner)
				}
				if err != nil {
					errs[w] = err
					return
				}
				claims[w] = append(claims[w], task.ID)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent claims: %v", err)
	}
	seen := map[string]int{}
	for _, ids := range claims {
		for _, id := range ids {
			seen[id]++
		}
	}
	for i := range tasks {
		if id := fmt.Sprintf("t%03d", i); seen[id] != 1 {
			t.Errorf("task %s claimed %d times, want 1", id, seen[id])
		}
	}
	if len(seen) != tasks {
		t.Errorf("%d distinct tasks claimed, want %d", len(seen), tasks)
	}
}

func testWrongOwner(t *testing.T, h *harness) {
	h.enqueue(t, "t", queue.TaskBackup, h.now())
	h.claim(t, "worker-a")
	wantLeaseLost(t, "Extend by another owner", h.q.Extend(h.ctx, "t", "worker-b", lease))
	wantLeaseLost(t, "Complete by another owner", h.q.Complete(h.ctx, "t", "worker-b"))
	wantLeaseLost(t, "Retry by another owner", h.q.Retry(h.ctx, "t", "worker-b", time.Time{}, "boom"))
	if err := h.q.Complete(h.ctx, "t", "worker-a"); err != nil {
		t.Fatalf("Complete by the owner after others failed: %v", err)
	}
	if err := h.q.Complete(h.ctx, "no-such-task", "worker-a"); err == nil {
		t.Errorf("Complete of an unknown task = nil, want an error")
	}
}

func testExtendKeepsLease(t *testing.T, h *harness) {
	h.enqueue(t, "t", queue.TaskBackup, h.now())
	h.claim(t, "worker-a")
	// Heartbeats every half lease keep it for ten leases.
	for range 20 {
		h.clock.Advance(lease / 2)
		if err := h.q.Extend(h.ctx, "t", "worker-a", lease); err != nil {
			t.Fatalf("Extend within the lease: %v", err)
		}
		if r, ok := h.q.(queue.Recoverer); ok {
			if got, err := r.Recover(h.ctx); err != nil || len(got) != 0 {
				t.Fatalf("Recover while the lease is extended = %v, %v; want nothing", got, err)
			}
		}
		h.claimNone(t, "while the lease is extended")
	}
	if st := h.stats(t); st.Running != 1 || st.Expired != 0 {
		t.Errorf("Stats with an extended lease: %+v, want Running 1, Expired 0", st)
	}
	if err := h.q.Complete(h.ctx, "t", "worker-a"); err != nil {
		t.Fatalf("Complete after extending: %v", err)
	}
}

func testLeaseLostAfterExpiry(t *testing.T, h *harness) {
	h.enqueue(t, "t", queue.TaskBackup, h.now())
	h.claim(t, "worker-a")
	h.clock.Advance(lease) // the lease ends at its expiry time
	wantLeaseLost(t, "Extend after the lease expired", h.q.Extend(h.ctx, "t", "worker-a", lease))
	wantLeaseLost(t, "Complete after the lease expired", h.q.Complete(h.ctx, "t", "worker-a"))
	wantLeaseLost(t, "Retry after the lease expired", h.q.Retry(h.ctx, "t", "worker-a", time.Time{}, "boom"))
	if st := h.stats(t); st.Running != 0 {
		t.Errorf("Stats.Running after the lease expired = %d, want 0", st.Running)
	}
}

func testCompleteTwice(t *testing.T, h *harness) {
	h.enqueue(t, "t", queue.TaskBackup, h.now())
	h.claim(t, "worker-a")
	if err := h.q.Complete(h.ctx, "t", "worker-a"); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	wantLeaseLost(t, "second Complete", h.q.Complete(h.ctx, "t", "worker-a"))
	wantLeaseLost(t, "Extend after Complete", h.q.Extend(h.ctx, "t", "worker-a", lease))
}

// testExpiredLeaseRunsAgain: a claimed task whose owner stopped runs again
// as its next attempt, once, and the old owner can no longer finish it.
func testExpiredLeaseRunsAgain(t *testing.T, h *harness) {
	h.enqueue(t, "t", queue.TaskBackup, h.now())
	claimed := h.claim(t, "worker-a")
	got := h.expire(t)
	if _, ok := h.q.(queue.Recoverer); ok {
		if len(got) != 1 || got[0].ID != "t" || got[0].Attempt != 2 ||
			got[0].LeaseOwner != "worker-a" || !got[0].LeaseExpiresAt.Equal(claimed.LeaseExpiresAt) {
			t.Fatalf("Recover = %+v; want task t queued again as attempt 2, naming worker-a's lease ending %v", got, claimed.LeaseExpiresAt)
		}
		if want := h.now().Add(backoff(1)); !got[0].RunAt.Equal(want) {
			t.Errorf("recovered RunAt = %v, want now+backoff(1) = %v", got[0].RunAt, want)
		}
		if again, err := h.q.(queue.Recoverer).Recover(h.ctx); err != nil || len(again) != 0 {
			t.Errorf("second Recover = %+v, %v; want nothing", again, err)
		}
		h.claimNone(t, "before the backoff passed")
		h.clock.Advance(backoff(1))
	}
	task := h.claim(t, "worker-b")
	if task.ID != "t" || task.Attempt != 2 || task.LeaseOwner != "worker-b" {
		t.Fatalf("claimed %+v after the lease expired; want t, attempt 2, worker-b", task)
	}
	wantLeaseLost(t, "Complete by the owner whose lease expired", h.q.Complete(h.ctx, "t", "worker-a"))
	if err := h.q.Complete(h.ctx, "t", "worker-b"); err != nil {
		t.Fatalf("Complete by the new owner: %v", err)
	}
}

func testExpiredLeaseFailsWhenExhausted(t *testing.T, h *harness) {
	r, ok := h.q.(queue.Recoverer)
	if !ok {
		t.Skip("the queue has no Recover: what an exhausted expired task becomes is the engine's business")
	}
	h.enqueue(t, "t", queue.TaskBackup, h.now())
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		h.clock.Advance(time.Hour) // past any backoff
		task := h.claim(t, fmt.Sprintf("worker-%d", attempt))
		if task.Attempt != attempt {
			t.Fatalf("claim %d has Attempt %d", attempt, task.Attempt)
		}
		h.clock.Advance(lease)
		got, err := r.Recover(h.ctx)
		if err != nil {
			t.Fatalf("Recover: %v", err)
		}
		// Queued again as the next attempt, or, after the last, failed as it was.
		want := min(attempt+1, maxAttempts)
		if len(got) != 1 || got[0].ID != "t" || got[0].Attempt != want {
			t.Fatalf("Recover after attempt %d = %+v; want task t with Attempt %d", attempt, got, want)
		}
		if st := h.stats(t); st.Failed != attempt/maxAttempts {
			t.Fatalf("Stats.Failed after attempt %d expired = %d", attempt, st.Failed)
		}
	}
	h.clock.Advance(24 * time.Hour)
	h.claimNone(t, "after the task failed")
	if st := h.stats(t); st.Failed != 1 || st.Depth != 0 || st.Expired != 0 {
		t.Errorf("Stats after the task failed = %+v; want Failed 1, Depth 0, Expired 0", st)
	}
}

// testConcurrentRecover: several sweeps at once return each task once.
func testConcurrentRecover(t *testing.T, h *harness) {
	r, ok := h.q.(queue.Recoverer)
	if !ok {
		t.Skip("the queue has no Recover")
	}
	const tasks = 40
	for i := range tasks {
		h.enqueue(t, fmt.Sprintf("t%02d", i), queue.TaskBackup, h.now())
		h.claim(t, "dead")
	}
	h.clock.Advance(lease)
	results := make([][]queue.RecoveredTask, 4)
	errs := make([]error, len(results))
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i], errs[i] = r.Recover(h.ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	seen := map[string]int{}
	for _, got := range results {
		for _, rt := range got {
			seen[rt.ID]++
		}
	}
	for i := range tasks {
		if id := fmt.Sprintf("t%02d", i); seen[id] != 1 {
			t.Errorf("task %s returned by %d Recover calls, want 1", id, seen[id])
		}
	}
}

func testRetryWithBackoff(t *testing.T, h *harness) {
	h.enqueue(t, "t", queue.TaskBackup, h.now())
	h.claim(t, "worker-a")
	at := h.now().Add(5 * time.Minute)
	if err := h.q.Retry(h.ctx, "t", "worker-a", at, "dump: connection reset"); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	wantLeaseLost(t, "Complete after Retry", h.q.Complete(h.ctx, "t", "worker-a"))
	h.clock.Advance(5*time.Minute - time.Millisecond)
	h.claimNone(t, "before the retry time")
	h.clock.Advance(time.Millisecond)
	task := h.claim(t, "worker-b")
	if task.Attempt != 2 || !task.RunAt.Equal(at) {
		t.Fatalf("retried task claimed as %+v; want attempt 2, RunAt %v", task, at)
	}
	// A zero time: the queue's backoff after attempt 2.
	if err := h.q.Retry(h.ctx, "t", "worker-b", time.Time{}, "again"); err != nil {
		t.Fatalf("Retry with zero time: %v", err)
	}
	h.clock.Advance(backoff(2) - time.Millisecond)
	h.claimNone(t, "before the backoff passed")
	h.clock.Advance(time.Millisecond)
	if task := h.claim(t, "worker-c"); task.Attempt != 3 {
		t.Fatalf("second retry claimed as attempt %d, want 3", task.Attempt)
	}
}

func testRetryExhausted(t *testing.T, h *harness) {
	h.enqueue(t, "t", queue.TaskBackup, h.now())
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		task := h.claim(t, "w")
		if task.Attempt != attempt {
			t.Fatalf("claim %d has Attempt %d", attempt, task.Attempt)
		}
		err := h.q.Retry(h.ctx, "t", "w", h.now(), "boom")
		if attempt < maxAttempts && err != nil {
			t.Fatalf("Retry of attempt %d of %d: %v", attempt, maxAttempts, err)
		}
		if attempt == maxAttempts && !errors.Is(err, queue.ErrAttemptsExhausted) {
			t.Fatalf("Retry of the last attempt = %v, want an error matching ErrAttemptsExhausted", err)
		}
	}
	h.clock.Advance(24 * time.Hour)
	h.claimNone(t, "after the attempts were used")
	wantLeaseLost(t, "Retry of a failed task", h.q.Retry(h.ctx, "t", "w", time.Time{}, "boom"))
	if st := h.stats(t); st.Failed != 1 || st.Depth != 0 || st.Running != 0 {
		t.Errorf("Stats after the attempts were used = %+v; want Failed 1, Depth 0, Running 0", st)
	}
}

func testStats(t *testing.T, h *harness) {
	now := h.now()
	h.enqueue(t, "due-10", queue.TaskBackup, now.Add(-10*time.Minute))
	h.enqueue(t, "due-5", queue.TaskBackup, now.Add(-5*time.Minute))
	h.enqueue(t, "due-0", queue.TaskRestore, now)
	h.enqueue(t, "later-1", queue.TaskBackup, now.Add(time.Hour))
	h.enqueue(t, "later-2", queue.TaskBackup, now.Add(2*time.Hour))
	want := queue.Stats{Depth: 5 - 2, Scheduled: 2, OldestAge: 10 * time.Minute}
	if st := h.stats(t); st != want {
		t.Errorf("Stats after enqueue = %+v, want %+v", st, want)
	}
	h.claim(t, "w") // due-10
	want = queue.Stats{Depth: 2, Scheduled: 2, Running: 1, OldestAge: 5 * time.Minute}
	if st := h.stats(t); st != want {
		t.Errorf("Stats after one claim = %+v, want %+v", st, want)
	}
	h.clock.Advance(2 * time.Minute) // the lease has expired
	want = queue.Stats{Depth: 2, Scheduled: 2, Expired: 1, OldestAge: 7 * time.Minute}
	if _, ok := h.q.(queue.Recoverer); !ok {
		want = queue.Stats{Depth: 3, Scheduled: 2, OldestAge: 12 * time.Minute}
	}
	if st := h.stats(t); st != want {
		t.Errorf("Stats after the lease expired = %+v, want %+v", st, want)
	}
}
