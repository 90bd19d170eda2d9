package retention

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Status is the state of a backup as the engine sees it: the execution's
// status, refined with what storage says about its files.
type Status string

// The statuses [Apply] knows. Only [StatusCompleted] backups are ever
// dropped; any other value, including ones not listed here, is kept.
const (
	// StatusCompleted: the execution completed and manifest.json exists.
	StatusCompleted Status = "completed"
	// StatusRunning: a backup worker is writing it.
	StatusRunning Status = "running"
	// StatusQueued: waiting for a backup worker.
	StatusQueued Status = "queued"
	// StatusFailed: the execution failed. A failed execution has no files
	// (parts are only visible once complete and the manifest is never
	// written), so there is nothing for retention to delete.
	StatusFailed Status = "failed"
	// StatusIncomplete: files exist but manifest.json does not. It is
	// never offered for restore and never deleted by retention; cleaning
	// up such leftovers is a separate, explicit decision.
	StatusIncomplete Status = "incomplete"
	// StatusRestoring: a restore or verification is reading it right now.
	StatusRestoring Status = "restoring"
)

// Backup is one backup of a job, as retention needs to see it.
type Backup struct {
	// ID is the execution ID that produced the backup.
	ID string
	// JobID is the backup job. Backups of different jobs are judged
	// independently.
	JobID string
	// CreatedAt is when the backup was taken. GFS tiers bucket it in UTC.
	CreatedAt time.Time
	// Status decides whether the backup may be dropped at all.
	Status Status
	// Path is the backup folder, {job_id}/{YYYY-MM-DD_HHmmss}, relative to
	// the storage root. Apply does not read it; it is carried through for
	// the caller and the cleanup log.
	Path string
	// Pinned backups (such as the safety backup a restore takes first) are
	// always kept, whatever their status, and stand outside the rules: they
	// take no slot of MaxBackups or of a GFS tier and are never the
	// "newest completed" backup.
	Pinned bool
}

// Decision is what [Apply] decided for one backup, and why.
type Decision struct {
	Backup Backup
	// Reason is a short sentence for people: it starts with "kept: " for
	// kept backups, e.g. "kept: newest completed, within max_backups=3,
	// daily 2025-02-13", and with "beyond " for dropped ones, e.g.
	// "beyond max_backups=3".
	Reason string
}

