package health

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/mysql"
	"github.com/dataguardian/dataguardian/drivers/postgres"
	"github.com/dataguardian/dataguardian/drivers/sqlite"
	"github.com/dataguardian/dataguardian/engine/internal/storetest"
	"github.com/dataguardian/dataguardian/engine/secrets"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/internal/testsvc"
	"github.com/dataguardian/dataguardian/notify"
	"github.com/dataguardian/dataguardian/storage"
	"github.com/dataguardian/dataguardian/storage/local"
)

// fixture is a Service on a fresh metadata store with the built-in
// database drivers, local storage, passwords sealed as the engine seals
// them, and the notifications and status changes it sent.
type fixture struct {
	s      *Service
	st     *store.Store
	sealer *secrets.Sealer

	mu      sync.Mutex
	notes   []notify.Notification
	changes []StatusChange
}

func newFixture(t *testing.T, url string, opts Options) *fixture {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := secrets.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	reg := &drivers.Registry{}
	reg.Register(postgres.New())
	reg.Register(mysql.New())
	reg.Register(mysql.NewMariaDB())
	reg.Register(sqlite.New())
	f := &fixture{st: storetest.Open(t, url), sealer: sealer}
	f.s = New(f.st, opts, Deps{Drivers: reg, Source: f.source,
		OpenStorage: func(_ context.Context, loc *store.StorageLocation) (storage.Storage, error) {
			return local.New(loc.Config["path"])
		},
		Notify: func(_ context.Context, n notify.Notification) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.notes = append(f.notes, n)
		},
		Publish: func(c StatusChange) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.changes = append(f.changes, c)
		},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return f
}

// source is the connection of ds, password unsealed.
func (f *fixture) source(ds *store.Datasource) (drivers.Source, error) {
	src := drivers.Source{Type: ds.Type, Host: ds.Host, Port: ds.Port, Database: ds.Database,
		Username: ds.Username, Path: ds.Path, Options: ds.Options}
	if len(ds.PasswordEncrypted) > 0 {
		pw, err := f.sealer.Open(ds.PasswordEncrypted)
		if err != nil {
			return drivers.Source{}, fmt.Errorf("datasource %s password: %w", ds.Name, err)
		}
		src.Password = string(pw)
	}
	return src, nil
}

// createDS stores ds, enabled, with password sealed.
func (f *fixture) createDS(t *testing.T, ds *store.Datasource, password string) *store.Datasource {
	t.Helper()
	if password != "" {
		sealed, err := f.sealer.Seal([]byte(password))
		mustNoErr(t, "seal", err)
		ds.PasswordEncrypted = sealed
	}
	ds.Enabled = true
	mustNoErr(t, "create datasource "+ds.Name, f.st.CreateDatasource(t.Context(), ds))
	return ds
}

func mustNoErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// makeSQLite creates a SQLite database of rows rows.
func makeSQLite(t *testing.T, path string, rows int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	mustNoErr(t, "open sqlite", err)
	defer db.Close()
	_, err = db.Exec(`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)`)
	mustNoErr(t, "create table", err)
	for i := range rows {
		_, err := db.Exec(`INSERT INTO items (name) VALUES (?)`, fmt.Sprintf("item %d", i))
		mustNoErr(t, "insert", err)
	}
}

func TestOptions(t *testing.T) {
	d := Options{}.WithDefaults()
	want := Options{Interval: 5 * time.Minute, Timeout: 5 * time.Second, Concurrency: 32,
		SlowThreshold: time.Second, FailuresForCritical: 3, Retention: 7 * 24 * time.Hour}
	if d != want {
		t.Errorf("WithDefaults() = %+v, want %+v", d, want)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("Validate(defaults) = %v", err)
	}
	for _, bad := range []struct {
		o     Options
		field string
	}{
		{Options{Interval: -1}, "Interval"},
		{Options{Timeout: -1}, "Timeout"},
		{Options{Concurrency: -1}, "Concurrency"},
		{Options{SlowThreshold: -1}, "SlowThreshold"},
		{Options{FailuresForCritical: -2}, "FailuresForCritical"},
	} {
		err := bad.o.WithDefaults().Validate()
		if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), bad.field) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalid naming %s", bad.o, err, bad.field)
		}
	}
	if err := (Options{Retention: -1}).WithDefaults().Validate(); err != nil {
		t.Errorf("negative Retention (keep forever) refused: %v", err)
	}
	if err := NewWorker(nil, Options{Timeout: -1}).Run(t.Context()); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Run with bad options = %v, want ErrInvalid", err)
	}
}

