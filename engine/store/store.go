package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dataguardian/dataguardian/engine/internal/storedb"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// StoreConfig selects the metadata database.
//
// URL forms:
//   - "" — SQLite in DefaultStorePath ("dataguardian.db" in the working
//     directory).
//   - "sqlite://PATH" (e.g. "sqlite:///var/lib/dataguardian/meta.db" or
//     "sqlite://meta.db"), or a plain path ending in ".db", ".sqlite" or
//     ".sqlite3" — SQLite (pure Go, modernc.org/sqlite). The parent
//     directory is created if missing.
//   - "postgres://…" or "postgresql://…" — PostgreSQL (bun's pgdriver), any
//     DSN pgdriver accepts, e.g.
//     "postgres://dataguardian:secret@db:5432/dataguardian?sslmode=disable".
type StoreConfig struct {
	URL string
}

// DefaultStorePath is the SQLite file used when StoreConfig.URL is empty.
const DefaultStorePath = "dataguardian.db"

// DefaultMaxExecutionLogLines is how many log lines the Store keeps per
// execution; AppendExecutionLog deletes the oldest beyond it.
const DefaultMaxExecutionLogLines = 2000

// DefaultListLimit is the page size of List* calls whose Limit is 0.
const DefaultListLimit = 100

// Store is the metadata database: datasources, jobs, executions, health
// checks, notifications, settings. It is safe for concurrent use.
//
// Every method returns errors matching ErrNotFound for a missing row and
// ErrAlreadyExists (a *ConflictError) for a duplicate unique value.
type Store struct {
	db *bun.DB
	// read serves the List, Find and Get methods. On SQLite it is a pool of
	// query_only connections beside db's single one (see
	// storeTarget.openReader): WAL lets them read while db writes, so one
	// slow reader or a long write transaction does not queue every API list
	// behind it. Elsewhere it is db.
	read        *bun.DB
	url         string // redacted, for messages
	maxLogLines int
	clockFn     func() time.Time // nil: time.Now
}

// SetClock sets the clock of the Store's time checks (token expiry); nil
// means time.Now. Call it before the Store is used.
func (s *Store) SetClock(now func() time.Time) { s.clockFn = now }

// clock is the Store's current time, in UTC.
func (s *Store) clock() time.Time {
	if s.clockFn != nil {
		return s.clockFn().UTC()
	}
	return time.Now().UTC()
}

// Open opens the metadata database named by rawURL (see StoreConfig),
// checks that it answers and brings its schema up to date. Running it again
// on the same database is a no-op apart from the check; several processes
// may run it at once.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	target, err := parseStoreURL(rawURL)
	if err != nil {
		return nil, err
	}
	db, err := target.open()
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", target.display, err)
	}
	s := &Store{db: db, url: target.display, maxLogLines: DefaultMaxExecutionLogLines}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w (%s)", target.display, err, target.hint)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", target.display, err)
	}
	if s.read, err = target.openReader(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", target.display, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	err := s.db.Close()
	if s.read != s.db {
		err = errors.Join(err, s.read.Close())
	}
	return err
}

// DB returns the bun handle, for the packages under engine that keep
// their own tables in the metadata database (the queue) and for white-box
// tests; only they can name storedb.Key. Everything else goes through the
// Store's methods.
//
// On SQLite the pool has one connection (see storeTarget.open): code that
// holds a transaction must run every query of that goroutine on the
// transaction, or it waits for itself.
func (s *Store) DB(storedb.Key) *bun.DB { return s.db }

// DBError maps a database error to the store's sentinels: sql.ErrNoRows to
// ErrNotFound, a unique violation to a *ConflictError. Packages that keep
// their own tables in the store (the queue) return errors the same way.
func DBError(err error) error { return dbError(err) }

// String returns the store's URL without its password.
func (s *Store) String() string { return s.url }

// storeTarget is a parsed StoreConfig.URL.
type storeTarget struct {
	postgres bool
	dsn      string // what the driver gets
	display  string // for messages: no password
	hint     string // what to check when the database does not answer
	file     string // the SQLite database file; "" for PostgreSQL
}

