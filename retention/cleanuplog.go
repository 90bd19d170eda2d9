package retention

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// LogEntry is one line of {storage root}/_system/cleanup.log: one deleted
// backup.
type LogEntry struct {
	// At is when the backup was deleted. It is written in UTC with second
	// precision.
	At time.Time
	// JobID is the backup job the backup belonged to.
	JobID string
	// Path is the deleted backup folder.
	Path string
	// ExecutionID is the execution that produced the backup.
	ExecutionID string
	// Reason says why it was deleted, e.g. "beyond max_backups=3".
	Reason string
}

// NewLogEntry returns the cleanup log entry for deleting d's backup at at.
// jobID falls back to d.Backup.JobID when empty.
func NewLogEntry(at time.Time, jobID string, d Decision) LogEntry {
	if jobID == "" {
		jobID = d.Backup.JobID
	}
	return LogEntry{
		At:          at,
		JobID:       jobID,
		Path:        d.Backup.Path,
		ExecutionID: d.Backup.ID,
		Reason:      d.Reason,
	}
}

// FormatCleanupLine formats e as one cleanup.log line, without the trailing
// newline:
//
//	2025-02-13T06:00:05Z job=<id> deleted=<path> execution=<id> reason="beyond max_backups=3"
//
// The fields always come in this order, so the log can be searched with
// grep ("job=<id>", "execution=<id>"). Reason is always quoted; the other
// values are written bare unless they are empty or contain spaces, quotes,
// control or invalid UTF-8 characters, in which case they are quoted as Go
// string literals. A line therefore never contains a newline, and
// [ParseCleanupLine] reads back every field exactly.
func FormatCleanupLine(e LogEntry) string {
	var sb strings.Builder
	sb.WriteString(e.At.UTC().Format(time.RFC3339))
	sb.WriteString(" job=")
	sb.WriteString(logValue(e.JobID))
	sb.WriteString(" deleted=")
	sb.WriteString(logValue(e.Path))
	sb.WriteString(" execution=")
	sb.WriteString(logValue(e.ExecutionID))
	sb.WriteString(" reason=")
	sb.WriteString(strconv.Quote(e.Reason))
	return sb.String()
}

// AppendCleanupLog writes the cleanup.log line for deleting d's backup at at
// (see [FormatCleanupLine] and [NewLogEntry]), followed by a newline, in a
// single Write call, so lines appended concurrently to a file opened with
// O_APPEND do not interleave.
func AppendCleanupLog(w io.Writer, at time.Time, jobID string, d Decision) error {
	line := FormatCleanupLine(NewLogEntry(at, jobID, d)) + "\n"
	n, err := io.WriteString(w, line)
	if err == nil && n < len(line) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("write cleanup log: %w", err)
	}
	return nil
}

// ParseCleanupLine reads a line written by [FormatCleanupLine] (a trailing
// newline is allowed). Keys it does not know are ignored, so later versions
// may add fields.
func ParseCleanupLine(line string) (LogEntry, error) {
	line = strings.TrimSuffix(line, "\n")
	ts, rest, _ := strings.Cut(line, " ")
	at, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return LogEntry{}, fmt.Errorf("parse cleanup line: time: %w", err)
	}
	e := LogEntry{At: at.UTC()}
	for rest != "" {
		key, after, ok := strings.Cut(rest, "=")
		if !ok || key == "" || strings.ContainsAny(key, " \"") {
			return LogEntry{}, fmt.Errorf("parse cleanup line: expected key=value at %q", rest)
		}
		var val string
		if strings.HasPrefix(after, `"`) {
			q, err := strconv.QuotedPrefix(after)
			if err != nil {
				return LogEntry{}, fmt.Errorf("parse cleanup line: %s: %w", key, err)
			}
			val, _ = strconv.Unquote(q) // QuotedPrefix returned a valid literal
			after = after[len(q):]
			if after != "" && after[0] != ' ' {
				return LogEntry{}, fmt.Errorf("parse cleanup line: %s: expected a space after the value", key)
			}
			rest = strings.TrimPrefix(after, " ")
		} else {
			val, rest, _ = strings.Cut(after, " ")
			if val == "" {
				return LogEntry{}, fmt.Errorf("parse cleanup line: %s: empty value", key)
			}
		}
		switch key {
		case "job":
			e.JobID = val
		case "deleted":
			e.Path = val
		case "execution":
			e.ExecutionID = val
		case "reason":
			e.Reason = val
		}
	}
	return e, nil
}

// logValue returns v bare when it can be read back unambiguously, else as a
// quoted Go string literal.
func logValue(v string) string {
	if needsQuote(v) {
		return strconv.Quote(v)
	}
	return v
}

func needsQuote(v string) bool {
	if v == "" || v[0] == '"' || !utf8.ValidString(v) {
		return true
	}
	for _, r := range v {
		if r == '"' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}