func TestNextHealth(t *testing.T) {
	const (
		n           = 3
		unknown     = store.DatasourceUnknown
		healthy     = store.DatasourceHealthy
		warning     = store.DatasourceWarning
		critical    = store.DatasourceCritical
		ok          = store.HealthOK
		timeout     = store.HealthTimeout
		unreachable = store.HealthUnreachable
	)
	for _, c := range []struct {
		prev     store.DatasourceStatus
		failures int
		st       store.HealthStatus
		slow     bool
		want     transition
	}{
		{unknown, 0, ok, false, transition{prev: unknown, next: healthy}},
		{unknown, 0, ok, true, transition{prev: unknown, next: warning}},
		{healthy, 0, timeout, false, transition{prev: healthy, next: warning, failures: 1}},
		{warning, 1, unreachable, false, transition{prev: warning, next: warning, failures: 2}},
		{warning, 2, store.HealthAuthFailed, false, transition{prev: warning, next: critical, failures: 3, lost: true}},
		{critical, 3, store.HealthError, false, transition{prev: critical, next: critical, failures: 4}},
		{critical, 4, ok, false, transition{prev: critical, next: healthy, restored: true}},
		{critical, 4, ok, true, transition{prev: critical, next: warning, restored: true}},
		{warning, 2, ok, false, transition{prev: warning, next: healthy}},
		// A threshold raised while critical does not send connection_lost again.
		{critical, 4, timeout, false, transition{prev: critical, next: critical, failures: 5}},
		// One check that fails a never-checked datasource with n = 1.
	} {
		if got := nextHealth(c.prev, c.failures, c.st, c.slow, n); got != c.want {
			t.Errorf("nextHealth(%s, %d, %s, slow=%v) = %+v, want %+v", c.prev, c.failures, c.st, c.slow, got, c.want)
		}
	}
	if got := nextHealth(unknown, 0, timeout, false, 1); got.next != critical || !got.lost {
		t.Errorf("n=1: first failure = %+v, want critical and lost", got)
	}
}

