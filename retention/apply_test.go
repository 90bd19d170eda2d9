package retention_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/retention"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

var t0 = time.Date(2025, 2, 13, 6, 0, 0, 0, time.UTC)

// bk builds a backup of job "job" hoursAgo hours before t0.
func bk(id string, hoursAgo int, s retention.Status) retention.Backup {
	t := t0.Add(-time.Duration(hoursAgo) * time.Hour)
	return retention.Backup{ID: id, JobID: "job", CreatedAt: t, Status: s, Path: "job/" + t.Format("2006-01-02_150405")}
}

const (
	completed  = retention.StatusCompleted
	running    = retention.StatusRunning
	queued     = retention.StatusQueued
	failed     = retention.StatusFailed
	incomplete = retention.StatusIncomplete
	restoring  = retention.StatusRestoring
)

func pinned(b retention.Backup) retention.Backup {
	b.Pinned = true
	return b
}

func ids(ds []retention.Decision) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.Backup.ID)
	}
	return out
}

func TestApply(t *testing.T) {
	spec := retention.RecommendedPolicy()
	max1 := retention.Policy{MaxBackups: 1, AutoDelete: true}

	tests := []struct {
		name     string
		backups  []retention.Backup
		policy   retention.Policy
		now      time.Time
		wantDrop []string          // IDs, newest first
		reasons  map[string]string // ID → exact reason, for the IDs listed
	}{
		{
			name:    "empty input",
			policy:  spec,
			now:     t0,
			reasons: map[string]string{},
		},
		{
			name:     "three completed with max 3 keeps all",
			backups:  []retention.Backup{bk("a", 72, completed), bk("b", 48, completed), bk("c", 24, completed)},
			policy:   spec,
			now:      t0,
			wantDrop: nil,
		},
		{
			name: "spec rule: 4th completed backup drops the oldest",
			backups: []retention.Backup{
				bk("a", 72, completed), bk("b", 48, completed), bk("c", 24, completed), bk("d", 0, completed),
			},
			policy:   spec,
			now:      t0,
			wantDrop: []string{"a"},
			reasons: map[string]string{
				"a": "beyond max_backups=3",
				"d": "kept: newest completed, within max_backups=3",
				"c": "kept: within max_backups=3",
			},
		},
		{
			name: "running 4th backup takes no slot",
			backups: []retention.Backup{
				bk("a", 72, completed), bk("b", 48, completed), bk("c", 24, completed), bk("d", 0, running),
			},
			policy:   spec,
			now:      t0,
			wantDrop: nil,
			reasons:  map[string]string{"d": "kept: running"},
		},
		{
			name: "every non-completed status is kept, even beyond max",
			backups: []retention.Backup{
				bk("c1", 100, completed), bk("r", 90, running), bk("q", 80, queued), bk("f", 70, failed),
				bk("i", 60, incomplete), bk("s", 50, restoring), bk("u", 40, "cancelled"), bk("e", 30, ""),
				bk("c2", 1, completed),
			},
			policy:   max1,
			now:      t0,
			wantDrop: []string{"c1"},
			reasons: map[string]string{
				"r": "kept: running",
				"q": "kept: queued",
				"f": "kept: failed (no files to delete)",
				"i": "kept: incomplete (no manifest.json)",
				"s": "kept: restoring (a restore is reading it)",
				"u": `kept: status "cancelled" is not completed`,
				"e": `kept: status "" is not completed`,
			},
		},
		{
			name: "newest completed is kept although newer ones failed",
			backups: []retention.Backup{
				bk("old", 300, completed), bk("good", 200, completed), bk("f1", 100, failed), bk("f2", 0, failed),
			},
			policy:   max1,
			now:      t0,
			wantDrop: []string{"old"},
			reasons:  map[string]string{"good": "kept: newest completed, within max_backups=1"},
		},
		{
			name:     "auto_delete false drops nothing but says what it would drop",
			backups:  []retention.Backup{bk("a", 72, completed), bk("b", 48, completed), bk("c", 24, completed), bk("d", 0, completed)},
			policy:   retention.Policy{MaxBackups: 3},
			now:      t0,
			wantDrop: nil,
			reasons:  map[string]string{"a": "kept: auto_delete=false (would drop: beyond max_backups=3)"},
		},
		{
			name:     "no rule set means unlimited",
			backups:  []retention.Backup{bk("a", 72, completed), bk("b", 48, completed)},
			policy:   retention.Policy{AutoDelete: true},
			now:      t0,
			wantDrop: nil,
			reasons: map[string]string{
				"a": "kept: no retention rule set (unlimited)",
				"b": "kept: newest completed",
			},
		},
		{
			name:     "invalid policy drops nothing",
			backups:  []retention.Backup{bk("a", 72, completed), bk("b", 48, completed)},
			policy:   retention.Policy{MaxBackups: -1, KeepDaily: 1, AutoDelete: true},
			now:      t0,
			wantDrop: nil,
			reasons: map[string]string{
				"a": "kept: invalid policy: invalid retention policy: max_backups is -1; set it to 0 (unlimited) or a positive count",
			},
		},
		{
			name: "future-dated backups are kept and take no slot",
			backups: []retention.Backup{
				bk("future2", -48, completed), bk("future1", -24, completed),
				bk("a", 48, completed), bk("b", 24, completed), bk("c", 0, completed),
			},
			policy:   max1,
			now:      t0,
			wantDrop: []string{"b", "a"},
			reasons: map[string]string{
				"future2": "kept: newest completed, dated after now",
				"future1": "kept: dated after now",
				"c":       "kept: within max_backups=1",
			},
		},
		{
			name:     "all future-dated: nothing dropped",
			backups:  []retention.Backup{bk("a", -48, completed), bk("b", -24, completed)},
			policy:   max1,
			now:      t0,
			wantDrop: nil,
		},
		{
			name:     "zero now keeps everything",
			backups:  []retention.Backup{bk("a", 48, completed), bk("b", 24, completed)},
			policy:   max1,
			now:      time.Time{},
			wantDrop: nil,
		},
		{
			name:     "equal CreatedAt: the greater ID counts as newer",
			backups:  []retention.Backup{bk("x1", 0, completed), bk("x2", 0, completed), bk("x0", 0, completed)},
			policy:   max1,
			now:      t0,
			wantDrop: []string{"x1", "x0"},
			reasons:  map[string]string{"x2": "kept: newest completed, within max_backups=1"},
		},
		{
			name: "jobs are judged independently",
			backups: func() []retention.Backup {
				a1, a2, b1, b2 := bk("a1", 48, completed), bk("a2", 24, completed), bk("b1", 30, completed), bk("b2", 20, completed)
				b1.JobID, b2.JobID = "other", "other"
				return []retention.Backup{a1, a2, b1, b2}
			}(),
			policy:   max1,
			now:      t0,
			wantDrop: []string{"b1", "a1"},
		},
		{
			name: "daily buckets are UTC days and keep the newest of each",
			backups: func() []retention.Backup {
				brt := time.FixedZone("BRT", -3*3600)
				mk := func(id string, t time.Time) retention.Backup {
					return retention.Backup{ID: id, JobID: "job", CreatedAt: t, Status: completed}
				}
				return []retention.Backup{
					// 23:30 in Brazil on the 12th is 02:30 UTC on the 13th.
					mk("late-brt", time.Date(2025, 2, 12, 23, 30, 0, 0, brt)),
					mk("13-early", time.Date(2025, 2, 13, 1, 0, 0, 0, time.UTC)),
					mk("12-late", time.Date(2025, 2, 12, 22, 0, 0, 0, time.UTC)),
					mk("12-early", time.Date(2025, 2, 12, 1, 0, 0, 0, time.UTC)),
					mk("11", time.Date(2025, 2, 11, 1, 0, 0, 0, time.UTC)),
				}
			}(),
			policy:   retention.Policy{KeepDaily: 2, AutoDelete: true},
			now:      t0,
			wantDrop: []string{"13-early", "12-early", "11"},
			reasons: map[string]string{
				"late-brt": "kept: newest completed, daily 2025-02-13",
				"12-late":  "kept: daily 2025-02-12",
				"11":       "beyond keep_daily=2",
			},
		},
		{
			name: "days without backups take no daily slot",
			backups: []retention.Backup{
				bk("d0", 0, completed), bk("d10", 240, completed), bk("d20", 480, completed), bk("d30", 720, completed),
			},
			policy:   retention.Policy{KeepDaily: 3, AutoDelete: true},
			now:      t0,
			wantDrop: []string{"d30"},
		},
		{
			name: "weekly buckets are ISO weeks across the year boundary",
			backups: func() []retention.Backup {
				mk := func(id string, y int, m time.Month, d int) retention.Backup {
					return retention.Backup{ID: id, JobID: "job", CreatedAt: time.Date(y, m, d, 12, 0, 0, 0, time.UTC), Status: completed}
				}
				return []retention.Backup{
					mk("2025-01-01", 2025, 1, 1),   // 2025-W01
					mk("2024-12-30", 2024, 12, 30), // 2025-W01 as well
					mk("2024-12-29", 2024, 12, 29), // 2024-W52
					mk("2024-12-22", 2024, 12, 22), // 2024-W51
				}
			}(),
			policy:   retention.Policy{KeepWeekly: 2, AutoDelete: true},
			now:      t0,
			wantDrop: []string{"2024-12-30", "2024-12-22"},
			reasons: map[string]string{
				"2025-01-01": "kept: newest completed, weekly 2025-W01",
				"2024-12-29": "kept: weekly 2024-W52",
				"2024-12-22": "beyond keep_weekly=2",
			},
		},
		{
			name: "pinned backup is kept and takes no max_backups slot",
			backups: []retention.Backup{
				bk("a", 72, completed), pinned(bk("safety", 48, completed)), bk("c", 24, completed), bk("d", 0, completed),
			},
			policy:   max1,
			now:      t0,
			wantDrop: []string{"c", "a"},
			reasons: map[string]string{
				"safety": "kept: pinned",
				"d":      "kept: newest completed, within max_backups=1",
				"c":      "beyond max_backups=1",
			},
		},
		{
			name: "pinned newest is not the newest completed",
			backups: []retention.Backup{
				bk("a", 72, completed), bk("b", 48, completed), pinned(bk("safety", 0, completed)),
			},
			policy:   max1,
			now:      t0,
			wantDrop: []string{"a"},
			reasons: map[string]string{
				"safety": "kept: pinned",
				"b":      "kept: newest completed, within max_backups=1",
			},
		},
		{
			name: "pinned backup takes no GFS slot",
			backups: []retention.Backup{
				bk("today", 0, completed), pinned(bk("y-late", 20, completed)), bk("y-early", 23, completed), bk("2d", 48, completed),
			},
			policy:   retention.Policy{KeepDaily: 2, AutoDelete: true},
			now:      t0,
			wantDrop: []string{"2d"},
			reasons: map[string]string{
				"y-late":  "kept: pinned",
				"y-early": "kept: daily 2025-02-12",
			},
		},
		{
			name: "max and GFS are a union",
			backups: []retention.Backup{
				bk("now", 0, completed), bk("h1", 1, completed), bk("h2", 2, completed),
				bk("yesterday", 24, completed), bk("2d", 48, completed),
			},
			policy:   retention.Policy{MaxBackups: 2, KeepDaily: 2, AutoDelete: true},
			now:      t0,
			wantDrop: []string{"h2", "2d"},
			reasons: map[string]string{
				"now":       "kept: newest completed, within max_backups=2, daily 2025-02-13",
				"h1":        "kept: within max_backups=2",
				"yesterday": "kept: daily 2025-02-12",
				"2d":        "beyond max_backups=2, keep_daily=2",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keep, drop := retention.Apply(tc.backups, tc.policy, tc.now)
			checkInvariants(t, tc.backups, tc.policy, tc.now, keep, drop)
			if got, want := ids(drop), append([]string{}, tc.wantDrop...); !slices.Equal(got, want) {
				t.Errorf("dropped %q, want %q", got, want)
			}
			all := map[string]string{}
			for _, d := range slices.Concat(keep, drop) {
				all[d.Backup.ID] = d.Reason
			}
			for id, want := range tc.reasons {
				if got := all[id]; got != want {
					t.Errorf("reason for %s = %q, want %q", id, got, want)
				}
			}
		})
	}
}

