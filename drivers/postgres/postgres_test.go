package postgres_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/drivertest"
	"github.com/dataguardian/dataguardian/drivers/internal/proc"
	"github.com/dataguardian/dataguardian/drivers/postgres"
	"github.com/dataguardian/dataguardian/internal/testsvc"
	"github.com/google/uuid"
	"github.com/uptrace/bun/driver/pgdriver"
)

// schema is the rich test schema: two schemas, a sequence, tables with
// UTF-8 text, bytea, numeric, jsonb and timestamptz, indexes, a view, a
// plpgsql function and the trigger that calls it.
var schema = []string{
	`CREATE SCHEMA billing`,
	`CREATE SEQUENCE billing.invoice_no START 1000`,
	`CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE,
	   created timestamptz NOT NULL, balance numeric(14,4), prefs jsonb)`,
	`CREATE TABLE audit (id bigserial PRIMARY KEY, what text NOT NULL)`,
	`CREATE FUNCTION audit_customer() RETURNS trigger LANGUAGE plpgsql AS $$
	 BEGIN INSERT INTO audit (what) VALUES ('customer ' || NEW.name); RETURN NEW; END $$`,
	`CREATE TRIGGER customers_audit AFTER INSERT ON customers FOR EACH ROW EXECUTE FUNCTION audit_customer()`,
	`CREATE TABLE events (id bigint PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id),
	   kind text, payload bytea, at timestamptz, amount numeric)`,
	`CREATE INDEX events_customer_at ON events (customer_id, at)`,
	`CREATE INDEX customers_prefs ON customers USING gin (prefs)`,
	`CREATE TABLE billing."Line Items" (invoice bigint NOT NULL DEFAULT nextval('billing.invoice_no'),
	   line int NOT NULL, descr text, PRIMARY KEY (invoice, line))`,
	`CREATE TABLE empty_table (id int)`,
	`CREATE VIEW customer_totals AS SELECT c.id, c.name, count(e.id) AS events, coalesce(sum(e.amount), 0) AS total
	   FROM customers c LEFT JOIN events e ON e.customer_id = c.id GROUP BY c.id, c.name`,
	`INSERT INTO customers (name, email, created, balance, prefs)
	   SELECT (ARRAY['Ana','João','Zoë','李雷','Ωmega','Émile 😀'])[1 + i % 6] || ' ' || i, 'u' || i || '@example.com',
	     timestamptz '2024-01-01 00:00:00+00' + i * interval '1 hour', (i * 12.3456)::numeric(14,4),
	     jsonb_build_object('lang', (ARRAY['pt','en','zh'])[1 + i % 3], 'n', i, 'tags', jsonb_build_array('a', 'ç', i))
	   FROM generate_series(1, 200) i`,
	`INSERT INTO events SELECT i, 1 + i % 200, (ARRAY['login','compra','reembolso ✓'])[1 + i % 3],
	   decode(md5(i::text), 'hex') || '\x00ff0a'::bytea,
	   timestamptz '2024-06-01 12:00:00+02' + i * interval '17 seconds', (i % 1000) / 7.0
	   FROM generate_series(1, 12000) i`,
	`INSERT INTO billing."Line Items" (line, descr) SELECT i, 'linha ' || i || ' — R$ ' || i * 3 FROM generate_series(1, 50) i`,
}

// wantRows is what describe must find in a fresh source.
var wantRows = map[string]int64{
	"public.customers": 200, "public.audit": 200, "public.events": 12000,
	"public.empty_table": 0, "billing.Line Items": 50,
}

// mutation changes rows of a populated database (not its tables).
var mutation = []string{
	`UPDATE customers SET name = name || ' (editado)' WHERE id % 7 = 0`,
	`DELETE FROM events WHERE id % 11 = 0`,
	`INSERT INTO customers (name, email, created) VALUES ('Novo 🚀', 'novo@example.com', now())`,
	`INSERT INTO billing."Line Items" (line, descr) VALUES (999, 'extra')`,
}

// dsnOf is the test DSN of src (no password: the test server trusts).
func dsnOf(src drivers.Source) string {
	u := url.URL{Scheme: "postgres", User: url.User(src.Username), Host: net.JoinHostPort(src.Host, strconv.Itoa(src.Port)),
		Path: "/" + src.Database, RawQuery: "sslmode=disable"}
	return u.String()
}

// openDB opens a pool on src, closed with t.
func openDB(t testing.TB, src drivers.Source) *sql.DB {
	t.Helper()
	db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsnOf(src))))
	t.Cleanup(func() { db.Close() })
	return db
}

