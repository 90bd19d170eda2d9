package retention_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/retention"
)

// checkInvariants checks, without reusing Apply's code, the properties
// every result of Apply must have.
func checkInvariants(t *testing.T, in []retention.Backup, p retention.Policy, now time.Time, keep, drop []retention.Decision) {
	t.Helper()

	// keep ∪ drop is exactly the input (as a multiset), so they are disjoint.
	if len(keep)+len(drop) != len(in) {
		t.Fatalf("kept %d + dropped %d != %d input backups", len(keep), len(drop), len(in))
	}
	count := map[retention.Backup]int{}
	for _, b := range in {
		count[b]++
	}
	for _, d := range slices.Concat(keep, drop) {
		count[d.Backup]--
	}
	for b, n := range count {
		if n != 0 {
			t.Fatalf("backup %+v appears %d more times in the input than in keep+drop", b, n)
		}
	}

	// Both lists are newest first.
	for _, list := range [][]retention.Decision{keep, drop} {
		for i := 1; i < len(list); i++ {
			if list[i].Backup.CreatedAt.After(list[i-1].Backup.CreatedAt) {
				t.Fatalf("decisions not newest first at %d: %v after %v", i, list[i].Backup.CreatedAt, list[i-1].Backup.CreatedAt)
			}
		}
	}

	for _, d := range keep {
		if !strings.HasPrefix(d.Reason, "kept: ") {
			t.Errorf("kept %s with reason %q, want a \"kept: \" prefix", d.Backup.ID, d.Reason)
		}
	}
	safe := !p.AutoDelete || !p.HasRules() || p.Validate() != nil
	if safe && len(drop) > 0 {
		t.Fatalf("policy %v (valid: %v) dropped %d backups, want none", p, p.Validate() == nil, len(drop))
	}

	// Pinned backups are kept and stand outside every rule.
	for _, d := range drop {
		if d.Backup.Pinned {
			t.Fatalf("dropped pinned %s", d.Backup.ID)
		}
	}
	for _, d := range keep {
		if d.Backup.Pinned && d.Reason != "kept: pinned" {
			t.Errorf("kept pinned %s with reason %q, want \"kept: pinned\"", d.Backup.ID, d.Reason)
		}
	}

	// newestTime[job] is the newest CreatedAt among the job's completed,
	// unpinned backups.
	newestTime := map[string]time.Time{}
	for _, b := range in {
		if b.Status != retention.StatusCompleted || b.Pinned {
			continue
		}
		if cur, ok := newestTime[b.JobID]; !ok || b.CreatedAt.After(cur) {
			newestTime[b.JobID] = b.CreatedAt
		}
	}
	keptNewest := map[string]bool{}
	for _, d := range keep {
		if d.Backup.Status == retention.StatusCompleted && !d.Backup.Pinned && d.Backup.CreatedAt.Equal(newestTime[d.Backup.JobID]) {
			keptNewest[d.Backup.JobID] = true
		}
	}
	for job := range newestTime {
		if !keptNewest[job] {
			t.Errorf("job %q: newest completed backup dropped", job)
		}
	}

	// eligible: completed, not in the future, same job; the backups that
	// compete for rule slots.
	eligible := func(job string) []retention.Backup {
		var out []retention.Backup
		for _, b := range in {
			if b.JobID == job && b.Status == retention.StatusCompleted && !b.Pinned && !b.CreatedAt.After(now) {
				out = append(out, b)
			}
		}
		return out
	}
	for _, d := range drop {
		b := d.Backup
		if !strings.HasPrefix(d.Reason, "beyond ") {
			t.Errorf("dropped %s with reason %q, want a \"beyond \" prefix", b.ID, d.Reason)
		}
		if b.Status != retention.StatusCompleted {
			t.Fatalf("dropped %s with status %q", b.ID, b.Status)
		}
		if b.CreatedAt.After(now) {
			t.Fatalf("dropped future-dated %s (%v > now %v)", b.ID, b.CreatedAt, now)
		}
		peers := eligible(b.JobID)
		// At least MaxBackups other eligible backups are at least as new.
		if p.MaxBackups > 0 {
			n := -1 // b itself
			for _, o := range peers {
				if !o.CreatedAt.Before(b.CreatedAt) {
					n++
				}
			}
			if n < p.MaxBackups {
				t.Errorf("dropped %s although only %d backups are as new, max_backups=%d", b.ID, n, p.MaxBackups)
			}
		}
		// For each tier: another backup at least as new is in the same
		// period, or the tier is full with newer periods.
		for _, tr := range testTiers(p) {
			key := tr.bucket(b.CreatedAt)
			sameAsNew := 0 // includes b itself
			newerPeriods := map[string]bool{}
			for _, o := range peers {
				ok := tr.bucket(o.CreatedAt)
				if ok == key && !o.CreatedAt.Before(b.CreatedAt) {
					sameAsNew++
				}
				if ok > key {
					newerPeriods[ok] = true
				}
			}
			if sameAsNew < 2 && len(newerPeriods) < tr.n {
				t.Errorf("dropped %s, the newest of %s period %s, with only %d newer periods, want %d kept",
					b.ID, tr.name, key, len(newerPeriods), tr.n)
			}
		}
	}

	// Nothing completed is kept without a rule keeping it, when deleting is on.
	if safe {
		return
	}
	for _, d := range keep {
		b := d.Backup
		if b.Status != retention.StatusCompleted || b.Pinned || b.CreatedAt.After(now) || b.CreatedAt.Equal(newestTime[b.JobID]) {
			continue
		}
		peers := eligible(b.JobID)
		justified := false
		if p.MaxBackups > 0 {
			newer := 0
			for _, o := range peers {
				if o.CreatedAt.After(b.CreatedAt) {
					newer++
				}
			}
			justified = newer < p.MaxBackups
		}
		for _, tr := range testTiers(p) {
			key := tr.bucket(b.CreatedAt)
			newerSame := false
			newerPeriods := map[string]bool{}
			for _, o := range peers {
				ok := tr.bucket(o.CreatedAt)
				if ok == key && o.CreatedAt.After(b.CreatedAt) {
					newerSame = true
				}
				if ok > key {
					newerPeriods[ok] = true
				}
			}
			if !newerSame && len(newerPeriods) < tr.n {
				justified = true
			}
		}
		if !justified {
			t.Errorf("kept %s (%q) although no rule of %v keeps it", b.ID, d.Reason, p)
		}
	}
}

