package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/internal/testsvc"
	"github.com/dataguardian/dataguardian/notify"
)

// recNotifier records what the engine hands to its notification channel.
type recNotifier struct {
	mu  sync.Mutex
	got []notify.Notification
}

func (*recNotifier) Name() string { return "recorder" }

func (r *recNotifier) Notify(_ context.Context, n notify.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, n)
	return nil
}

func (r *recNotifier) count(typ string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.got {
		if x.Type == typ {
			n++
		}
	}
	return n
}

// newHealthEngine opens an Engine on the metadata database url whose
// notifications go to the returned recorder.
func newHealthEngine(t testing.TB, url string) (*Engine, *recNotifier) {
	t.Helper()
	rec := &recNotifier{}
	e, err := newEngine(t.Context(), Config{DataDir: t.TempDir(), DatabaseURL: url, Logger: discardLogger, Notifier: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, rec
}

// silentListener is a server that accepts and never answers (see
// testsvc.SilentListener); it returns the port.
var silentListener = testsvc.SilentListener

func createDS(t testing.TB, e *Engine, ds *Datasource, password string) *Datasource {
	t.Helper()
	if err := e.CreateDatasource(context.Background(), ds, password); err != nil {
		t.Fatalf("create datasource %s: %v", ds.Name, err)
	}
	return ds
}

// TestHealthWiring: the engine validates Config.Health and NewHealthWorker
// reports invalid options (the options themselves are tested in package
// health).
func TestHealthWiring(t *testing.T) {
	if err := NewHealthWorker(nil, HealthOptions{Timeout: -1}).Run(t.Context()); !errors.Is(err, ErrInvalid) {
		t.Errorf("Run with bad options = %v, want ErrInvalid", err)
	}
	_, err := newEngine(t.Context(), Config{DataDir: t.TempDir(), DatabaseURL: sqliteTestURL(t), Logger: discardLogger,
		Health: HealthOptions{Concurrency: -1}})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "HealthOptions.Concurrency") {
		t.Errorf("New with bad Health = %v, want ErrInvalid naming HealthOptions.Concurrency", err)
	}
}

// TestHealthTransitions follows one SQLite datasource through a healthy
// check, four failures and a recovery, on SQLite and PostgreSQL metadata.
func TestHealthTransitions(t *testing.T) {
	forEachStoreURL(t, func(t *testing.T, url string) {
		testHealthTransitions(t, url)
	})
}

func testHealthTransitions(t *testing.T, url string) {
	ctx := t.Context()
	e, rec := newHealthEngine(t, url)
	path := filepath.Join(t.TempDir(), "app.db")
	makeSQLite(t, path, 10)
	ds := createDS(t, e, &Datasource{Name: "app", Type: "sqlite", Path: path}, "")
	other := createDS(t, e, &Datasource{Name: "other", Type: "sqlite", Path: path}, "")
	events, stop := e.Events().Subscribe(100)
	defer stop()

	lost := func() int {
		ns, err := e.store.ListNotifications(ctx, NotificationFilter{Type: notify.ConnectionLost})
		mustNoErr(t, "list notifications", err)
		return len(ns)
	}
	restored := func() int {
		ns, err := e.store.ListNotifications(ctx, NotificationFilter{Type: notify.ConnectionRestored})
		mustNoErr(t, "list notifications", err)
		return len(ns)
	}
	check := func(step string, wantCheck HealthStatus, wantDS DatasourceStatus, wantFailures, wantLost, wantRestored int) *HealthCheck {
		t.Helper()
		hc, err := e.CheckDatasource(ctx, ds.ID)
		if err != nil {
			t.Fatalf("%s: CheckDatasource: %v", step, err)
		}
		got, err := e.store.GetDatasource(ctx, ds.ID)
		mustNoErr(t, "get datasource", err)
		if hc.Status != wantCheck || got.Status != wantDS || got.ConsecutiveFailures != wantFailures {
			t.Errorf("%s: check %s, datasource %s with %d failures; want %s, %s, %d (error %q)",
				step, hc.Status, got.Status, got.ConsecutiveFailures, wantCheck, wantDS, wantFailures, hc.ErrorMessage)
		}
		if got.LastHealthCheckAt == nil || !got.LastHealthCheckAt.Equal(hc.CheckedAt) {
			t.Errorf("%s: last_health_check_at = %v, want %v", step, got.LastHealthCheckAt, hc.CheckedAt)
		}
		if l, r := lost(), restored(); l != wantLost || r != wantRestored {
			t.Errorf("%s: %d connection_lost and %d connection_restored notifications, want %d and %d", step, l, r, wantLost, wantRestored)
		}
		if l, r := rec.count(notify.ConnectionLost), rec.count(notify.ConnectionRestored); l != wantLost || r != wantRestored {
			t.Errorf("%s: channel got %d connection_lost and %d connection_restored, want %d and %d", step, l, r, wantLost, wantRestored)
		}
		return hc
	}

	hc := check("first check", HealthOK, DatasourceHealthy, 0, 0, 0)
	if hc.LatencyMS == nil || hc.ErrorMessage != "" || !strings.HasPrefix(fmt.Sprint(hc.Metadata["database_version"]), "SQLite ") {
		t.Errorf("ok check = latency %v, error %q, metadata %v; want latency, no error, database_version SQLite …", hc.LatencyMS, hc.ErrorMessage, hc.Metadata)
	}

	mustNoErr(t, "hide database", os.Rename(path, path+".away"))
	for i, want := range []DatasourceStatus{DatasourceWarning, DatasourceWarning, DatasourceCritical, DatasourceCritical} {
		wantLost := 0
		if i >= 2 {
			wantLost = 1
		}
		hc := check(fmt.Sprintf("failure %d", i+1), HealthUnreachable, want, i+1, wantLost, 0)
		if hc.LatencyMS != nil || !strings.Contains(hc.ErrorMessage, "does not exist") {
			t.Errorf("failure %d: latency %v, error %q; want nil latency and the reason", i+1, hc.LatencyMS, hc.ErrorMessage)
		}
	}
	mustNoErr(t, "restore database", os.Rename(path+".away", path))
	check("recovery", HealthOK, DatasourceHealthy, 0, 1, 1)
	check("healthy again", HealthOK, DatasourceHealthy, 0, 1, 1)

	// The notification names the datasource and why.
	ns, err := e.store.ListNotifications(ctx, NotificationFilter{Type: notify.ConnectionLost})
	mustNoErr(t, "list", err)
	if n := ns[0]; n.Severity != SeverityCritical || n.EntityType != "datasource" || n.EntityID != ds.ID ||
		!strings.Contains(n.Title, "app") || !strings.Contains(n.Message, "does not exist") {
		t.Errorf("connection_lost = %+v", n)
	}
	ns, err = e.store.ListNotifications(ctx, NotificationFilter{Type: notify.ConnectionRestored})
	mustNoErr(t, "list", err)
	if n := ns[0]; n.Severity != SeverityInfo || n.EntityID != ds.ID {
		t.Errorf("connection_restored = %+v", n)
	}

	// Every check is a row, newest first.
	rows, err := e.store.ListHealthChecks(ctx, ds.ID, -1, 0)
	mustNoErr(t, "list health checks", err)
	var statuses []HealthStatus
	for _, r := range rows {
		statuses = append(statuses, r.Status)
	}
	wantRows := []HealthStatus{HealthOK, HealthOK, HealthUnreachable, HealthUnreachable, HealthUnreachable, HealthUnreachable, HealthOK}
	if !slices.Equal(statuses, wantRows) {
		t.Errorf("health checks = %v, want %v", statuses, wantRows)
	}
	if r := rows[0]; r.LatencyMS == nil || r.Metadata["database_version"] == nil || r.DatasourceID != ds.ID {
		t.Errorf("stored ok check = %+v", r)
	}
	if r := rows[2]; r.LatencyMS != nil || r.ErrorMessage == "" {
		t.Errorf("stored failed check = %+v", r)
	}
	if hc, err := e.store.ListHealthChecks(ctx, other.ID, -1, 0); err != nil || len(hc) != 0 {
		t.Errorf("other datasource has checks %v, %v", hc, err)
	}

	// An event per status change, none for a check that changes nothing.
	var got []string
	for len(events) > 0 {
		ev := <-events
		if ev.Type == EventDatasourceStatus && ev.EntityID == ds.ID {
			got = append(got, fmt.Sprintf("%s>%s", ev.Data["previous_status"], ev.Status))
		}
	}
	wantEv := []string{"unknown>healthy", "healthy>warning", "warning>critical", "critical>healthy"}
	if !slices.Equal(got, wantEv) {
		t.Errorf("events = %v, want %v", got, wantEv)
	}

	if _, err := e.CheckDatasource(ctx, "no-such-id"); !errors.Is(err, ErrNotFound) {
		t.Errorf("CheckDatasource(unknown) = %v, want ErrNotFound", err)
	}
}

// TestHealthCycle checks 300 datasources, most of them down, in one cycle
// within 2.5 × the per-check timeout, and prunes old checks.
func TestHealthCycle(t *testing.T) {
	ctx := t.Context()
	e, _ := newHealthEngine(t, sqliteTestURL(t))
	dir := t.TempDir()
	var files []string
	for i := range 10 {
		p := filepath.Join(dir, fmt.Sprintf("live%d.db", i))
		makeSQLite(t, p, 1)
		files = append(files, p)
	}
	var silent []int
	for range 5 {
		silent = append(silent, silentListener(t))
	}
	var first *Datasource
	for i := range 300 {
		ds := &Datasource{Name: fmt.Sprintf("ds%03d", i)}
		switch {
		case i < 100:
			ds.Type, ds.Path = "sqlite", files[i%len(files)]
		case i < 200:
			ds.Type, ds.Path = "sqlite", filepath.Join(dir, fmt.Sprintf("missing%d.db", i))
		case i < 295:
			ds.Type, ds.Host, ds.Port, ds.Database, ds.Username = "postgres", fmt.Sprintf("127.0.%d.%d", i%7, 2+i%200), 1, "app", "app"
			if i%2 == 0 {
				ds.Type = "mysql"
			}
		default:
			ds.Type, ds.Host, ds.Port, ds.Database, ds.Username = "postgres", "127.0.0.1", silent[i-295], "app", "app"
		}
		createDS(t, e, ds, "pw")
		if first == nil {
			first = ds
		}
	}
	off := createDS(t, e, &Datasource{Name: "zz-disabled", Type: "sqlite", Path: files[0]}, "")
	off.Enabled = false
	mustNoErr(t, "disable", e.store.UpdateDatasource(ctx, off, "enabled"))
	loc := &StorageLocation{Name: "disk", Type: "local", Config: map[string]string{"path": t.TempDir()}}
	mustNoErr(t, "create storage", e.CreateStorageLocation(ctx, loc))
	old := &HealthCheck{DatasourceID: first.ID, CheckedAt: e.now().Add(-8 * 24 * time.Hour), Status: HealthOK}
	recent := &HealthCheck{DatasourceID: first.ID, CheckedAt: e.now().Add(-6 * 24 * time.Hour), Status: HealthOK}
	mustNoErr(t, "insert old check", e.store.InsertHealthCheck(ctx, old))
	mustNoErr(t, "insert recent check", e.store.InsertHealthCheck(ctx, recent))

	o := HealthOptions{Timeout: time.Second}
	rep, err := e.RunHealthCycle(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cycle: %s, checks %v, statuses %v", rep.Duration, rep.Checks, rep.Statuses)
	if rep.Duration > 2500*time.Millisecond {
		t.Errorf("cycle took %s, want at most 2.5s (2.5 × Timeout)", rep.Duration)
	}
	wantChecks := map[HealthStatus]int{HealthOK: 100, HealthUnreachable: 195, HealthTimeout: 5}
	if rep.Datasources != 300 || rep.Checked != 300 || rep.Errors != 0 || !mapsEqual(rep.Checks, wantChecks) {
		t.Errorf("report: %d datasources, %d checked, %d errors, checks %v; want 300, 300, 0, %v",
			rep.Datasources, rep.Checked, rep.Errors, rep.Checks, wantChecks)
	}
	if want := map[DatasourceStatus]int{DatasourceHealthy: 100, DatasourceWarning: 200}; !mapsEqual(rep.Statuses, want) {
		t.Errorf("statuses %v, want %v", rep.Statuses, want)
	}
	if rep.Pruned != 1 {
		t.Errorf("pruned %d, want 1 (the 8-day-old check)", rep.Pruned)
	}
	rows, err := e.store.ListHealthChecks(ctx, first.ID, -1, 0)
	mustNoErr(t, "list", err)
	if len(rows) != 2 || rows[1].ID != recent.ID {
		t.Errorf("after pruning %s has %d checks, want the new one and the 6-day-old one", first.Name, len(rows))
	}
	if got, _ := e.store.ListHealthChecks(ctx, off.ID, -1, 0); len(got) != 0 {
		t.Errorf("disabled datasource was checked")
	}
	if len(rep.Storages) != 1 || rep.Storages[0].Status != HealthOK {
		t.Errorf("storages = %+v", rep.Storages)
	}
	// Datasources down for a second cycle stay warning; nothing is critical yet.
	rep, err = e.RunHealthCycle(ctx, o)
	mustNoErr(t, "second cycle", err)
	if rep.Statuses[DatasourceWarning] != 200 || rep.Statuses[DatasourceCritical] != 0 {
		t.Errorf("second cycle statuses %v", rep.Statuses)
	}
}

func mapsEqual[K comparable](a, b map[K]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

func TestHealthWorker(t *testing.T) {
	e, _ := newHealthEngine(t, sqliteTestURL(t))
	path := filepath.Join(t.TempDir(), "app.db")
	makeSQLite(t, path, 1)
	ds := createDS(t, e, &Datasource{Name: "app", Type: "sqlite", Path: path}, "")

	t.Run("cycles", func(t *testing.T) {
		w := NewHealthWorker(e, HealthOptions{Interval: 50 * time.Millisecond})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, n := w.Last(); n >= 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("fewer than 3 cycles in 5s at a 50ms interval")
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil after cancel", err)
			}
		case <-time.After(time.Second):
			t.Fatal("Run did not return within 1s of cancel")
		}
		if rep, _ := w.Last(); rep.Checked != 1 || rep.Checks[HealthOK] != 1 {
			t.Errorf("last report %+v", rep)
		}
	})

	t.Run("cancel during a hanging check", func(t *testing.T) {
		ds.Enabled = false
		mustNoErr(t, "disable", e.store.UpdateDatasource(t.Context(), ds, "enabled"))
		hang := createDS(t, e, &Datasource{Name: "hang", Type: "postgres", Host: "127.0.0.1", Port: silentListener(t), Database: "x", Username: "x"}, "")
		const timeout = 3 * time.Second
		w := NewHealthWorker(e, HealthOptions{Interval: time.Hour, Timeout: timeout})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		time.Sleep(300 * time.Millisecond) // the check is waiting for the silent server
		if healthGoroutines() == 0 {
			t.Error("no health goroutine found while a check hangs: healthGoroutines misses them")
		}
		start := time.Now()
		cancel()
		select {
		case <-done:
		case <-time.After(time.Second):
			t.Fatal("Run did not return within 1s of cancel")
		}
		t.Logf("Run returned %s after cancel", time.Since(start))
		if got, _ := e.store.ListHealthChecks(t.Context(), hang.ID, -1, 0); len(got) != 0 {
			t.Errorf("a check cut short by shutdown was recorded: %+v", got[0])
		}
		if _, n := w.Last(); n != 0 {
			t.Errorf("%d cycles reported complete, want 0", n)
		}
		// A driver that does not stop on cancellation (pgdriver's startup
		// waits for its deadline) keeps its goroutine until the check's
		// own deadline, never longer.
		var left int
		for waited := time.Duration(0); waited < timeout+time.Second; waited += 10 * time.Millisecond {
			if left = healthGoroutines(); left == 0 {
				t.Logf("no health goroutine left %s after cancel", time.Since(start))
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if left > 0 {
			t.Errorf("%d health goroutines left %s after cancel", left, timeout+time.Second)
		}
	})
}

// healthGoroutines counts the goroutines running the health code (package
// health, or the engine's) or a pond pool (not the test's fixtures).
func healthGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "dataguardian/engine/health.") || strings.Contains(g, "engine.(*Engine).") ||
			strings.Contains(g, "alitto/pond") {
			n++
		}
	}
	return n
}

