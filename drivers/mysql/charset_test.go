package mysql_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/drivertest"
	"github.com/dataguardian/dataguardian/drivers/mysql"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// charsetOf returns the default character set and collation of database.
func charsetOf(t *testing.T, database string) string {
	t.Helper()
	var cs, co string
	err := testsvc.OpenMySQL(t, "").QueryRow("SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", database).Scan(&cs, &co)
	if err != nil {
		t.Fatal(err)
	}
	return cs + " " + co
}

// A database the restore creates, with Recreate or because it is missing,
// gets the backup's default character set and collation.
func TestRestoreKeepsCharset(t *testing.T) {
	const want = "latin1 latin1_swedish_ci"
	d := mysql.New()
	name := testsvc.NewMySQLDatabase(t)
	exec(t, testsvc.OpenMySQL(t, name), "ALTER DATABASE `"+name+"` CHARACTER SET latin1 COLLATE latin1_swedish_ci",
		"CREATE TABLE t (s VARCHAR(20))", "INSERT INTO t VALUES ('ação')")
	src := source(t, name)
	archive, md := drivertest.Dump(t, d, src)
	if got := fmt.Sprint(md.Extra["charset"], " ", md.Extra["collation"]); got != want {
		t.Errorf("metadata records %q, want %q", got, want)
	}
	t.Run("Recreate", func(t *testing.T) {
		target := source(t, testsvc.NewMySQLDatabase(t)) // utf8mb4
		if err := d.Restore(t.Context(), target, bytes.NewReader(archive), &drivers.RestoreOptions{Recreate: true, Logf: t.Logf}); err != nil {
			t.Fatal(err)
		}
		if got := charsetOf(t, target.Database); got != want {
			t.Errorf("restored database has %q, want %q", got, want)
		}
		equal(t, src, target)
	})
	t.Run("Missing", func(t *testing.T) {
		target := newTarget(t)
		if err := d.Restore(t.Context(), target, bytes.NewReader(archive), &drivers.RestoreOptions{Logf: t.Logf}); err != nil {
			t.Fatal(err)
		}
		if got := charsetOf(t, target.Database); got != want {
			t.Errorf("restored database has %q, want %q", got, want)
		}
	})
}
