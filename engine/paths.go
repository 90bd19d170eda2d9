package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/internal/confine"
)

// newPathPolicy returns the confinement of cfg (defaults applied): the
// roots of cfg.AllowedPaths, and the data directory, the SQLite metadata
// database (with its journal files) and the secret key, which are never
// reachable.
func newPathPolicy(cfg Config) (*confine.Policy, error) {
	protected := []string{cfg.DataDir}
	if f := store.File(cfg.DatabaseURL); f != "" {
		protected = append(protected, f, f+"-wal", f+"-shm", f+"-journal")
	}
	widen := "add its directory to Config.AllowedPaths"
	if cfg.AllowedPathsFlag != "" {
		widen = "start the server with " + cfg.AllowedPathsFlag + " DIR to allow a directory"
	}
	p, err := confine.New(confine.Options{Roots: cfg.AllowedPaths, Protected: protected, Widen: widen})
	if err != nil {
		return nil, fmt.Errorf("%w: AllowedPaths: %w", ErrInvalid, err)
	}
	return p, nil
}

// AllowedPaths returns the resolved directories datasources and local
// storage locations may use; nil means any absolute path (the data
// directory excepted).
func (e *Engine) AllowedPaths() []string { return e.paths.Roots() }

// sourcePaths returns the paths of the server's file system src makes its
// driver use (see drivers.Pather).
func (e *Engine) sourcePaths(src drivers.Source) []drivers.SourcePath {
	d, err := e.cfg.Drivers.Lookup(src.Type)
	if err != nil {
		return nil
	}
	p, ok := d.(drivers.Pather)
	if !ok {
		return nil
	}
	return p.Paths(src)
}

// checkSourcePaths refuses src when one of its paths is outside the
// allowed roots or overlaps the server's own data, or one of avoid (the
// local storage directories).
func (e *Engine) checkSourcePaths(src drivers.Source, avoid ...string) error {
	for _, sp := range e.sourcePaths(src) {
		if _, err := e.paths.Source(sp.Path, avoid...); err != nil {
			return store.InvalidField(sp.Field, "datasource %s %v", sp.Field, err)
		}
	}
	return nil
}

// localStoragePath returns the directory of a local storage location.
func localStoragePath(loc *StorageLocation) (string, bool) {
	if loc.Type != "local" {
		return "", false
	}
	return loc.Config["path"], true
}

// localStorageDirs returns the directories of the stored local storage
// locations but the one with id skip.
func (e *Engine) localStorageDirs(ctx context.Context, skip string) ([]string, error) {
	locs, err := e.store.ListStorageLocations(ctx)
	if err != nil {
		return nil, fmt.Errorf("list storage locations: %w", err)
	}
	var dirs []string
	for i := range locs {
		if p, ok := localStoragePath(&locs[i]); ok && locs[i].ID != skip && p != "" {
			dirs = append(dirs, p)
		}
	}
	return dirs, nil
}

// datasourceDirs returns every path of the stored datasources (see
// sourcePaths).
func (e *Engine) datasourceDirs(ctx context.Context) ([]string, error) {
	dss, err := e.store.ListDatasources(ctx)
	if err != nil {
		return nil, fmt.Errorf("list datasources: %w", err)
	}
	var dirs []string
	for i := range dss {
		src := drivers.Source{Type: dss[i].Type, Host: dss[i].Host, Path: dss[i].Path, Options: dss[i].Options}
		for _, sp := range e.sourcePaths(src) {
			dirs = append(dirs, sp.Path)
		}
	}
	return dirs, nil
}

// checkNewSource checks the connection of a datasource being created or
// changed: the driver's own checks (drivers.Checker) and the paths, which
// must also stay apart from every local storage location.
func (e *Engine) checkNewSource(ctx context.Context, ds *Datasource, password string) error {
	src := drivers.Source{Type: ds.Type, Host: ds.Host, Port: ds.Port, Database: ds.Database,
		Username: ds.Username, Password: password, Path: ds.Path, Options: ds.Options}
	d, err := e.cfg.Drivers.Lookup(ds.Type)
	if err != nil {
		return fmt.Errorf("%w: datasource type: %w", ErrInvalid, err)
	}
	if c, ok := d.(drivers.Checker); ok {
		if err := c.Check(src); err != nil {
			var fe *drivers.FieldError
			if errors.As(err, &fe) {
				return store.InvalidField(fe.Field, "datasource %q: %v", ds.Name, fe.Err)
			}
			return fmt.Errorf("%w: datasource %q: %w", ErrInvalid, ds.Name, err)
		}
	}
	dirs, err := e.localStorageDirs(ctx, "")
	if err != nil {
		return err
	}
	return e.checkSourcePaths(src, dirs...)
}

// checkStoragePath checks the directory of a local storage location being
// created or changed (id "" when new).
func (e *Engine) checkStoragePath(ctx context.Context, loc *StorageLocation) error {
	path, ok := localStoragePath(loc)
	if !ok || path == "" {
		return nil // openStorage names a missing path
	}
	dirs, err := e.datasourceDirs(ctx)
	if err != nil {
		return err
	}
	if _, err := e.paths.Storage(path, dirs...); err != nil {
		return store.InvalidField("config.path", "storage location %q: config.path %v", loc.Name, err)
	}
	return nil
}
