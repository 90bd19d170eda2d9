package mysql_test

import (
	"testing"

	"github.com/dataguardian/dataguardian/drivers/drivertest"
	"github.com/dataguardian/dataguardian/drivers/mysql"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

func TestInspector(t *testing.T) {
	d := mysql.New()
	database := func(t *testing.T, stmts ...string) string {
		name := testsvc.NewMySQLDatabase(t)
		exec(t, testsvc.OpenMySQL(t, name), stmts...)
		return name
	}
	full := source(t, database(t, "CREATE TABLE t (x INT)"))
	t.Run("Missing", func(t *testing.T) { drivertest.RunInspector(t, d, newTarget(t), full) })
	t.Run("NoObjects", func(t *testing.T) { drivertest.RunInspector(t, d, source(t, database(t)), full) })
	for name, stmt := range map[string]string{
		"View":      "CREATE VIEW v AS SELECT 1 AS x",
		"Procedure": "CREATE PROCEDURE p() SELECT 1",
		"Event":     "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1",
	} {
		t.Run(name, func(t *testing.T) {
			drivertest.RunInspector(t, d, newTarget(t), source(t, database(t, stmt)))
		})
	}
}
