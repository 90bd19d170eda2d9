package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dataguardian/dataguardian/engine/scheduler"
)

// ErrInUse reports a row that cannot be deleted because others refer to
// it, such as a storage location that a backup job still writes to.
var ErrInUse = errors.New("in use")

// UpdateBackupJob validates job as CreateBackupJob does and writes it
// (every field but ID, DatasourceID, LastExecutionAt and the timestamps;
// zero fields take CreateBackupJob's defaults, and RetryAttempts 0 turns
// retries off). The datasource of a job cannot change: its
// backups would mix two databases. next_execution_at is recomputed from
// now when the schedule or timezone changes, cleared without a schedule,
// and kept otherwise (so a run already due is not skipped). Errors match
// ErrNotFound or ErrInvalid and name the field to fix.
func (e *Engine) UpdateBackupJob(ctx context.Context, job *BackupJob) error {
	cur, err := e.store.GetBackupJob(ctx, job.ID)
	if err != nil {
		return fmt.Errorf("update backup job %s: %w", job.ID, err)
	}
	if job.DatasourceID == "" {
		job.DatasourceID = cur.DatasourceID
	}
	if job.DatasourceID != cur.DatasourceID {
		return fmt.Errorf("%w: backup job %q: datasource_id cannot change: create a new job for datasource %q",
			ErrInvalid, cur.Name, job.DatasourceID)
	}
	jobDefaults(job)
	if err := e.validateJob(ctx, job); err != nil {
		return err
	}
	job.NextExecutionAt = e.rescheduled(cur.Schedule, cur.Timezone, cur.NextExecutionAt, job.Schedule, job.Timezone)
	job.LastExecutionAt, job.CreatedAt = cur.LastExecutionAt, cur.CreatedAt
	return e.store.UpdateBackupJob(ctx, job, "name", "schedule", "timezone", "storage_location_ids",
		"compression", "max_file_size_mb", "retention", "enabled", "next_execution_at", "retry_attempts", "retry_delay_seconds", "encryption_recipients")
}

// rescheduled is the next_execution_at of a job whose schedule and
// timezone change from (schedule, tz, next) to (newSchedule, newTZ): none
// without a schedule, the current one when neither changed (so a run
// already due is not skipped), else the next run from now. The new
// schedule must have been validated.
func (e *Engine) rescheduled(schedule, tz string, next *time.Time, newSchedule, newTZ string) *time.Time {
	switch {
	case newSchedule == "":
		return nil
	case newSchedule == schedule && newTZ == tz && next != nil:
		return next
	default:
		n, _ := scheduler.NextAfter(newSchedule, newTZ, e.now())
		return &n
	}
}

// DeleteBackupJob deletes backup job id. Its executions and the backup
// files stay (the executions' job_id becomes empty); retention no longer
// applies to them.
func (e *Engine) DeleteBackupJob(ctx context.Context, id string) error {
	if _, err := e.store.GetBackupJob(ctx, id); err != nil {
		return fmt.Errorf("delete backup job %s: %w", id, err)
	}
	if err := e.store.DeleteBackupJob(ctx, id); err != nil {
		return fmt.Errorf("delete backup job %s: %w", id, err)
	}
	return nil
}