func parseStoreURL(raw string) (storeTarget, error) {
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		u, err := url.Parse(raw)
		if err != nil {
			// url.Error repeats the URL, password included: drop it.
			return storeTarget{}, errors.New("parse store URL: not a valid postgres:// URL; " +
				"write it as postgres://USER:PASSWORD@HOST:5432/DATABASE?sslmode=disable, percent-encoding special characters")
		}
		// Times come back in the session time zone: ask for UTC unless the
		// URL chooses one.
		dsn := raw
		if q := u.Query(); !q.Has("timezone") && !q.Has("TimeZone") {
			q.Set("timezone", "UTC")
			c := *u
			c.RawQuery = q.Encode()
			dsn = c.String()
		}
		return storeTarget{
			postgres: true,
			dsn:      dsn,
			display:  redactURL(u),
			hint:     "check that PostgreSQL runs at " + u.Host + ", that the database exists and that the user and password in the store URL are right",
		}, nil
	case raw == "":
		return sqliteTarget(DefaultStorePath)
	case strings.HasPrefix(raw, "sqlite://"):
		return sqliteTarget(strings.TrimPrefix(raw, "sqlite://"))
	case strings.HasSuffix(raw, ".db"), strings.HasSuffix(raw, ".sqlite"), strings.HasSuffix(raw, ".sqlite3"):
		return sqliteTarget(raw)
	}
	return storeTarget{}, fmt.Errorf("unsupported store URL %q: use sqlite://PATH, a file path ending in .db, "+
		"or postgres://USER:PASSWORD@HOST:5432/DATABASE", redactString(raw))
}

// sqlitePragmas are set on every SQLite connection: WAL so readers never
// block the writer, a 10 s busy timeout for other processes sharing the
// file, foreign keys enforced, NORMAL sync (durable at checkpoints, safe
// with WAL), and BEGIN IMMEDIATE so a transaction takes the write lock up
// front instead of failing when it upgrades; times read back in UTC.
const sqlitePragmas = "_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)" +
	"&_pragma=synchronous(NORMAL)&_txlock=immediate&_timezone=UTC"

func sqliteTarget(path string) (storeTarget, error) {
	if path == "" {
		return storeTarget{}, errors.New("store URL sqlite:// has no path: write sqlite:///absolute/path.db or sqlite://relative.db")
	}
	if strings.ContainsAny(path, "?#") {
		return storeTarget{}, fmt.Errorf("store path %q contains ? or #: choose a file name without them", path)
	}
	return storeTarget{
		file:    path,
		dsn:     "file:" + path + "?" + sqlitePragmas,
		display: "sqlite://" + path,
		hint:    "check that the directory of " + path + " exists and is writable",
	}, nil
}

func (t storeTarget) open() (*bun.DB, error) {
	if t.postgres {
		connector, err := pgConnector(t.dsn)
		if err != nil {
			return nil, err
		}
		return bun.NewDB(sql.OpenDB(connector), pgdialect.New()), nil
	}
	path := strings.TrimPrefix(t.dsn[:strings.Index(t.dsn, "?")], "file:")
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create directory for the database: %w", err)
		}
	}
	sqldb, err := sql.Open("sqlite", t.dsn)
	if err != nil {
		return nil, err
	}
	// One connection: SQLite allows one writer at a time, and with several
	// pooled connections concurrent writers wait in the busy handler and
	// can still fail with SQLITE_BUSY under load. One connection
	// serialises this process's queries in Go instead (river recommends
	// the same). WAL still lets other processes read while we write. The
	// metadata queries are small, so losing parallel reads costs little.
	sqldb.SetMaxOpenConns(1)
	sqldb.SetMaxIdleConns(1)
	sqldb.SetConnMaxLifetime(0)
	sqldb.SetConnMaxIdleTime(0)
	return bun.NewDB(sqldb, sqlitedialect.New()), nil
}

// sqliteReaders bounds the read pool of a SQLite store.
const sqliteReaders = 4

// openReader returns the pool the Store's reads use: for SQLite, up to
// sqliteReaders connections to the same file with query_only set (a write
// through them fails instead of competing with db's writer); for
// PostgreSQL (already a pool) and an in-memory SQLite database (another
// connection would open another, empty, database), db itself.
func (t storeTarget) openReader(db *bun.DB) (*bun.DB, error) {
	if t.postgres || strings.HasPrefix(t.dsn, "file::memory:") {
		return db, nil
	}
	sqldb, err := sql.Open("sqlite", t.dsn+"&_pragma=query_only(1)")
	if err != nil {
		return nil, fmt.Errorf("open read connections: %w", err)
	}
	sqldb.SetMaxOpenConns(sqliteReaders)
	sqldb.SetMaxIdleConns(sqliteReaders)
	sqldb.SetConnMaxLifetime(0)
	sqldb.SetConnMaxIdleTime(0)
	return bun.NewDB(sqldb, sqlitedialect.New()), nil
}

