// Package mysql is the DataGuardian driver for MySQL and MariaDB
// (datasource types "mysql" and "mariadb", file format "sql").
//
// Dump streams mariadb-dump (or, when it is not installed, mysqldump) from
// its stdout: one database, in one consistent transaction
// (--single-transaction), with routines, triggers and events, binary
// values in hex, in utf8mb4. The script has no CREATE DATABASE or USE
// statement, so it restores into a database of any name, and it is an
// ordinary SQL file: `mariadb -D otherdb < backup.sql` restores it by hand.
// The rows of each table are counted in the script as it streams by, so the
// backup metadata matches the snapshot exactly.
//
// Restore feeds the script to the mariadb (or mysql) client on stdin; with
// RestoreOptions.Recreate the target database is dropped and created first.
// Verify restores into a temporary database, compares tables and row
// counts with the backup metadata and drops it. Ping uses
// github.com/go-sql-driver/mysql (pure Go, so the package builds with
// CGO_ENABLED=0).
//
// # Tools
//
// The client tools are looked up in Driver.BinDir, then in PATH:
// mariadb-dump before mysqldump, mariadb before mysql. Their flavour
// (MariaDB or Oracle MySQL) is read from --version and selects the few
// options that differ.
//
// # Secrets
//
// The user, password, host and port reach the tools in an option file
// created with mode 0600 in a private temporary directory and removed when
// the tool ends, whatever happens. It is passed with --defaults-file, so the
// tools read no other option file: a ~/.my.cnf would otherwise override the
// user and password. Values are double-quoted and escaped, so passwords with
// quotes, '#', ';', '$', spaces or backslashes work. The password is never
// in a process argument, a log line or an error.
//
// # Source
//
// Host, Username and Database are required (Ping alone does without the
// database; Check, which refuses a datasource that can never be backed up,
// does not); Port defaults to 3306. Options honoured: "tls" ("false",
// "true", "skip-verify", "preferred"; see OptionTLS), "tls-ca" (a PEM file
// of CA certificates), "socket" (a Unix socket path, instead of Host and
// Port) and "connect_timeout" (seconds, default 10: it bounds the whole
// connect and handshake of the driver's connections, and the client's
// through connect-timeout). Other keys, such as go-sql-driver DSN
// parameters carried over by drivers.ParseDSN, are ignored; a bad value of
// those is a *drivers.FieldError matching drivers.ErrInvalidSource.
//
// # Character set
//
// Dump records the database's default character set and collation in the
// metadata and in a comment line after the script's header; a database
// Restore or Verify creates gets them back.
//
// # Privileges
//
// Dump needs SELECT, SHOW VIEW, TRIGGER, EVENT and LOCK TABLES on the
// database, and the right to see the routines' bodies (their definer, or
// SELECT on mysql.proc on MariaDB before 11.3); without it mariadb-dump
// writes a routine as a comment only. Restoring views, routines and
// triggers whose DEFINER is another account needs SUPER (MariaDB) or
// SET_USER_ID (MySQL).
package mysql
