package engine

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCreateJobComputesNextExecution(t *testing.T) {
	e, err := newEngine(t.Context(), Config{DataDir: t.TempDir(), Logger: discardLogger,
		Now: func() time.Time { return time.Date(2025, 2, 13, 5, 59, 0, 0, time.UTC) }})
	mustNoErr(t, "new", err)
	defer e.Close()
	f := newFixture(t, e, BackupJob{Schedule: "0 6 * * *", Timezone: "UTC"})
	got, err := e.Store().GetBackupJob(t.Context(), f.job.ID)
	mustNoErr(t, "get", err)
	if got.NextExecutionAt == nil || !got.NextExecutionAt.Equal(time.Date(2025, 2, 13, 6, 0, 0, 0, time.UTC)) {
		t.Fatalf("next_execution_at = %v", got.NextExecutionAt)
	}
	bad := BackupJob{Name: "bad", DatasourceID: f.ds.ID, StorageLocationIDs: f.job.StorageLocationIDs, Schedule: "every day"}
	if err := e.CreateBackupJob(t.Context(), &bad); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "schedule") {
		t.Fatalf("bad schedule: %v", err)
	}
}
