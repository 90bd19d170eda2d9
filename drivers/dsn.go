package drivers

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// Default ports ParseDSN fills in when a DSN names none.
const (
	DefaultPostgresPort = 5432
	DefaultMySQLPort    = 3306
)

// ParseDSN turns a connection string into a Source of type typ:
//
//   - postgres (or postgresql):
//     postgres://user:password@host:5432/db?sslmode=disable (scheme postgres or
//     postgresql). The query parameters go to Options, except those libpq
//     reads as connection fields: "password", "dbname", "port", "user" (when
//     the URL has none) and "host" (a host or a Unix socket directory, when
//     the URL has none).
//   - mysql and mariadb: mysql://user:password@host:3306/db (scheme mysql or
//     mariadb), or the go-sql-driver form user:password@tcp(host:3306)/db?params
//     (also user@unix(/run/mysqld/mysqld.sock)/db, whose socket goes to
//     Options["socket"], and user@/db for 127.0.0.1:3306).
//   - sqlite and files: a filesystem path, optionally with a "file:" prefix
//     ("file:/srv/app.db", "file:///srv/app.db").
//
// The user name and password of a URL are percent-decoded, as in any URL:
// write "p%40ss" for "p@ss". The go-sql-driver form takes them literally, as
// that driver does, so the same string works in both places. A missing port
// is the server's default; a missing host is localhost.
//
// Errors match ErrInvalidSource and say what is wrong and what to write; they
// never repeat the DSN or any part of it that could be the password.
func ParseDSN(typ, dsn string) (Source, error) {
	switch typ {
	case "postgres", "postgresql":
		return parseURL("postgres", dsn, DefaultPostgresPort, "postgres", "postgresql")
	case "mysql", "mariadb":
		if hasScheme(dsn, "mysql", "mariadb") {
			return parseURL(typ, dsn, DefaultMySQLPort, "mysql", "mariadb")
		}
		return parseGoMySQL(typ, dsn)
	case "sqlite", "files":
		return parsePath(typ, dsn)
	}
	return Source{}, fmt.Errorf("%w: %w %q: use postgres, mysql, mariadb, sqlite or files", ErrInvalidSource, ErrUnknownType, typ)
}

// dsnError is an error of a typ DSN matching ErrInvalidSource. Callers
// pass only fixed text and values that cannot hold the password.
func dsnError(typ, format string, args ...any) error {
	return fmt.Errorf("%w: %s DSN: %s", ErrInvalidSource, typ, fmt.Sprintf(format, args...))
}

// hasScheme reports whether dsn starts with "scheme://" for one of schemes
// (case-insensitive).
func hasScheme(dsn string, schemes ...string) bool {
	s, _, ok := strings.Cut(dsn, "://")
	if !ok {
		return false
	}
	for _, want := range schemes {
		if strings.EqualFold(s, want) {
			return true
		}
	}
	return false
}

func parseURL(typ, dsn string, defaultPort int, schemes ...string) (Source, error) {
	example := fmt.Sprintf("write %s://USER:PASSWORD@HOST:%d/DATABASE", schemes[0], defaultPort)
	if !hasScheme(dsn, schemes...) {
		return Source{}, dsnError(typ, "it must start with %s://: %s", strings.Join(schemes, ":// or "), example)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return Source{}, dsnError(typ, "not a valid URL (%s): %s, percent-encoding special characters in the user name and password", urlProblem(err), example)
	}
	if u.Opaque != "" || u.Fragment != "" {
		return Source{}, dsnError(typ, "not a valid URL: %s, percent-encoding \"#\" in the password", example)
	}
	src := Source{Type: typ, Host: u.Hostname(), Port: defaultPort}
	if u.User != nil {
		src.Username = u.User.Username()
		src.Password, _ = u.User.Password()
	}
	if p := u.Port(); p != "" {
		if src.Port, err = parsePort(typ, p); err != nil {
			return Source{}, err
		}
	}
	src.Database = strings.TrimPrefix(u.Path, "/")
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Source{}, dsnError(typ, "the query after \"?\" is not valid (%s): write ?name=value&name=value", urlProblem(err))
	}
	for k, v := range q {
		switch {
		case k == "password":
			src.Password = v[len(v)-1]
		case k == "host" && src.Host == "":
			src.Host = v[len(v)-1]
		case k == "user" && src.Username == "":
			src.Username = v[len(v)-1]
		case k == "dbname":
			src.Database = v[len(v)-1]
		case k == "port":
			if src.Port, err = parsePort(typ, v[len(v)-1]); err != nil {
				return Source{}, err
			}
		default:
			if src.Options == nil {
				src.Options = make(map[string]string, len(q))
			}
			src.Options[k] = v[len(v)-1]
		}
	}
	if src.Database == "" || strings.Contains(src.Database, "/") {
		return Source{}, dsnError(typ, "the path must be one database name: %s", example)
	}
	if src.Host == "" {
		src.Host = "localhost"
	}
	return src, nil
}

