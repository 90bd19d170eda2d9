package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Helpers of package engine's tests, exported to the external tests of the
// queue (queue_store_test.go, package engine_test), which cannot live in
// package engine because engine/queuetest imports engine.
var (
	OpenTestStore = openTestStore
	SQLiteTestURL = sqliteTestURL
)

// EnqueueBulk inserts n queued tasks of kind due at runAt, 1,000 per
// statement, for benchmarks and load tests.
func EnqueueBulk(ctx context.Context, s *Store, n int, kind string, runAt time.Time) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		now := time.Now().UTC().Truncate(time.Microsecond)
		for done := 0; done < n; {
			rows := make([]queueTask, min(1000, n-done))
			for i := range rows {
				id := uuid.NewString()
				rows[i] = queueTask{ID: id, Kind: kind, ExecutionID: id, Attempt: 1, MaxAttempts: DefaultQueueMaxAttempts,
					RunAt: runAt.UTC().Truncate(time.Microsecond), Status: taskQueued, CreatedAt: now, UpdatedAt: now}
			}
			if _, err := tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
				return fmt.Errorf("bulk enqueue: %w", err)
			}
			done += len(rows)
		}
		return nil
	})
}
