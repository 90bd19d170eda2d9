// Package manifest writes and reads DataGuardian backups: the streaming
// pipeline (compress → split into parts → sha256 → one or more storages),
// the manifest.json commit marker and the naming rules of the on-disk layout:
//
//	{storage root}/{job_id}/{YYYY-MM-DD_HHmmss}/backup.{format}.{compression}[.part-NNN]
//	{storage root}/{job_id}/{YYYY-MM-DD_HHmmss}/SHA256SUMS, RECOVERY.txt
//	{storage root}/{job_id}/{YYYY-MM-DD_HHmmss}/manifest.json
//
// Every file is a standard format, so a person can recover a backup without
// DataGuardian: cat the parts in order, compare sha256sum with the manifest's
// checksum, decompress with gunzip, zstd -d or lz4 -d, and load the result with
// the database's own tool. Each run folder spells this out for its own backup
// in RECOVERY.txt, beside SHA256SUMS for "sha256sum -c SHA256SUMS"; readers
// never need either file.
//
// A backup is complete only once manifest.json exists. Parts are written
// under temporary names and renamed to their final names just before the
// recovery aids and then the manifest are written, so a backup that fails
// or is killed leaves neither a manifest nor a part under its final name.
package manifest
