// Package local implements storage.Storage on a directory of the local file
// system (a disk, a NFS or SMB mount).
//
// A key maps to the file at the same slash-separated path under the root:
// the key "job/2025-02-13_060001/manifest.json" is the file
// {root}/job/2025-02-13_060001/manifest.json, so the backup folder can be read
// by hand with ordinary tools.
//
// # Atomic, durable writes
//
// Put streams into a hidden temporary file in the key's own directory,
// named ".{base}.tmp-{16 hex digits}", fsyncs it, renames it onto the key
// (or, with storage.PutOptions.IfNotExist, hard-links it so that an existing
// key is never replaced) and fsyncs the directory. Readers therefore see the
// old object or the new one, never a partial file. List never returns
// temporary files, and keys whose last element has the temporary-file form
// are refused with storage.ErrInvalidKey. A process killed mid-Put can leave
// a temporary file behind; it is invisible to List and safe to delete.
//
// # The file system is not a flat key space
//
// Keys are paths, so one key cannot also be a "directory" of others: after
// Put of "a", a Put of "a/b" fails (and the other way round). List returns
// regular files only; it does not follow symbolic links. Delete removes the
// directories it leaves empty, up to but not including the root.
//
// # Symbolic links
//
// A key whose path under the root resolves, through a symbolic link, to a
// place outside the root is refused with storage.ErrInvalidKey by every
// method. Links that stay inside the root are followed. The check guards
// against links placed by mistake; it is not a defence against someone who
// can change the tree under the root while DataGuardian runs.
package local