func TestApplyDoesNotModifyInput(t *testing.T) {
	in := []retention.Backup{bk("b", 24, completed), bk("a", 48, completed), bk("c", 0, completed)}
	orig := slices.Clone(in)
	retention.Apply(in, retention.Policy{MaxBackups: 1, AutoDelete: true}, t0)
	if !reflect.DeepEqual(in, orig) {
		t.Fatalf("Apply reordered or modified its input: %v", in)
	}
}

// TestNewestCompletedNeverDropped tries every single-completed position in
// histories full of other statuses, with the strictest policies.
func TestNewestCompletedNeverDropped(t *testing.T) {
	policies := []retention.Policy{
		{MaxBackups: 1, AutoDelete: true},
		{KeepDaily: 1, AutoDelete: true},
		{KeepMonthly: 1, AutoDelete: true},
	}
	others := []retention.Status{running, queued, failed, incomplete, restoring, "", "weird"}
	for _, p := range policies {
		for pos := range 20 {
			var in []retention.Backup
			for i := range 20 {
				s := others[i%len(others)]
				if i >= pos {
					s = completed // completed from pos on: the newest completed is at pos
				}
				in = append(in, bk(fmt.Sprintf("e%02d", i), i*24, s))
			}
			keep, drop := retention.Apply(in, p, t0)
			checkInvariants(t, in, p, t0, keep, drop)
			if !slices.Contains(ids(keep), fmt.Sprintf("e%02d", pos)) {
				t.Errorf("policy %v, newest completed at %d: dropped", p, pos)
			}
		}
	}
}

