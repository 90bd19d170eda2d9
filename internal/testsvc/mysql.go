package testsvc

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// EnvMySQLDSN is the DSN of a MySQL or MariaDB server whose user may create
// and drop databases and users, in go-sql-driver/mysql form
// ("user:password@tcp(host:port)/"); the database part is ignored.
const EnvMySQLDSN = "DG_TEST_MYSQL_DSN"

// DefaultMySQLDSN is used when EnvMySQLDSN is unset: root without a
// password on the local MariaDB/MySQL server.
const DefaultMySQLDSN = "root@tcp(127.0.0.1:3306)/"

// MySQLDSN returns the DSN of the test MySQL/MariaDB server (EnvMySQLDSN,
// default DefaultMySQLDSN) after checking that it answers within 3 s. It
// skips t (or fails it, see Require) when the server is unreachable.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	return serverDSN(t, EnvMySQLDSN, DefaultMySQLDSN, "MySQL/MariaDB", myAddr, pingMySQL)
}

// MySQLConfig returns the parsed configuration of MySQLDSN, for tests that
// need the host, port, user or password separately.
func MySQLConfig(t testing.TB) *mysql.Config {
	t.Helper()
	cfg, err := mysql.ParseDSN(MySQLDSN(t))
	if err != nil {
		t.Fatalf("parse %s: %v", EnvMySQLDSN, redactDSNError(err))
	}
	return cfg
}

// NewMySQLDatabase creates a fresh, uniquely named database (utf8mb4) on the
// test MySQL/MariaDB server and returns its name. The database is dropped
// when t's cleanup runs.
func NewMySQLDatabase(t testing.TB) (name string) {
	t.Helper()
	dsn := MySQLDSN(t)
	name = uniqueName()
	newDatabase(t, func() (*sql.DB, error) { return openMySQL(dsn) }, myAddr(dsn), name,
		"CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
		"DROP DATABASE IF EXISTS `"+name+"`")
	return name
}

// OpenMySQL opens a pool on the test server, on database db ("" for none),
// closed with t.
func OpenMySQL(t testing.TB, db string) *sql.DB {
	t.Helper()
	cfg := MySQLConfig(t)
	cfg.DBName = db
	cfg.MultiStatements = true
	cfg.Timeout = pingTimeout
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatalf("open MySQL at %s: %v", cfg.Addr, err)
	}
	pool := sql.OpenDB(conn)
	t.Cleanup(func() { pool.Close() })
	return pool
}

// pingMySQL reports whether the server behind dsn answers within pingTimeout.
func pingMySQL(dsn string) error {
	db, err := openMySQL(dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	return db.PingContext(ctx)
}

// openMySQL opens a pool for dsn; a parse error does not repeat the DSN.
func openMySQL(dsn string) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, redactDSNError(err)
	}
	cfg.Timeout = pingTimeout
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

// redactDSNError replaces a DSN parse error, which may quote the DSN, by
// one that names only the variable.
func redactDSNError(error) error {
	return fmt.Errorf("invalid %s: use the form user:password@tcp(host:port)/", EnvMySQLDSN)
}

// myAddr is the address of dsn, for messages (never the password).
func myAddr(dsn string) string {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "(unparsable " + EnvMySQLDSN + ")"
	}
	return cfg.Addr
}
