package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/dataguardian/dataguardian/engine/internal/storedb"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// EnqueueBulk inserts n queued tasks of kind due at runAt, 1,000 per
// statement, for benchmarks and load tests.
func EnqueueBulk(ctx context.Context, s *store.Store, n int, kind string, runAt time.Time) error {
	return s.DB(storedb.Key{}).RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		now := time.Now().UTC().Truncate(time.Microsecond)
		for done := 0; done < n; {
			rows := make([]TaskRow, min(1000, n-done))
			for i := range rows {
				id := uuid.NewString()
				rows[i] = TaskRow{ID: id, Kind: kind, ExecutionID: id, Attempt: 1, MaxAttempts: DefaultMaxAttempts,
					RunAt: runAt.UTC().Truncate(time.Microsecond), Status: StatusQueued, CreatedAt: now, UpdatedAt: now}
			}
			if _, err := tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
				return fmt.Errorf("bulk enqueue: %w", err)
			}
			done += len(rows)
		}
		return nil
	})
}
