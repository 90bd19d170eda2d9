package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dataguardian/dataguardian/engine/internal/storedb"
	"github.com/dataguardian/dataguardian/engine/store"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// Errors of the Queue contract. Every Queue implementation returns errors
// matching them (engine/queuetest checks it).
var (
	// ErrLeaseLost reports an Extend, Complete or Retry by an owner that no
	// longer holds the task's lease: it expired, another owner holds it, or
	// the task is no longer claimed. The worker must stop the task's work
	// without recording a result: the task is, or will be, someone else's.
	ErrLeaseLost = errors.New("lease lost")
	// ErrAttemptsExhausted is returned by Retry when the task has used all
	// its attempts: the task is now failed and will not run again, and the
	// caller marks its execution failed.
	ErrAttemptsExhausted = errors.New("attempts exhausted")
)

// LeaseExpiredReason is the last_error Recover records on a task whose
// lease expired.
const LeaseExpiredReason = "lease expired: the worker process stopped"

// Defaults of Options.
const (
	DefaultMaxAttempts = 3
	DefaultBackoffBase = 30 * time.Second
	DefaultBackoffMax  = 10 * time.Minute
)

// Options configure a StoreQueue. The zero value (or nil) gives the
// documented defaults.
type Options struct {
	// MaxAttempts is how many times a task runs at most (first run
	// included), fixed for a task when it is enqueued. Values below 1 mean
	// DefaultMaxAttempts (3).
	MaxAttempts int
	// KindMaxAttempts overrides MaxAttempts per task kind, e.g.
	// {TaskRestore: 1} so a restore whose process died is failed instead
	// of run again over a half-restored database.
	KindMaxAttempts map[string]int
	// Backoff is the delay before the next attempt after attempt n failed
	// (Retry with a zero time, Recover). nil means DefaultBackoff.
	Backoff func(attempt int) time.Duration
	// Now is the clock; nil means time.Now. Every time the queue compares
	// or stores comes from it, so processes sharing a database need clocks
	// in sync (NTP) to within a small fraction of the lease length.
	Now func() time.Time
}

// DefaultBackoff is 30 s·2^(attempt-1) capped at 10 min, less a random
// 0–20 % so tasks that failed together do not retry together.
func DefaultBackoff(attempt int) time.Duration {
	d := DefaultBackoffMax
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 10 { // 30 s·2^9 already passes the cap
		d = min(DefaultBackoffBase<<(attempt-1), DefaultBackoffMax)
	}
	return d - rand.N(d/5+1)
}