func execAll(t testing.TB, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// parse turns a test DSN into a Source.
func parse(t testing.TB, dsn string) drivers.Source {
	t.Helper()
	src, err := drivers.ParseDSN("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// newEmpty creates an empty database, dropped with t.
func newEmpty(t *testing.T) drivers.Source {
	t.Helper()
	return parse(t, testsvc.NewPostgresDatabase(t))
}

// newSource creates a database with the rich schema.
func newSource(t *testing.T) drivers.Source {
	t.Helper()
	src := newEmpty(t)
	execAll(t, openDB(t, src), schema...)
	return src
}

// admin opens the test server's maintenance database.
func admin(t testing.TB) *sql.DB {
	t.Helper()
	return openDB(t, parse(t, testsvc.PostgresDSN(t)))
}

// newTarget names a database that does not exist yet and drops it with t.
func newTarget(t *testing.T) drivers.Source {
	t.Helper()
	src := parse(t, testsvc.PostgresDSN(t))
	src.Database = "dgtest_t" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	dropWithT(t, src.Database)
	return src
}

// dropWithT drops database name when t ends.
func dropWithT(t *testing.T, name string) {
	t.Helper()
	t.Cleanup(func() { dropDB(t, name) })
}

// dropDB drops database name if it exists.
func dropDB(t *testing.T, name string) {
	t.Helper()
	if _, err := admin(t).ExecContext(context.Background(), `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
		t.Errorf("drop %s: %v", name, err)
	}
}

func dbExists(t *testing.T, name string) bool {
	t.Helper()
	var n int
	if err := admin(t).QueryRowContext(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = '"+name+"'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// fingerprint describes the data and objects of src: per table its row
// count and an md5 over its rows in a fixed order, the view's result, the
// function, the trigger, the indexes and the sequence's state.
func fingerprint(t testing.TB, src drivers.Source) map[string]string {
	t.Helper()
	db := openDB(t, src)
	defer db.Close()
	ctx := context.Background()
	out := map[string]string{}
	q := func(key, query string) {
		t.Helper()
		var s string
		if err := db.QueryRowContext(ctx, query).Scan(&s); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		out[key] = s
	}
	rows, err := db.QueryContext(ctx, `SELECT format('%I.%I', schemaname, tablename), schemaname || '.' || tablename
	  FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var tables [][2]string
	for rows.Next() {
		var quoted, name string
		if err := rows.Scan(&quoted, &name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, [2]string{quoted, name})
	}
	rows.Close()
	for _, tb := range tables {
		q("table "+tb[1], `SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '-') FROM `+tb[0]+` t`)
	}
	if _, ok := out["table public.customers"]; ok {
		q("view customer_totals", `SELECT md5(string_agg(v::text, '|' ORDER BY v.id)) FROM customer_totals v`)
		q("function audit_customer", `SELECT md5(prosrc) FROM pg_proc WHERE proname = 'audit_customer'`)
		q("trigger customers_audit", `SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 'customers_audit'`)
		q("sequence billing.invoice_no", `SELECT last_value || ' ' || is_called FROM billing.invoice_no`)
		q("indexes", `SELECT string_agg(indexdef, E'\n' ORDER BY indexname) FROM pg_indexes WHERE schemaname IN ('public', 'billing')`)
	}
	return out
}

func equal(t testing.TB, a, b drivers.Source) {
	t.Helper()
	fa, fb := fingerprint(t, a), fingerprint(t, b)
	if maps.Equal(fa, fb) {
		return
	}
	keys := slices.Sorted(maps.Keys(fa))
	for k := range fb {
		if _, ok := fa[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if fa[k] != fb[k] {
			t.Errorf("%s differs:\n  %s: %q\n  %s: %q", k, a.Database, fa[k], b.Database, fb[k])
		}
	}
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		Driver:    postgres.New(),
		NewSource: newSource,
		Mutate: func(t *testing.T, src drivers.Source) {
			execAll(t, openDB(t, src), mutation...)
		},
		NewTarget: newTarget,
		Equal:     equal,
	})
}

func TestDumpMetadata(t *testing.T) {
	src := newSource(t)
	archive, md := drivertest.Dump(t, postgres.New(), src)
	if !bytes.HasPrefix(archive, []byte("PGDMP")) {
		t.Fatalf("archive starts %q, want a custom-format header PGDMP", archive[:min(len(archive), 8)])
	}
	if !maps.Equal(md.TableRows, wantRows) {
		t.Errorf("TableRows = %v, want %v", md.TableRows, wantRows)
	}
	if md.TablesBackedUp != len(wantRows) || md.RowsApproximate != 12450 {
		t.Errorf("TablesBackedUp %d, RowsApproximate %d; want %d, 12450", md.TablesBackedUp, md.RowsApproximate, len(wantRows))
	}
	if !strings.HasPrefix(md.DatabaseVersion, "PostgreSQL 1") || strings.Contains(md.DatabaseVersion, "(") {
		t.Errorf("DatabaseVersion = %q, want like \"PostgreSQL 15.4\"", md.DatabaseVersion)
	}
	t.Logf("archive %d bytes, metadata %+v", len(archive), md)
}

// The row counts describe the archive's snapshot even while other sessions
// keep writing: a verification of the archive against them passes.
func TestDumpConsistentUnderWrites(t *testing.T) {
	src := newSource(t)
	db := openDB(t, src)
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var inserted atomic.Int64
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO audit (what) VALUES ('concurrent %d'); DELETE FROM events WHERE id = %d`, i, i+1)); err == nil {
				inserted.Add(1)
			}
		}
	})
	time.Sleep(20 * time.Millisecond)
	d := postgres.New()
	archive, md := drivertest.Dump(t, d, src)
	time.Sleep(20 * time.Millisecond)
	stop()
	wg.Wait()
	if inserted.Load() < 2 {
		t.Fatalf("only %d concurrent writes happened", inserted.Load())
	}
	name := "dgverify_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	rep, err := d.Verify(t.Context(), src, bytes.NewReader(archive), md, &drivers.VerifyOptions{Database: name, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Fatalf("verification of a dump taken under writes: %+v", rep)
	}
	t.Logf("%d concurrent writes; audit rows in the snapshot: %d", inserted.Load(), md.TableRows["public.audit"])
}

func TestRestoreModes(t *testing.T) {
	d := postgres.New()
	src := newSource(t)
	archive, _ := drivertest.Dump(t, d, src)

	// An existing database with other data and a table the backup lacks.
	existing := func(t *testing.T) drivers.Source {
		target := newSource(t)
		execAll(t, openDB(t, target), mutation...)
		execAll(t, openDB(t, target), `CREATE TABLE local_only (x int)`, `INSERT INTO local_only VALUES (1)`)
		return target
	}
	t.Run("Clean", func(t *testing.T) {
		target := existing(t)
		if err := d.Restore(t.Context(), target, bytes.NewReader(archive), &drivers.RestoreOptions{Logf: t.Logf}); err != nil {
			t.Fatal(err)
		}
		got, want := fingerprint(t, target), fingerprint(t, src)
		if got["table public.local_only"] == "" {
			t.Errorf("--clean dropped a table the backup does not contain")
		}
		delete(got, "table public.local_only")
		if !maps.Equal(got, want) {
			t.Errorf("after a clean restore the backup's objects differ from the source")
		}
	})
	t.Run("Recreate", func(t *testing.T) {
		target := existing(t)
		// A session left open on the target does not stop the recreation.
		hold, err := openDB(t, target).Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer hold.Close()
		if err := d.Restore(t.Context(), target, bytes.NewReader(archive), &drivers.RestoreOptions{Recreate: true, Logf: t.Logf}); err != nil {
			t.Fatal(err)
		}
		equal(t, src, target)
	})
	t.Run("Fresh", func(t *testing.T) {
		target := newTarget(t)
		if err := d.Restore(t.Context(), target, bytes.NewReader(archive), nil); err != nil {
			t.Fatal(err)
		}
		equal(t, src, target)
	})
}

// errLate is a checksum failure found at the end of the stream.
var errLate = errors.New("checksum mismatch at the end")

// lateFailReader returns its data, then errLate instead of io.EOF.
type lateFailReader struct{ r io.Reader }

func (l *lateFailReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if err == io.EOF {
		err = errLate
	}
	return n, err
}

func TestFailedRestoreLeavesTargetUnchanged(t *testing.T) {
	d := postgres.New()
	src := newSource(t)
	archive, _ := drivertest.Dump(t, d, src)
	target := newSource(t)
	execAll(t, openDB(t, target), mutation...)
	before := fingerprint(t, target)

	cases := []struct {
		name string
		r    io.Reader
		want error
	}{
		{"Truncated", bytes.NewReader(archive[:len(archive)*2/3]), proc.ErrToolFailed},
		{"BadEnd", &lateFailReader{bytes.NewReader(archive)}, errLate},
		{"Garbage", strings.NewReader("not an archive"), proc.ErrToolFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := d.Restore(t.Context(), target, c.r, &drivers.RestoreOptions{Logf: t.Logf})
			if !errors.Is(err, c.want) {
				t.Fatalf("restore: %v; want an error matching %v", err, c.want)
			}
			t.Logf("error: %v", err)
			if after := fingerprint(t, target); !maps.Equal(before, after) {
				t.Fatalf("a failed restore changed the target")
			}
		})
	}
}

func TestVerify(t *testing.T) {
	drivertest.RunVerifier(t, drivertest.VerifierHarness{
		Driver:         postgres.New(),
		NewSource:      newSource,
		Equal:          equal,
		DatabaseExists: dbExists,
		Drop:           dropDB,
		MaxNameLen:     63,
		// Cut in the middle: pg_restore fails on the truncated archive.
		BreakDump: func(dump []byte) []byte { return dump[:len(dump)/2] },
		CheckBroken: func(t *testing.T, err error) {
			if !errors.Is(err, proc.ErrToolFailed) {
				t.Errorf("verify of a truncated archive: %v, want an error matching %v", err, proc.ErrToolFailed)
			}
		},
	})
}

func TestPing(t *testing.T) {
	d := postgres.New()
	src := newEmpty(t)
	t.Run("OK", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		h := d.Ping(ctx, src)
		if h.Status != drivers.HealthOK || h.Latency <= 0 || !strings.HasPrefix(h.Version, "PostgreSQL ") || h.ErrorText != "" {
			t.Fatalf("health %+v", h)
		}
		for _, k := range []string{"uptime_seconds", "active_connections", "database_size_bytes"} {
			if v, ok := h.Metadata[k].(int64); !ok || v <= 0 {
				t.Errorf("metadata %s = %v", k, h.Metadata[k])
			}
		}
		t.Logf("%+v", h)
	})
	t.Run("TLSPreferred", func(t *testing.T) {
		s := src
		s.Options = nil // sslmode prefer: TLS if offered, plain otherwise
		if h := d.Ping(t.Context(), s); h.Status != drivers.HealthOK {
			t.Fatalf("health %+v", h)
		}
	})
	t.Run("AuthFailed", func(t *testing.T) {
		s := src
		s.Username = "dg_no_such_role"
		s.Password = `p'a"s$s;w&o|r d`
		h := d.Ping(t.Context(), s)
		if h.Status != drivers.HealthAuthFailed || !strings.Contains(h.ErrorText, "dg_no_such_role") || strings.Contains(h.ErrorText, s.Password) {
			t.Fatalf("health %+v", h)
		}
		t.Logf("%s", h.ErrorText)
	})
	t.Run("NoDatabase", func(t *testing.T) {
		s := src
		s.Database = "dg_no_such_database"
		if h := d.Ping(t.Context(), s); h.Status != drivers.HealthError || !strings.Contains(h.ErrorText, "does not exist") {
			t.Fatalf("health %+v", h)
		}
	})
	drivertest.RunPingFailures(t, d, src)
}

// checkArgv fails t when a command line of tool in seen shows one of
// secrets, or when none carries marker (the run that did the work).
func checkArgv(t *testing.T, tool string, seen []string, marker string, secrets ...string) {
	t.Helper()
	worked := 0
	for _, cmdline := range seen {
		for _, s := range secrets {
			if strings.Contains(cmdline, s) {
				t.Errorf("%s command line shows a secret: %s", tool, cmdline)
			}
		}
		if strings.Contains(cmdline, marker) {
			worked++
			t.Logf("%s ran as: %s", tool, cmdline)
		}
	}
	if worked == 0 {
		t.Fatalf("never saw %s run with %s; saw %q", tool, marker, seen)
	}
}

// children returns the pids and command lines of this process's children
// named comm.
func children(t testing.TB, comm string) map[int]string {
	t.Helper()
	out := map[int]string{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		stat, err := os.ReadFile(dir + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if s[open+1:close] != comm || len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		cmdline, _ := os.ReadFile(dir + "/cmdline")
		pid, _ := strconv.Atoi(filepath.Base(dir))
		out[pid] = strings.ReplaceAll(string(cmdline), "\x00", " ")
	}
	return out
}

// watch records the command lines of children named comm until stop.
func watch(t *testing.T, comm string) (stop func() []string) {
	done := make(chan struct{})
	var seen []string
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			for _, cmdline := range children(t, comm) {
				if !slices.Contains(seen, cmdline) {
					seen = append(seen, cmdline)
				}
			}
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	})
	return func() []string { close(done); wg.Wait(); return seen }
}

