package mysql

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/drivers/internal/proc"
)

var (
	_ drivers.Driver    = (*Driver)(nil)
	_ drivers.Pather    = (*Driver)(nil)
	_ drivers.Checker   = (*Driver)(nil)
	_ drivers.Verifier  = (*Driver)(nil)
	_ drivers.Inspector = (*Driver)(nil)
)

const (
	// DefaultPort is used when Source.Port is 0.
	DefaultPort = 3306
	// defaultConnectTimeout bounds connecting (dial and handshake) when
	// OptionConnectTimeout is unset.
	defaultConnectTimeout = 10 * time.Second
	// pingTimeout bounds a Ping whose ctx has no deadline.
	pingTimeout = 10 * time.Second
	// cleanupTimeout bounds the drop of a verification database, which
	// runs even after ctx is cancelled.
	cleanupTimeout = time.Minute
	// toolVersionTimeout bounds `tool --version`.
	toolVersionTimeout = 10 * time.Second
)

// Option keys of drivers.Source.Options honoured by this driver.
const (
	// OptionTLS selects TLS for the tools and the driver's own
	// connections: "false" (plaintext), "true" (TLS, the server
	// certificate verified), "skip-verify" (TLS, not verified) or
	// "preferred" (TLS when the server offers it, not verified). Unset
	// means plaintext for the driver's connections and the tools' own
	// default.
	OptionTLS = "tls"
	// OptionTLSCA is the path of a PEM file with the CA certificates that
	// sign the server certificate (with tls "true").
	OptionTLSCA = "tls-ca"
	// OptionSocket is the path of the server's Unix socket; when set, the
	// driver and the tools connect through it and Host and Port are unused.
	OptionSocket = "socket"
	// OptionConnectTimeout is the connection timeout in whole seconds
	// (default 10): it bounds the whole connect and handshake of the
	// driver's own connections and of the mariadb/mysql client
	// (connect-timeout; mariadb-dump has no such option, but it connects
	// only after the driver's own connection succeeded).
	OptionConnectTimeout = "connect_timeout"
)

// Driver backs up and restores MySQL and MariaDB databases with the
// server's own client tools. Set its fields before first use; New and
// NewMariaDB return a ready one.
type Driver struct {
	// BinDir, if set, is searched first for mariadb-dump, mysqldump,
	// mariadb and mysql; then PATH.
	BinDir string
	// Logger receives the driver's diagnostics; nil means slog.Default().
	Logger *slog.Logger

	typ string
}

// New returns a driver of datasource type "mysql".
func New() *Driver { return &Driver{typ: "mysql"} }

// NewMariaDB returns a driver of datasource type "mariadb". It behaves
// exactly like New's; only Type differs, so both types can be registered.
func NewMariaDB() *Driver { return &Driver{typ: "mariadb"} }

// Type returns "mysql" (New, or the zero Driver) or "mariadb" (NewMariaDB).
func (d *Driver) Type() string {
	if d.typ == "" {
		return "mysql"
	}
	return d.typ
}

// Format returns "sql": a dump is a plain SQL script.
func (*Driver) Format() string { return "sql" }

// Check validates src without connecting: the errors Dump and Restore
// would give before they connect. A datasource is there to be backed up,
// so the database is required (Ping alone does without). Errors are
// *drivers.FieldError naming the field to set.
func (*Driver) Check(src drivers.Source) error {
	_, err := checkSource(src, true)
	return err
}

// Paths returns the files of the server's file system src connects
// through: the socket and tls-ca options.
func (*Driver) Paths(src drivers.Source) []drivers.SourcePath {
	var ps []drivers.SourcePath
	for _, k := range []string{OptionSocket, OptionTLSCA} {
		if p := src.Options[k]; p != "" {
			ps = append(ps, drivers.SourcePath{Field: "options." + k, Path: p})
		}
	}
	return ps
}

func (d *Driver) logger() *slog.Logger {
	l := d.Logger
	if l == nil {
		l = slog.Default()
	}
	return l.WithGroup("mysql")
}

// conn is a checked Source.
type conn struct {
	host     string
	port     int
	database string
	user     string
	password string
	tls      string
	tlsCA    string
	socket   string
	// connectTimeout bounds connecting: dial, TLS and authentication.
	connectTimeout time.Duration
}