// withDefaults returns o with every zero field set to its default.
func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
		c.KindMaxAttempts = maps.Clone(o.KindMaxAttempts)
	}
	if c.MaxAttempts < 1 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.Backoff == nil {
		c.Backoff = DefaultBackoff
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Task statuses in queue_tasks.
const (
	StatusQueued  = "queued"  // waiting for RunAt, then for a worker
	StatusClaimed = "claimed" // a worker holds the lease
	StatusDone    = "done"    // completed
	StatusFailed  = "failed"  // used its attempts
)

// TaskRow is a row of queue_tasks (the store's migrations create the
// table), for tests and tools that read the queue's state.
type TaskRow struct {
	bun.BaseModel `bun:"table:queue_tasks"`

	ID             string     `bun:"id,pk"`
	Kind           string     `bun:"kind,notnull"`
	ExecutionID    string     `bun:"execution_id,notnull"`
	Attempt        int        `bun:"attempt,notnull"`
	MaxAttempts    int        `bun:"max_attempts,notnull"`
	RunAt          time.Time  `bun:"run_at,notnull"`
	Status         string     `bun:"status,notnull"`
	LeaseOwner     string     `bun:"lease_owner,nullzero"`
	LeaseExpiresAt *time.Time `bun:"lease_expires_at"`
	LastError      string     `bun:"last_error"`
	CreatedAt      time.Time  `bun:"created_at,notnull"`
	UpdatedAt      time.Time  `bun:"updated_at,notnull"`
}

func (r *TaskRow) task() *Task {
	t := &Task{
		ID:          r.ID,
		Kind:        r.Kind,
		ExecutionID: r.ExecutionID,
		Attempt:     r.Attempt,
		RunAt:       r.RunAt.UTC(),
		LeaseOwner:  r.LeaseOwner,
	}
	if r.LeaseExpiresAt != nil {
		t.LeaseExpiresAt = r.LeaseExpiresAt.UTC()
	}
	return t
}

// StoreQueue is the durable Queue on the metadata store (table
// queue_tasks). On PostgreSQL several processes share it safely: Claim
// locks the row it takes with FOR UPDATE SKIP LOCKED, and every other
// change is a conditional UPDATE that one process at most wins. On SQLite
// each statement runs under the database's single write lock.
//
// Leases: Claim only takes queued tasks. A claimed task whose lease
// expires stays claimed (Stats counts it as Expired) until Recover, which
// the engine runs periodically, moves it back to queued for its next
// attempt after a backoff, or to failed when it has used its attempts.
//
// Finished tasks stay in the table, done or failed, until Prune.
type StoreQueue struct {
	db    *bun.DB
	store *store.Store
	pg    bool
	opts  Options
}

var (
	_ Queue      = (*StoreQueue)(nil)
	_ Recoverer  = (*StoreQueue)(nil)
	_ Adopter    = (*StoreQueue)(nil)
	_ TxEnqueuer = (*StoreQueue)(nil)
)

// NewStoreQueue returns the queue kept in s's database; opts may be nil.
func NewStoreQueue(s *store.Store, opts *Options) *StoreQueue {
	db := s.DB(storedb.Key{})
	return &StoreQueue{
		db:    db,
		store: s,
		pg:    db.Dialect().Name() == dialect.PG,
		opts:  opts.withDefaults(),
	}
}

// InStore reports whether q keeps its tasks in s.
func (q *StoreQueue) InStore(s *store.Store) bool { return q.store == s }

// EnqueueTx stores ts as queued inside tx, a transaction of the store q
// keeps its tasks in, in one statement, in ID order, skipping every task
// whose ID exists: the scheduler enqueues a batch of runs inside the
// transaction that records them.
func (q *StoreQueue) EnqueueTx(ctx context.Context, tx *store.Tx, ts ...Task) error {
	return q.enqueueNew(ctx, tx.DB(storedb.Key{}), ts)
}

// MakeDueTx makes the queued tasks of executionIDs due now if they were due
// later, inside tx (see EnqueueTx): run now, or a due schedule, brings
// forward a retry waiting for its delay.
func (q *StoreQueue) MakeDueTx(ctx context.Context, tx *store.Tx, executionIDs ...string) error {
	return q.makeDue(ctx, tx.DB(storedb.Key{}), executionIDs)
}

// now is the queue's clock at the store's precision.
func (q *StoreQueue) now() time.Time { return q.opts.Now().UTC().Truncate(time.Microsecond) }

func (q *StoreQueue) maxAttempts(kind string) int {
	if n, ok := q.opts.KindMaxAttempts[kind]; ok && n >= 1 {
		return n
	}
	return q.opts.MaxAttempts
}

// Enqueue stores t as queued. An empty ID gets a UUID, a zero RunAt means
// now and an Attempt below 1 means 1; an ID that exists gives an error
// matching store.ErrAlreadyExists.
func (q *StoreQueue) Enqueue(ctx context.Context, t Task) error {
	if t.Kind == "" || t.ExecutionID == "" {
		return fmt.Errorf("enqueue task: kind and execution ID are required (got kind %q, execution %q)", t.Kind, t.ExecutionID)
	}
	row := q.newRow(t, q.now())
	if _, err := q.db.NewInsert().Model(row).Exec(ctx); err != nil {
		return fmt.Errorf("enqueue task %s: %w", row.ID, store.DBError(err))
	}
	return nil
}

// newRow is the queued row of t (see Enqueue) stored at now.
func (q *StoreQueue) newRow(t Task, now time.Time) *TaskRow {
	row := &TaskRow{
		ID:          t.ID,
		Kind:        t.Kind,
		ExecutionID: t.ExecutionID,
		Attempt:     max(t.Attempt, 1),
		RunAt:       t.RunAt.UTC().Truncate(time.Microsecond),
		Status:      StatusQueued,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	row.MaxAttempts = max(q.maxAttempts(t.Kind), row.Attempt)
	if row.ID == "" {
		row.ID = uuid.NewString()
	}
	if t.RunAt.IsZero() {
		row.RunAt = now
	}
	return row
}

// enqueueNew stores ts as queued in one statement on db (the queue's
// database, or a transaction on it); see EnqueueTx.
func (q *StoreQueue) enqueueNew(ctx context.Context, db bun.IDB, ts []Task) error {
	if len(ts) == 0 {
		return nil
	}
	now := q.now()
	rows := make([]*TaskRow, len(ts))
	for i, t := range ts {
		if t.Kind == "" || t.ExecutionID == "" {
			return fmt.Errorf("enqueue task: kind and execution ID are required (got kind %q, execution %q)", t.Kind, t.ExecutionID)
		}
		rows[i] = q.newRow(t, now)
	}
	slices.SortFunc(rows, func(a, b *TaskRow) int { return strings.Compare(a.ID, b.ID) })
	if _, err := db.NewInsert().Model(&rows).On("CONFLICT (id) DO NOTHING").Exec(ctx); err != nil {
		return fmt.Errorf("enqueue %d tasks: %w", len(rows), store.DBError(err))
	}
	return nil
}

// makeDue makes the queued tasks of executionIDs due now if they were due
// later, in one statement on db (the queue's database or a transaction on
// it); see MakeDueTx.
func (q *StoreQueue) makeDue(ctx context.Context, db bun.IDB, executionIDs []string) error {
	if len(executionIDs) == 0 {
		return nil
	}
	now := q.now()
	_, err := db.NewUpdate().Model((*TaskRow)(nil)).Set("run_at = ?", now).Set("updated_at = ?", now).
		Where("execution_id IN (?)", bun.In(executionIDs)).Where("status = ?", StatusQueued).Where("run_at > ?", now).Exec(ctx)
	if err != nil {
		return fmt.Errorf("make %d tasks due: %w", len(executionIDs), err)
	}
	return nil
}

// Claim takes the due queued task of one of kinds (any kind when kinds is
// empty) with the earliest RunAt and leases it to owner until now+lease. It
// returns ErrEmpty when none is due.
func (q *StoreQueue) Claim(ctx context.Context, kinds []string, owner string, lease time.Duration) (*Task, error) {
	if owner == "" || lease <= 0 {
		return nil, fmt.Errorf("claim task: owner must not be empty and lease must be positive (got %q, %s)", owner, lease)
	}
	now := q.now()
	next := q.db.NewSelect().TableExpr("queue_tasks").Column("id").
		Where("status = ?", StatusQueued).Where("run_at <= ?", now)
	if len(kinds) > 0 {
		next = next.Where("kind IN (?)", bun.In(kinds))
	}
	next = next.OrderExpr("run_at, created_at, id").Limit(1)

	set := []any{StatusClaimed, owner, now.Add(lease), now}
	var query *bun.RawQuery
	if q.pg {
		// SKIP LOCKED: concurrent claimers pass over the row this one
		// locked instead of waiting for it, and a row claimed since this
		// statement's snapshot is re-checked (status) and skipped.
		query = q.db.NewRaw(`WITH next AS (?)
UPDATE queue_tasks AS t SET status = ?, lease_owner = ?, lease_expires_at = ?, updated_at = ?
FROM next WHERE t.id = next.id RETURNING t.*`, append([]any{next.For("UPDATE SKIP LOCKED")}, set...)...)
	} else {
		// One statement under SQLite's write lock: the subquery and the
		// update see the same database.
		query = q.db.NewRaw(`UPDATE queue_tasks SET status = ?, lease_owner = ?, lease_expires_at = ?, updated_at = ?
WHERE id = (?) AND status = ? RETURNING *`, append(set, next, StatusQueued)...)
	}
	row := new(TaskRow)
	if err := query.Scan(ctx, row); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrEmpty
		}
		return nil, fmt.Errorf("claim task: %w", err)
	}
	return row.task(), nil
}

