package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// queueTasksMigration creates the durable queue's table (see StoreQueue).
var queueTasksMigration = migrate.Migration{
	Name:    "20250301000001",
	Comment: "queue_tasks",
	Up:      upMigration(migrateQueueTasks),
}

// queueTasksV1 is the queue_tasks table as this migration creates it. It is
// frozen here on purpose: the live model (queueTask) may gain fields that a
// later migration adds.
type queueTasksV1 struct {
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

// migrateQueueTasks creates queue_tasks with an index for Claim and Stats
// (status, run_at, created_at, id: Claim's order, so a claim reads one index
// entry even when thousands of tasks share a run_at) and one for Recover
// (status, lease_expires_at). There is
// no foreign key on execution_id: a task may name a backup execution or a
// sync execution, which live in different tables.
func migrateQueueTasks(ctx context.Context, tx bun.Tx) error {
	if _, err := tx.NewCreateTable().Model((*queueTasksV1)(nil)).IfNotExists().Exec(ctx); err != nil {
		return fmt.Errorf("create table queue_tasks: %w", err)
	}
	for _, ix := range []indexDef{
		{name: "queue_tasks_status_run_at_idx", columns: []string{"status", "run_at", "created_at", "id"}},
		{name: "queue_tasks_status_lease_expires_at_idx", columns: []string{"status", "lease_expires_at"}},
	} {
		_, err := tx.NewCreateIndex().Model((*queueTasksV1)(nil)).Index(ix.name).Column(ix.columns...).IfNotExists().Exec(ctx)
		if err != nil {
			return fmt.Errorf("create index %s: %w", ix.name, err)
		}
	}
	return nil
}
