package mysql_test

import (
	"testing"

	"github.com/dataguardian/dataguardian/drivers/drivertest"
	"github.com/dataguardian/dataguardian/drivers/mysql"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// Connecting to a server that accepts and never answers is bounded by
// connect_timeout and ends when the context is cancelled.
func TestConnectTimeouts(t *testing.T) {
	name := testsvc.NewMySQLDatabase(t)
	exec(t, testsvc.OpenMySQL(t, name), "CREATE TABLE t (x INT)", "INSERT INTO t VALUES (1)")
	drivertest.RunConnectTimeouts(t, drivertest.ConnectHarness{
		Driver: mysql.New(), Source: source(t, name), Option: mysql.OptionConnectTimeout,
	})
}
