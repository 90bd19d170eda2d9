package postgres_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/drivertest"
	"github.com/dataguardian/dataguardian/drivers/postgres"
	"github.com/google/uuid"
)

// newRole creates a login role without any privilege of its own (the test
// server trusts it on 127.0.0.1) and drops it when t ends. It returns the
// role's name.
func newRole(t *testing.T, attrs string) string {
	t.Helper()
	name := "dg_role_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	execAll(t, admin(t), "CREATE ROLE "+name+" LOGIN "+attrs)
	t.Cleanup(func() {
		if _, err := admin(t).ExecContext(context.Background(), "DROP ROLE IF EXISTS "+name); err != nil {
			t.Errorf("drop role %s: %v", name, err)
		}
	})
	return name
}

// A dump that fails because the role may not read a table fails with the
// server's message, and is not reported as cancelled: neither pg_dump's
// own failure nor the row counting's may be masked by the cancellation
// of the other.
func TestDumpPermissionDenied(t *testing.T) {
	src := newEmpty(t)
	execAll(t, openDB(t, src), `CREATE TABLE t (x int)`, `INSERT INTO t VALUES (1), (2)`)
	role := newRole(t, "")
	src.Username = role
	for range 3 { // whichever of pg_dump and the counting fails first
		_, err := postgres.New().Dump(t.Context(), src, io.Discard, &drivers.DumpOptions{Logf: t.Logf})
		if err == nil {
			t.Fatal("dump as a role without SELECT on t succeeded")
		}
		if errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "context canceled") {
			t.Fatalf("dump error reads as a cancellation: %v", err)
		}
		if !strings.Contains(err.Error(), "permission denied for table t") {
			t.Fatalf("dump error does not give the cause: %v", err)
		}
		t.Logf("error: %v", err)
	}
}

// A verification as a role without CREATEDB says the role needs it, and
// does not claim to have dropped a database it never created.
func TestVerifyWithoutCreateDB(t *testing.T) {
	src := newSource(t)
	role := newRole(t, "NOCREATEDB")
	name := "dgverify_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	dropWithT(t, name)
	drivertest.RunVerifyWithoutCreate(t, postgres.New(), src, newTarget(t), role, "", name, "CREATEDB",
		func(n string) bool { return dbExists(t, n) })
}
