package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/internal/proc"
)

// sandboxLine starts the first line of a mariadb-dump 10.11.8+ script.
const sandboxLine = "/*M!999999\\- enable the sandbox mode */"

// headSize is how much of the stream Restore reads and checks before it
// changes anything.
const headSize = 64 << 10

// MySQL error numbers the driver tells apart.
const (
	errDBCreateExists = 1007 // ER_DB_CREATE_EXISTS
	errAccessDenied   = 1045 // ER_ACCESS_DENIED_ERROR
	errDBAccessDenied = 1044 // ER_DBACCESS_DENIED_ERROR
	errAccessDeniedNo = 1698 // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
)

// readHead reads the first bytes of a dump and checks that they start a
// mariadb-dump or mysqldump script. It returns a reader of the whole stream
// and the character set and collation its note records ("" for none).
func readHead(ctx context.Context, r io.Reader) (io.Reader, dbCharset, error) {
	head := make([]byte, headSize)
	n, err := io.ReadFull(r, head)
	head = head[:n]
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		r = eofReader{}
	case err != nil:
		return nil, dbCharset{}, fmt.Errorf("read backup: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, dbCharset{}, err
	}
	if bytes.HasPrefix(head, []byte(sandboxLine)) {
		// mariadb-dump 10.11.8+ starts with a sandbox-mode line that the
		// mysql client and older mariadb clients reject. The client runs
		// with --binary-mode, which already refuses the commands (\! and
		// the like) sandbox mode blocks, so the line is dropped.
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			head = head[i+1:]
		}
	}
	if !bytes.HasPrefix(head, []byte("-- MariaDB dump")) && !bytes.HasPrefix(head, []byte("-- MySQL dump")) {
		return nil, dbCharset{}, errors.New("read backup: the stream is not a mariadb-dump or mysqldump SQL script (no \"-- MariaDB dump\" or \"-- MySQL dump\" header)")
	}
	var cs dbCharset
	cs.charset, cs.collation = readNote(head)
	return io.MultiReader(bytes.NewReader(head), r), cs, nil
}

// dbCharset is a database's default character set and collation.
type dbCharset struct{ charset, collation string }

// createClause is the CHARACTER SET and COLLATE of a CREATE DATABASE:
// cs, else utf8mb4 and its default collation.
func (cs dbCharset) createClause() string {
	if cs.charset == "" {
		return " CHARACTER SET utf8mb4"
	}
	q := " CHARACTER SET " + quoteIdent(cs.charset)
	if cs.collation != "" {
		q += " COLLATE " + quoteIdent(cs.collation)
	}
	return q
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// Restore runs the SQL script r holds (a Dump of this driver) into
// target.Database with the mariadb client (or mysql when mariadb is not
// installed), reading it from stdin.
//
// Before it changes anything, Restore reads the head of the stream and
// checks that it is a mariadb-dump/mysqldump script. With opts.Recreate it
// then drops the target database and creates it again; a missing target
// database is created. A database Restore creates gets the default
// character set and collation of the backup's database (recorded by Dump;
// for older backups, those the target had, or utf8mb4); an existing
// database restored into keeps its own. Without Recreate, the script
// replaces, in the existing database (created when missing), the tables,
// views, routines, triggers and events it contains; other objects stay.
//
// MySQL cannot swap a database atomically: a restore that fails or is
// cancelled half way leaves the tables restored so far. The engine checks
// every part's checksum before Restore starts, so that takes a server
// failure or a cancellation. The client stops at the first failing
// statement; its message is in the error. Restoring views, routines and
// triggers whose DEFINER is another account needs the SUPER (MariaDB) or
// SET_USER_ID (MySQL) privilege.
func (d *Driver) Restore(ctx context.Context, target drivers.Source, r io.Reader, opts *drivers.RestoreOptions) (err error) {
	c, err := checkSource(target, true)
	if err != nil {
		return fmt.Errorf("restore mysql: %w", err)
	}
	defer func() { err = redacted(err, c.password) }()
	t, err := d.findTool(ctx, "mariadb", "mysql")
	if err != nil {
		return fmt.Errorf("restore mysql %s: %w", c, err)
	}
	r, cs, err := readHead(ctx, r)
	if err != nil {
		return ctxErr(ctx, fmt.Errorf("restore mysql %s: %w", c, err))
	}
	if err := d.prepare(ctx, c, opts != nil && opts.Recreate, cs, opts.Log); err != nil {
		return ctxErr(ctx, fmt.Errorf("restore mysql %s: %w", c, err))
	}
	if err := d.runClient(ctx, c, t, r, opts.Log); err != nil {
		return ctxErr(ctx, fmt.Errorf("restore mysql %s: %w", c, err))
	}
	opts.Log("restore mysql: restored into %s", c.database)
	return nil
}

// prepare creates the target database when missing, or drops and creates
// it again when recreate is set, with the character set and collation of
// the backup (cs), else those it had, else utf8mb4.
func (d *Driver) prepare(ctx context.Context, c conn, recreate bool, cs dbCharset, logf func(string, ...any)) error {
	db, err := d.open(c, "")
	if err != nil {
		return err
	}
	defer db.Close()
	var had dbCharset
	err = db.QueryRowContext(ctx, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", c.database).Scan(&had.charset, &had.collation)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("look up database: %w", err)
	}
	if cs.charset == "" { // a backup without the note
		cs = had
	}
	if recreate && exists {
		logf("restore mysql: dropping database %s", c.database)
		if _, err := db.ExecContext(ctx, "DROP DATABASE "+quoteIdent(c.database)); err != nil {
			return fmt.Errorf("drop database: %w", err)
		}
	}
	if !exists || recreate {
		q := "CREATE DATABASE IF NOT EXISTS " + quoteIdent(c.database) + cs.createClause()
		logf("restore mysql: creating database %s%s", c.database, cs.createClause())
		if _, err := db.ExecContext(ctx, q); err != nil {
			return createErr(c, c.database, err, "")
		}
	}
	return nil
}

// runClient feeds r to the client tool connected to c.database and, once
// the tool succeeded, makes sure r was read to its end.
func (d *Driver) runClient(ctx context.Context, c conn, t tools, r io.Reader, logf func(string, ...any)) error {
	opt, remove, err := optionFile(c, t)
	if err != nil {
		return err
	}
	defer remove()
	err = proc.Cmd{
		Path: t.path,
		Args: []string{
			"--defaults-file=" + opt,
			"--default-character-set=utf8mb4",
			"--binary-mode", // no client commands but DELIMITER, NUL bytes kept
			"--batch",
			"--max-allowed-packet=1073741824", // the longest INSERT a dump can hold
			"--database=" + c.database,
		},
		Drop:  clientEnv,
		Stdin: r,
		Logf:  logf,
	}.Run(ctx)
	if err != nil {
		return err
	}
	// The client reads to EOF; a reader error at the very end (a checksum
	// checked at EOF) must still fail the restore.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("read backup: %w", err)
	}
	return ctx.Err()
}

