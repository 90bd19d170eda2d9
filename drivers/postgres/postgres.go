package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/uptrace/bun/driver/pgdriver"
)

var (
	_ drivers.Driver    = (*Driver)(nil)
	_ drivers.Pather    = (*Driver)(nil)
	_ drivers.Checker   = (*Driver)(nil)
	_ drivers.Verifier  = (*Driver)(nil)
	_ drivers.Inspector = (*Driver)(nil)
)

// Option keys of drivers.Source.Options the driver honours. Other keys are
// ignored.
const (
	// OptSSLMode is libpq's sslmode: disable, allow, prefer (the default),
	// require, verify-ca or verify-full. allow and prefer use TLS when the
	// server offers it and a plain connection otherwise.
	OptSSLMode = "sslmode"
	// OptSSLRootCert is the file of the CA certificates verify-ca and
	// verify-full check the server against.
	OptSSLRootCert = "sslrootcert"
	// OptMaintenanceDB is the database the driver connects to for CREATE
	// and DROP DATABASE (Restore with Recreate, into a missing database,
	// and Verify); default "postgres".
	OptMaintenanceDB = "maintenance_db"
	// OptConnectTimeout is the connection timeout in whole seconds, for the
	// driver's own connections and the tools (PGCONNECT_TIMEOUT); default 10.
	OptConnectTimeout = "connect_timeout"
)

const (
	// DefaultPort is the port of a Source with Port 0.
	DefaultPort = 5432
	// defaultConnectTimeout bounds connecting when OptConnectTimeout is unset.
	defaultConnectTimeout = 10 * time.Second
	// pingTimeout bounds a Ping whose ctx has no deadline.
	pingTimeout = 5 * time.Second
	// dropTimeout bounds the cleanup DROP DATABASE of a verification.
	dropTimeout = time.Minute
	// appName is the application_name of every connection the driver opens.
	appName = "dataguardian"
)

// Driver backs up and restores PostgreSQL databases with pg_dump and
// pg_restore. The zero value is ready to use; New returns one. A Driver is
// safe for concurrent use; do not change its fields once it is in use.
type Driver struct {
	// BinDir, if set, is the only directory searched for pg_dump and
	// pg_restore. Empty means PATH, then /usr/lib/postgresql/*/bin
	// (newest first).
	BinDir string
	// Logger receives tool choices and the tools' stderr lines of Dump
	// (Restore sends them to RestoreOptions.Logf). Nil means slog.Default().
	Logger *slog.Logger

	mu    sync.Mutex
	tools map[toolKey]tool // found tools, per name and server major
}

// New returns a PostgreSQL driver that finds its tools itself.
func New() *Driver { return &Driver{} }

// Type returns "postgres".
func (*Driver) Type() string { return "postgres" }

// Format returns "dump": a backup is a pg_dump custom-format archive.
func (*Driver) Format() string { return "dump" }

// Check validates src without connecting: the errors Ping, Dump and
// Restore would give before they connect, as *drivers.FieldError naming
// the field to set (the database is required).
func (*Driver) Check(src drivers.Source) error {
	_, err := parseSource(src)
	return err
}

// Paths returns the files of the server's file system src connects
// through: a Unix socket directory given as Host, the sslrootcert file.
func (*Driver) Paths(src drivers.Source) []drivers.SourcePath {
	var ps []drivers.SourcePath
	if strings.HasPrefix(src.Host, "/") {
		ps = append(ps, drivers.SourcePath{Field: "host", Path: src.Host})
	}
	if p := src.Options[OptSSLRootCert]; p != "" {
		ps = append(ps, drivers.SourcePath{Field: "options." + OptSSLRootCert, Path: p})
	}
	return ps
}

func (d *Driver) logger() *slog.Logger {
	l := d.Logger
	if l == nil {
		l = slog.Default()
	}
	return l.With("driver", "postgres")
}

// conf is a validated Source.
type conf struct {
	host           string
	port           int
	database       string
	user           string
	password       string
	sslMode        string
	sslRootCert    string
	maintenanceDB  string
	connectTimeout time.Duration
}