// held restricts u to the task taskID while owner holds a live lease on it.
func held(u *bun.UpdateQuery, taskID, owner string, now time.Time) *bun.UpdateQuery {
	return u.Where("id = ?", taskID).Where("status = ?", StatusClaimed).
		Where("lease_owner = ?", owner).Where("lease_expires_at > ?", now)
}

// Extend moves the lease of taskID to now+lease while owner holds it: the
// worker's heartbeat. Call it well before the lease ends (every lease/3).
func (q *StoreQueue) Extend(ctx context.Context, taskID, owner string, lease time.Duration) error {
	if lease <= 0 {
		return fmt.Errorf("extend task %s: lease must be positive (got %s)", taskID, lease)
	}
	now := q.now()
	u := q.db.NewUpdate().Model((*TaskRow)(nil)).
		Set("lease_expires_at = ?", now.Add(lease)).Set("updated_at = ?", now)
	return q.execHeld(ctx, "extend", held(u, taskID, owner, now), taskID, owner, now)
}

// Complete marks taskID done while owner holds its lease.
func (q *StoreQueue) Complete(ctx context.Context, taskID, owner string) error {
	now := q.now()
	u := q.db.NewUpdate().Model((*TaskRow)(nil)).
		Set("status = ?", StatusDone).Set("lease_expires_at = NULL").Set("updated_at = ?", now)
	return q.execHeld(ctx, "complete", held(u, taskID, owner, now), taskID, owner, now)
}

