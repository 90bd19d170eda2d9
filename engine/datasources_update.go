package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/dataguardian/dataguardian/engine/store"
)

// validateDatasource checks the fields every datasource needs: a name and
// a type a registered driver handles. CreateDatasource and
// UpdateDatasource share it.
func (e *Engine) validateDatasource(ds *Datasource) error {
	if strings.TrimSpace(ds.Name) == "" {
		return fmt.Errorf("%w: datasource name is empty: give it a name", ErrInvalid)
	}
	if _, err := e.cfg.Drivers.Lookup(ds.Type); err != nil {
		return fmt.Errorf("%w: datasource type: %w", ErrInvalid, err)
	}
	return nil
}

// UpdateDatasource validates ds as CreateDatasource does and writes its
// name, connection (host, port, database, username, path, options) and
// enabled flag. password nil keeps the stored password, a pointer to ""
// removes it, anything else replaces it (sealed, never stored in clear).
//
// A stored password is bound to where it goes: when the connection
// changes (host, port, database, username, path or any option, such as
// sslmode or a socket), the stored password is not kept, so password must
// be given again (or be a pointer to "" to connect without one); an update
// that would send the stored password to a new place is refused with a
// *FieldError naming "password".
//
// The type of a datasource cannot change (its backups and jobs depend on
// it): create a new datasource instead. When the connection or the
// password changes, the health status starts over (unknown, no failures,
// checked first in the next cycle), since the old one described another
// connection. A change that would make a sync job's source and target the
// same database is refused, and so is a path that CreateDatasource would
// refuse. Errors match ErrNotFound or ErrInvalid and name the field to fix.
func (e *Engine) UpdateDatasource(ctx context.Context, ds *Datasource, password *string) error {
	cur, err := e.store.GetDatasource(ctx, ds.ID)
	if err != nil {
		return fmt.Errorf("update datasource %s: %w", ds.ID, err)
	}
	if ds.Type == "" {
		ds.Type = cur.Type
	}
	if err := e.validateDatasource(ds); err != nil {
		return err
	}
	if ds.Type != cur.Type {
		return fmt.Errorf("%w: datasource %q: type cannot change from %s to %s: create a new datasource instead",
			ErrInvalid, cur.Name, cur.Type, ds.Type)
	}
	moved := movedFields(cur, ds)
	if password == nil && len(cur.PasswordEncrypted) > 0 && len(moved) > 0 {
		return store.InvalidField("password", "datasource %q: %s changed, so the stored password is not sent to the new connection: "+
			"send the password again (or clear_password to connect without one)", cur.Name, strings.Join(moved, ", "))
	}
	effective := ""
	switch {
	case password != nil:
		effective = *password
	case len(cur.PasswordEncrypted) > 0:
		effective = "stored" // only its presence matters to the checks
	}
	if err := e.paths.CheckNewSource(ctx, ds, effective); err != nil {
		return err
	}
	ds.PasswordEncrypted = cur.PasswordEncrypted
	pwChanged := false
	if password != nil {
		pwChanged = true
		ds.PasswordEncrypted = nil
		if *password != "" {
			if ds.PasswordEncrypted, err = e.sealer.Seal([]byte(*password)); err != nil {
				return err
			}
		}
	}
	if err := e.checkSyncTargets(ctx, ds); err != nil {
		return err
	}
	ds.CreatedAt = cur.CreatedAt
	ds.Status, ds.LastHealthCheckAt, ds.ConsecutiveFailures = cur.Status, cur.LastHealthCheckAt, cur.ConsecutiveFailures
	cols := []string{"name", "host", "port", "database", "username", "password_encrypted", "path", "options", "enabled"}
	if pwChanged || len(moved) > 0 {
		ds.Status, ds.LastHealthCheckAt, ds.ConsecutiveFailures = DatasourceUnknown, nil, 0
		cols = append(cols, "status", "last_health_check_at", "consecutive_failures")
	}
	return e.store.UpdateDatasource(ctx, ds, cols...)
}

