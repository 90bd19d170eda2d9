package retention

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidPolicy is matched (with [errors.Is]) by every error that
// [Policy.Validate] returns.
var ErrInvalidPolicy = errors.New("invalid retention policy")

// Policy says how many completed backups of a job to keep.
//
// The zero Policy deletes nothing: AutoDelete is false. A completed backup
// is kept when at least one of the count rules below keeps it (the rules are
// a union, like restic's --keep-last/--keep-daily/…), so MaxBackups is not a
// cap on the total when GFS tiers are also set: at most
// MaxBackups + KeepDaily + KeepWeekly + KeepMonthly completed backups are
// kept by the rules (fewer when one backup fills several slots), plus the
// backups [Apply] always keeps (pinned, newest completed, future-dated,
// not completed). When every count is zero no rule is active and nothing is
// deleted, even with AutoDelete.
type Policy struct {
	// MaxBackups keeps the newest MaxBackups completed backups of the job.
	// 0 means unlimited when no GFS tier is set (nothing is deleted), and
	// "this rule keeps nothing on its own" when a GFS tier is set. With
	// MaxBackups 3 and no GFS tier, the 4th completed backup of a job makes
	// the oldest one go.
	MaxBackups int `json:"max_backups"`

	// AutoDelete enables deletion. When false, [Apply] drops nothing and
	// only reports what it would drop.
	AutoDelete bool `json:"auto_delete"`

	// KeepDaily keeps the newest completed backup of each of the last
	// KeepDaily UTC calendar days that have a completed backup. Days
	// without a backup do not use a slot. 0 means the daily tier is not used.
	KeepDaily int `json:"keep_daily,omitempty"`

	// KeepWeekly keeps the newest completed backup of each of the last
	// KeepWeekly ISO 8601 weeks (Monday to Sunday, UTC) that have a
	// completed backup. 0 means the weekly tier is not used.
	KeepWeekly int `json:"keep_weekly,omitempty"`

	// KeepMonthly keeps the newest completed backup of each of the last
	// KeepMonthly UTC calendar months that have a completed backup. 0 means
	// the monthly tier is not used.
	KeepMonthly int `json:"keep_monthly,omitempty"`
}

// RecommendedPolicy returns the spec's recommended policy:
// {"max_backups": 3, "auto_delete": true}.
func RecommendedPolicy() Policy {
	return Policy{MaxBackups: 3, AutoDelete: true}
}

// Validate reports every negative count, each as an error matching
// [ErrInvalidPolicy] that names the JSON field and says what to set.
func (p Policy) Validate() error {
	var errs []error
	check := func(field string, v int, zero string) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%w: %s is %d; set it to 0 (%s) or a positive count",
				ErrInvalidPolicy, field, v, zero))
		}
	}
	check("max_backups", p.MaxBackups, "unlimited")
	check("keep_daily", p.KeepDaily, "no daily tier")
	check("keep_weekly", p.KeepWeekly, "no weekly tier")
	check("keep_monthly", p.KeepMonthly, "no monthly tier")
	return errors.Join(errs...)
}

// HasRules reports whether any count rule is set. A policy without rules
// never deletes anything.
func (p Policy) HasRules() bool {
	return p.MaxBackups > 0 || p.KeepDaily > 0 || p.KeepWeekly > 0 || p.KeepMonthly > 0
}

// String lists the policy's settings in JSON field names, for logs and
// reasons, e.g. "max_backups=3 keep_daily=7 auto_delete=true". Counts that
// are zero are left out.
func (p Policy) String() string {
	parts := p.rules()
	parts = append(parts, fmt.Sprintf("auto_delete=%t", p.AutoDelete))
	return strings.Join(parts, " ")
}

// rules returns the active count rules as "field=N".
func (p Policy) rules() []string {
	var parts []string
	add := func(field string, v int) {
		if v != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", field, v))
		}
	}
	add("max_backups", p.MaxBackups)
	add("keep_daily", p.KeepDaily)
	add("keep_weekly", p.KeepWeekly)
	add("keep_monthly", p.KeepMonthly)
	return parts
}