// Retry ends owner's run of taskID with reason (kept as last_error). A task
// with attempts left is queued again for Attempt+1 at at (a zero at means
// now plus the backoff); a task that has used them is failed and Retry
// returns an error matching ErrAttemptsExhausted.
func (q *StoreQueue) Retry(ctx context.Context, taskID, owner string, at time.Time, reason string) error {
	now := q.now()
	row, err := q.get(ctx, taskID)
	if err != nil {
		return fmt.Errorf("retry task %s: %w", taskID, err)
	}
	if why := lostReason(row, owner, now); why != "" {
		return fmt.Errorf("retry task %s: %w: %s", taskID, ErrLeaseLost, why)
	}
	u := q.db.NewUpdate().Model((*TaskRow)(nil)).
		Set("last_error = ?", reason).Set("updated_at = ?", now).
		Where("attempt = ?", row.Attempt) // nobody else moved it since we read it
	exhausted := row.Attempt >= row.MaxAttempts
	if exhausted {
		u = u.Set("status = ?", StatusFailed).Set("lease_expires_at = NULL")
	} else {
		if at.IsZero() {
			at = now.Add(q.opts.Backoff(row.Attempt))
		}
		u = u.Set("status = ?", StatusQueued).Set("attempt = ?", row.Attempt+1).
			Set("run_at = ?", at.UTC().Truncate(time.Microsecond)).
			Set("lease_owner = NULL").Set("lease_expires_at = NULL")
	}
	if err := q.execHeld(ctx, "retry", held(u, taskID, owner, now), taskID, owner, now); err != nil {
		return err
	}
	if exhausted {
		return fmt.Errorf("retry task %s: %w: attempt %d of %d failed; the task is failed", taskID, ErrAttemptsExhausted, row.Attempt, row.MaxAttempts)
	}
	return nil
}