// pgConnector builds pgdriver's connector. pgdriver panics on a DSN it
// cannot use (an unknown sslmode, a missing certificate file); the panic
// becomes an error.
func pgConnector(dsn string) (c *pgdriver.Connector, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("invalid postgres URL: %v", r)
		}
	}()
	return pgdriver.NewConnector(pgdriver.WithDSN(dsn), pgdriver.WithApplicationName("dataguardian")), nil
}

// redactURL returns u without its password (also a password= parameter).
func redactURL(u *url.URL) string {
	c := *u
	if q := c.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		c.RawQuery = q.Encode()
	}
	return c.Redacted()
}

// redactString hides what looks like a password in an unparsable URL.
func redactString(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return redactURL(u)
	}
	if at := strings.LastIndex(raw, "@"); at >= 0 {
		return "xxxxx" + raw[at:]
	}
	return raw
}

// ---------------------------------------------------------------------------
// Generic row helpers. Every model goes through these, so ID assignment,
// timestamps, not-found and duplicate mapping live in one place.

// now is the Store's clock: UTC, truncated to microseconds (PostgreSQL's
// precision), so a value read back equals the value written.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func typeOf(model any) reflect.Type { return reflect.TypeOf(model) }

// noun is the model's name for messages: "backup job", "execution".
func noun[T any](db bun.IDB) string {
	return strings.ReplaceAll(db.Dialect().Tables().Get(reflect.TypeFor[T]()).ModelName, "_", " ")
}

// stamp fills the bookkeeping columns of row before a write: on insert an
// empty string "id" gets a UUID and a zero "created_at" gets now; on insert
// and update "updated_at" gets now.
func stamp(db bun.IDB, row any, insert bool) {
	v := reflect.ValueOf(row).Elem()
	t := db.Dialect().Tables().Get(v.Type())
	ts := now()
	if insert {
		if f, ok := t.FieldMap["id"]; ok && f.IndirectType.Kind() == reflect.String {
			if fv := f.Value(v); fv.String() == "" {
				fv.SetString(uuid.NewString())
			}
		}
		if f, ok := t.FieldMap["created_at"]; ok {
			if fv := f.Value(v); fv.Interface().(time.Time).IsZero() {
				fv.Set(reflect.ValueOf(ts))
			}
		}
	}
	if f, ok := t.FieldMap["updated_at"]; ok {
		f.Value(v).Set(reflect.ValueOf(ts))
	}
}

// observed is implemented by the rows that record what other programs
// said (a tool's output, a server's error): checkText repairs their text
// instead of refusing it.
type observed interface{ observed() }

func (*Execution) observed()        {}
func (*ExecutionStorage) observed() {}
func (*ExecutionLog) observed()     {}
func (*HealthCheck) observed()      {}
func (*Notification) observed()     {}
func (*SyncExecution) observed()    {}

// checkText refuses a row whose text columns (strings, lists and maps of
// strings) hold a NUL byte or invalid UTF-8, which PostgreSQL cannot store
// and bun cannot quote: a *FieldError naming the column rather than a
// syntax error from the database. An observed row's text is repaired
// instead: NUL bytes dropped, invalid UTF-8 replaced by U+FFFD.
func checkText(db bun.IDB, row any) error {
	v := reflect.ValueOf(row).Elem()
	_, repair := row.(observed)
	bad := func(s string) bool { return strings.ContainsRune(s, 0) || !utf8.ValidString(s) }
	for _, f := range db.Dialect().Tables().Get(v.Type()).Fields {
		fv := f.Value(v)
		if fv.Kind() != reflect.String {
			found := false
			switch {
			case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
				for i := range fv.Len() {
					found = found || bad(fv.Index(i).String())
				}
			case fv.Kind() == reflect.Map && fv.Type().Key().Kind() == reflect.String && fv.Type().Elem().Kind() == reflect.String:
				for it := fv.MapRange(); it.Next() && !found; {
					found = bad(it.Key().String()) || bad(it.Value().String())
				}
			}
			if found {
				return InvalidField(f.Name, "%s holds a NUL byte or text that is not UTF-8: remove it", f.Name)
			}
			continue
		}
		switch s := fv.String(); {
		case !bad(s):
		case repair:
			fv.SetString(strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD"))
		default:
			return InvalidField(f.Name, "%s holds a NUL byte or text that is not UTF-8: remove it", f.Name)
		}
	}
	return nil
}

// insertRow inserts row after stamping it.
func insertRow[T any](ctx context.Context, db bun.IDB, row *T) error {
	stamp(db, row, true)
	if err := checkText(db, row); err != nil {
		return fmt.Errorf("create %s: %w", noun[T](db), err)
	}
	if _, err := db.NewInsert().Model(row).Exec(ctx); err != nil {
		return fmt.Errorf("create %s: %w", noun[T](db), dbError(err))
	}
	return nil
}

// upsertRow inserts row or, when a row with the same conflict columns
// exists, overwrites the other columns.
func upsertRow[T any](ctx context.Context, db bun.IDB, row *T, conflict ...string) error {
	stamp(db, row, true)
	if err := checkText(db, row); err != nil {
		return fmt.Errorf("put %s: %w", noun[T](db), err)
	}
	idents := make([]any, len(conflict))
	for i, c := range conflict {
		idents[i] = bun.Ident(c)
	}
	q := db.NewInsert().Model(row).
		On("CONFLICT ("+strings.Repeat("?, ", len(conflict)-1)+"?) DO UPDATE", idents...)
	for _, f := range db.Dialect().Tables().Get(reflect.TypeFor[T]()).Fields {
		if !slices.Contains(conflict, f.Name) && f.Name != "created_at" {
			q = q.Set("? = EXCLUDED.?", bun.Ident(f.Name), bun.Ident(f.Name))
		}
	}
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("put %s: %w", noun[T](db), dbError(err))
	}
	return nil
}

