// Package testsvc gates tests that need a real service (PostgreSQL, later
// MariaDB/MySQL).
//
// Such tests read the service address from an environment variable with a
// localhost default and skip when the service does not answer, so `go test
// ./...` works on any machine. CI sets DG_REQUIRE_SERVICES=1, which turns every
// such skip into a failure: a missing service must never make a suite pass
// silently. This follows restic's internal/test SkipDisallowed and river's
// riverdbtest (one fresh database per test, dropped on cleanup).
package testsvc

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun/driver/pgdriver"
)

// Environment variables read by this package.
const (
	// EnvRequireServices set to "1" turns a skip for a missing service into
	// a test failure.
	EnvRequireServices = "DG_REQUIRE_SERVICES"
	// EnvPostgresDSN is the DSN of a PostgreSQL server whose user may create
	// and drop databases.
	EnvPostgresDSN = "DG_TEST_POSTGRES_DSN"
)

// DefaultPostgresDSN is used when EnvPostgresDSN is unset.
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// pingTimeout bounds the check that a service answers.
const pingTimeout = 3 * time.Second

// Require is the one place that decides between skipping and failing: when
// err is nil it returns; otherwise it skips t, naming what is missing, or
// fails t when EnvRequireServices is "1".
func Require(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv(EnvRequireServices) == "1" {
		t.Fatalf("%s is not available: %v (%s=1 forbids skipping)", what, err, EnvRequireServices)
	}
	t.Skipf("%s is not available: %v (skipping; set %s=1 to make this a failure)", what, err, EnvRequireServices)
}

// checks caches the reachability check per DSN so a test binary pings each
// server once.
var checks sync.Map // dsn -> func() error (sync.OnceValue)

// serverDSN returns the DSN in env (or def) after checking, once per test
// binary, that ping succeeds; otherwise it skips or fails t (see Require),
// naming the server, its address and env.
func serverDSN(t testing.TB, env, def, server string, addr func(string) string, ping func(string) error) string {
	t.Helper()
	dsn := os.Getenv(env)
	if dsn == "" {
		dsn = def
	}
	check, _ := checks.LoadOrStore(dsn, sync.OnceValue(func() error { return ping(dsn) }))
	Require(t, fmt.Sprintf("%s at %s (set %s to use another server)", server, addr(dsn), env), check.(func() error)())
	return dsn
}

// PostgresDSN returns the DSN of the test PostgreSQL server (EnvPostgresDSN,
// default DefaultPostgresDSN) after checking that it answers. It skips t (or
// fails it, see Require) when the server is unreachable.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	return serverDSN(t, EnvPostgresDSN, DefaultPostgresDSN, "PostgreSQL", pgAddr, pingPostgres)
}

// NewPostgresDatabase creates a fresh, uniquely named database on the test
// PostgreSQL server and returns its DSN. The database is dropped (with FORCE,
// ending any connection left open) when t's cleanup runs.
func NewPostgresDatabase(t testing.TB) string {
	t.Helper()
	adminDSN := PostgresDSN(t)
	name := uniqueName()
	newDatabase(t, func() (*sql.DB, error) { return openPostgres(adminDSN) }, pgAddr(adminDSN), name,
		"CREATE DATABASE "+name, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")

	u, err := url.Parse(adminDSN)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgresDSN, err)
	}
	u.Path = "/" + name
	return u.String()
}

// pingPostgres reports whether the server behind dsn answers within pingTimeout.
func pingPostgres(dsn string) error {
	db, err := openPostgres(dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	return db.PingContext(ctx)
}

// openPostgres opens a pool for dsn. pgdriver panics on a DSN it cannot
// parse; the panic becomes an error that does not repeat the DSN.
func openPostgres(dsn string) (db *sql.DB, err error) {
	if _, err := url.Parse(dsn); err != nil {
		return nil, fmt.Errorf("%s is not a valid URL", EnvPostgresDSN)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("invalid %s: %v", EnvPostgresDSN, r)
		}
	}()
	return sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn), pgdriver.WithDialTimeout(pingTimeout))), nil
}

// pgAddr is the host:port of dsn, for messages (never the password).
func pgAddr(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		return "(unparsable " + EnvPostgresDSN + ")"
	}
	return u.Host
}

// uniqueName is a fresh test database name.
func uniqueName() string {
	return "dgtest_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
}

// newDatabase runs create on the server open reaches and, when t's cleanup
// runs (with a context of its own, so a cancelled test still cleans up),
// drop.
func newDatabase(t testing.TB, open func() (*sql.DB, error), addr, name, create, drop string) {
	t.Helper()
	exec := func(q string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := open()
		if err != nil {
			return err
		}
		defer admin.Close()
		_, err = admin.ExecContext(ctx, q)
		return err
	}
	if err := exec(create); err != nil {
		t.Fatalf("create test database %s at %s: %v", name, addr, err)
	}
	t.Cleanup(func() {
		if err := exec(drop); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
}
