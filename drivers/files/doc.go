// Package files is the DataGuardian driver for directory trees (datasource
// type "files", file format "tar").
//
// Dump streams the tree as a standard PAX tar archive in sorted order, so
// `tar -xf backup.tar` recovers it by hand. Restore extracts into a new
// directory beside the target, refusing entries that would escape it
// (drivers.ErrUnsafeArchive), and swaps it into place only when the whole
// archive extracted cleanly.
package files