// fieldError is an error about the field of a Source, matching
// drivers.ErrInvalidSource.
func fieldError(field, format string, args ...any) error {
	return &drivers.FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// parseSource validates src and applies the defaults. Errors are
// *drivers.FieldError naming the field.
func parseSource(src drivers.Source) (conf, error) {
	c := conf{
		host:           src.Host,
		port:           src.Port,
		database:       src.Database,
		user:           src.Username,
		password:       src.Password,
		sslMode:        src.Options[OptSSLMode],
		sslRootCert:    src.Options[OptSSLRootCert],
		maintenanceDB:  src.Options[OptMaintenanceDB],
		connectTimeout: defaultConnectTimeout,
	}
	if c.host == "" {
		c.host = "localhost"
	}
	if c.port == 0 {
		c.port = DefaultPort
	}
	if c.port < 0 || c.port > 65535 {
		return c, fieldError("port", "postgres port %d is out of range: use 1 to 65535 (0 for %d)", c.port, DefaultPort)
	}
	if c.user == "" {
		c.user = "postgres"
	}
	if c.maintenanceDB == "" {
		c.maintenanceDB = "postgres"
	}
	if c.database == "" {
		return c, fieldError("database", "postgres source has no database: set the database to back up or restore")
	}
	switch c.sslMode {
	case "", "disable", "allow", "prefer", "require", "verify-ca", "verify-full":
	default:
		return c, fieldError("options."+OptSSLMode, "sslmode %q: use disable, allow, prefer, require, verify-ca or verify-full", c.sslMode)
	}
	tls := c.sslMode == "require" || c.sslMode == "verify-ca" || c.sslMode == "verify-full"
	if err := drivers.CheckPasswordTransport(src, tls, OptSSLMode, `"verify-full" (or "require")`); err != nil {
		return c, err
	}
	if s := src.Options[OptConnectTimeout]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return c, fieldError("options."+OptConnectTimeout, "connect_timeout %q: give a positive number of seconds", s)
		}
		c.connectTimeout = time.Duration(n) * time.Second
	}
	return c, nil
}

// where names the database for messages: host:port/database, never the
// password.
func (c conf) where() string {
	return net.JoinHostPort(c.host, strconv.Itoa(c.port)) + "/" + c.database
}

// redact removes the password from s: a belt over the braces of never
// putting it anywhere.
func (c conf) redact(s string) string {
	if c.password == "" {
		return s
	}
	return strings.ReplaceAll(s, c.password, "********")
}

// redactErr returns err with the password removed from its text; errors.Is
// and errors.As still see the original.
func (c conf) redactErr(err error) error {
	if err == nil || c.password == "" || !strings.Contains(err.Error(), c.password) {
		return err
	}
	return &redactedError{err: err, text: c.redact(err.Error())}
}

type redactedError struct {
	err  error
	text string
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }

// connector returns a pgdriver connector to database db. plain forces a
// connection without TLS (the fallback of sslmode allow/prefer).
func (c conf) connector(db string, plain bool) (conn *pgdriver.Connector, err error) {
	opts := []pgdriver.Option{
		pgdriver.WithUser(c.user),
		pgdriver.WithPassword(c.password),
		pgdriver.WithDatabase(db),
		pgdriver.WithApplicationName(appName),
		// Statements are bounded by ctx alone: exact row counts of big
		// tables take as long as they take. The handshake is bounded by
		// connectOnce.
		pgdriver.WithReadTimeout(0),
		pgdriver.WithWriteTimeout(0),
	}
	switch {
	case strings.HasPrefix(c.host, "/"): // a Unix socket directory
		opts = append(opts, pgdriver.WithNetwork("unix"),
			pgdriver.WithAddr(filepath.Join(c.host, fmt.Sprintf(".s.PGSQL.%d", c.port))),
			pgdriver.WithTLSConfig(nil))
	case plain || c.sslMode == "disable":
		opts = append(opts, pgdriver.WithAddr(net.JoinHostPort(c.host, strconv.Itoa(c.port))), pgdriver.WithTLSConfig(nil))
	default:
		// pgdriver's DSN parser builds the TLS settings of each sslmode;
		// the DSN carries neither user nor password.
		q := url.Values{"sslmode": {c.sslMode}}
		if c.sslMode == "" || c.sslMode == "allow" {
			q.Set("sslmode", "prefer")
		}
		if c.sslRootCert != "" {
			q.Set("sslrootcert", c.sslRootCert)
		}
		u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(c.host, strconv.Itoa(c.port)), Path: "/", RawQuery: q.Encode()}
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%w: TLS settings: %v", drivers.ErrInvalidSource, r)
			}
		}()
		opts = append([]pgdriver.Option{pgdriver.WithDSN(u.String())}, opts...)
	}
	return pgdriver.NewConnector(append(opts, dialer(c.connectTimeout))...), nil
}