// parseGoMySQL parses the go-sql-driver/mysql form
// [user[:password]@][net[(addr)]]/dbname[?param1=value1&paramN=valueN],
// splitting it the way that driver does: at the last "/", then at the last
// "@" before it, so a password may hold any character.
func parseGoMySQL(typ, dsn string) (Source, error) {
	example := "write USER:PASSWORD@tcp(HOST:3306)/DATABASE or mysql://USER:PASSWORD@HOST:3306/DATABASE"
	slash := strings.LastIndexByte(dsn, '/')
	if slash < 0 {
		return Source{}, dsnError(typ, "no \"/\" before the database name: %s", example)
	}
	head, tail := dsn[:slash], dsn[slash+1:]
	src := Source{Type: typ, Host: "127.0.0.1", Port: DefaultMySQLPort}
	addr := head
	if at := strings.LastIndexByte(head, '@'); at >= 0 {
		src.Username, src.Password, _ = strings.Cut(head[:at], ":")
		addr = head[at+1:]
	}
	if addr != "" {
		network, rest, ok := strings.Cut(addr, "(")
		if !ok || !strings.HasSuffix(rest, ")") {
			return Source{}, dsnError(typ, "the address must look like tcp(HOST:PORT) or unix(SOCKET): %s", example)
		}
		rest = strings.TrimSuffix(rest, ")")
		switch network {
		case "tcp", "tcp4", "tcp6":
			if err := splitHostPort(typ, rest, &src); err != nil {
				return Source{}, err
			}
		case "unix":
			if rest == "" {
				return Source{}, dsnError(typ, "unix() needs the socket path: write USER@unix(/run/mysqld/mysqld.sock)/DATABASE")
			}
			src.Host = "localhost"
			src.Options = map[string]string{"socket": rest}
		default:
			return Source{}, dsnError(typ, "the network must be tcp or unix: %s", example)
		}
	}
	db, rawQuery, _ := strings.Cut(tail, "?")
	if db == "" {
		return Source{}, dsnError(typ, "no database name after the last \"/\": %s", example)
	}
	src.Database = db
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return Source{}, dsnError(typ, "the parameters after \"?\" are not valid (%s): write ?name=value&name=value", urlProblem(err))
	}
	for k, v := range q {
		if src.Options == nil {
			src.Options = make(map[string]string, len(q))
		}
		src.Options[k] = v[len(v)-1]
	}
	return src, nil
}

// splitHostPort fills src.Host and src.Port from "host", "host:port" or
// "[ipv6]:port"; an empty host means 127.0.0.1.
func splitHostPort(typ, hostport string, src *Source) error {
	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return dsnError(typ, "an IPv6 address lacks its closing \"]\": write tcp([::1]:3306)")
		}
		host, port = hostport[1:end], strings.TrimPrefix(hostport[end+1:], ":")
		if hostport[end+1:] != "" && !strings.HasPrefix(hostport[end+1:], ":") {
			return dsnError(typ, "only \":PORT\" may follow an IPv6 address: write tcp([::1]:3306)")
		}
	} else if h, p, ok := strings.Cut(hostport, ":"); ok {
		host, port = h, p
	}
	if host != "" {
		src.Host = host
	}
	if port != "" {
		p, err := parsePort(typ, port)
		if err != nil {
			return err
		}
		src.Port = p
	}
	return nil
}

func parsePort(typ, s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || strings.ContainsAny(s, "+-") {
		return 0, dsnError(typ, "the port is not a number: write HOST:PORT with PORT from 1 to 65535")
	}
	if p < 1 || p > 65535 {
		return 0, dsnError(typ, "port %d is out of range: use 1 to 65535", p)
	}
	return p, nil
}

func parsePath(typ, dsn string) (Source, error) {
	if scheme, _, ok := strings.Cut(dsn, "://"); ok && !strings.EqualFold(scheme, "file") && !strings.ContainsAny(scheme, "/\\") {
		return Source{}, dsnError(typ, "it looks like a URL, but a %s source is a filesystem path: give the path, or the type of the URL", typ)
	}
	p := dsn
	if rest, ok := strings.CutPrefix(dsn, "file:"); ok {
		p = rest
		if strings.HasPrefix(rest, "//") {
			u, err := url.Parse(dsn)
			if err != nil || (u.Host != "" && u.Host != "localhost") {
				return Source{}, dsnError(typ, "a file: URL must be file:///ABSOLUTE/PATH or file:PATH")
			}
			p = u.Path
		}
		if typ == "sqlite" { // SQLite URI parameters, such as ?mode=ro, are not part of the path
			p, _, _ = strings.Cut(p, "?")
		}
	}
	if p == "" {
		what := "database file"
		if typ == "files" {
			what = "directory"
		}
		return Source{}, dsnError(typ, "empty path: give the %s path", what)
	}
	if strings.ContainsRune(p, 0) {
		return Source{}, dsnError(typ, "the path contains a NUL byte")
	}
	return Source{Type: typ, Path: filepath.Clean(p)}, nil
}

// urlProblem names what url.Parse or url.ParseQuery disliked without
// repeating the input (their messages quote it, password included).
func urlProblem(err error) string {
	var esc url.EscapeError
	var host url.InvalidHostError
	switch {
	case errors.As(err, &esc):
		return "a \"%\" is not followed by two hex digits"
	case errors.As(err, &host):
		return "invalid character in the host"
	case strings.Contains(err.Error(), "invalid port"):
		return "the port is not a number, or an unencoded \"/\", \"?\" or \"#\" in the password ends the host early"
	case strings.Contains(err.Error(), "userinfo"):
		return "invalid character in the user name or password"
	case strings.Contains(err.Error(), "control character"):
		return "control character"
	}
	return "syntax"
}
