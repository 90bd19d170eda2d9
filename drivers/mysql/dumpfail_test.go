package mysql_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
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
	d := mysql.New()
	src := newSource(t)
	archive, md := drivertest.Dump(t, d, src)
	src.Username, src.Password = newUser(t, "GRANT SELECT ON `"+src.Database+"`.* TO USER"), ""
	name := "dgverify_" + strings.ToLower(rand.Text()[:12])
	t.Cleanup(func() { exec(t, testsvc.OpenMySQL(t, ""), "DROP DATABASE IF EXISTS `"+name+"`") })
	var logs []string
	_, err := d.Verify(t.Context(), src, bytes.NewReader(archive), md, &drivers.VerifyOptions{Database: name,
		Logf: func(format string, a ...any) { logs = append(logs, fmt.Sprintf(format, a...)) }})
	if err == nil {
		t.Fatal("verify by an account without CREATE succeeded")
	}
	if !strings.Contains(err.Error(), "CREATE privilege") || !strings.Contains(err.Error(), src.Username) {
		t.Errorf("verify by an account without CREATE: %v; want an error saying it needs the CREATE privilege", err)
	}
	t.Logf("error: %v", err)
	for _, l := range logs {
		if strings.Contains(l, "dropped") {
			t.Errorf("log claims a drop of a database never created: %q", l)
		}
	}
	target := newTarget(t)
	target.Username, target.Password = src.Username, ""
	if err := d.Restore(t.Context(), target, bytes.NewReader(archive), nil); err == nil || !strings.Contains(err.Error(), "CREATE privilege") {
		t.Errorf("restore into a missing database by an account without CREATE: %v", err)
	}
}
