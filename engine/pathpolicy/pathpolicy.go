// Package pathpolicy confines the paths of the server that datasources and
// local storage locations may use (see Policy and SECURITY.md).
package pathpolicy

import (
	"context"
	"errors"
	"fmt"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/internal/confine"
)

// Policy says which paths of the server the datasources and local storage
// locations users create may use: under the operator's allowed roots,
// symbolic links resolved, never the data directory, the metadata database
// or the secret key, and datasources apart from local storages.
type Policy struct {
	paths   *confine.Policy
	drivers *drivers.Registry
	store   *store.Store
}

// Options configure a Policy.
type Options struct {
	// AllowedPaths are the roots; nil means any absolute path.
	AllowedPaths []string
	// Protected are never reachable: the data directory, the SQLite
	// metadata database (its journal files are added), the secret key.
	DataDir, DatabaseURL string
	// Flag names the server flag that widens AllowedPaths, for messages;
	// "" means Config.AllowedPaths.
	Flag string
}

// New returns the Policy of opts, looking up drivers in r (their paths,
// drivers.Pather). It checks opts before any store is opened; SetStore
// gives it the stored datasources and storages to keep apart.
func New(opts Options, r *drivers.Registry) (*Policy, error) {
	protected := []string{opts.DataDir}
	if f := store.File(opts.DatabaseURL); f != "" {
		protected = append(protected, f, f+"-wal", f+"-shm", f+"-journal")
	}
	widen := "add its directory to Config.AllowedPaths"
	if opts.Flag != "" {
		widen = "start the server with " + opts.Flag + " DIR to allow a directory"
	}
	p, err := confine.New(confine.Options{Roots: opts.AllowedPaths, Protected: protected, Widen: widen})
	if err != nil {
		return nil, fmt.Errorf("%w: AllowedPaths: %w", store.ErrInvalid, err)
	}
	return &Policy{paths: p, drivers: r}, nil
}

// SetStore sets the metadata store whose datasources and local storage
// locations the checks keep apart; call it before the Policy is used.
func (p *Policy) SetStore(st *store.Store) { p.store = st }

// Roots returns the resolved directories datasources and local storage
// locations may use; nil means any absolute path (the data directory
// excepted).
func (p *Policy) Roots() []string { return p.paths.Roots() }

// sourcePaths returns the paths of the server's file system src makes its
// driver use (see drivers.Pather).
func (p *Policy) sourcePaths(src drivers.Source) []drivers.SourcePath {
	d, err := p.drivers.Lookup(src.Type)
	if err != nil {
		return nil
	}
	pather, ok := d.(drivers.Pather)
	if !ok {
		return nil
	}
	return pather.Paths(src)
}

// CheckSource refuses src when one of its paths is outside the
// allowed roots or overlaps the server's own data, or one of avoid (the
// local storage directories).
func (p *Policy) CheckSource(src drivers.Source, avoid ...string) error {
	for _, sp := range p.sourcePaths(src) {
		if _, err := p.paths.Source(sp.Path, avoid...); err != nil {
			return store.InvalidField(sp.Field, "datasource %s %v", sp.Field, err)
		}
	}
	return nil
}

// LocalPath returns the directory of a local storage location.
func LocalPath(loc *store.StorageLocation) (string, bool) {
	if loc.Type != "local" {
		return "", false
	}
	return loc.Config["path"], true
}

// LocalStorageDirs returns the directories of the stored local storage
// locations but the one with id skip.
func (p *Policy) LocalStorageDirs(ctx context.Context, skip string) ([]string, error) {
	locs, err := p.store.ListStorageLocations(ctx)
	if err != nil {
		return nil, fmt.Errorf("list storage locations: %w", err)
	}
	var dirs []string
	for i := range locs {
		if dir, ok := LocalPath(&locs[i]); ok && locs[i].ID != skip && dir != "" {
			dirs = append(dirs, dir)
		}
	}
	return dirs, nil
}

// datasourceDirs returns every path of the stored datasources (see
// sourcePaths).
func (p *Policy) datasourceDirs(ctx context.Context) ([]string, error) {
	dss, err := p.store.ListDatasources(ctx)
	if err != nil {
		return nil, fmt.Errorf("list datasources: %w", err)
	}
	var dirs []string
	for i := range dss {
		src := drivers.Source{Type: dss[i].Type, Host: dss[i].Host, Path: dss[i].Path, Options: dss[i].Options}
		for _, sp := range p.sourcePaths(src) {
			dirs = append(dirs, sp.Path)
		}
	}
	return dirs, nil
}

// CheckNewSource checks the connection of a datasource being created or
// changed: the driver's own checks (drivers.Checker) and the paths, which
// must also stay apart from every local storage location.
func (p *Policy) CheckNewSource(ctx context.Context, ds *store.Datasource, password string) error {
	src := drivers.Source{Type: ds.Type, Host: ds.Host, Port: ds.Port, Database: ds.Database,
		Username: ds.Username, Password: password, Path: ds.Path, Options: ds.Options}
	d, err := p.drivers.Lookup(ds.Type)
	if err != nil {
		return fmt.Errorf("%w: datasource type: %w", store.ErrInvalid, err)
	}
	if c, ok := d.(drivers.Checker); ok {
		if err := c.Check(src); err != nil {
			var fe *drivers.FieldError
			if errors.As(err, &fe) {
				return store.InvalidField(fe.Field, "datasource %q: %v", ds.Name, fe.Err)
			}
			return fmt.Errorf("%w: datasource %q: %w", store.ErrInvalid, ds.Name, err)
		}
	}
	dirs, err := p.LocalStorageDirs(ctx, "")
	if err != nil {
		return err
	}
	return p.CheckSource(src, dirs...)
}

// CheckStoragePath checks the directory of a local storage location being
// created or changed (id "" when new).
func (p *Policy) CheckStoragePath(ctx context.Context, loc *store.StorageLocation) error {
	path, ok := LocalPath(loc)
	if !ok || path == "" {
		return nil // openStorage names a missing path
	}
	dirs, err := p.datasourceDirs(ctx)
	if err != nil {
		return err
	}
	if _, err := p.paths.Storage(path, dirs...); err != nil {
		return store.InvalidField("config.path", "storage location %q: config.path %v", loc.Name, err)
	}
	return nil
}

// CheckStorage refuses a local storage location whose directory is no
// longer allowed (the roots changed since it was stored).
func (p *Policy) CheckStorage(loc *store.StorageLocation) error {
	if path, ok := LocalPath(loc); ok && path != "" {
		if _, err := p.paths.Storage(path); err != nil {
			return store.InvalidField("config.path", "storage location %q: config.path %v", loc.Name, err)
		}
	}
	return nil
}