// getRow returns the row of T whose column equals value, or an error
// matching ErrNotFound.
func getRow[T any](ctx context.Context, db bun.IDB, column string, value any) (*T, error) {
	row := new(T)
	err := db.NewSelect().Model(row).Where("? = ?", bun.Ident(column), value).Limit(1).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("get %s %v: %w", noun[T](db), value, dbError(err))
	}
	return row, nil
}

// updateRow writes row (matched by primary key) after stamping updated_at.
// With columns it writes only those (and updated_at); without, every
// column but created_at. A row that does not exist gives ErrNotFound.
func updateRow[T any](ctx context.Context, db bun.IDB, row *T, columns ...string) error {
	stamp(db, row, false)
	if err := checkText(db, row); err != nil {
		return fmt.Errorf("update %s: %w", noun[T](db), err)
	}
	t := db.Dialect().Tables().Get(reflect.TypeFor[T]())
	q := db.NewUpdate().Model(row).WherePK()
	if len(columns) > 0 {
		if t.HasField("updated_at") && !slices.Contains(columns, "updated_at") {
			columns = append(slices.Clip(columns), "updated_at")
		}
		q = q.Column(columns...)
	} else if t.HasField("created_at") {
		q = q.ExcludeColumn("created_at")
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return fmt.Errorf("update %s: %w", noun[T](db), dbError(err))
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("update %s %s: %w", noun[T](db), pkString(db, row), ErrNotFound)
	}
	return nil
}

func pkString(db bun.IDB, row any) string {
	v := reflect.ValueOf(row).Elem()
	var parts []string
	for _, f := range db.Dialect().Tables().Get(v.Type()).PKs {
		parts = append(parts, fmt.Sprint(f.Value(v).Interface()))
	}
	return strings.Join(parts, "/")
}

// listRows runs q (a select on T) and returns its rows, never nil.
func listRows[T any](ctx context.Context, q *bun.SelectQuery) ([]T, error) {
	rows := []T{}
	if err := q.Model(&rows).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list %ss: %w", noun[T](q.DB()), dbError(err))
	}
	return rows, nil
}

// page applies Limit/Offset semantics shared by the List methods: limit 0
// means DefaultListLimit, a negative limit means no limit.
func page(q *bun.SelectQuery, limit, offset int) *bun.SelectQuery {
	if limit == 0 {
		limit = DefaultListLimit
	}
	if limit > 0 {
		q = q.Limit(int64(limit))
	}
	if offset > 0 {
		q = q.Offset(int64(offset))
	}
	return q
}

// dbError maps driver errors to the engine's sentinels: no rows →
// ErrNotFound, a unique violation → *ConflictError.
func dbError(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var pgErr pgdriver.Error
	if errors.As(err, &pgErr) && pgErr.Field('C') == "23505" {
		ce := &ConflictError{Table: pgErr.Field('t'), Err: err}
		// Detail reads `Key (name)=(value) already exists.`; keep the columns, not the value.
		if d := pgErr.Field('D'); strings.HasPrefix(d, "Key (") {
			if cols, _, ok := strings.Cut(d[len("Key ("):], ")="); ok {
				for c := range strings.SplitSeq(cols, ",") {
					ce.Columns = append(ce.Columns, strings.Trim(strings.TrimSpace(c), `"`))
				}
			}
		}
		return ce
	}
	var sqlErr *sqlite.Error
	if errors.As(err, &sqlErr) &&
		(sqlErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || sqlErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		ce := &ConflictError{Err: err}
		// Message reads `… UNIQUE constraint failed: table.a, table.b (2067)`.
		msg := sqlErr.Error()
		if i := strings.LastIndex(msg, "constraint failed: "); i >= 0 {
			list := msg[i+len("constraint failed: "):]
			if j := strings.LastIndex(list, " ("); j >= 0 {
				list = list[:j]
			}
			for c := range strings.SplitSeq(list, ",") {
				tbl, col, ok := strings.Cut(strings.TrimSpace(c), ".")
				if ok {
					ce.Table = tbl
					ce.Columns = append(ce.Columns, col)
				}
			}
		}
		return ce
	}
	return err
}