// TestStatuses checks the outcome of each failure kind against real
// servers, and that the password never reaches a stored message.
func TestStatuses(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, storetest.SQLiteURL(t), Options{})
	const secret = "s3cr3t-Pässw0rd"
	o := Options{Timeout: 500 * time.Millisecond}.WithDefaults()

	type tc struct {
		name    string
		ds      func(t *testing.T) *store.Datasource
		want    store.HealthStatus
		maxTook time.Duration
	}
	cases := []tc{
		{"postgres ok", func(t *testing.T) *store.Datasource {
			src, err := drivers.ParseDSN("postgres", testsvc.PostgresDSN(t))
			mustNoErr(t, "parse dsn", err)
			return &store.Datasource{Type: "postgres", Host: src.Host, Port: src.Port, Database: src.Database, Username: src.Username}
		}, store.HealthOK, 0},
		{"mariadb ok", func(t *testing.T) *store.Datasource {
			cfg := testsvc.MySQLConfig(t)
			host, port, _ := strings.Cut(cfg.Addr, ":")
			p, _ := strconv.Atoi(port)
			return &store.Datasource{Type: "mariadb", Host: host, Port: p, Username: cfg.User, Database: "mysql"}
		}, store.HealthOK, 0},
		{"mariadb wrong user", func(t *testing.T) *store.Datasource {
			cfg := testsvc.MySQLConfig(t)
			host, port, _ := strings.Cut(cfg.Addr, ":")
			p, _ := strconv.Atoi(port)
			return &store.Datasource{Type: "mariadb", Host: host, Port: p, Username: "dg_no_such_user", Database: "mysql"}
		}, store.HealthAuthFailed, 0},
		{"postgres closed port", func(t *testing.T) *store.Datasource {
			return &store.Datasource{Type: "postgres", Host: "127.0.0.1", Port: 1, Database: "app", Username: "app"}
		}, store.HealthUnreachable, 0},
		{"mysql closed port", func(t *testing.T) *store.Datasource {
			return &store.Datasource{Type: "mysql", Host: "127.0.0.1", Port: 1, Database: "app", Username: "app"}
		}, store.HealthUnreachable, 0},
		{"postgres silent server", func(t *testing.T) *store.Datasource {
			return &store.Datasource{Type: "postgres", Host: "127.0.0.1", Port: testsvc.SilentListener(t), Database: "app", Username: "app"}
		}, store.HealthTimeout, o.Timeout + 300*time.Millisecond},
		{"mariadb silent server", func(t *testing.T) *store.Datasource {
			return &store.Datasource{Type: "mariadb", Host: "127.0.0.1", Port: testsvc.SilentListener(t), Database: "app", Username: "app"}
		}, store.HealthTimeout, o.Timeout + 300*time.Millisecond},
		{"sqlite missing file", func(t *testing.T) *store.Datasource {
			return &store.Datasource{Type: "sqlite", Path: filepath.Join(t.TempDir(), "x.db")}
		}, store.HealthUnreachable, 0},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds := c.ds(t)
			ds.Name = fmt.Sprintf("ds%d", i)
			pw := secret
			if c.want == store.HealthOK {
				pw = "" // trust / no password on the test servers
			}
			f.createDS(t, ds, pw)
			start := time.Now()
			hc, err := f.s.checkDatasource(ctx, ds, o)
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if hc.Status != c.want {
				t.Fatalf("status %s (%q), want %s", hc.Status, hc.ErrorMessage, c.want)
			}
			if c.maxTook > 0 && took > c.maxTook {
				t.Errorf("check took %s, want at most %s", took, c.maxTook)
			}
			stored, err := f.st.ListHealthChecks(ctx, ds.ID, 1, 0)
			mustNoErr(t, "list", err)
			if len(stored) != 1 {
				t.Fatalf("stored %d checks, want 1", len(stored))
			}
			s := stored[0]
			if strings.Contains(s.ErrorMessage, secret) || strings.Contains(fmt.Sprint(s.Metadata), secret) {
				t.Errorf("stored check reveals the password: %q", s.ErrorMessage)
			}
			if c.want == store.HealthOK {
				if s.LatencyMS == nil || s.ErrorMessage != "" || s.Metadata["database_version"] == nil {
					t.Errorf("ok check stored as %+v", s)
				}
				return
			}
			if s.LatencyMS != nil || s.ErrorMessage == "" {
				t.Errorf("failed check stored with latency %v and error %q", s.LatencyMS, s.ErrorMessage)
			}
			if ds.Status != store.DatasourceWarning || ds.ConsecutiveFailures != 1 {
				t.Errorf("datasource %s with %d failures after one failure, want warning and 1", ds.Status, ds.ConsecutiveFailures)
			}
		})
	}

	t.Run("slow", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "slow.db")
		makeSQLite(t, path, 1)
		ds := f.createDS(t, &store.Datasource{Name: "slow", Type: "sqlite", Path: path}, "")
		slow := o
		slow.SlowThreshold = time.Nanosecond
		hc, err := f.s.checkDatasource(ctx, ds, slow)
		mustNoErr(t, "check", err)
		if hc.Status != store.HealthOK || ds.Status != store.DatasourceWarning || ds.ConsecutiveFailures != 0 || hc.Metadata["slow"] != true {
			t.Errorf("slow answer: check %s, datasource %s, %d failures, metadata %v; want ok, warning, 0, slow", hc.Status, ds.Status, ds.ConsecutiveFailures, hc.Metadata)
		}
	})
}

// TestCycleLock: on a shared PostgreSQL metadata database only one
// process runs a cycle at a time.
func TestCycleLock(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, testsvc.NewPostgresDatabase(t), Options{})
	path := filepath.Join(t.TempDir(), "app.db")
	makeSQLite(t, path, 1)
	f.createDS(t, &store.Datasource{Name: "app", Type: "sqlite", Path: path}, "")
	unlock, ok, err := f.s.lock(ctx)
	if err != nil || !ok {
		t.Fatalf("lock = %v, %v", ok, err)
	}
	rep, err := f.s.RunCycle(ctx, Options{})
	if err != nil || !rep.Skipped || rep.Checked != 0 {
		t.Errorf("cycle while another holds the lock: %+v, %v; want skipped", rep, err)
	}
	unlock()
	rep, err = f.s.RunCycle(ctx, Options{})
	if err != nil || rep.Skipped || rep.Checked != 1 {
		t.Errorf("cycle after unlock: %+v, %v; want one check", rep, err)
	}
}