// slowWriter and slowReader keep the tools running long enough to be seen.
type slowWriter struct{ w io.Writer }

func (s slowWriter) Write(p []byte) (int, error) {
	time.Sleep(10 * time.Millisecond)
	return s.w.Write(p)
}

type slowReader struct{ r io.Reader }

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(10 * time.Millisecond)
	return s.r.Read(p[:min(len(p), 64<<10)])
}

// A password full of shell metacharacters works (the test server trusts
// every password) and never shows in the tools' command lines or in errors.
func TestPasswordNeverInArgvOrErrors(t *testing.T) {
	const password = `p'a"s$s;w&o|r d`
	d := postgres.New()
	src := newSource(t)
	src.Password = password

	stop := watch(t, "pg_dump")
	var buf bytes.Buffer
	md, err := d.Dump(t.Context(), src, slowWriter{&buf}, nil)
	seen := stop()
	if err != nil {
		t.Fatal(err)
	}
	checkArgv(t, "pg_dump", seen, "--snapshot=", password, "p'a")

	target := newTarget(t)
	target.Password = password
	stop = watch(t, "pg_restore")
	err = d.Restore(t.Context(), target, slowReader{bytes.NewReader(buf.Bytes())}, nil)
	seen = stop()
	if err != nil {
		t.Fatal(err)
	}
	checkArgv(t, "pg_restore", seen, "--single-transaction", password, "p'a")
	equal(t, src, target)

	// Errors of every kind leave the password out.
	bad := src
	bad.Database = "dg_missing_" + password
	if _, err := d.Dump(t.Context(), bad, io.Discard, nil); err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("dump error: %v", err)
	}
	bad = src
	bad.Username = "dg_no_such_role"
	if _, err := d.Dump(t.Context(), bad, io.Discard, nil); err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("dump error: %v", err)
	}
	if err := d.Restore(t.Context(), target, strings.NewReader("garbage"), nil); err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("restore error: %v", err)
	}
	if _, err := d.Verify(t.Context(), bad, bytes.NewReader(buf.Bytes()), md, &drivers.VerifyOptions{Database: "dgverify_never"}); err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("verify error: %v", err)
	}
}