// movedFields names the connection fields that differ between cur and ds:
// the ones that decide where a password is sent.
func movedFields(cur, ds *Datasource) []string {
	var out []string
	for _, f := range []struct {
		name      string
		different bool
	}{
		{"host", ds.Host != cur.Host},
		{"port", ds.Port != cur.Port},
		{"database", ds.Database != cur.Database},
		{"username", ds.Username != cur.Username},
		{"path", ds.Path != cur.Path},
		{"options", !maps.Equal(ds.Options, cur.Options)},
	} {
		if f.different {
			out = append(out, f.name)
		}
	}
	return out
}

// checkSyncTargets refuses a datasource connection that would make a sync
// job using ds copy a database onto itself.
func (e *Engine) checkSyncTargets(ctx context.Context, ds *Datasource) error {
	syncs, err := e.store.SyncJobsOf(ctx, ds.ID)
	if err != nil {
		return fmt.Errorf("update datasource %s: %w", ds.ID, err)
	}
	for _, j := range syncs {
		other := j.TargetDatasourceID
		if other == ds.ID {
			other = j.SourceDatasourceID
		}
		o, err := e.store.GetDatasource(ctx, other)
		if err != nil {
			return fmt.Errorf("update datasource %s: sync job %q: %w", ds.ID, j.Name, err)
		}
		if connectionKey(o) == connectionKey(ds) {
			field := "database"
			if ds.Path != "" {
				field = "path"
			}
			return store.InvalidField(field, "datasource %q would connect to the same database as %q, the other side of sync job %q (%s): "+
				"point it at a different database or change the sync job first", ds.Name, o.Name, j.Name, j.ID)
		}
	}
	return nil
}

// DeleteDatasource deletes datasource id and its health checks. It is
// refused with ErrInUse, naming what refers to it and the fix, while a
// backup job or a sync job uses it, or while executions (backups,
// restores) refer to it: those backups stay in storage and are found and
// restored through their datasource, so deleting it would orphan them. A
// datasource that is no longer used but has backups is disabled instead
// (UpdateDatasource with Enabled false stops its health checks).
func (e *Engine) DeleteDatasource(ctx context.Context, id string) error {
	ds, err := e.store.GetDatasource(ctx, id)
	if err != nil {
		return fmt.Errorf("delete datasource %s: %w", id, err)
	}
	inUse := func(format string, args ...any) error {
		return fmt.Errorf("delete datasource %q: %w: %s", ds.Name, ErrInUse, fmt.Sprintf(format, args...))
	}
	jobs, err := e.store.FindBackupJobs(ctx, BackupJobFilter{DatasourceID: id, Limit: -1})
	if err != nil {
		return fmt.Errorf("delete datasource %s: %w", id, err)
	}
	var names []string
	for _, j := range jobs {
		if !strings.HasPrefix(j.Name, SyncBackupJobName("")) { // a sync job's own job: named below
			names = append(names, fmt.Sprintf("%q (%s)", j.Name, j.ID))
		}
	}
	if len(names) > 0 {
		return inUse("backup job(s) %s back it up: delete them first (their backups stay)",
			strings.Join(names, ", "))
	}
	syncs, err := e.store.SyncJobsOf(ctx, id)
	if err != nil {
		return fmt.Errorf("delete datasource %s: %w", id, err)
	}
	for _, j := range syncs {
		names = append(names, fmt.Sprintf("%q (%s)", j.Name, j.ID))
	}
	if len(names) > 0 {
		return inUse("sync job(s) %s copy from or into it: delete them first",
			strings.Join(names, ", "))
	}
	n, err := e.store.CountExecutionsOf(ctx, id)
	if err != nil {
		return fmt.Errorf("delete datasource %s: %w", id, err)
	}
	if n > 0 {
		return inUse("%d execution(s) (backups, restores) refer to it and its backups stay restorable through it: "+
			"disable it instead (set enabled to false)", n)
	}
	// An orphaned sync backup job (its sync job gone) has no backups left
	// to keep (checked above): it goes with the datasource.
	err = e.store.DeleteDatasource(ctx, id)
	if errors.Is(err, store.ErrReferenced) { // a job or an execution appeared meanwhile
		return inUse("a job or an execution started using it meanwhile: retry to see which")
	}
	if err != nil {
		return fmt.Errorf("delete datasource %s: %w", id, err)
	}
	return nil
}
