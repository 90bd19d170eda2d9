// Package files is the DataGuardian driver for directory trees (datasource
// type "files", file format "tar").
//
// Dump streams the tree as a standard PAX tar archive in sorted order, so
// `tar -xf backup.tar` recovers it by hand. Restore extracts into a new
// directory beside the target, refusing entries that would escape it
// (drivers.ErrUnsafeArchive), and swaps it into place only when the whole
// archive extracted cleanly.
//
// A path that is a symbolic link to a directory stands for that directory
// everywhere, as for `tar -C path`: Dump backs it up, Restore replaces it
// (the link stays as it is), Ping and Empty look at it. Links below the
// root are archived as links, never followed.
package files