// TestCallbacks: a check hands status changes to Publish and
// connection_lost / connection_restored to Notify, with what the engine
// turns into its event and notification; without them it still records.
func TestCallbacks(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, storetest.SQLiteURL(t), Options{FailuresForCritical: 2})
	path := filepath.Join(t.TempDir(), "app.db")
	makeSQLite(t, path, 1)
	ds := f.createDS(t, &store.Datasource{Name: "app", Type: "sqlite", Path: path}, "")
	check := func(want store.HealthStatus) *store.HealthCheck {
		t.Helper()
		hc, err := f.s.CheckDatasource(ctx, ds.ID)
		mustNoErr(t, "check", err)
		if hc.Status != want {
			t.Fatalf("check %s (%q), want %s", hc.Status, hc.ErrorMessage, want)
		}
		return hc
	}
	first := check(store.HealthOK)
	check(store.HealthOK)
	mustNoErr(t, "hide database", os.Rename(path, path+".away"))
	check(store.HealthUnreachable)
	lost := check(store.HealthUnreachable)
	mustNoErr(t, "restore database", os.Rename(path+".away", path))
	back := check(store.HealthOK)

	f.mu.Lock()
	defer f.mu.Unlock()
	want := []StatusChange{
		{DatasourceID: ds.ID, Name: "app", Previous: store.DatasourceUnknown, Status: store.DatasourceHealthy,
			HealthStatus: store.HealthOK, At: first.CheckedAt},
		{DatasourceID: ds.ID, Name: "app", Previous: store.DatasourceHealthy, Status: store.DatasourceWarning,
			HealthStatus: store.HealthUnreachable, ConsecutiveFailures: 1},
		{DatasourceID: ds.ID, Name: "app", Previous: store.DatasourceWarning, Status: store.DatasourceCritical,
			HealthStatus: store.HealthUnreachable, ConsecutiveFailures: 2, At: lost.CheckedAt},
		{DatasourceID: ds.ID, Name: "app", Previous: store.DatasourceCritical, Status: store.DatasourceHealthy,
			HealthStatus: store.HealthOK, At: back.CheckedAt},
	}
	if len(f.changes) != len(want) {
		t.Fatalf("status changes %+v, want %d", f.changes, len(want))
	}
	for i, c := range f.changes {
		if w := want[i]; w.At.IsZero() {
			w.At = c.At
			want[i] = w
		}
		if c != want[i] || c.At.IsZero() {
			t.Errorf("status change %d = %+v, want %+v", i, c, want[i])
		}
	}
	if len(f.notes) != 2 {
		t.Fatalf("notifications %+v, want connection_lost and connection_restored", f.notes)
	}
	if n := f.notes[0]; n.Type != notify.ConnectionLost || n.Severity != notify.Critical || n.EntityType != "datasource" ||
		n.EntityID != ds.ID || !n.CreatedAt.Equal(lost.CheckedAt) || !strings.Contains(n.Title, "app") ||
		n.Message != lost.ErrorMessage || n.Data["consecutive_failures"] != 2 || n.Data["health_status"] != "unreachable" {
		t.Errorf("connection_lost = %+v", n)
	}
	if n := f.notes[1]; n.Type != notify.ConnectionRestored || n.Severity != notify.Info || n.EntityID != ds.ID ||
		n.Data["datasource_name"] != "app" || n.Data["latency_ms"] != *back.LatencyMS {
		t.Errorf("connection_restored = %+v", n)
	}

	bare := New(f.st, Options{}, Deps{Drivers: f.s.d.Drivers, Source: f.source, OpenStorage: f.s.d.OpenStorage})
	if hc, err := bare.CheckDatasource(ctx, ds.ID); err != nil || hc.Status != store.HealthOK || hc.CheckedAt.Location() != time.UTC {
		t.Errorf("check without callbacks = %+v, %v; want ok at a UTC time", hc, err)
	}
	if _, err := bare.CheckDatasource(ctx, "no-such-id"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CheckDatasource(unknown) = %v, want ErrNotFound", err)
	}
}
