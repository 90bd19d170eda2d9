package postgres_test

import (
	"testing"

	"github.com/dataguardian/dataguardian/drivers/drivertest"
	"github.com/dataguardian/dataguardian/drivers/postgres"
)

// Connecting to a server that accepts and never answers is bounded by
// connect_timeout and ends when the context is cancelled.
func TestConnectTimeouts(t *testing.T) {
	src := newEmpty(t)
	execAll(t, openDB(t, src), `CREATE TABLE t (x int)`, `INSERT INTO t VALUES (1)`)
	drivertest.RunConnectTimeouts(t, drivertest.ConnectHarness{
		Driver: postgres.New(), Source: src, Option: postgres.OptConnectTimeout, ClientSpeaksFirst: true,
	})
}