// A pg_dump older than the server is refused with both versions named.
func TestToolTooOld(t *testing.T) {
	src := newEmpty(t)
	dir := t.TempDir()
	for _, name := range []string{"pg_dump", "pg_restore"} {
		script := "#!/bin/sh\necho '" + name + " (PostgreSQL) 9.6.0'\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := &postgres.Driver{BinDir: dir}
	_, err := d.Dump(t.Context(), src, io.Discard, nil)
	if !errors.Is(err, postgres.ErrToolTooOld) {
		t.Fatalf("dump with pg_dump 9.6: %v", err)
	}
	server := d.Ping(t.Context(), src).Version // "PostgreSQL 15.4"
	major, _, _ := strings.Cut(strings.TrimPrefix(server, "PostgreSQL "), ".")
	for _, want := range []string{"pg_dump 9.6", "PostgreSQL " + major, "postgresql-client-" + major, dir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q: %v", want, err)
		}
	}
	t.Logf("%v", err)
	err = d.Restore(t.Context(), src, strings.NewReader("x"), nil)
	if !errors.Is(err, postgres.ErrToolTooOld) || !strings.Contains(err.Error(), "pg_restore 9.6") {
		t.Fatalf("restore with pg_restore 9.6: %v", err)
	}
}

// Cancelling a dump returns promptly with the context's error and leaves
// no pg_dump behind.
func TestCancelDumpLeavesNoProcess(t *testing.T) {
	src := newSource(t)
	d := postgres.New()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var once sync.Once
	w := writerFunc(func(p []byte) (int, error) {
		once.Do(func() {
			if len(children(t, "pg_dump")) == 0 {
				t.Error("pg_dump not running while it writes")
			}
			cancel()
		})
		time.Sleep(time.Millisecond)
		return len(p), nil
	})
	start := time.Now()
	_, err := d.Dump(ctx, src, w, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled dump: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("cancelled dump took %v", time.Since(start))
	}
	if left := children(t, "pg_dump"); len(left) > 0 {
		t.Fatalf("pg_dump left running after cancel: %v", left)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A destination that fails is reported as itself, not as pg_dump's broken
// pipe, and pg_dump does not linger.
func TestDumpWriterError(t *testing.T) {
	src := newSource(t)
	errFull := errors.New("no space left on the destination")
	written := 0
	w := writerFunc(func(p []byte) (int, error) {
		if written > 100_000 {
			return 0, errFull
		}
		written += len(p)
		return len(p), nil
	})
	_, err := postgres.New().Dump(t.Context(), src, w, nil)
	if !errors.Is(err, errFull) {
		t.Fatalf("dump into a failing writer: %v", err)
	}
	if left := children(t, "pg_dump"); len(left) > 0 {
		t.Fatalf("pg_dump left running: %v", left)
	}
}