type testTier struct {
	name   string
	n      int
	bucket func(time.Time) string // sorts like time
}

func testTiers(p retention.Policy) []testTier {
	var out []testTier
	if p.KeepDaily > 0 {
		out = append(out, testTier{"daily", p.KeepDaily, func(t time.Time) string {
			y, m, d := t.UTC().Date()
			return fmt.Sprintf("%06d-%02d-%02d", y, m, d)
		}})
	}
	if p.KeepWeekly > 0 {
		out = append(out, testTier{"weekly", p.KeepWeekly, func(t time.Time) string {
			y, w := t.UTC().ISOWeek()
			return fmt.Sprintf("%06d-%02d", y, w)
		}})
	}
	if p.KeepMonthly > 0 {
		out = append(out, testTier{"monthly", p.KeepMonthly, func(t time.Time) string {
			y, m, _ := t.UTC().Date()
			return fmt.Sprintf("%06d-%02d", y, m)
		}})
	}
	return out
}

var fuzzStatuses = []retention.Status{
	retention.StatusCompleted, retention.StatusCompleted, retention.StatusCompleted, retention.StatusCompleted,
	retention.StatusRunning, retention.StatusQueued, retention.StatusFailed, retention.StatusIncomplete,
	retention.StatusRestoring, "", "cancelled",
}

// decodeBackups turns fuzz bytes into backups, 4 bytes each: status (the
// high bit pins it), job and ID, and a 16-bit offset in 37-minute steps
// (about 4.6 years) from a base time, so days, ISO weeks, months and years
// all get crossed.
func decodeBackups(data []byte) []retention.Backup {
	base := time.Date(2023, 12, 25, 0, 0, 0, 0, time.UTC)
	var out []retention.Backup
	for i := 0; i+4 <= len(data) && len(out) < 300; i += 4 {
		rec := data[i : i+4]
		off := time.Duration(int(rec[2])<<8|int(rec[3])) * 37 * time.Minute
		id := fmt.Sprintf("e%d", rec[1]>>2) // duplicates on purpose
		out = append(out, retention.Backup{
			ID:        id,
			JobID:     fmt.Sprintf("job%d", rec[1]%3),
			CreatedAt: base.Add(off),
			Status:    fuzzStatuses[int(rec[0]&0x7f)%len(fuzzStatuses)],
			Path:      "p/" + id,
			Pinned:    rec[0]&0x80 != 0,
		})
	}
	return out
}

func FuzzApply(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 4, 0, 2, 0, 8, 0, 3, 0, 12, 0, 4}, int8(3), int8(0), int8(0), int8(0), true, uint16(100))
	f.Add([]byte{0, 0, 0, 1, 4, 4, 0, 2, 0, 8, 0, 3, 5, 12, 0, 4}, int8(1), int8(0), int8(0), int8(0), true, uint16(3))
	f.Add([]byte{0, 0, 1, 0, 0, 1, 2, 0, 0, 2, 3, 0, 0, 3, 4, 0, 0, 4, 5, 0}, int8(0), int8(2), int8(2), int8(2), true, uint16(0xffff))
	f.Add([]byte{0, 0, 9, 9, 0, 4, 9, 9, 2, 8, 9, 9}, int8(-1), int8(1), int8(0), int8(0), true, uint16(5000))
	f.Add([]byte{0, 0, 0, 1, 0, 4, 0, 2}, int8(1), int8(0), int8(0), int8(0), false, uint16(100))
	f.Add([]byte{0, 0, 0, 1, 0, 4, 0, 2, 0x80, 8, 0, 3, 0, 12, 0, 4}, int8(1), int8(1), int8(0), int8(0), true, uint16(100))
	f.Fuzz(func(t *testing.T, data []byte, maxB, daily, weekly, monthly int8, autoDelete bool, nowSteps uint16) {
		in := decodeBackups(data)
		p := retention.Policy{
			MaxBackups: int(maxB), KeepDaily: int(daily), KeepWeekly: int(weekly), KeepMonthly: int(monthly),
			AutoDelete: autoDelete,
		}
		now := time.Date(2023, 12, 25, 0, 0, 0, 0, time.UTC).Add(time.Duration(nowSteps) * 37 * time.Minute)
		keep, drop := retention.Apply(in, p, now)
		checkInvariants(t, in, p, now, keep, drop)

		// Same decisions whatever the input order.
		rev := slices.Clone(in)
		slices.Reverse(rev)
		keep2, drop2 := retention.Apply(rev, p, now)
		if !reflect.DeepEqual(keep, keep2) || !reflect.DeepEqual(drop, drop2) {
			t.Fatalf("result depends on input order")
		}
	})
}
