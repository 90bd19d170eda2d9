// Package defaults holds the built-in plug-ins: every datasource driver
// and the local storage. The root package fills them into an engine
// Config that leaves them out (package engine imports no concrete driver
// or storage); a program that builds its own registry starts from these.
package defaults

import (
	"context"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/files"
	"github.com/dataguardian/dataguardian/drivers/mysql"
	"github.com/dataguardian/dataguardian/drivers/postgres"
	"github.com/dataguardian/dataguardian/drivers/sqlite"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/storage"
	"github.com/dataguardian/dataguardian/storage/local"
)

// Drivers returns a new registry holding every built-in driver:
// postgres, mysql, mariadb, sqlite and files.
func Drivers() *drivers.Registry {
	r := &drivers.Registry{}
	r.Register(postgres.New())
	r.Register(mysql.New())
	r.Register(mysql.NewMariaDB())
	r.Register(sqlite.New())
	r.Register(files.New())
	return r
}

// StorageOpeners returns the built-in storage location types: "local".
func StorageOpeners() map[string]store.StorageOpener {
	return map[string]store.StorageOpener{"local": OpenLocal}
}

// OpenLocal opens a "local" storage location: the directory in its config
// "path", created if missing.
func OpenLocal(_ context.Context, loc *store.StorageLocation) (storage.Storage, error) {
	path := loc.Config["path"]
	if path == "" {
		return nil, store.InvalidField("config.path", "storage location %q: config \"path\" is empty: set it to the backup directory", loc.Name)
	}
	st, err := local.New(path)
	if err != nil {
		return nil, store.InvalidField("config.path", "storage location %q: %v: choose a directory this server can create and write", loc.Name, err)
	}
	return st, nil
}

// Fill sets *r and *openers to the built-ins where they are nil.
func Fill(r **drivers.Registry, openers *map[string]store.StorageOpener) {
	if *r == nil {
		*r = Drivers()
	}
	if *openers == nil {
		*openers = StorageOpeners()
	}
}