// Apply splits backups into those to keep and those to drop under p, as of
// now. Every input element appears exactly once in keep or drop. Both slices
// are ordered newest first (by CreatedAt, ties broken by the greater ID,
// then the other fields), whatever the input order. Apply does not modify
// backups.
//
// The rules are in the package documentation. In short: only completed,
// unpinned backups are dropped; pinned backups take no slot of any rule;
// the newest completed unpinned backup of each job is never dropped;
// AutoDelete false or a policy without rules drops nothing; a completed
// backup is kept when MaxBackups or any GFS tier keeps it.
//
// now is only used to recognise backups dated in the future (clock skew):
// they are kept and take no slot of any rule, so a wrong clock can never
// push real backups out. Passing now explicitly keeps Apply deterministic;
// a zero now keeps everything. GFS tiers count periods that have backups,
// not periods back from now.
//
// An invalid policy (see [Policy.Validate]) drops nothing; callers should
// validate policies when they are configured.
func Apply(backups []Backup, p Policy, now time.Time) (keep, drop []Decision) {
	sorted := slices.Clone(backups)
	slices.SortFunc(sorted, newestFirst)

	var invalid string
	if err := p.Validate(); err != nil {
		invalid = strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	dropReason := "beyond " + strings.Join(p.rules(), ", ")

	jobs := make(map[string]*jobState)
	for _, b := range sorted {
		if b.Pinned {
			keep = append(keep, Decision{Backup: b, Reason: "kept: pinned"})
			continue
		}
		if b.Status != StatusCompleted {
			keep = append(keep, Decision{Backup: b, Reason: statusReason(b.Status)})
			continue
		}
		if invalid != "" {
			keep = append(keep, Decision{Backup: b, Reason: "kept: invalid policy: " + invalid})
			continue
		}
		st := jobs[b.JobID]
		if st == nil {
			st = newJobState(p)
			jobs[b.JobID] = st
		}
		reasons := st.reasons(b, p, now)
		switch {
		case len(reasons) > 0:
			keep = append(keep, Decision{Backup: b, Reason: "kept: " + strings.Join(reasons, ", ")})
		case !p.HasRules():
			keep = append(keep, Decision{Backup: b, Reason: "kept: no retention rule set (unlimited)"})
		case !p.AutoDelete:
			keep = append(keep, Decision{Backup: b, Reason: "kept: auto_delete=false (would drop: " + dropReason + ")"})
		default:
			drop = append(drop, Decision{Backup: b, Reason: dropReason})
		}
	}
	return keep, drop
}

// jobState is the per-job bookkeeping of one Apply call, walking completed
// backups newest first (restic's approach: a backup fills a tier slot when
// its period differs from the last period that tier kept).
type jobState struct {
	sawNewest bool
	maxLeft   int
	tiers     [3]tierState
}

type tierState struct {
	left int
	last string
}

type tier struct {
	name   string
	bucket func(time.Time) string
}

// tiers are in the order of jobState.tiers.
var tiers = [3]tier{
	{"daily", func(t time.Time) string { return t.Format("2006-01-02") }},
	{"weekly", func(t time.Time) string {
		y, w := t.ISOWeek()
		return fmt.Sprintf("%04d-W%02d", y, w)
	}},
	{"monthly", func(t time.Time) string { return t.Format("2006-01") }},
}

func newJobState(p Policy) *jobState {
	return &jobState{
		maxLeft: p.MaxBackups,
		tiers:   [3]tierState{{left: p.KeepDaily}, {left: p.KeepWeekly}, {left: p.KeepMonthly}},
	}
}

// reasons returns why the completed backup b is kept, or nothing if no rule
// keeps it. It must be called for a job's completed backups newest first.
func (st *jobState) reasons(b Backup, p Policy, now time.Time) []string {
	var reasons []string
	if !st.sawNewest {
		st.sawNewest = true
		reasons = append(reasons, "newest completed")
	}
	if b.CreatedAt.After(now) {
		return append(reasons, "dated after now")
	}
	if st.maxLeft > 0 {
		st.maxLeft--
		reasons = append(reasons, fmt.Sprintf("within max_backups=%d", p.MaxBackups))
	}
	t := b.CreatedAt.UTC()
	for i := range st.tiers {
		ts := &st.tiers[i]
		if ts.left <= 0 {
			continue
		}
		if key := tiers[i].bucket(t); key != ts.last {
			ts.last = key
			ts.left--
			reasons = append(reasons, tiers[i].name+" "+key)
		}
	}
	return reasons
}

func statusReason(s Status) string {
	switch s {
	case StatusRunning:
		return "kept: running"
	case StatusQueued:
		return "kept: queued"
	case StatusRestoring:
		return "kept: restoring (a restore is reading it)"
	case StatusIncomplete:
		return "kept: incomplete (no manifest.json)"
	case StatusFailed:
		return "kept: failed (no files to delete)"
	default:
		return fmt.Sprintf("kept: status %q is not completed", string(s))
	}
}

// newestFirst orders backups newest first. Every field takes part so that
// the order, and with it every decision, does not depend on input order.
func newestFirst(a, b Backup) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return cmp.Or(
		cmp.Compare(b.ID, a.ID),
		cmp.Compare(b.JobID, a.JobID),
		cmp.Compare(b.Path, a.Path),
		cmp.Compare(b.Status, a.Status),
		compareBool(b.Pinned, a.Pinned),
		cmp.Compare(b.CreatedAt.Location().String(), a.CreatedAt.Location().String()),
	)
}

// compareBool orders false before true.
func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	default:
		return -1
	}
}
