// Package retention decides which backups of a job to delete.
//
// It is pure policy: it never touches storage, a database or the clock.
// The engine's cleanup worker lists a job's backups, calls [Apply] with the
// job's [Policy] and the current time, deletes the folders of the returned
// drop decisions, and appends one line per deletion to
// {storage root}/_system/cleanup.log with [AppendCleanupLog].
//
// # Rules
//
// The spec's recommended policy is
//
//	{ "max_backups": 3, "auto_delete": true }
//
// and its practical rule is "when the 4th backup of a job completes, the
// oldest one is removed". [Apply] implements that rule and extends it with
// grandfather-father-son (GFS) tiers, using the same bucketing approach as
// restic's snapshot policy:
//
//   - Only backups with [StatusCompleted] are ever dropped. Running, queued,
//     restoring and incomplete (no manifest.json) backups are always kept,
//     and so are failed ones (a failed execution has no files to delete) and
//     any status this package does not know.
//   - Pinned backups ([Backup.Pinned], e.g. the safety backup a restore
//     takes before it overwrites a database) are never dropped, and they
//     stand outside every rule below: they take no MaxBackups or GFS slot
//     and are never the newest completed backup.
//   - The newest completed (unpinned) backup of each job is never dropped,
//     whatever the policy says.
//   - With AutoDelete false nothing is dropped; the reasons still say what
//     would have been dropped, so a UI can preview a policy.
//   - A completed backup is kept when at least one rule keeps it:
//     MaxBackups keeps the newest N completed backups; KeepDaily,
//     KeepWeekly and KeepMonthly keep the newest completed backup of each of
//     the last N UTC days, ISO weeks or calendar months that have a
//     completed backup. Everything else is dropped.
//   - A policy with no rule set (all counts zero) drops nothing.
//   - Backups dated after now (clock skew) are always kept and take no slot
//     of any rule.
//   - Backups of different jobs are judged independently.
//
// Input order does not matter: [Apply] sorts its input, newest first, by
// CreatedAt, then by ID and the remaining fields, so the same set of backups
// always gives the same decisions.
package retention
