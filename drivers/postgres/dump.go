package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/internal/proc"
)

// Dump streams a pg_dump custom-format archive (uncompressed: DataGuardian
// compresses) of src to w, without a temporary file.
//
// The archive and the returned metadata describe the same snapshot: Dump
// opens a REPEATABLE READ READ ONLY transaction, exports its snapshot, runs
// pg_dump --snapshot on it and, meanwhile, counts the rows of every table in
// that transaction, which stays open until pg_dump has finished. The counts
// land in Metadata.TableRows, which Verify checks a restored copy against.
//
// The password reaches pg_dump through PGPASSWORD in its environment only.
// A non-zero exit is an error carrying pg_dump's message (matching
// proc.ErrToolFailed); cancelling ctx kills pg_dump's process group and
// returns an error matching ctx.Err().
func (d *Driver) Dump(ctx context.Context, src drivers.Source, w io.Writer, opts *drivers.DumpOptions) (drivers.Metadata, error) {
	c, err := parseSource(src)
	if err != nil {
		return drivers.Metadata{}, fmt.Errorf("dump postgres: %w", err)
	}
	md, err := d.dump(ctx, c, w, opts)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return drivers.Metadata{}, c.redactErr(fmt.Errorf("dump postgres %s: %w", c.where(), err))
	}
	return md, nil
}

// dump runs pg_dump and the row counting side by side. When one of them
// fails, the other is stopped with that failure as the cause, and the
// failure, not the cancellation it caused, is what dump returns: a dump is
// "cancelled" only when the caller's ctx is.
func (d *Driver) dump(parent context.Context, c conf, w io.Writer, opts *drivers.DumpOptions) (md drivers.Metadata, err error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	s, err := c.connect(ctx, c.database)
	if err != nil {
		return md, fmt.Errorf("connect: %w", err)
	}
	defer s.close()
	serverNum, version, err := s.serverVersion(ctx)
	if err != nil {
		return md, err
	}
	pgDump, err := d.findTool(ctx, "pg_dump", serverNum)
	if err != nil {
		return md, err
	}
	if _, err := s.conn.ExecContext(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return md, fmt.Errorf("begin snapshot transaction: %w", err)
	}
	// Ending the transaction releases the snapshot; closing the session
	// would too, but say it (unless ctx's end has closed the connection).
	defer func() {
		if ctx.Err() == nil {
			s.conn.ExecContext(ctx, "ROLLBACK") //nolint:errcheck // read only
		}
	}()
	var snapshot string
	if err := s.conn.QueryRowContext(ctx, "SELECT pg_export_snapshot()").Scan(&snapshot); err != nil {
		return md, fmt.Errorf("export snapshot: %w", err)
	}

	out := &firstErrWriter{w: w}
	log := d.logger()
	args := append(c.connArgs(c.database), "--format=custom", "--compress=0", "--snapshot="+snapshot)
	cmd := proc.Cmd{
		Path:   pgDump.path,
		Args:   args,
		Env:    c.toolEnv(),
		Drop:   dropEnv,
		Stdout: out,
		Logf:   c.toolLog(func(line string) { log.Info(line, "database", c.where()); opts.Log("%s", line) }),
	}
	dumped := make(chan error, 1)
	go func() {
		err := cmd.Run(ctx)
		if err != nil {
			cancel(err) // stop the counting too
		}
		dumped <- err
	}()
	md, mdErr := describe(ctx, s)
	if mdErr != nil {
		cancel(mdErr) // stop pg_dump too
	}
	dumpErr := <-dumped
	switch {
	case out.err() != nil:
		return md, fmt.Errorf("write archive: %w", out.err())
	case parent.Err() != nil && (dumpErr != nil || mdErr != nil):
		return md, fmt.Errorf("%w (%v)", parent.Err(), cmp.Or(dumpErr, mdErr))
	case dumpErr != nil || mdErr != nil:
		// The first failure; the other one is the cancellation it caused.
		return md, context.Cause(ctx)
	}
	md.DatabaseVersion = version
	return md, nil
}

// tablesQuery lists the user tables (partitions included, partitioned
// parents and extension-owned tables not: their rows are counted once,
// where pg_dump dumps them).
const tablesQuery = `SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2`

// describe counts the rows of every user table in the session's snapshot.
func describe(ctx context.Context, s *session) (md drivers.Metadata, err error) {
	tables, err := listTables(ctx, s)
	if err != nil {
		return md, err
	}
	md.TableRows = make(map[string]int64, len(tables))
	for _, t := range tables {
		n, err := countRows(ctx, s, t)
		if err != nil {
			return md, err
		}
		md.TableRows[t.name()] = n
		md.RowsApproximate += n
	}
	md.TablesBackedUp = len(tables)
	return md, nil
}

// table is a schema-qualified table.
type table struct{ schema, rel string }

func (t table) name() string   { return t.schema + "." + t.rel }
func (t table) quoted() string { return quoteIdent(t.schema) + "." + quoteIdent(t.rel) }

func listTables(ctx context.Context, s *session) ([]table, error) {
	rows, err := s.conn.QueryContext(ctx, tablesQuery)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	var out []table
	for rows.Next() {
		var t table
		if err := rows.Scan(&t.schema, &t.rel); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return out, nil
}

func countRows(ctx context.Context, s *session, t table) (int64, error) {
	var n int64
	if err := s.conn.QueryRowContext(ctx, "SELECT count(*) FROM "+t.quoted()).Scan(&n); err != nil {
		return 0, fmt.Errorf("count rows of %s: %w", t.name(), err)
	}
	return n, nil
}

// firstErrWriter remembers the first error of w, so a failing destination
// is reported as itself rather than as pg_dump's "broken pipe".
type firstErrWriter struct {
	w   io.Writer
	mu  sync.Mutex
	got error
}

func (f *firstErrWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		f.mu.Lock()
		if f.got == nil {
			f.got = err
		}
		f.mu.Unlock()
	}
	return n, err
}

func (f *firstErrWriter) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got
}
