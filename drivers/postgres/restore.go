package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/internal/proc"
)

// SQLSTATEs the driver acts on.
const (
	stateInvalidCatalog    = "3D000" // database does not exist
	stateDuplicateDatabase = "42P04"
)

// Restore reads a custom-format archive (what Dump wrote) from r and
// restores it into target with pg_restore --no-owner --no-acl
// --single-transaction --exit-on-error, from standard input.
//
// By default it restores into the existing database with --clean
// --if-exists: the objects of the archive are dropped and recreated, other
// objects of the target stay (and an object that depends on a dropped one
// makes the restore fail). A missing target database is created first.
// With opts.Recreate the database is dropped (WITH (FORCE), ending its
// sessions) and created again before the restore, so it holds exactly the
// backup; that needs a connection to the maintenance database
// (Options["maintenance_db"], default "postgres").
//
// Because the restore is one transaction, a restore that fails or is
// cancelled leaves the target database as it was (with Recreate: empty).
// The end of r reaches pg_restore only once r returned io.EOF, so a stream
// whose final checksum fails stops the restore before it commits.
func (d *Driver) Restore(ctx context.Context, target drivers.Source, r io.Reader, opts *drivers.RestoreOptions) error {
	c, err := parseSource(target)
	if err != nil {
		return fmt.Errorf("restore postgres: %w", err)
	}
	recreate := opts != nil && opts.Recreate
	if err := d.restore(ctx, c, r, recreate, opts.Log); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return c.redactErr(fmt.Errorf("restore postgres %s: %w", c.where(), err))
	}
	return nil
}

func (d *Driver) restore(ctx context.Context, c conf, r io.Reader, recreate bool, logf func(string, ...any)) error {
	var serverNum int
	clean := !recreate
	if recreate {
		m, err := c.connect(ctx, c.maintenanceDB)
		if err != nil {
			return fmt.Errorf("connect to maintenance database %s: %w", c.maintenanceDB, err)
		}
		defer m.close()
		if serverNum, _, err = m.serverVersion(ctx); err != nil {
			return err
		}
		logf("dropping and recreating database %s", c.database)
		if err := dropDatabase(ctx, m, c.database, serverNum); err != nil {
			return err
		}
		if err := createDatabase(ctx, m, c.database, c.user); err != nil {
			return err
		}
	} else {
		s, err := c.connect(ctx, c.database)
		switch {
		case sqlState(err) == stateInvalidCatalog:
			m, err := c.connect(ctx, c.maintenanceDB)
			if err != nil {
				return fmt.Errorf("database %s does not exist; connect to maintenance database %s to create it: %w", c.database, c.maintenanceDB, err)
			}
			defer m.close()
			if serverNum, _, err = m.serverVersion(ctx); err != nil {
				return err
			}
			logf("creating database %s", c.database)
			if err := createDatabase(ctx, m, c.database, c.user); err != nil && sqlState(err) != stateDuplicateDatabase {
				return err
			}
			clean = false
		case err != nil:
			return fmt.Errorf("connect: %w", err)
		default:
			serverNum, _, err = s.serverVersion(ctx)
			s.close()
			if err != nil {
				return err
			}
		}
	}
	return d.runRestore(ctx, c, r, serverNum, clean, logf)
}

// runRestore feeds r to pg_restore into c.database.
func (d *Driver) runRestore(ctx context.Context, c conf, r io.Reader, serverNum int, clean bool, logf func(string, ...any)) error {
	pgRestore, err := d.findTool(ctx, "pg_restore", serverNum)
	if err != nil {
		return err
	}
	args := append(c.connArgs(c.database), "--no-owner", "--no-acl", "--single-transaction", "--exit-on-error")
	if clean {
		args = append(args, "--clean", "--if-exists")
	}
	logf("restoring into %s with pg_restore %s (%s)", c.where(), versionName(pgRestore.version), pgRestore.path)
	return proc.Cmd{
		Path: pgRestore.path,
		Args: args,
		Env:  c.toolEnv(),
		Drop: dropEnv,
		Logf: c.toolLog(func(line string) { logf("%s", line) }),
	}.RunFeed(ctx, r)
}

// stateInsufficientPrivilege is the SQLSTATE of a refused privilege.
const stateInsufficientPrivilege = "42501"

// createDatabase creates db from template0, so nothing of template1 can
// clash with the archive. A refusal says that role (the user connected
// as) needs CREATEDB.
func createDatabase(ctx context.Context, m *session, db, role string) error {
	_, err := m.conn.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(db)+" TEMPLATE template0")
	switch {
	case sqlState(err) == stateInsufficientPrivilege:
		return fmt.Errorf("create database %s: role %s may not create databases: give it CREATEDB (ALTER ROLE %s CREATEDB) or connect as a role that has it: %w",
			db, quoteIdent(role), quoteIdent(role), err)
	case err != nil:
		return fmt.Errorf("create database %s: %w", db, err)
	}
	return nil
}

// dropDatabase drops db if it exists, ending its sessions.
func dropDatabase(ctx context.Context, m *session, db string, serverNum int) error {
	if serverNum >= 130000 {
		if _, err := m.conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(db)+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", db, err)
		}
		return nil
	}
	// Before PostgreSQL 13: end the sessions, then drop.
	if _, err := m.conn.ExecContext(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "+quoteLiteral(db)+" AND pid <> pg_backend_pid()"); err != nil {
		return fmt.Errorf("end sessions of database %s: %w", db, err)
	}
	if _, err := m.conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(db)); err != nil {
		return fmt.Errorf("drop database %s: %w", db, err)
	}
	return nil
}
