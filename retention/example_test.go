package retention_test

import (
	"fmt"
	"os"
	"time"

	"github.com/dataguardian/dataguardian/retention"
)

// The spec's practical rule: with {"max_backups": 3, "auto_delete": true},
// when the 4th backup of a job completes, the oldest one is removed.
func Example() {
	day := func(d int) time.Time { return time.Date(2025, 2, d, 6, 0, 0, 0, time.UTC) }
	backups := []retention.Backup{
		{ID: "exec-1", JobID: "nightly", CreatedAt: day(10), Status: retention.StatusCompleted, Path: "nightly/2025-02-10_060000"},
		{ID: "exec-2", JobID: "nightly", CreatedAt: day(11), Status: retention.StatusCompleted, Path: "nightly/2025-02-11_060000"},
		{ID: "exec-3", JobID: "nightly", CreatedAt: day(12), Status: retention.StatusCompleted, Path: "nightly/2025-02-12_060000"},
		{ID: "exec-4", JobID: "nightly", CreatedAt: day(13), Status: retention.StatusCompleted, Path: "nightly/2025-02-13_060000"},
	}
	policy := retention.RecommendedPolicy()
	now := day(13).Add(5 * time.Second)

	keep, drop := retention.Apply(backups, policy, now)
	for _, d := range keep {
		fmt.Println("keep", d.Backup.ID, d.Reason)
	}
	for _, d := range drop {
		fmt.Println("drop", d.Backup.ID, d.Reason)
	}
	// Output:
	// keep exec-4 kept: newest completed, within max_backups=3
	// keep exec-3 kept: within max_backups=3
	// keep exec-2 kept: within max_backups=3
	// drop exec-1 beyond max_backups=3
}

// Backups that are not completed are never dropped and take no slot: a
// running 4th backup does not push the oldest completed one out.
func ExampleApply_running() {
	day := func(d int) time.Time { return time.Date(2025, 2, d, 6, 0, 0, 0, time.UTC) }
	backups := []retention.Backup{
		{ID: "exec-4", CreatedAt: day(13), Status: retention.StatusRunning},
		{ID: "exec-3", CreatedAt: day(12), Status: retention.StatusCompleted},
		{ID: "exec-2", CreatedAt: day(11), Status: retention.StatusRestoring},
		{ID: "exec-1", CreatedAt: day(10), Status: retention.StatusCompleted},
	}
	keep, drop := retention.Apply(backups, retention.Policy{MaxBackups: 1, AutoDelete: true}, day(13))
	for _, d := range keep {
		fmt.Println("keep", d.Backup.ID, d.Reason)
	}
	for _, d := range drop {
		fmt.Println("drop", d.Backup.ID, d.Reason)
	}
	// Output:
	// keep exec-4 kept: running
	// keep exec-3 kept: newest completed, within max_backups=1
	// keep exec-2 kept: restoring (a restore is reading it)
	// drop exec-1 beyond max_backups=1
}

// GFS tiers keep the newest backup of each of the last N days, ISO weeks
// and months that have backups.
func ExampleApply_gfs() {
	var backups []retention.Backup
	start := time.Date(2025, 1, 1, 3, 0, 0, 0, time.UTC)
	for i := range 40 { // one backup a day, 2025-01-01 … 2025-02-09
		t := start.AddDate(0, 0, i)
		backups = append(backups, retention.Backup{
			ID: t.Format("2006-01-02"), JobID: "job", CreatedAt: t, Status: retention.StatusCompleted,
		})
	}
	policy := retention.Policy{AutoDelete: true, KeepDaily: 3, KeepWeekly: 2, KeepMonthly: 2}
	keep, drop := retention.Apply(backups, policy, start.AddDate(0, 0, 40))
	for _, d := range keep {
		fmt.Println(d.Backup.ID, d.Reason)
	}
	fmt.Println("dropped:", len(drop))
	// Output:
	// 2025-02-09 kept: newest completed, daily 2025-02-09, weekly 2025-W06, monthly 2025-02
	// 2025-02-08 kept: daily 2025-02-08
	// 2025-02-07 kept: daily 2025-02-07
	// 2025-02-02 kept: weekly 2025-W05
	// 2025-01-31 kept: monthly 2025-01
	// dropped: 35
}

func ExamplePolicy_Validate() {
	err := retention.Policy{MaxBackups: -1, AutoDelete: true}.Validate()
	fmt.Println(err)
	// Output:
	// invalid retention policy: max_backups is -1; set it to 0 (unlimited) or a positive count
}

func ExampleAppendCleanupLog() {
	d := retention.Decision{
		Backup: retention.Backup{
			ID:     "0b6c8a1e",
			JobID:  "nightly",
			Path:   "nightly/2025-02-10_060000",
			Status: retention.StatusCompleted,
		},
		Reason: "beyond max_backups=3",
	}
	at := time.Date(2025, 2, 13, 6, 0, 5, 0, time.UTC)
	if err := retention.AppendCleanupLog(os.Stdout, at, "nightly", d); err != nil {
		fmt.Println(err)
	}
	// Output:
	// 2025-02-13T06:00:05Z job=nightly deleted=nightly/2025-02-10_060000 execution=0b6c8a1e reason="beyond max_backups=3"
}

func ExampleFormatCleanupLine() {
	line := retention.FormatCleanupLine(retention.LogEntry{
		At:          time.Date(2025, 2, 13, 3, 0, 5, 0, time.FixedZone("BRT", -3*3600)),
		JobID:       "nightly",
		Path:        "my backups/nightly/2025-02-10_060000",
		ExecutionID: "0b6c8a1e",
		Reason:      "beyond max_backups=3",
	})
	fmt.Println(line)
	e, err := retention.ParseCleanupLine(line)
	fmt.Printf("%q %v\n", e.Path, err)
	// Output:
	// 2025-02-13T06:00:05Z job=nightly deleted="my backups/nightly/2025-02-10_060000" execution=0b6c8a1e reason="beyond max_backups=3"
	// "my backups/nightly/2025-02-10_060000" <nil>
}