// dialSlotKey is the context key of the dialSlot of one connect.
type dialSlotKey struct{}

// dialSlot holds the connection the dialer opened for one connect, so that
// connectOnce can close it when the connect's context ends: pgdriver only
// sets deadlines during the handshake, which a cancellation does not move,
// and leaves a failed handshake's connection open.
type dialSlot struct {
	mu     sync.Mutex
	conn   net.Conn
	closed bool
}

// keep records conn, or reports false when the slot was closed already.
// A connection kept before is one whose handshake failed (database/sql
// tries again after some failures): it is closed.
func (s *dialSlot) keep(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conn != nil {
		s.conn.Close()
	}
	s.conn = conn
	return true
}

// close closes the connection of the slot, now or when it is dialled.
func (s *dialSlot) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.conn != nil {
		s.conn.Close()
	}
}

// dialer is the pgdriver Dialer of the driver's connections: a TCP or Unix
// dial bounded by timeout whose connection goes to the dialSlot of ctx.
func dialer(timeout time.Duration) pgdriver.Option {
	return func(cfg *pgdriver.Config) {
		cfg.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{Timeout: timeout, KeepAlive: 5 * time.Minute}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if slot, ok := ctx.Value(dialSlotKey{}).(*dialSlot); ok && !slot.keep(conn) {
				conn.Close()
				return nil, fmt.Errorf("dial %s: %w", addr, context.Cause(ctx))
			}
			return conn, nil
		}
	}
}

// session is one connection of the driver's own, which ends when its
// context is done even in the middle of a statement (pgdriver itself only
// honours deadlines).
type session struct {
	db   *sql.DB
	conn *sql.Conn
	stop func() bool
}

// errNoTLS is pgdriver's message when the server refuses TLS.
const errNoTLS = "SSL is not enabled on the server"

// connect opens a session to database db.
func (c conf) connect(ctx context.Context, db string) (*session, error) {
	s, err := c.connectOnce(ctx, db, false)
	if err != nil && strings.Contains(err.Error(), errNoTLS) && (c.sslMode == "" || c.sslMode == "prefer" || c.sslMode == "allow") {
		s, err = c.connectOnce(ctx, db, true)
	}
	return s, err
}

func (c conf) connectOnce(ctx context.Context, db string, plain bool) (*session, error) {
	connector, err := c.connector(db, plain)
	if err != nil {
		return nil, err
	}
	pool := sql.OpenDB(connector)
	pool.SetMaxOpenConns(1)
	// The whole handshake (dial, TLS, startup, authentication) gets
	// connect_timeout, and ends at once when ctx does.
	cctx, cancel := context.WithTimeout(ctx, c.connectTimeout)
	defer cancel()
	slot := &dialSlot{}
	cctx = context.WithValue(cctx, dialSlotKey{}, slot)
	stopClose := context.AfterFunc(cctx, slot.close)
	conn, err := pool.Conn(cctx)
	if !stopClose() && err == nil {
		// cctx ended as the session was established, closing it.
		conn.Close()
		err = errors.New("connection closed")
	}
	if err != nil {
		slot.close()
		pool.Close()
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		case cctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded): // the handshake's deadline is cctx's
			err = fmt.Errorf("no answer within connect_timeout %s: %w (%v)", c.connectTimeout, context.DeadlineExceeded, err)
		}
		return nil, err
	}
	s := &session{db: pool, conn: conn, stop: func() bool { return false }}
	_ = conn.Raw(func(dc any) error {
		if pc, ok := dc.(*pgdriver.Conn); ok {
			nc := pc.Conn()
			s.stop = context.AfterFunc(ctx, func() { nc.Close() })
		}
		return nil
	})
	return s, nil
}