func (c conn) addr() string {
	if c.socket != "" {
		return c.socket
	}
	return net.JoinHostPort(c.host, strconv.Itoa(c.port))
}

// String names the connection without its password.
func (c conn) String() string {
	return fmt.Sprintf("%s@%s/%s", c.user, c.addr(), c.database)
}

// fieldError is an error about the field of a Source, matching
// drivers.ErrInvalidSource.
func fieldError(field, format string, args ...any) error {
	return &drivers.FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// checkSource validates src; needDB says whether Database must be set.
// Errors are *drivers.FieldError naming the field.
func checkSource(src drivers.Source, needDB bool) (conn, error) {
	c := conn{host: src.Host, port: src.Port, database: src.Database, user: src.Username, password: src.Password,
		connectTimeout: defaultConnectTimeout}
	c.socket = src.Options[OptionSocket]
	if c.host == "" && c.socket == "" {
		return c, fieldError("host", "mysql source has no host: set the server host name or address (or options.%s)", OptionSocket)
	}
	if c.port == 0 {
		c.port = DefaultPort
	}
	if c.port < 0 || c.port > 65535 {
		return c, fieldError("port", "mysql port %d is out of range: use 1 to 65535 (0 for %d)", src.Port, DefaultPort)
	}
	if c.user == "" {
		return c, fieldError("username", "mysql source has no username: set the user to connect as")
	}
	if needDB && c.database == "" {
		return c, fieldError("database", "mysql source has no database: set the database to back up or restore")
	}
	if strings.ContainsAny(c.database, "\x00/\\.") || len(c.database) > 64 || strings.TrimSpace(c.database) != c.database {
		return c, fieldError("database", "mysql database name %q is not usable: at most 64 characters, no '/', '\\', '.', NUL or surrounding spaces", c.database)
	}
	for _, f := range []struct{ field, value string }{
		{"host", c.host}, {"username", c.user}, {"password", c.password},
		{"options." + OptionSocket, c.socket}, {"options." + OptionTLSCA, src.Options[OptionTLSCA]},
	} {
		if strings.ContainsRune(f.value, 0) {
			return c, fieldError(f.field, "mysql %s must not contain NUL", f.field)
		}
	}
	for k, v := range src.Options {
		switch k {
		case OptionTLS:
			switch v {
			case "", "false", "true", "skip-verify", "preferred":
				c.tls = v
			default:
				return c, fieldError("options."+OptionTLS, "mysql option tls=%q: use false, true, skip-verify or preferred", v)
			}
		case OptionTLSCA:
			c.tlsCA = v
		case OptionConnectTimeout:
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return c, fieldError("options."+OptionConnectTimeout, "mysql option connect_timeout=%q: give a positive number of seconds", v)
			}
			c.connectTimeout = time.Duration(n) * time.Second
		}
	}
	tls := c.socket != "" || c.tls == "true" || c.tls == "skip-verify"
	if err := drivers.CheckPasswordTransport(src, tls, OptionTLS, `"true"`); err != nil {
		return c, err
	}
	return c, nil
}

