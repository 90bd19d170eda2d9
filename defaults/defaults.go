// Package defaults holds the built-in plug-ins: every datasource driver
// and the local, S3 and SFTP storages. The root package fills them into an engine
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
	"github.com/dataguardian/dataguardian/storage/sftp"
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

// StorageOpeners returns the built-in storage location types: "local",
// "s3" and "sftp".
func StorageOpeners() map[string]store.StorageOpener {
	return map[string]store.StorageOpener{"local": OpenLocal, "s3": OpenS3, "sftp": OpenSFTP}
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
// checking that its bucket answers with its credentials.
func OpenS3(ctx context.Context, loc *store.StorageLocation) (storage.Storage, error) {
	cfg, err := s3.ConfigFrom(loc.Config)
	if err != nil {
		return nil, configError(loc, err)
	}
	st, err := s3.New(ctx, cfg)
	if err != nil {
		return nil, configError(loc, err)
	}
	return st, nil
}

// OpenSFTP opens an "sftp" storage location (keys of sftp.ConfigFrom)
// after logging in with its pinned host key.
func OpenSFTP(ctx context.Context, loc *store.StorageLocation) (storage.Storage, error) {
	cfg, err := sftp.ConfigFrom(loc.Config)
	if err != nil {
		return nil, configError(loc, err)
	}
	st, err := sftp.New(ctx, cfg)
	if err != nil {
		return nil, configError(loc, err)
	}
	return st, nil
}

// configError is err of opening loc, a field error naming config.<key>
// when the storage says which setting is to blame.
func configError(loc *store.StorageLocation, err error) error {
	var ce *storage.ConfigError
	if errors.As(err, &ce) {
		return store.InvalidField("config."+ce.Key, "storage location %q: config.%s: %v", loc.Name, ce.Key, ce.Err)
	}
	return fmt.Errorf("storage location %q: %w", loc.Name, err)
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