// history generates about a year of backups of one job: a completed backup
// every two to four days at varying hours, manual extra runs on some days,
// a few failed runs, one restoring, one incomplete, one queued, one running,
// and one dated after now. It uses no randomness, so the golden files are
// stable across Go versions.
func history() ([]retention.Backup, time.Time) {
	start := time.Date(2024, 2, 20, 0, 0, 0, 0, time.UTC)
	var out []retention.Backup
	add := func(t time.Time, s retention.Status) {
		out = append(out, retention.Backup{
			ID:        fmt.Sprintf("e%03d", len(out)),
			JobID:     "nightly",
			CreatedAt: t,
			Status:    s,
			Path:      "nightly/" + t.Format("2006-01-02_150405"),
		})
	}
	day := 0
	for i := range 112 {
		day += 2 + i%3 // 2, 3 or 4 days apart
		t := start.AddDate(0, 0, day).Add(time.Duration(1+(i*7)%22)*time.Hour + time.Duration(i%60)*time.Minute)
		s := completed
		switch i {
		case 13, 47, 90, 108:
			s = failed
		case 60:
			s = restoring
		case 75:
			s = incomplete
		}
		add(t, s)
		if i%9 == 4 { // a manual run later the same day
			add(t.Add(30*time.Minute), completed)
		}
	}
	last := out[len(out)-1].CreatedAt
	add(last.Add(20*time.Hour), queued)
	add(last.Add(24*time.Hour), running)
	now := last.Add(24*time.Hour + 10*time.Minute)
	add(now.Add(72*time.Hour), completed) // clock skew
	return out, now
}