// validVerifyName is what Verify accepts as a temporary database name.
var validVerifyName = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// Verify restores the dump r holds into a new database opts.Database on the
// server of src, checks that it holds exactly the tables of md with
// md.TableRows rows each, and drops it unless opts.Keep.
//
// The name must match [a-z0-9_]{1,64}; an existing database of that name
// is refused, never overwritten. The temporary database is dropped on
// every path, failures and cancellation included (with a fresh one-minute
// deadline), unless opts.Keep is set.
//
// Dump counts rows in the script itself, so the expected counts are those
// of the snapshot the dump holds, and a restored copy must match them
// exactly even when the source was written during the backup: any
// difference, missing table or unexpected table is a problem. Backups
// whose metadata has no table_rows are checked for their table count
// only (ExpectedRows -1).
func (d *Driver) Verify(ctx context.Context, src drivers.Source, r io.Reader, md drivers.Metadata, opts *drivers.VerifyOptions) (rep *drivers.VerifyReport, err error) {
	if opts == nil {
		opts = &drivers.VerifyOptions{}
	}
	logf := func(format string, args ...any) {
		if opts.Logf != nil {
			opts.Logf(format, args...)
		}
	}
	name := opts.Database
	if !validVerifyName.MatchString(name) {
		return nil, fmt.Errorf("verify mysql: %w: verification database name %q must be 1 to 64 of a-z, 0-9 and _", drivers.ErrInvalidSource, name)
	}
	src.Database = name
	c, err := checkSource(src, true)
	if err != nil {
		return nil, fmt.Errorf("verify mysql: %w", err)
	}
	defer func() { err = redacted(err, c.password) }()
	t, err := d.findTool(ctx, "mariadb", "mysql")
	if err != nil {
		return nil, fmt.Errorf("verify mysql %s: %w", c, err)
	}
	r, cs, err := readHead(ctx, r)
	if err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("verify mysql %s: %w", c, err))
	}
	rep = &drivers.VerifyReport{Database: name}

	admin, err := d.open(c, "")
	if err != nil {
		return nil, fmt.Errorf("verify mysql %s: %w", c, err)
	}
	defer admin.Close()
	_, err = admin.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(name)+cs.createClause())
	if merr := (*mysql.MySQLError)(nil); errors.As(err, &merr) && merr.Number == errDBCreateExists {
		return nil, fmt.Errorf("verify mysql %s: database %s already exists: choose another verification database name or drop it", c, name)
	}
	if err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("verify mysql %s: %w", c, createErr(c, name, err, "and DROP, to remove it again")))
	}
	logf("verify mysql: created database %s", name)
	defer func() {
		if opts.Keep {
			rep.Kept = true
			logf("verify mysql: keeping database %s", name)
			return
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if _, derr := admin.ExecContext(dctx, "DROP DATABASE IF EXISTS "+quoteIdent(name)); derr != nil {
			err = errors.Join(err, fmt.Errorf("verify mysql %s: drop database %s: %w", c, name, derr))
			return
		}
		logf("verify mysql: dropped database %s", name)
	}()

	if err := d.runClient(ctx, c, t, r, logf); err != nil {
		return rep, ctxErr(ctx, fmt.Errorf("verify mysql %s: %w", c, err))
	}
	got, err := countRows(ctx, admin, name)
	if err != nil {
		return rep, ctxErr(ctx, fmt.Errorf("verify mysql %s: %w", c, err))
	}
	check(rep, md, got)
	logf("verify mysql: %d tables checked, ok=%v", len(rep.Tables), rep.OK)
	return rep, nil
}

