package scheduler_test

import (
	"fmt"
	"time"

	"github.com/dataguardian/dataguardian/engine/scheduler"
)

// When does a job scheduled at 02:00 every day in São Paulo run next?
// Schedules are five-field cron expressions in the job's time zone; the
// answer is in UTC.
func ExampleNextAfter() {
	now := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	next, err := scheduler.NextAfter("0 2 * * *", "America/Sao_Paulo", now)
	if err != nil {
		panic(err)
	}
	fmt.Println(next)

	_, err = scheduler.NextAfter("@every 1s", "UTC", now)
	fmt.Println(err != nil)
	// Output:
	// 2025-03-11 05:00:00 +0000 UTC
	// true
}