// execHeld runs u, an update of one task restricted by held; when it
// changes nothing it returns why, matching ErrLeaseLost or store.ErrNotFound.
func (q *StoreQueue) execHeld(ctx context.Context, op string, u *bun.UpdateQuery, taskID, owner string, now time.Time) error {
	res, err := u.Exec(ctx)
	if err != nil {
		return fmt.Errorf("%s task %s: %w", op, taskID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	row, err := q.get(ctx, taskID)
	if err != nil {
		return fmt.Errorf("%s task %s: %w", op, taskID, err)
	}
	why := lostReason(row, owner, now)
	if why == "" {
		why = "changed by another process meanwhile"
	}
	return fmt.Errorf("%s task %s: %w: %s", op, taskID, ErrLeaseLost, why)
}

// lostReason says why owner does not hold row's lease at now, or "" when
// it does.
func lostReason(row *TaskRow, owner string, now time.Time) string {
	switch {
	case row.Status != StatusClaimed:
		return fmt.Sprintf("the task is %s (attempt %d)", row.Status, row.Attempt)
	case row.LeaseOwner != owner:
		return fmt.Sprintf("the task is claimed by %s", row.LeaseOwner)
	case row.LeaseExpiresAt == nil:
		return "the task has no lease"
	case !row.LeaseExpiresAt.After(now):
		return fmt.Sprintf("the lease expired at %s", row.LeaseExpiresAt.UTC().Format(time.RFC3339Nano))
	}
	return ""
}

func (q *StoreQueue) get(ctx context.Context, taskID string) (*TaskRow, error) {
	row := new(TaskRow)
	if err := q.db.NewSelect().Model(row).Where("id = ?", taskID).Scan(ctx); err != nil {
		return nil, store.DBError(err)
	}
	return row, nil
}

// recoverBatch is how many expired tasks Recover reads per query.
const recoverBatch = 500

// Recover hands back the tasks whose lease expired (their process
// stopped): each is queued again with Attempt+1 after the backoff, or failed
// (LeaseExpiredReason) when it used its attempts. Concurrent calls return
// each task once. It implements Recoverer.
func (q *StoreQueue) Recover(ctx context.Context) ([]RecoveredTask, error) {
	now := q.now()
	var out []RecoveredTask
	for {
		var rows []TaskRow
		err := q.db.NewSelect().Model(&rows).
			Where("status = ?", StatusClaimed).Where("lease_expires_at <= ?", now).
			OrderExpr("lease_expires_at, id").Limit(recoverBatch).Scan(ctx)
		if err != nil {
			return out, fmt.Errorf("recover tasks: %w", err)
		}
		for i := range rows {
			r, ok, err := q.recoverOne(ctx, &rows[i], now)
			if err != nil {
				return out, err
			}
			if ok {
				out = append(out, r)
			}
		}
		if len(rows) < recoverBatch {
			return out, nil
		}
	}
}

// recoverOne moves row, read as expired at now, unless another process
// moved it first.
func (q *StoreQueue) recoverOne(ctx context.Context, row *TaskRow, now time.Time) (RecoveredTask, bool, error) {
	r := RecoveredTask{Task: *row.task(), Failed: row.Attempt >= row.MaxAttempts}
	u := q.db.NewUpdate().Model((*TaskRow)(nil)).
		Set("last_error = ?", LeaseExpiredReason).Set("updated_at = ?", now).
		Where("id = ?", row.ID).Where("status = ?", StatusClaimed).
		Where("attempt = ?", row.Attempt).Where("lease_expires_at <= ?", now)
	if r.Failed {
		u = u.Set("status = ?", StatusFailed)
	} else {
		r.Attempt++
		r.RunAt = now.Add(q.opts.Backoff(row.Attempt))
		u = u.Set("status = ?", StatusQueued).Set("attempt = ?", r.Attempt).Set("run_at = ?", r.RunAt).
			Set("lease_owner = NULL").Set("lease_expires_at = NULL")
	}
	res, err := u.Exec(ctx)
	if err != nil {
		return r, false, fmt.Errorf("recover task %s: %w", row.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return r, false, fmt.Errorf("recover task %s: %w", row.ID, err)
	}
	return r, n == 1, nil
}

// Adopt moves to newOwner, with a lease until now+lease, every claimed
// task leased to owner or to an owner named owner+"/…", whatever its
// lease, and returns them as newOwner now holds them. It implements
// Adopter; the caller vouches that no live process leases under owner.
func (q *StoreQueue) Adopt(ctx context.Context, owner, newOwner string, lease time.Duration) ([]Task, error) {
	if owner == "" || newOwner == "" || lease <= 0 {
		return nil, fmt.Errorf("adopt tasks: owners must not be empty and lease must be positive (got %q, %q, %s)", owner, newOwner, lease)
	}
	now := q.now()
	var rows []TaskRow
	// SUBSTR, not LIKE: an owner may hold % or _.
	err := q.db.NewRaw(`UPDATE queue_tasks SET lease_owner = ?, lease_expires_at = ?, updated_at = ?
WHERE status = ? AND lease_owner <> ? AND (lease_owner = ? OR SUBSTR(lease_owner, 1, ?) = ?) RETURNING *`,
		newOwner, now.Add(lease), now, StatusClaimed, newOwner, owner, utf8.RuneCountInString(owner)+1, owner+"/").Scan(ctx, &rows)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("adopt tasks of %s: %w", owner, err)
	}
	out := make([]Task, len(rows))
	for i := range rows {
		out[i] = *rows[i].task()
	}
	slices.SortFunc(out, func(a, b Task) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Stats counts the tasks by state at the queue's now.
func (q *StoreQueue) Stats(ctx context.Context) (Stats, error) {
	now := q.now()
	var st Stats
	err := q.db.NewSelect().TableExpr("queue_tasks").
		ColumnExpr("COUNT(CASE WHEN status = ? AND run_at <= ? THEN 1 END)", StatusQueued, now).
		ColumnExpr("COUNT(CASE WHEN status = ? AND run_at > ? THEN 1 END)", StatusQueued, now).
		ColumnExpr("COUNT(CASE WHEN status = ? AND lease_expires_at > ? THEN 1 END)", StatusClaimed, now).
		ColumnExpr("COUNT(CASE WHEN status = ? AND lease_expires_at <= ? THEN 1 END)", StatusClaimed, now).
		ColumnExpr("COUNT(CASE WHEN status = ? THEN 1 END)", StatusFailed).
		Where("status IN (?)", bun.In([]string{StatusQueued, StatusClaimed, StatusFailed})).
		Scan(ctx, &st.Depth, &st.Scheduled, &st.Running, &st.Expired, &st.Failed)
	if err != nil {
		return st, fmt.Errorf("queue stats: %w", err)
	}
	if st.Depth == 0 {
		return st, nil
	}
	oldest := new(TaskRow)
	err = q.db.NewSelect().Model(oldest).Column("run_at").
		Where("status = ?", StatusQueued).Where("run_at <= ?", now).
		OrderExpr("run_at").Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) { // claimed meanwhile
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("queue stats: %w", err)
	}
	st.OldestAge = now.Sub(oldest.RunAt)
	return st, nil
}

// Prune deletes done and failed tasks last changed before before, and
// returns how many. The cleanup worker calls it (e.g. with now − 7 days).
func (q *StoreQueue) Prune(ctx context.Context, before time.Time) (int, error) {
	res, err := q.db.NewDelete().Model((*TaskRow)(nil)).
		Where("status IN (?)", bun.In([]string{StatusDone, StatusFailed})).
		Where("updated_at < ?", before.UTC()).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune queue tasks: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// Row returns the stored row of task taskID, for tests and tools; an
// unknown ID matches store.ErrNotFound.
func (q *StoreQueue) Row(ctx context.Context, taskID string) (*TaskRow, error) {
	return q.get(ctx, taskID)
}