// ---------------------------------------------------------------------------
// Datasources, storage locations, backup jobs.

// CreateDatasource inserts ds, assigning its ID and timestamps; an empty
// Status becomes DatasourceUnknown.
func (s *Store) CreateDatasource(ctx context.Context, ds *Datasource) error {
	if ds.Status == "" {
		ds.Status = DatasourceUnknown
	}
	return insertRow(ctx, s.db, ds)
}

// GetDatasource returns the datasource with id.
func (s *Store) GetDatasource(ctx context.Context, id string) (*Datasource, error) {
	return getRow[Datasource](ctx, s.read, "id", id)
}

// ListDatasources returns every datasource, by name.
func (s *Store) ListDatasources(ctx context.Context) ([]Datasource, error) {
	return listRows[Datasource](ctx, s.read.NewSelect().Order("name", "id"))
}

// DatasourceFilter selects datasources. Empty fields match everything.
type DatasourceFilter struct {
	Type   string // e.g. "postgres"
	Status DatasourceStatus
	Limit  int // 0: DefaultListLimit; negative: no limit
	Offset int
}

// FindDatasources returns one page of the datasources matching f, by name.
// The database filters and pages (through the unique index on name), so a
// page costs the same with 50 datasources or 5,000; an API list should use
// it rather than filter ListDatasources.
func (s *Store) FindDatasources(ctx context.Context, f DatasourceFilter) ([]Datasource, error) {
	q := whereEqual(s.read.NewSelect(), "type", f.Type, "status", string(f.Status))
	return listRows[Datasource](ctx, page(q.Order("name", "id"), f.Limit, f.Offset))
}

// UpdateDatasource writes ds; with columns, only those (see updateRow).
func (s *Store) UpdateDatasource(ctx context.Context, ds *Datasource, columns ...string) error {
	return updateRow(ctx, s.db, ds, columns...)
}

// CreateStorageLocation inserts loc, assigning its ID and timestamps.
func (s *Store) CreateStorageLocation(ctx context.Context, loc *StorageLocation) error {
	return insertRow(ctx, s.db, loc)
}

// GetStorageLocation returns the storage location with id.
func (s *Store) GetStorageLocation(ctx context.Context, id string) (*StorageLocation, error) {
	return getRow[StorageLocation](ctx, s.read, "id", id)
}

// ListStorageLocations returns every storage location, by name.
func (s *Store) ListStorageLocations(ctx context.Context) ([]StorageLocation, error) {
	return s.FindStorageLocations(ctx, -1, 0)
}

// FindStorageLocations returns at most limit storage locations (0 means
// DefaultListLimit, negative no limit) after skipping offset, by name.
func (s *Store) FindStorageLocations(ctx context.Context, limit, offset int) ([]StorageLocation, error) {
	return listRows[StorageLocation](ctx, page(s.read.NewSelect().Order("name", "id"), limit, offset))
}

// UpdateStorageLocation writes loc; with columns, only those.
func (s *Store) UpdateStorageLocation(ctx context.Context, loc *StorageLocation, columns ...string) error {
	return updateRow(ctx, s.db, loc, columns...)
}

// CreateBackupJob inserts job, assigning its ID and timestamps.
func (s *Store) CreateBackupJob(ctx context.Context, job *BackupJob) error {
	return insertRow(ctx, s.db, job)
}

// GetBackupJob returns the backup job with id.
func (s *Store) GetBackupJob(ctx context.Context, id string) (*BackupJob, error) {
	return getRow[BackupJob](ctx, s.read, "id", id)
}

// ListBackupJobs returns every backup job, by name.
func (s *Store) ListBackupJobs(ctx context.Context) ([]BackupJob, error) {
	return listRows[BackupJob](ctx, s.read.NewSelect().Order("name", "id"))
}