func (s *session) close() {
	s.stop()
	s.conn.Close()
	s.db.Close()
}

// serverVersion returns server_version_num and "PostgreSQL 15.4".
func (s *session) serverVersion(ctx context.Context) (int, string, error) {
	var num, version string
	if err := s.conn.QueryRowContext(ctx, "SELECT current_setting('server_version_num'), current_setting('server_version')").Scan(&num, &version); err != nil {
		return 0, "", fmt.Errorf("read server version: %w", err)
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0, "", fmt.Errorf("read server version: server_version_num %q", num)
	}
	if f := strings.Fields(version); len(f) > 0 {
		version = f[0]
	}
	return n, "PostgreSQL " + version, nil
}

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// quoteLiteral quotes a string literal (standard_conforming_strings on).
func quoteLiteral(s string) string {
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}

// sqlState returns the SQLSTATE of a server error in err's chain, or "".
func sqlState(err error) string {
	var pe pgdriver.Error
	if errors.As(err, &pe) {
		return pe.Field('C')
	}
	return ""
}

// toolEnv is the environment of pg_dump and pg_restore: the password and
// TLS settings, never in argv.
func (c conf) toolEnv() []string {
	env := []string{"PGAPPNAME=" + appName, "PGCONNECT_TIMEOUT=" + strconv.Itoa(max(2, int(c.connectTimeout/time.Second)))}
	if c.password != "" {
		env = append(env, "PGPASSWORD="+c.password)
	}
	if c.sslMode != "" {
		env = append(env, "PGSSLMODE="+c.sslMode)
	}
	if c.sslRootCert != "" {
		env = append(env, "PGSSLROOTCERT="+c.sslRootCert)
	}
	return env
}

// dropEnv are the inherited libpq variables removed from the tools'
// environment: the Source alone says where to connect and as whom.
var dropEnv = []string{
	"PGPASSWORD", "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE", "PGHOST", "PGHOSTADDR",
	"PGPORT", "PGDATABASE", "PGUSER", "PGOPTIONS", "PGSSLMODE", "PGREQUIRESSL",
	"PGSSLCERT", "PGSSLKEY", "PGSSLROOTCERT", "PGSSLCRL", "PGSSLPASSWORD",
	"PGCONNECT_TIMEOUT", "PGTARGETSESSIONATTRS", "PGAPPNAME", "PGKRBSRVNAME",
	"PGGSSENCMODE", "PGCHANNELBINDING", "PGCLIENTENCODING", "PGLOCALEDIR",
}

// connArgs are the connection arguments of the tools for database db. A
// name libpq would read as a connection string is passed as one, quoted.
func (c conf) connArgs(db string) []string {
	if strings.Contains(db, "=") || strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		db = "dbname=" + quoteConninfo(db)
	}
	return []string{
		"--host=" + c.host,
		"--port=" + strconv.Itoa(c.port),
		"--username=" + c.user,
		"--dbname=" + db,
		"--no-password",
	}
}

// quoteConninfo quotes a conninfo value.
func quoteConninfo(s string) string {
	return `'` + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + `'`
}

// toolLog returns a Logf for proc.Cmd that passes the tools' stderr lines
// to out without the password and without the tool's name twice
// ("pg_restore: pg_restore: error: ...").
func (c conf) toolLog(out func(string)) func(string, ...any) {
	return func(format string, a ...any) {
		line := fmt.Sprintf(format, a...)
		if name, rest, ok := strings.Cut(line, ": "); ok && strings.HasPrefix(rest, name+": ") {
			line = rest
		}
		out(c.redact(line))
	}
}

// verifyName is what a verification database may be called.
var verifyName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)
