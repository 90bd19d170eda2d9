package mysql

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/internal/proc"
)

// dumpArgs are the arguments of the dump tool after --defaults-file.
func dumpArgs(t tools, database string) []string {
	args := []string{
		"--single-transaction", // one consistent InnoDB snapshot, without locking
		"--routines",
		"--triggers",
		"--events",
		"--hex-blob", // binary values as 0x..., safe in any client charset
		"--default-character-set=utf8mb4",
		"--no-tablespaces", // no PROCESS privilege needed (MySQL 8.0.21+)
	}
	if !t.mariadb {
		// Oracle mysqldump: no GTID_PURGED line that needs SUPER to
		// restore, no column statistics a MariaDB server cannot give.
		args = append(args, "--set-gtid-purged=OFF", "--column-statistics=0")
	}
	// One database, without --databases: no CREATE DATABASE or USE in the
	// script, so it restores into a database of any name. "--" ends the
	// options, so a database name cannot be taken for one.
	return append(args, "--", database)
}

// Dump writes src.Database as a SQL script to w with mariadb-dump (or
// mysqldump when mariadb-dump is not installed), streamed from its stdout.
//
// The dump is one transaction (--single-transaction): a consistent snapshot
// of InnoDB tables that does not block writers. It holds the tables,
// views, routines, triggers and events of the one database, binary values
// in hex, in utf8mb4, and no CREATE DATABASE or USE statement: it restores
// into a database of any name.
//
// The metadata's TableRows and RowsApproximate are counted in the script
// itself as it streams by, so they describe exactly the snapshot the dump
// holds even when the database is written meanwhile; tables are keyed by
// their bare name (a dump holds one database). The connection settings reach
// the tool in a 0600 option file, never in its arguments.
//
// The database's default character set and collation are recorded in the
// metadata ("charset", "collation") and in a comment line after the
// script's header ("-- DataGuardian: database CHARACTER SET latin1 COLLATE
// latin1_swedish_ci"), from which Restore creates the database alike.
func (d *Driver) Dump(ctx context.Context, src drivers.Source, w io.Writer, opts *drivers.DumpOptions) (md drivers.Metadata, err error) {
	c, err := checkSource(src, true)
	if err != nil {
		return md, fmt.Errorf("dump mysql: %w", err)
	}
	defer func() { err = redacted(err, c.password) }()
	t, err := d.findTool(ctx, "mariadb-dump", "mysqldump")
	if err != nil {
		return md, fmt.Errorf("dump mysql %s: %w", c, err)
	}

	// The server version, and a first check that the credentials work,
	// which gives a clearer error than the tool's.
	db, err := d.open(c, c.database)
	if err != nil {
		return md, fmt.Errorf("dump mysql %s: %w", c, err)
	}
	defer db.Close()
	ver, raw, err := version(ctx, db)
	if err != nil {
		return md, ctxErr(ctx, fmt.Errorf("dump mysql %s: connect: %w", c, err))
	}
	var charset, collation string
	err = db.QueryRowContext(ctx, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", c.database).Scan(&charset, &collation)
	if err != nil {
		return md, ctxErr(ctx, fmt.Errorf("dump mysql %s: read the database's character set: %w", c, err))
	}
	db.Close()

	opt, remove, err := optionFile(c, t)
	if err != nil {
		return md, fmt.Errorf("dump mysql %s: %w", c, err)
	}
	defer remove()
	var note []byte
	if noteRE.Match(charsetNote(charset, collation)) { // names Restore can read back
		note = charsetNote(charset, collation)
	}
	counter := newRowCounter(&noteWriter{w: w, note: note})
	logf := func(format string, args ...any) {
		d.logger().Info(fmt.Sprintf(format, args...), "database", c.database)
		opts.Log(format, args...)
	}
	start := time.Now()
	err = proc.Cmd{
		Path:   t.path,
		Args:   append([]string{"--defaults-file=" + opt}, dumpArgs(t, c.database)...),
		Drop:   clientEnv,
		Stdout: counter,
		Logf:   logf,
		// mariadb-dump writes 4 KiB at a time through stdio: a 1 MiB
		// buffer saves a tenth of the backup's CPU (see proc).
		BufferStdout: true,
	}.Run(ctx)
	if err != nil {
		return md, ctxErr(ctx, fmt.Errorf("dump mysql %s: %w", c, err))
	}
	if counter.state != stHead || len(counter.head) != 0 {
		// mariadb-dump ends its script with a newline ("-- Dump completed").
		return md, fmt.Errorf("dump mysql %s: %s ended in the middle of a line", c, t.path)
	}
	md = drivers.Metadata{
		DatabaseVersion: ver,
		TablesBackedUp:  len(counter.tables),
		TableRows:       counter.rows,
		Extra: map[string]any{
			"database":       c.database,
			"server_version": raw,
			"dump_tool":      t.path,
			"charset":        charset,
			"collation":      collation,
		},
	}
	for _, n := range counter.rows {
		md.RowsApproximate += n
	}
	d.logger().Debug("dump done", "database", c.database, "tables", md.TablesBackedUp, "rows", md.RowsApproximate, "elapsed", time.Since(start))
	return md, nil
}
