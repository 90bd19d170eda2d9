package engine

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseScheduleAndNextRun(t *testing.T) {
	s, loc, err := parseSchedule("0 6 * * *", "America/Sao_Paulo")
	mustNoErr(t, "parse", err)
	// 06:00 in São Paulo (UTC-3) is 09:00 UTC.
	from := time.Date(2025, 2, 13, 8, 0, 0, 0, time.UTC)
	if got, want := nextRun(s, loc, from), time.Date(2025, 2, 13, 9, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("next = %s, want %s", got, want)
	}
	if got, want := nextRun(s, loc, time.Date(2025, 2, 13, 9, 0, 0, 0, time.UTC)), time.Date(2025, 2, 14, 9, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("next after a due time = %s, want the following day %s", got, want)
	}
	if _, _, err := parseSchedule("61 * * * *", ""); err == nil || !strings.Contains(err.Error(), "five cron fields") {
		t.Fatalf("bad cron: %v", err)
	}
	if _, _, err := parseSchedule("@daily", "Mars/Olympus"); err == nil || !strings.Contains(err.Error(), "timezone") {
		t.Fatalf("bad zone: %v", err)
	}
	for expr, want := range map[string]string{"@every 1s": "intervals are not schedules", "0 0 31 2 *": "matches no date",
		"0 0 30 2 *": "matches no date"} {
		if _, _, err := parseSchedule(expr, ""); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "five cron fields") {
			t.Errorf("schedule %q: %v, want an error saying %q", expr, err, want)
		}
	}
	for _, expr := range []string{"@daily", "@hourly", "0 0 29 2 *", "0 0 31 * *"} {
		if _, _, err := parseSchedule(expr, ""); err != nil {
			t.Errorf("schedule %q: %v", expr, err)
		}
	}
}

func TestCreateJobComputesNextExecution(t *testing.T) {
	e, err := New(t.Context(), Config{DataDir: t.TempDir(), Logger: discardLogger,
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
