package main

import (
	"github.com/dataguardian/dataguardian/defaults"
	"github.com/dataguardian/dataguardian/drivers"
)

// newRegistry returns the drivers this binary knows: the built-ins.
func newRegistry() *drivers.Registry { return defaults.Drivers() }

// lookupDriver returns the driver of typ ("postgresql" meaning postgres).
func lookupDriver(typ string) (drivers.Driver, error) {
	if typ == "postgresql" {
		typ = "postgres"
	}
	return newRegistry().Lookup(typ)
}
