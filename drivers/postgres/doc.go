// Package postgres is the DataGuardian driver for PostgreSQL (datasource
// type "postgres", file format "dump": a pg_dump custom-format archive).
//
// # Backup
//
// Dump streams `pg_dump --format=custom --compress=0` from its standard
// output into the backup pipeline, which compresses, splits and checksums
// it: no temporary file, flat memory. The metadata is taken from the very
// snapshot pg_dump dumps: the driver opens a REPEATABLE READ READ ONLY
// transaction, exports its snapshot (pg_export_snapshot), runs pg_dump
// --snapshot and counts every table's rows in that transaction meanwhile.
// The exact counts go into Metadata.TableRows ("schema.table"), their sum
// into RowsApproximate.
//
// A backup is a standard archive; without DataGuardian it restores with
//
//	cat backup.dump.gz.part-* | gunzip | pg_restore --no-owner --no-acl -d DATABASE
//
// # Restore and verification
//
// Restore feeds the archive to `pg_restore --no-owner --no-acl
// --single-transaction --exit-on-error` on its standard input: into the
// existing database with --clean --if-exists (objects the backup does not
// contain stay), into a database it creates when the target is missing, or,
// with RestoreOptions.Recreate, into a database dropped (WITH (FORCE)) and
// created again. One transaction: a failed or cancelled restore leaves the
// target as it was. The last 64 KiB of the stream reach pg_restore only after
// the stream has ended cleanly, so a backup whose final checksum fails never
// commits.
//
// Verify (drivers.Verifier) restores into a new temporary database, compares
// its tables and row counts with the backup's metadata and drops it again,
// on every path, unless asked to keep it.
//
// # Tools
//
// pg_dump and pg_restore must be at least the server's major version. The
// driver asks the server (server_version_num) and takes the first suitable
// tool from Driver.BinDir when set (nothing else then), else from PATH, then
// from /usr/lib/postgresql/*/bin, newest first. A tool too old is an error
// matching ErrToolTooOld that names both versions and the package to install
// (postgresql-client-N). Choices are cached per server major version.
//
// # Connections and secrets
//
// A Source gives Host (default localhost; a directory means a Unix socket),
// Port (default 5432), Database, Username (default postgres) and Password.
// Options honoured: "sslmode" (disable, allow, prefer — the default —,
// require, verify-ca, verify-full), "sslrootcert", "maintenance_db" (for
// CREATE/DROP DATABASE, default "postgres") and "connect_timeout" (seconds,
// default 10). drivers.ParseDSN("postgres", url) builds a Source from a
// postgres:// URL.
//
// connect_timeout bounds the whole connect of the driver's own connections
// (dial, TLS, startup and authentication: a server that accepts and never
// answers fails with an error matching context.DeadlineExceeded) and
// reaches the tools as PGCONNECT_TIMEOUT (at least 2, libpq's minimum);
// cancelling the context ends a connect at once.
//
// The tools get the connection as --host/--port/--username/--dbname
// arguments and the password only as PGPASSWORD in their environment, from
// which the inherited libpq variables (PGPASSWORD, PGPASSFILE, PGSERVICE,
// PGHOST, ...) are removed. No argument, log line or error carries the
// password. Cancelling the context kills the tool's whole process group.
//
// Ping talks to the server with bun's pgdriver, not the tools: SELECT 1
// latency, version, uptime, connections and database size, with failures
// classified as timeout, auth_failed, unreachable or error.
//
// A Dump fails with the first failure of pg_dump or of the row counting
// (the tool's stderr, or the server's error such as "permission denied for
// table t"); the cancellation of the other one that it causes is not
// reported, so the error matches context.Canceled only when the caller's
// context was cancelled. Restore and Verify say when the role lacks
// CREATEDB for a database they must create. Empty (drivers.Inspector)
// tells a missing or object-free database from one holding data.
//
// Example use with the pipeline of package manifest:
//
//	d := postgres.New()
//	src, err := drivers.ParseDSN("postgres", "postgres://backup@db:5432/app?sslmode=require")
//	// handle err; set src.Password from your secret store
//	res, err := manifest.Write(ctx, dests, opts,
//		func(ctx context.Context, w io.Writer) (manifest.Metadata, error) { return d.Dump(ctx, src, w, nil) })
package postgres