// config is the go-sql-driver configuration of c on database db.
func (d *Driver) config(c conn, db string) (*mysql.Config, error) {
	cfg := mysql.NewConfig()
	cfg.User = c.user
	cfg.Passwd = c.password
	cfg.Net = "tcp"
	if c.socket != "" {
		cfg.Net = "unix"
	}
	cfg.Addr = c.addr()
	cfg.DBName = db
	cfg.Timeout = c.connectTimeout
	cfg.Logger = driverLogger{d.logger()}
	switch c.tls {
	case "true":
		cfg.TLS = &tls.Config{ServerName: c.host, MinVersion: tls.VersionTLS12}
	case "skip-verify":
		cfg.TLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by the user
	case "preferred":
		cfg.TLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by the user
		cfg.AllowFallbackToPlaintext = true
	}
	if c.tlsCA != "" && cfg.TLS != nil {
		pem, err := os.ReadFile(c.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("%w: read tls-ca: %v", drivers.ErrInvalidSource, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: tls-ca %s holds no PEM certificate", drivers.ErrInvalidSource, c.tlsCA)
		}
		cfg.TLS.RootCAs = pool
	}
	return cfg, nil
}

// open returns a pool on database db ("" for none) of c's server.
func (d *Driver) open(c conn, db string) (*sql.DB, error) {
	cfg, err := d.config(c, db)
	if err != nil {
		return nil, err
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("open mysql %s: %w", c, err)
	}
	pool := sql.OpenDB(handshakeConnector{Connector: connector, timeout: c.connectTimeout})
	pool.SetMaxOpenConns(2)
	return pool, nil
}

// handshakeConnector bounds each connect (dial, TLS, handshake and
// authentication) by timeout: go-sql-driver's Timeout bounds the dial
// alone, and a server that accepts and never answers would keep the
// handshake waiting until ctx ends. go-sql-driver closes the connection
// when the context of Connect ends.
type handshakeConnector struct {
	driver.Connector
	timeout time.Duration
}

func (h handshakeConnector) Connect(ctx context.Context) (driver.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	conn, err := h.Connector.Connect(cctx)
	if err != nil && ctx.Err() == nil && cctx.Err() != nil {
		cause := ""
		if !errors.Is(err, context.DeadlineExceeded) {
			cause = fmt.Sprintf(" (%v)", err)
		}
		err = fmt.Errorf("no answer within connect_timeout %s: %w%s", h.timeout, context.DeadlineExceeded, cause)
	}
	return conn, err
}

// driverLogger passes go-sql-driver's own diagnostics to slog.
type driverLogger struct{ l *slog.Logger }

func (l driverLogger) Print(v ...any) { l.l.Debug("go-sql-driver", "msg", fmt.Sprint(v...)) }

// quoteIdent quotes a MySQL identifier with backticks.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// tools are the client programs found for one operation.
type tools struct {
	path    string // mariadb-dump, mysqldump, mariadb or mysql
	mariadb bool   // the MariaDB flavour (else Oracle MySQL)
}

// findTool returns the first of names found in BinDir, then in PATH, with
// its flavour.
func (d *Driver) findTool(ctx context.Context, names ...string) (tools, error) {
	var path string
	if d.BinDir != "" {
		for _, n := range names {
			p := filepath.Join(d.BinDir, n)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				path = p
				break
			}
		}
	}
	if path == "" {
		for _, n := range names {
			if p, err := exec.LookPath(n); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		where := "PATH"
		if d.BinDir != "" {
			where = d.BinDir + " or PATH"
		}
		return tools{}, fmt.Errorf("find mysql client tool: none of %s in %s: install the MariaDB or MySQL client (mariadb-client / mysql-client) or set BinDir", strings.Join(names, ", "), where)
	}
	ctx, cancel := context.WithTimeout(ctx, toolVersionTimeout)
	defer cancel()
	var out bytes.Buffer
	err := proc.Cmd{Path: path, Args: []string{"--no-defaults", "--version"}, Stdout: &out}.Run(ctx)
	if err != nil {
		return tools{}, fmt.Errorf("run %s --version: %w", path, err)
	}
	return tools{path: path, mariadb: strings.Contains(strings.ToLower(out.String()), "mariadb")}, nil
}

// optionFile writes c's connection settings to a new 0600 option file in a
// private temporary directory and returns its path and a function that
// removes both. The tools read it with --defaults-file, so no other option
// file (~/.my.cnf above all, which would override the user and password)
// changes where they connect.
func optionFile(c conn, t tools) (path string, remove func(), err error) {
	dir, err := os.MkdirTemp("", "dataguardian-mysql-")
	if err != nil {
		return "", nil, fmt.Errorf("create option file: %w", err)
	}
	remove = func() { _ = os.RemoveAll(dir) }
	var b strings.Builder
	b.WriteString("[client]\n")
	fmt.Fprintf(&b, "user=%s\n", quoteOption(c.user))
	fmt.Fprintf(&b, "password=%s\n", quoteOption(c.password))
	if c.socket != "" {
		fmt.Fprintf(&b, "socket=%s\n", quoteOption(c.socket))
		b.WriteString("protocol=SOCKET\n")
	} else {
		fmt.Fprintf(&b, "host=%s\n", quoteOption(c.host))
		fmt.Fprintf(&b, "port=%d\n", c.port)
		b.WriteString("protocol=TCP\n")
	}
	writeTLSOptions(&b, c, t)
	// The command-line client (restores) never sends a local file: a
	// server, or whoever answers in its place, may ask for any file with
	// LOAD DATA LOCAL INFILE. The group is the client's own, as the dump
	// tools refuse options they do not know.
	b.WriteString("[mysql]\nlocal-infile=0\n")
	// Only the client knows connect-timeout (mariadb-dump refuses it).
	fmt.Fprintf(&b, "connect-timeout=%d\n", max(1, int(c.connectTimeout/time.Second)))
	f, err := os.CreateTemp(dir, "client-*.cnf")
	if err != nil {
		remove()
		return "", nil, fmt.Errorf("create option file: %w", err)
	}
	// CreateTemp makes the file 0600; say so explicitly all the same.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		remove()
		return "", nil, fmt.Errorf("create option file: %w", err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		remove()
		return "", nil, fmt.Errorf("write option file: %w", err)
	}
	if err := f.Close(); err != nil {
		remove()
		return "", nil, fmt.Errorf("write option file: %w", err)
	}
	return f.Name(), remove, nil
}

// writeTLSOptions adds the TLS settings of c in the dialect of t.
func writeTLSOptions(b *strings.Builder, c conn, t tools) {
	if c.tls == "" {
		return
	}
	if t.mariadb {
		switch c.tls {
		case "false":
			b.WriteString("skip-ssl\n")
		case "true":
			b.WriteString("ssl\nssl-verify-server-cert\n")
		case "skip-verify", "preferred":
			b.WriteString("ssl\nskip-ssl-verify-server-cert\n")
		}
	} else {
		mode := map[string]string{"false": "DISABLED", "true": "VERIFY_IDENTITY", "skip-verify": "REQUIRED", "preferred": "PREFERRED"}[c.tls]
		fmt.Fprintf(b, "ssl-mode=%s\n", mode)
	}
	if c.tlsCA != "" {
		fmt.Fprintf(b, "ssl-ca=%s\n", quoteOption(c.tlsCA))
	}
}

// quoteOption quotes an option file value: enclosed in double quotes, with
// backslash, both quotes and the control characters the option file reader
// knows escaped. Inside quotes, '#' and ';' start no comment and leading
// or trailing spaces are kept.
func quoteOption(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\'':
			b.WriteString(`\'`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// clientEnv are the variables that would change how the tools connect;
// they are removed from the tools' environment.
var clientEnv = []string{"MYSQL_PWD", "MYSQL_HOST", "MYSQL_TCP_PORT", "MYSQL_UNIX_PORT", "MYSQL_HOME", "MARIADB_HOME", "LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN"}

// version returns the server version as "MariaDB 10.11.6" or "MySQL 8.0.36",
// and the raw VERSION().
func version(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (string, string, error) {
	var raw string
	if err := q.QueryRowContext(ctx, "SELECT VERSION()").Scan(&raw); err != nil {
		return "", "", err
	}
	return prettyVersion(raw), raw, nil
}

func prettyVersion(raw string) string {
	num, _, _ := strings.Cut(raw, "-")
	if strings.Contains(strings.ToLower(raw), "mariadb") {
		// MariaDB 10.x behind a MySQL 5.5-compatible prefix: "5.5.5-10.11.6-MariaDB".
		if strings.HasPrefix(raw, "5.5.5-") {
			num, _, _ = strings.Cut(strings.TrimPrefix(raw, "5.5.5-"), "-")
		}
		return "MariaDB " + num
	}
	return "MySQL " + num
}

// redacted returns err unchanged unless its text contains password (of 4 or
// more bytes), in which case the text shows "***" instead while errors.Is
// and errors.As still see err.
func redacted(err error, password string) error {
	if err == nil || len(password) < 4 || !strings.Contains(err.Error(), password) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), password, "***"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// ctxErr makes err match ctx.Err() when ctx is done, keeping its text.
func ctxErr(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil || errors.Is(err, ctx.Err()) {
		return err
	}
	return fmt.Errorf("%w (%v)", ctx.Err(), err)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
