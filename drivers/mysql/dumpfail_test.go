package mysql_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/drivertest"
	"github.com/dataguardian/dataguardian/drivers/internal/proc"
	"github.com/dataguardian/dataguardian/drivers/mysql"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// newUser creates an account without a password that may connect from
// anywhere, grants it grants (statements with USER for its name) and drops
// it when t ends. It returns the account's name.
func newUser(t *testing.T, grants ...string) string {
	t.Helper()
	name := "dg_u" + strings.ToLower(rand.Text()[:10])
	db := testsvc.OpenMySQL(t, "")
	exec(t, db, "CREATE USER '"+name+"'@'%'")
	t.Cleanup(func() {
		if _, err := testsvc.OpenMySQL(t, "").Exec("DROP USER IF EXISTS '" + name + "'@'%'"); err != nil {
			t.Errorf("drop user %s: %v", name, err)
		}
	})
	for _, g := range grants {
		exec(t, db, strings.ReplaceAll(g, "USER", "'"+name+"'@'%'"))
	}
	return name
}

// A dump that fails because the account may not read a table fails with
// the tool's message, not as a cancellation.
func TestDumpPermissionDenied(t *testing.T) {
	name := testsvc.NewMySQLDatabase(t)
	exec(t, testsvc.OpenMySQL(t, name), "CREATE TABLE t (x INT)", "INSERT INTO t VALUES (1)")
	src := source(t, name)
	// INSERT makes the table visible to the dump, which then cannot read it.
	src.Username = newUser(t, "GRANT INSERT ON `"+name+"`.`t` TO USER")
	src.Password = ""
	_, err := mysql.New().Dump(t.Context(), src, io.Discard, &drivers.DumpOptions{Logf: t.Logf})
	if err == nil {
		t.Fatal("dump by an account without SELECT on t succeeded")
	}
	if errors.Is(err, context.Canceled) || !errors.Is(err, proc.ErrToolFailed) || !strings.Contains(err.Error(), "command denied") {
		t.Fatalf("dump error: %v; want the tool's failure naming the denied command", err)
	}
	t.Logf("error: %v", err)
}

// A verification by an account that may not create databases says it
// needs the CREATE privilege, and claims no drop.
func TestVerifyWithoutCreate(t *testing.T) {
	src := newSource(t)
	user := newUser(t, "GRANT SELECT ON `"+src.Database+"`.* TO USER")
	name := "dgverify_" + strings.ToLower(rand.Text()[:12])
	t.Cleanup(func() { exec(t, testsvc.OpenMySQL(t, ""), "DROP DATABASE IF EXISTS `"+name+"`") })
	drivertest.RunVerifyWithoutCreate(t, mysql.New(), src, newTarget(t), user, "", name, "CREATE privilege",
		func(n string) bool { return databaseExists(t, n) })
}