// BackupJobFilter selects backup jobs. Empty fields match everything.
type BackupJobFilter struct {
	DatasourceID string
	// ExcludeSyncJobs leaves out the internal jobs of sync jobs (named
	// SyncBackupJobName(syncJobID)).
	ExcludeSyncJobs bool
	Limit           int // 0: DefaultListLimit; negative: no limit
	Offset          int
}

// FindBackupJobs returns one page of the backup jobs matching f, by name;
// the database filters and pages (index backup_jobs_name_id_idx).
func (s *Store) FindBackupJobs(ctx context.Context, f BackupJobFilter) ([]BackupJob, error) {
	q := whereEqual(s.read.NewSelect(), "datasource_id", f.DatasourceID)
	if f.ExcludeSyncJobs {
		prefix := SyncBackupJobName("")
		q = q.Where("substr(?, 1, ?) <> ?", bun.Ident("name"), len(prefix), prefix)
	}
	return listRows[BackupJob](ctx, page(q.Order("name", "id"), f.Limit, f.Offset))
}

// UpdateBackupJob writes job; with columns, only those.
func (s *Store) UpdateBackupJob(ctx context.Context, job *BackupJob, columns ...string) error {
	return updateRow(ctx, s.db, job, columns...)
}

// ---------------------------------------------------------------------------
// Executions.

// CreateExecution inserts e, assigning its ID and timestamps; an empty
// Operation becomes OperationBackup and an empty Status ExecutionQueued.
func (s *Store) CreateExecution(ctx context.Context, e *Execution) error {
	if e.Operation == "" {
		e.Operation = OperationBackup
	}
	if e.Status == "" {
		e.Status = ExecutionQueued
	}
	return insertRow(ctx, s.db, e)
}

// GetExecution returns the execution with id.
func (s *Store) GetExecution(ctx context.Context, id string) (*Execution, error) {
	return getRow[Execution](ctx, s.read, "id", id)
}

// UpdateExecution writes e; with columns (e.g. "status", "finished_at"),
// only those and updated_at.
func (s *Store) UpdateExecution(ctx context.Context, e *Execution, columns ...string) error {
	return updateRow(ctx, s.db, e, columns...)
}

// ExecutionFilter selects executions. Empty fields match everything.
type ExecutionFilter struct {
	JobID        string
	DatasourceID string
	Operation    Operation
	Status       ExecutionStatus
	Limit        int // 0: DefaultListLimit; negative: no limit
	Offset       int
}

// ListExecutions returns the executions matching f, newest first.
func (s *Store) ListExecutions(ctx context.Context, f ExecutionFilter) ([]Execution, error) {
	return listRows[Execution](ctx, f.query(s.read.NewSelect()))
}

// query adds f's filters, order and page to q.
func (f ExecutionFilter) query(q *bun.SelectQuery) *bun.SelectQuery {
	q = whereEqual(q, "job_id", f.JobID, "datasource_id", f.DatasourceID,
		"operation", string(f.Operation), "status", string(f.Status))
	return page(q.OrderExpr("created_at DESC, id DESC"), f.Limit, f.Offset)
}

// DatasourceBackups sums up one datasource's completed backups.
type DatasourceBackups struct {
	DatasourceID string           `bun:"datasource_id"`
	Name         string           `bun:"name"`
	Type         string           `bun:"type"`
	Status       DatasourceStatus `bun:"status"`
	Count        int              `bun:"n"`
	LastID       string           `bun:"id"`          // the newest completed backup
	LastAt       time.Time        `bun:"created_at"`  // when it was created
	LastFinished *time.Time       `bun:"finished_at"` // when it finished
}

// CompletedBackupsByDatasource returns, for each datasource with completed
// backups, by name, their count and the newest one. It is one query whose
// cost grows with the number of datasources, not of executions: per
// datasource, a count and a first entry over the (datasource_id,
// operation, status, created_at, id) index.
func (s *Store) CompletedBackupsByDatasource(ctx context.Context) ([]DatasourceBackups, error) {
	completed := func(col string) *bun.SelectQuery {
		return s.read.NewSelect().TableExpr("backup_executions AS y").ColumnExpr(col).
			Where("y.datasource_id = d.id").Where("y.operation = ?", string(OperationBackup)).
			Where("y.status = ?", string(ExecutionCompleted))
	}
	perDatasource := s.read.NewSelect().TableExpr("datasources AS d").
		ColumnExpr("d.id AS datasource_id, d.name, d.type, d.status").
		ColumnExpr("(?) AS n", completed("count(*)")).
		ColumnExpr("(?) AS last_id", completed("y.id").OrderExpr("y.created_at DESC, y.id DESC").Limit(1))
	var out []DatasourceBackups
	err := s.read.NewSelect().TableExpr("(?) AS c", perDatasource).
		Join("JOIN backup_executions AS x ON x.id = c.last_id").
		ColumnExpr("c.datasource_id, c.name, c.type, c.status, c.n, x.id, x.created_at, x.finished_at").
		Where("c.n > 0").OrderExpr("c.name, c.datasource_id").
		Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("sum up completed backups: %w", dbError(err))
	}
	return out, nil
}