var goldenPolicies = []struct {
	name   string
	policy retention.Policy
}{
	{"spec_default", retention.RecommendedPolicy()},
	{"max_1", retention.Policy{MaxBackups: 1, AutoDelete: true}},
	{"unlimited", retention.Policy{AutoDelete: true}},
	{"auto_delete_false", retention.Policy{MaxBackups: 3}},
	{"daily_7", retention.Policy{KeepDaily: 7, AutoDelete: true}},
	{"weekly_4", retention.Policy{KeepWeekly: 4, AutoDelete: true}},
	{"monthly_12", retention.Policy{KeepMonthly: 12, AutoDelete: true}},
	{"gfs_7_4_12", retention.Policy{KeepDaily: 7, KeepWeekly: 4, KeepMonthly: 12, AutoDelete: true}},
	{"max_5_gfs_3_2_6", retention.Policy{MaxBackups: 5, KeepDaily: 3, KeepWeekly: 2, KeepMonthly: 6, AutoDelete: true}},
}

func formatResult(p retention.Policy, now time.Time, keep, drop []retention.Decision) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# policy: %v\n# now: %s\n# kept %d, dropped %d\n",
		p, now.Format(time.RFC3339), len(keep), len(drop))
	for _, list := range []struct {
		verb string
		ds   []retention.Decision
	}{{"keep", keep}, {"drop", drop}} {
		for _, d := range list.ds {
			fmt.Fprintf(&b, "%s %s %s %-10s %s\n", list.verb, d.Backup.ID,
				d.Backup.CreatedAt.Format(time.RFC3339), d.Backup.Status, d.Reason)
		}
	}
	return b.Bytes()
}

