package scheduler

import (
	"strings"
	"testing"
	"time"
)

func TestParseScheduleAndNextRun(t *testing.T) {
	s, loc, err := Parse("0 6 * * *", "America/Sao_Paulo")
	if err != nil {
		t.Fatal(err)
	}
	// 06:00 in São Paulo (UTC-3) is 09:00 UTC.
	from := time.Date(2025, 2, 13, 8, 0, 0, 0, time.UTC)
	if got, want := Next(s, loc, from), time.Date(2025, 2, 13, 9, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("next = %s, want %s", got, want)
	}
	if got, want := Next(s, loc, time.Date(2025, 2, 13, 9, 0, 0, 0, time.UTC)), time.Date(2025, 2, 14, 9, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("next after a due time = %s, want the following day %s", got, want)
	}
	if _, _, err := Parse("61 * * * *", ""); err == nil || !strings.Contains(err.Error(), "five cron fields") {
		t.Fatalf("bad cron: %v", err)
	}
	if _, _, err := Parse("@daily", "Mars/Olympus"); err == nil || !strings.Contains(err.Error(), "timezone") {
		t.Fatalf("bad zone: %v", err)
	}
	for expr, want := range map[string]string{"@every 1s": "intervals are not schedules", "0 0 31 2 *": "matches no date",
		"0 0 30 2 *": "matches no date"} {
		if _, _, err := Parse(expr, ""); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "five cron fields") {
			t.Errorf("schedule %q: %v, want an error saying %q", expr, err, want)
		}
	}
	for _, expr := range []string{"@daily", "@hourly", "0 0 29 2 *", "0 0 31 * *"} {
		if _, _, err := Parse(expr, ""); err != nil {
			t.Errorf("schedule %q: %v", expr, err)
		}
	}
}
