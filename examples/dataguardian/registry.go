package main

import (
	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/files"
	"github.com/dataguardian/dataguardian/drivers/mysql"
	"github.com/dataguardian/dataguardian/drivers/postgres"
	"github.com/dataguardian/dataguardian/drivers/sqlite"
)

// newRegistry returns the drivers this binary knows. It is the one place a
// driver is added to the CLI.
func newRegistry() *drivers.Registry {
	r := &drivers.Registry{}
	r.Register(sqlite.New())
	r.Register(files.New())
	r.Register(postgres.New())
	r.Register(mysql.New())
	r.Register(mysql.NewMariaDB())
	return r
}

// lookupDriver returns the driver of typ ("postgresql" meaning postgres).
func lookupDriver(typ string) (drivers.Driver, error) {
	if typ == "postgresql" {
		typ = "postgres"
	}
	return newRegistry().Lookup(typ)
}
