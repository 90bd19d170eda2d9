package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/dataguardian/dataguardian/drivers"
)

// Verify restores the archive in r into a new database opts.Database on the
// server of src, checks it against md and drops it again unless opts.Keep.
//
// opts.Database must be 1 to 63 characters of [a-z0-9_] and must not exist:
// Verify never touches a database it did not create. The checks: every
// table of md.TableRows is present with the same row count, and no other
// table is there. For metadata without table_rows (older backups) only the
// number of tables is compared with md.TablesBackedUp.
//
// The temporary database is dropped (WITH (FORCE), on a connection of its
// own that ctx's cancellation does not end, within a minute) on every path
// once Verify may have created it — failed restore and cancellation
// included — unless opts.Keep is set. A report with OK false is not an
// error; an error means the verification could not be carried out.
func (d *Driver) Verify(ctx context.Context, src drivers.Source, r io.Reader, md drivers.Metadata, opts *drivers.VerifyOptions) (rep *drivers.VerifyReport, err error) {
	if opts == nil || !verifyName.MatchString(opts.Database) {
		name := ""
		if opts != nil {
			name = opts.Database
		}
		return nil, fmt.Errorf("verify postgres: %w: verification database name %q must be 1 to 63 characters of a-z, 0-9 and _", drivers.ErrInvalidSource, name)
	}
	c, err := parseSource(src)
	if err != nil {
		return nil, fmt.Errorf("verify postgres: %w", err)
	}
	logf := func(format string, a ...any) {
		if opts.Logf != nil {
			opts.Logf(format, a...)
		}
	}
	tc := c
	tc.database = opts.Database
	rep, err = d.verify(ctx, c, tc, r, md, opts.Keep, logf)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return rep, c.redactErr(fmt.Errorf("verify postgres %s: %w", tc.where(), err))
	}
	return rep, nil
}

func (d *Driver) verify(ctx context.Context, c, tc conf, r io.Reader, md drivers.Metadata, keep bool, logf func(string, ...any)) (rep *drivers.VerifyReport, err error) {
	m, err := c.connect(ctx, c.maintenanceDB)
	if err != nil {
		return nil, fmt.Errorf("connect to maintenance database %s: %w", c.maintenanceDB, err)
	}
	defer m.close()
	serverNum, _, err := m.serverVersion(ctx)
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := m.conn.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = "+quoteLiteral(tc.database)+")").Scan(&exists); err != nil {
		return nil, fmt.Errorf("look up database %s: %w", tc.database, err)
	}
	if exists {
		return nil, fmt.Errorf("%w: verification database %s already exists: drop it or verify under another name", drivers.ErrInvalidSource, tc.database)
	}

	// From here on the database may exist: drop it on the way out.
	drop := !keep
	defer func() {
		if drop {
			dropped, dropErr := c.dropVerification(ctx, tc.database, serverNum)
			if dropErr != nil {
				err = errors.Join(err, dropErr)
				if rep != nil {
					rep.Problems = append(rep.Problems, dropErr.Error())
				}
				return
			}
			if dropped {
				logf("dropped verification database %s", tc.database)
			}
		}
	}()
	logf("creating verification database %s", tc.database)
	if err := createDatabase(ctx, m, tc.database, c.user); err != nil {
		if sqlState(err) == stateDuplicateDatabase {
			// Created by someone else in between: not ours to drop.
			drop = false
		}
		return nil, err
	}
	if err := d.runRestore(ctx, tc, r, serverNum, false, logf); err != nil {
		return nil, err
	}
	rep, err = check(ctx, tc, md)
	if err != nil {
		return nil, err
	}
	rep.Kept = keep
	if keep {
		logf("kept verification database %s", tc.database)
	}
	return rep, nil
}

// dropVerification drops the verification database db, if it exists, on
// a fresh maintenance connection, whatever the state of ctx. It reports
// whether there was one to drop.
func (c conf) dropVerification(ctx context.Context, db string, serverNum int) (bool, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dropTimeout)
	defer cancel()
	m, err := c.connect(ctx, c.maintenanceDB)
	if err != nil {
		return false, fmt.Errorf("drop verification database %s: connect: %w", db, err)
	}
	defer m.close()
	var exists bool
	if err := m.conn.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = "+quoteLiteral(db)+")").Scan(&exists); err != nil {
		return false, fmt.Errorf("drop verification database %s: look it up: %w", db, err)
	}
	if !exists { // never created: CREATE DATABASE failed or never ran
		return false, nil
	}
	return true, dropDatabase(ctx, m, db, serverNum)
}

// check compares the restored database tc with md.
func check(ctx context.Context, tc conf, md drivers.Metadata) (*drivers.VerifyReport, error) {
	s, err := tc.connect(ctx, tc.database)
	if err != nil {
		return nil, fmt.Errorf("connect to the restored copy: %w", err)
	}
	defer s.close()
	tables, err := listTables(ctx, s)
	if err != nil {
		return nil, err
	}
	rep := &drivers.VerifyReport{Database: tc.database, OK: true}
	found := make(map[string]bool, len(tables))
	for _, t := range tables {
		n, err := countRows(ctx, s, t)
		if err != nil {
			return nil, err
		}
		name := t.name()
		found[name] = true
		tcheck := drivers.TableCheck{Table: name, Rows: n, ExpectedRows: -1, OK: true}
		if len(md.TableRows) > 0 {
			want, ok := md.TableRows[name]
			switch {
			case !ok:
				tcheck.OK = false
				rep.Problems = append(rep.Problems, fmt.Sprintf("table %s (%d rows) is not in the backup metadata", name, n))
			case want != n:
				tcheck.ExpectedRows = want
				tcheck.OK = false
				rep.Problems = append(rep.Problems, fmt.Sprintf("table %s has %d rows, the backup recorded %d", name, n, want))
			default:
				tcheck.ExpectedRows = want
			}
		}
		rep.Tables = append(rep.Tables, tcheck)
	}
	for name, want := range md.TableRows {
		if !found[name] {
			rep.Tables = append(rep.Tables, drivers.TableCheck{Table: name, Rows: 0, ExpectedRows: want, OK: false})
			rep.Problems = append(rep.Problems, fmt.Sprintf("table %s (%d rows in the backup) is missing", name, want))
		}
	}
	if len(md.TableRows) == 0 && len(tables) != md.TablesBackedUp {
		rep.Problems = append(rep.Problems, fmt.Sprintf("the restored copy has %d tables, the backup recorded %d", len(tables), md.TablesBackedUp))
	}
	sort.Slice(rep.Tables, func(i, j int) bool { return rep.Tables[i].Table < rep.Tables[j].Table })
	sort.Strings(rep.Problems)
	rep.OK = len(rep.Problems) == 0
	return rep, nil
}