func TestCheckStorages(t *testing.T) {
	ctx := t.Context()
	e, _ := newHealthEngine(t, sqliteTestURL(t))
	good, bad := t.TempDir(), filepath.Join(t.TempDir(), "gone")
	for name, path := range map[string]string{"good": good, "bad": bad} {
		mustNoErr(t, "create storage", e.CreateStorageLocation(ctx, &StorageLocation{Name: name, Type: "local", Config: map[string]string{"path": path}}))
	}
	off := &StorageLocation{Name: "off", Type: "local", Config: map[string]string{"path": t.TempDir()}}
	mustNoErr(t, "create storage", e.CreateStorageLocation(ctx, off))
	off.Enabled = false
	mustNoErr(t, "disable", e.store.UpdateStorageLocation(ctx, off, "enabled"))
	// The bad location's directory is replaced by a file.
	mustNoErr(t, "remove", os.RemoveAll(bad))
	mustNoErr(t, "block", os.WriteFile(bad, []byte("not a directory"), 0o600))

	got, err := e.CheckStorages(ctx)
	mustNoErr(t, "CheckStorages", err)
	if len(got) != 2 {
		t.Fatalf("checked %d locations, want 2 (the enabled ones): %+v", len(got), got)
	}
	for _, sh := range got {
		switch sh.Name {
		case "good":
			if sh.Status != HealthOK || sh.FreeBytes == nil || *sh.FreeBytes == 0 || sh.ErrorMessage != "" || sh.CheckedAt.IsZero() {
				t.Errorf("good storage: %+v", sh)
			}
		case "bad":
			if sh.Status != HealthUnreachable || sh.ErrorMessage == "" || sh.FreeBytes != nil {
				t.Errorf("bad storage: %+v", sh)
			}
		default:
			t.Errorf("unexpected location %s", sh.Name)
		}
	}
	left, err := os.ReadDir(filepath.Join(good, "_system"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, f := range left {
		t.Errorf("probe left behind: _system/%s", f.Name())
	}
}