// ExecutionRecord is an execution whose metadata is left encoded, for
// callers that pass it on as JSON: Execution.Metadata is nil and
// RawMetadata holds the stored JSON object (or is empty).
type ExecutionRecord struct {
	Execution   `bun:",extend"`
	RawMetadata json.RawMessage `bun:"raw_metadata,scanonly"`
}

// ListExecutionRecords is ListExecutions without decoding each execution's
// metadata, which is most of a list's cost when the metadata carries
// per-table row counts (the HTTP API's execution lists).
func (s *Store) ListExecutionRecords(ctx context.Context, f ExecutionFilter) ([]ExecutionRecord, error) {
	rows := []ExecutionRecord{}
	q := s.read.NewSelect().Model(&rows).ExcludeColumn("metadata").ColumnExpr("? AS raw_metadata", bun.Ident("metadata"))
	if err := f.query(q).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list executions: %w", dbError(err))
	}
	return rows, nil
}

// whereEqual adds "column = value" to q for each (column, value) pair of
// pairs whose value is not empty: the filters of the List and Find methods.
func whereEqual(q *bun.SelectQuery, pairs ...string) *bun.SelectQuery {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			q = q.Where("? = ?", bun.Ident(pairs[i]), pairs[i+1])
		}
	}
	return q
}

// SetExecutionStorage records the status of an execution's copy in one
// storage location, replacing the previous one.
func (s *Store) SetExecutionStorage(ctx context.Context, es *ExecutionStorage) error {
	return upsertRow(ctx, s.db, es, "execution_id", "storage_location_id")
}

// ListExecutionStorages returns the per-storage statuses of an execution.
func (s *Store) ListExecutionStorages(ctx context.Context, executionID string) ([]ExecutionStorage, error) {
	return listRows[ExecutionStorage](ctx, s.read.NewSelect().
		Where("execution_id = ?", executionID).Order("storage_location_id"))
}

// AppendExecutionLog adds a log line to an execution and deletes the
// oldest lines beyond the cap (DefaultMaxExecutionLogLines), so a chatty
// execution cannot grow the table without bound.
func (s *Store) AppendExecutionLog(ctx context.Context, executionID, level, message string) error {
	line := &ExecutionLog{ExecutionID: executionID, At: now(), Level: level, Message: message}
	if err := insertRow(ctx, s.db, line); err != nil {
		return err
	}
	// Each append trims after its own insert, so once concurrent appends
	// finish the last trim has seen every line.
	_, err := s.db.NewDelete().Model((*ExecutionLog)(nil)).
		Where("execution_id = ?", executionID).
		Where("id <= (?)", s.db.NewSelect().Model((*ExecutionLog)(nil)).Column("id").
			Where("execution_id = ?", executionID).
			OrderExpr("id DESC").Limit(1).Offset(int64(s.maxLogLines))).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("trim execution logs of %s: %w", executionID, err)
	}
	return nil
}

// ExecutionLogs returns an execution's log lines, oldest first.
func (s *Store) ExecutionLogs(ctx context.Context, executionID string) ([]ExecutionLog, error) {
	return listRows[ExecutionLog](ctx, s.read.NewSelect().Where("execution_id = ?", executionID).Order("id"))
}

// ---------------------------------------------------------------------------
// Health checks, notifications, settings.

// InsertHealthCheck records hc; a zero CheckedAt becomes now.
func (s *Store) InsertHealthCheck(ctx context.Context, hc *HealthCheck) error {
	if hc.CheckedAt.IsZero() {
		hc.CheckedAt = now()
	}
	return insertRow(ctx, s.db, hc)
}

// ListHealthChecks returns a datasource's health checks, newest first
// (limit as in ExecutionFilter), after skipping offset.
func (s *Store) ListHealthChecks(ctx context.Context, datasourceID string, limit, offset int) ([]HealthCheck, error) {
	return listRows[HealthCheck](ctx, page(s.read.NewSelect().
		Where("datasource_id = ?", datasourceID).OrderExpr("checked_at DESC, id DESC"), limit, offset))
}