// check fills rep from the expected metadata and the counted rows.
func check(rep *drivers.VerifyReport, md drivers.Metadata, got map[string]int64) {
	rep.Tables, rep.Problems = nil, nil
	if len(md.TableRows) == 0 {
		for _, name := range sortedKeys(got) {
			rep.Tables = append(rep.Tables, drivers.TableCheck{Table: name, Rows: got[name], ExpectedRows: -1, OK: true})
		}
		if len(got) != md.TablesBackedUp {
			rep.Problems = append(rep.Problems, fmt.Sprintf("restored %d tables, the backup has %d", len(got), md.TablesBackedUp))
		}
		rep.OK = len(rep.Problems) == 0
		return
	}
	for _, name := range sortedKeys(md.TableRows) {
		want := md.TableRows[name]
		n, ok := got[name]
		tc := drivers.TableCheck{Table: name, Rows: n, ExpectedRows: want, OK: ok && n == want}
		switch {
		case !ok:
			rep.Problems = append(rep.Problems, fmt.Sprintf("table %s is missing", name))
		case n != want:
			rep.Problems = append(rep.Problems, fmt.Sprintf("table %s has %d rows, the backup has %d", name, n, want))
		}
		rep.Tables = append(rep.Tables, tc)
	}
	for _, name := range sortedKeys(got) {
		if _, ok := md.TableRows[name]; !ok {
			rep.Tables = append(rep.Tables, drivers.TableCheck{Table: name, Rows: got[name], ExpectedRows: -1})
			rep.Problems = append(rep.Problems, fmt.Sprintf("table %s is not in the backup metadata", name))
		}
	}
	rep.OK = len(rep.Problems) == 0
}

// countRows counts the rows of every base table of database.
func countRows(ctx context.Context, db *sql.DB, database string) (map[string]int64, error) {
	rows, err := db.QueryContext(ctx, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME", database)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list tables: %w", err)
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	out := make(map[string]int64, len(names))
	for _, n := range names {
		var count int64
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quoteIdent(database)+"."+quoteIdent(n)).Scan(&count); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", n, err)
		}
		out[n] = count
	}
	return out, nil
}

// createErr is the error of a CREATE DATABASE of database that failed
// with err; a refusal says the account needs the CREATE privilege (and
// what else, when also is set).
func createErr(c conn, database string, err error, also string) error {
	if merr := (*mysql.MySQLError)(nil); errors.As(err, &merr) && (merr.Number == errDBAccessDenied || merr.Number == errAccessDenied) {
		if also != "" {
			also = " (" + also + ")"
		}
		return fmt.Errorf("create database %s: account %s may not create it: grant it the CREATE privilege%s: %w",
			database, c.user, also, err)
	}
	return fmt.Errorf("create database %s: %w", database, err)
}

// isAuth reports whether err is a MySQL access-denied error.
func isAuth(err error) bool {
	var merr *mysql.MySQLError
	if !errors.As(err, &merr) {
		return false
	}
	switch merr.Number {
	case errAccessDenied, errDBAccessDenied, errAccessDeniedNo:
		return true
	}
	return false
}

// describeErr adds a hint to an access-denied error.
func describeErr(err error) string {
	if isAuth(err) {
		return strings.TrimSpace(err.Error()) + ": check the username, password and grants"
	}
	return err.Error()
}
