package retention_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/retention"
)

var logAt = time.Date(2025, 2, 13, 6, 0, 5, 0, time.UTC)

func TestFormatCleanupLine(t *testing.T) {
	tests := []struct {
		name string
		e    retention.LogEntry
		want string
	}{
		{
			name: "plain",
			e:    retention.LogEntry{At: logAt, JobID: "j1", Path: "j1/2025-02-10_060000", ExecutionID: "x1", Reason: "beyond max_backups=3"},
			want: `2025-02-13T06:00:05Z job=j1 deleted=j1/2025-02-10_060000 execution=x1 reason="beyond max_backups=3"`,
		},
		{
			name: "time is UTC with seconds",
			e:    retention.LogEntry{At: time.Date(2025, 2, 13, 3, 0, 5, 999, time.FixedZone("BRT", -3*3600)), JobID: "j", Path: "p", ExecutionID: "x"},
			want: `2025-02-13T06:00:05Z job=j deleted=p execution=x reason=""`,
		},
		{
			name: "empty values are quoted",
			e:    retention.LogEntry{At: logAt},
			want: `2025-02-13T06:00:05Z job="" deleted="" execution="" reason=""`,
		},
		{
			name: "spaces, quotes and newlines are quoted",
			e:    retention.LogEntry{At: logAt, JobID: "a b", Path: "x\ny", ExecutionID: `"q`, Reason: "r\n"},
			want: `2025-02-13T06:00:05Z job="a b" deleted="x\ny" execution="\"q" reason="r\n"`,
		},
		{
			name: "unicode and equals signs stay bare",
			e:    retention.LogEntry{At: logAt, JobID: "cópia", Path: `C:\b=k\ç`, ExecutionID: "x"},
			want: `2025-02-13T06:00:05Z job=cópia deleted=C:\b=k\ç execution=x reason=""`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := retention.FormatCleanupLine(tc.e)
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			back, err := retention.ParseCleanupLine(got + "\n")
			if err != nil {
				t.Fatal(err)
			}
			want := tc.e
			want.At = tc.e.At.UTC().Truncate(time.Second)
			if back != want {
				t.Fatalf("ParseCleanupLine = %+v, want %+v", back, want)
			}
		})
	}
}

// writeCounter records each Write call.
type writeCounter struct {
	calls []string
	n     int // bytes to accept per call; -1 for all
	err   error
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.calls = append(w.calls, string(p))
	if w.err != nil {
		return 0, w.err
	}
	if w.n >= 0 && w.n < len(p) {
		return w.n, nil
	}
	return len(p), nil
}

func TestAppendCleanupLog(t *testing.T) {
	d := retention.Decision{
		Backup: retention.Backup{ID: "x1", JobID: "from-backup", Path: "j/2025-02-10_060000", Status: retention.StatusCompleted},
		Reason: "beyond max_backups=3",
	}

	t.Run("one line in one write", func(t *testing.T) {
		w := &writeCounter{n: -1}
		if err := retention.AppendCleanupLog(w, logAt, "j", d); err != nil {
			t.Fatal(err)
		}
		want := `2025-02-13T06:00:05Z job=j deleted=j/2025-02-10_060000 execution=x1 reason="beyond max_backups=3"` + "\n"
		if len(w.calls) != 1 || w.calls[0] != want {
			t.Fatalf("writes %q, want one write of %q", w.calls, want)
		}
	})

	t.Run("job ID falls back to the backup's", func(t *testing.T) {
		var buf bytes.Buffer
		if err := retention.AppendCleanupLog(&buf, logAt, "", d); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), " job=from-backup ") {
			t.Fatalf("line %q does not name the backup's job", buf.String())
		}
	})

	t.Run("appends lines", func(t *testing.T) {
		var buf bytes.Buffer
		for range 3 {
			if err := retention.AppendCleanupLog(&buf, logAt, "j", d); err != nil {
				t.Fatal(err)
			}
		}
		if n := strings.Count(buf.String(), "\n"); n != 3 {
			t.Fatalf("%d lines, want 3", n)
		}
	})

	t.Run("write error", func(t *testing.T) {
		boom := errors.New("disk full")
		err := retention.AppendCleanupLog(&writeCounter{err: boom}, logAt, "j", d)
		if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "write cleanup log: ") {
			t.Fatalf("err = %v, want write cleanup log: disk full", err)
		}
	})

	t.Run("short write", func(t *testing.T) {
		err := retention.AppendCleanupLog(&writeCounter{n: 3}, logAt, "j", d)
		if !errors.Is(err, io.ErrShortWrite) {
			t.Fatalf("err = %v, want io.ErrShortWrite", err)
		}
	})
}

func TestParseCleanupLine(t *testing.T) {
	t.Run("unknown keys are ignored", func(t *testing.T) {
		e, err := retention.ParseCleanupLine(`2025-02-13T06:00:05Z job=j deleted=p execution=x reason="r" storage=local size=12`)
		if err != nil {
			t.Fatal(err)
		}
		if e.JobID != "j" || e.Path != "p" || e.ExecutionID != "x" || e.Reason != "r" || !e.At.Equal(logAt) {
			t.Fatalf("got %+v", e)
		}
	})
	for _, bad := range []string{
		"",
		"yesterday job=j",
		"2025-02-13T06:00:05Z job",
		"2025-02-13T06:00:05Z =x",
		`2025-02-13T06:00:05Z job="unterminated`,
		`2025-02-13T06:00:05Z job="a"b`,
		"2025-02-13T06:00:05Z job= deleted=p",
	} {
		if e, err := retention.ParseCleanupLine(bad); err == nil {
			t.Errorf("ParseCleanupLine(%q) = %+v, want an error", bad, e)
		}
	}
}

func FuzzCleanupLine(f *testing.F) {
	f.Add("j1", "j1/2025-02-10_060000", "x1", "beyond max_backups=3", int64(1739426405))
	f.Add("", "a b", `"`, "\n", int64(0))
	f.Add("cópia", "\xff\xfe", "x=y", `\`, int64(-62135596800))
	f.Fuzz(func(t *testing.T, job, path, exec, reason string, sec int64) {
		// RFC 3339 covers years 0000 to 9999.
		const minSec, maxSec = -62167219200, 253402300799
		if sec < minSec || sec > maxSec {
			sec = minSec + (sec%(maxSec-minSec)+(maxSec-minSec))%(maxSec-minSec)
		}
		e := retention.LogEntry{At: time.Unix(sec, 0).UTC(), JobID: job, Path: path, ExecutionID: exec, Reason: reason}
		line := retention.FormatCleanupLine(e)
		if strings.ContainsAny(line, "\n\r") {
			t.Fatalf("line %q spans several lines", line)
		}
		if !strings.Contains(line, " execution="+exec+" ") && !strings.Contains(line, ` execution="`) {
			t.Fatalf("line %q neither has execution bare nor quoted", line)
		}
		back, err := retention.ParseCleanupLine(line)
		if err != nil {
			t.Fatalf("ParseCleanupLine(%q): %v", line, err)
		}
		if back != e {
			t.Fatalf("round trip of %q:\n got  %+v\n want %+v", line, back, e)
		}
	})
}
