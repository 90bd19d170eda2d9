// Package sqlite is the DataGuardian driver for SQLite database files
// (datasource type "sqlite", file format "db").
//
// Dump takes an online, consistent snapshot without a temporary file: it
// opens one read transaction and streams the database pages from the
// sqlite_dbpage virtual table, so the backup is an exact database file
// image that other connections may keep writing to while it is taken (in
// WAL mode without waiting at all). The image is marked as a rollback-journal
// database, so after decompression it is an ordinary file that
// `sqlite3 backup.db` opens, even read-only.
//
// Restore writes the stream to a temporary file beside the target, checks it
// with PRAGMA integrity_check and renames it over the target. Stop the
// processes that use the database first: they would keep the replaced file
// open.
//
// The driver uses the pure-Go modernc.org/sqlite, so it builds with
// CGO_ENABLED=0.
package sqlite
