package postgres_test

import (
	"testing"

	"github.com/dataguardian/dataguardian/drivers/drivertest"
	"github.com/dataguardian/dataguardian/drivers/postgres"
)

func TestInspector(t *testing.T) {
	d := postgres.New()
	full := newEmpty(t)
	execAll(t, openDB(t, full), `CREATE TABLE t (x int)`)
	t.Run("Missing", func(t *testing.T) { drivertest.RunInspector(t, d, newTarget(t), full) })
	t.Run("NoObjects", func(t *testing.T) {
		empty := newEmpty(t)
		execAll(t, openDB(t, empty), `CREATE SCHEMA unused`) // a schema alone holds nothing to replace
		drivertest.RunInspector(t, d, empty, full)
	})
	for name, stmt := range map[string]string{
		"View":     `CREATE VIEW v AS SELECT 1 AS x`,
		"Sequence": `CREATE SEQUENCE s`,
		"Function": `CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'`,
	} {
		t.Run(name, func(t *testing.T) {
			obj := newEmpty(t)
			execAll(t, openDB(t, obj), stmt)
			drivertest.RunInspector(t, d, newTarget(t), obj)
		})
	}
}
