// Package defaults holds the built-in plug-ins: every datasource driver
// and the local and S3 storages. The root package fills them into an engine
// Config that leaves them out (package engine imports no concrete driver
// or storage); a program that builds its own registry starts from these.
package defaults

import (
	"context"
	"errors"
	"fmt"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/files"
	"github.com/dataguardian/dataguardian/drivers/mysql"
	"github.com/dataguardian/dataguardian/drivers/postgres"
	"github.com/dataguardian/dataguardian/drivers/sqlite"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/storage"
	"github.com/dataguardian/dataguardian/storage/local"
	"github.com/dataguardian/dataguardian/storage/s3"
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

// StorageOpeners returns the built-in storage location types: "local"
// and "s3".
func StorageOpeners() map[string]store.StorageOpener {
	return map[string]store.StorageOpener{"local": OpenLocal, "s3": OpenS3}
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

// OpenS3 opens an "s3" storage location (keys of s3.ConfigFrom) after
// checking that its bucket answers with its credentials; a bad setting is
// a field error naming config.<key>.
func OpenS3(ctx context.Context, loc *store.StorageLocation) (storage.Storage, error) {
	cfg, err := s3.ConfigFrom(loc.Config)
	if err == nil {
		var st *s3.S3
		if st, err = s3.New(ctx, cfg); err == nil {
			return st, nil
		}
	}
	var fe *s3.FieldError
	if errors.As(err, &fe) {
		return nil, store.InvalidField("config."+fe.Key, "storage location %q: config.%s: %v", loc.Name, fe.Key, fe.Err)
	}
	return nil, fmt.Errorf("storage location %q: %w", loc.Name, err)
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