// InsertNotification records n; an empty Severity becomes SeverityInfo.
func (s *Store) InsertNotification(ctx context.Context, n *Notification) error {
	if n.Severity == "" {
		n.Severity = SeverityInfo
	}
	return insertRow(ctx, s.db, n)
}

// NotificationFilter selects notifications. Empty fields match everything.
type NotificationFilter struct {
	Type       string // e.g. "connection_lost"
	UnreadOnly bool
	Limit      int // 0: DefaultListLimit; negative: no limit
	Offset     int
}

// ListNotifications returns the notifications matching f, newest first.
func (s *Store) ListNotifications(ctx context.Context, f NotificationFilter) ([]Notification, error) {
	q := s.read.NewSelect()
	if f.Type != "" {
		q = q.Where("type = ?", f.Type)
	}
	if f.UnreadOnly {
		q = q.Where("? = ?", bun.Ident("read"), false)
	}
	return listRows[Notification](ctx, page(q.OrderExpr("created_at DESC, id DESC"), f.Limit, f.Offset))
}

// GetSetting returns the setting with key.
func (s *Store) GetSetting(ctx context.Context, key string) (*Setting, error) {
	return getRow[Setting](ctx, s.read, "key", key)
}

// PutSetting creates or replaces the setting st.Key.
func (s *Store) PutSetting(ctx context.Context, st *Setting) error {
	return upsertRow(ctx, s.db, st, "key")
}

// RecordJobRun sets the last_execution_at of backup job jobID to at, when
// one of its runs started, unless a later run set it already.
func (s *Store) RecordJobRun(ctx context.Context, jobID string, at time.Time) error {
	_, err := s.db.NewUpdate().Model((*BackupJob)(nil)).Set("last_execution_at = ?", at).
		Where("id = ?", jobID).WhereGroup(" AND ", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Where("last_execution_at IS NULL").WhereOr("last_execution_at < ?", at)
	}).Exec(ctx)
	return dbError(err)
}

// DeleteExecution deletes execution id (with its logs and per-storage
// statuses, by cascade).
func (s *Store) DeleteExecution(ctx context.Context, id string) error {
	_, err := s.db.NewDelete().Model((*Execution)(nil)).Where("id = ?", id).Exec(ctx)
	return dbError(err)
}

// DeleteBackupJob deletes backup job id. Its executions stay, their
// job_id set to NULL.
func (s *Store) DeleteBackupJob(ctx context.Context, id string) error {
	_, err := s.db.NewDelete().Model((*BackupJob)(nil)).Where("id = ?", id).Exec(ctx)
	return dbError(err)
}

// DeleteStorageLocation deletes storage location id.
func (s *Store) DeleteStorageLocation(ctx context.Context, id string) error {
	_, err := s.db.NewDelete().Model((*StorageLocation)(nil)).Where("id = ?", id).Exec(ctx)
	return dbError(err)
}

// File is the SQLite database file of the metadata store at rawURL (see
// StoreConfig), or "" for PostgreSQL or a URL that does not parse.
func File(rawURL string) string {
	t, err := parseStoreURL(rawURL)
	if err != nil {
		return ""
	}
	return t.file
}

// RequeueExecution sets execution id, while queued or running, back to
// queued with its attempt counted one more, and returns the new attempt
// and its operation; ok is false when the execution is in neither state.
func (s *Store) RequeueExecution(ctx context.Context, id string) (attempt int, op Operation, ok bool, err error) {
	err = s.db.NewUpdate().Model((*Execution)(nil)).
		Set("status = ?", ExecutionQueued).Set("attempt = attempt + 1").Set("updated_at = ?", now()).
		Where("id = ?", id).Where("status IN (?)", bun.In([]ExecutionStatus{ExecutionQueued, ExecutionRunning})).
		Returning("attempt, operation").Scan(ctx, &attempt, &op)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", false, nil
	}
	return attempt, op, err == nil, dbError(err)
}

// InsertBackupJobs inserts jobs as given (IDs and timestamps assigned
// where empty), 1,000 per statement: for seeding tests and benchmarks.
func (s *Store) InsertBackupJobs(ctx context.Context, jobs []BackupJob) error {
	for i := range jobs {
		stamp(s.db, &jobs[i], true)
	}
	for chunk := range slices.Chunk(jobs, 1000) {
		if _, err := s.db.NewInsert().Model(&chunk).Exec(ctx); err != nil {
			return fmt.Errorf("insert %d backup jobs: %w", len(chunk), dbError(err))
		}
	}
	return nil
}