func TestApplyGolden(t *testing.T) {
	in, now := history()
	if n := len(in); n < 110 || n > 140 {
		t.Fatalf("history has %d backups, want about 120", n)
	}
	for _, gp := range goldenPolicies {
		t.Run(gp.name, func(t *testing.T) {
			keep, drop := retention.Apply(in, gp.policy, now)
			checkInvariants(t, in, gp.policy, now, keep, drop)
			got := formatResult(gp.policy, now, keep, drop)
			file := filepath.Join("testdata", gp.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("read golden file (run go test ./retention/ -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run with -update if the change is intended)\n%s",
					file, lineDiff(string(want), string(got)))
			}
		})
	}
}

// lineDiff shows the first lines where want and got differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 10; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, wl, gl)
			shown++
		}
	}
	return b.String()
}

func TestApplyOrderIndependent(t *testing.T) {
	in, now := history()
	// Add ties and a second job so the tie-breaking order is exercised too.
	for i := range 10 {
		b := in[i*7]
		b.ID += "-twin"
		in = append(in, b)
		b.JobID = "other"
		in = append(in, b)
	}
	for _, gp := range goldenPolicies {
		wantKeep, wantDrop := retention.Apply(in, gp.policy, now)
		for seed := range uint64(20) {
			shuffled := slices.Clone(in)
			r := rand.New(rand.NewPCG(seed, 42))
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			keep, drop := retention.Apply(shuffled, gp.policy, now)
			if !reflect.DeepEqual(keep, wantKeep) || !reflect.DeepEqual(drop, wantDrop) {
				t.Fatalf("%s: seed %d: result depends on input order", gp.name, seed)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		policy retention.Policy
		want   []string // substrings; none means valid
	}{
		{retention.Policy{}, nil},
		{retention.RecommendedPolicy(), nil},
		{retention.Policy{KeepDaily: 7, KeepWeekly: 4, KeepMonthly: 12}, nil},
		{retention.Policy{MaxBackups: -3}, []string{"max_backups is -3; set it to 0 (unlimited) or a positive count"}},
		{retention.Policy{KeepDaily: -1}, []string{"keep_daily is -1; set it to 0 (no daily tier)"}},
		{retention.Policy{KeepWeekly: -1}, []string{"keep_weekly is -1; set it to 0 (no weekly tier)"}},
		{retention.Policy{KeepMonthly: -1}, []string{"keep_monthly is -1; set it to 0 (no monthly tier)"}},
		{retention.Policy{MaxBackups: -1, KeepMonthly: -2}, []string{"max_backups is -1", "keep_monthly is -2"}},
	}
	for _, tc := range tests {
		err := tc.policy.Validate()
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%+v: unexpected error %v", tc.policy, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%+v: no error, want %q", tc.policy, tc.want)
			continue
		}
		if !errors.Is(err, retention.ErrInvalidPolicy) {
			t.Errorf("%+v: error %v does not match ErrInvalidPolicy", tc.policy, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q does not contain %q", tc.policy, err, w)
			}
		}
	}
}

func TestPolicyString(t *testing.T) {
	for _, tc := range []struct {
		p    retention.Policy
		want string
	}{
		{retention.Policy{}, "auto_delete=false"},
		{retention.RecommendedPolicy(), "max_backups=3 auto_delete=true"},
		{retention.Policy{KeepDaily: 7, KeepWeekly: 4, KeepMonthly: 12, AutoDelete: true}, "keep_daily=7 keep_weekly=4 keep_monthly=12 auto_delete=true"},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestPolicyJSON(t *testing.T) {
	var p retention.Policy
	if err := json.Unmarshal([]byte(`{ "max_backups": 3, "auto_delete": true }`), &p); err != nil {
		t.Fatal(err)
	}
	if p != retention.RecommendedPolicy() {
		t.Errorf("spec JSON decoded to %+v, want %+v", p, retention.RecommendedPolicy())
	}
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), `{"max_backups":3,"auto_delete":true}`; got != want {
		t.Errorf("Marshal = %s, want %s", got, want)
	}
}
