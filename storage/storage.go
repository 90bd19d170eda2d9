// Package storage defines the Storage interface every backup destination
// implements, the errors shared by all implementations and the key rules.
//
// Implementations live in sub-packages (storage/local first). Every
// implementation must pass the conformance suite in storage/storagetest.
package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// Sentinel errors. Implementations wrap them so callers can test with errors.Is.
var (
	// ErrNotFound reports a key that does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrExist reports a Put with IfNotExist on a key that already exists.
	ErrExist = errors.New("object already exists")
	// ErrInvalidKey reports a key that is empty, absolute, contains "..",
	// backslashes or NUL, or would escape the storage root.
	ErrInvalidKey = errors.New("invalid key")
)

// Object describes one stored object.
type Object struct {
	Key     string    // slash-separated key relative to the storage root
	Size    int64     // bytes
	ModTime time.Time // last modification
}

// PutOptions are optional settings of one Put. A nil *PutOptions means defaults.
type PutOptions struct {
	// IfNotExist makes Put fail with ErrExist instead of replacing an
	// existing object. The check and the commit are one atomic step.
	IfNotExist bool
}

// Storage is a flat key/value store of immutable objects: the place backups go.
//
// Keys are slash-separated relative paths ("job/2025-02-13_060001/manifest.json").
// The contract every implementation must honour:
//   - Put must read r to io.EOF and make the object visible only after Put
//     returns nil; a failed or cancelled Put must leave the previous object
//     (or nothing) under key, never a partial one. An error from r must be
//     returned wrapped (errors.Is finds it), and a cancelled ctx must stop
//     the copy with an error matching ctx.Err().
//   - Open must return an error matching ErrNotFound for a missing key. It
//     reads length bytes from offset; length < 0 means to the end.
//   - Stat must return an error matching ErrNotFound for a missing key.
//   - List must return every object whose key starts with prefix, sorted by
//     key, and never objects still being written by Put. A prefix that fails
//     ValidatePrefix must be refused with ErrInvalidKey.
//   - Delete of a missing key must return nil.
//   - Every method must reject keys that fail ValidateKey with ErrInvalidKey
//     and must be safe for concurrent use.
type Storage interface {
	Put(ctx context.Context, key string, r io.Reader, opts *PutOptions) error
	Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	Stat(ctx context.Context, key string) (Object, error)
	List(ctx context.Context, prefix string) ([]Object, error)
	Delete(ctx context.Context, key string) error
}

// Renamer is an optional capability: a Storage that can move an object to a
// new key atomically (a local rename, a server-side copy) implements it.
// Rename must fail with ErrNotFound when from is missing and must replace to.
type Renamer interface {
	Rename(ctx context.Context, from, to string) error
}

// Rename moves the object at from to to on s, with the storage's own Rename
// when it has one, else by Open, Put and Delete.
func Rename(ctx context.Context, s Storage, from, to string) error {
	if r, ok := s.(Renamer); ok {
		return r.Rename(ctx, from, to)
	}
	rc, err := s.Open(ctx, from, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := s.Put(ctx, to, rc, nil); err != nil {
		return err
	}
	return s.Delete(ctx, from)
}

// ValidateKey reports whether key is a clean, relative, slash-separated key
// that cannot escape the storage root. The error matches ErrInvalidKey.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	case strings.ContainsAny(key, "\\\x00"):
		return fmt.Errorf("%w %q: backslash and NUL are not allowed", ErrInvalidKey, key)
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("%w %q: keys are relative to the storage root, drop the leading slash", ErrInvalidKey, key)
	case path.Clean(key) != key:
		return fmt.Errorf("%w %q: use a clean path without \".\", \"..\", empty or trailing elements", ErrInvalidKey, key)
	case key == ".":
		return fmt.Errorf("%w %q: the storage root itself is not a key", ErrInvalidKey, key)
	case key == ".." || strings.HasPrefix(key, "../"):
		return fmt.Errorf("%w %q: key escapes the storage root", ErrInvalidKey, key)
	}
	return nil
}

// ValidatePrefix reports whether prefix can begin a valid key, as List
// prefixes must: "" (everything) or a string that ValidateKey accepts once
// completed, such as "job/" or "job/2025". The error matches ErrInvalidKey.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := ValidateKey(prefix + "x"); err != nil {
		return fmt.Errorf("%w: prefix %q cannot begin a valid key (no leading slash, \".\" or \"..\" elements, empty elements, backslash or NUL)", ErrInvalidKey, prefix)
	}
	return nil
}

// ConfigError is a bad value in a storage location's config (a remote
// storage's settings, or what its server answered to them): Key names the
// config key to fix, such as "bucket" or "host_key".
type ConfigError struct {
	Key string
	Err error
}

func (e *ConfigError) Error() string { return "config." + e.Key + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *ConfigError) Unwrap() error { return e.Err }

// OpError records the operation and key of a failed storage call.
type OpError struct {
	Op  string // "put", "open", "stat", "list", "delete", "rename"
	Key string
	Err error
}

func (e *OpError) Error() string { return e.Op + " " + e.Key + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *OpError) Unwrap() error { return e.Err }

// FreeSpacer is an optional capability: a Storage that knows how much
// space is left for new objects (storage/local does) implements it.
type FreeSpacer interface {
	FreeBytes() (uint64, error)
}

// Appender is an optional capability: a Storage that can append to an
// object in place (a local file opened with O_APPEND) implements it. Append
// creates the object when it is missing; each call's bytes land contiguously.
type Appender interface {
	Append(ctx context.Context, key string, p []byte) error
}

// Append adds p to the end of the object at key on s, creating it when
// missing: with the storage's own Append when it has one, else by reading
// the object and putting it back with p added (fine for small logs such as
// _system/cleanup.log).
func Append(ctx context.Context, s Storage, key string, p []byte) error {
	if a, ok := s.(Appender); ok {
		return a.Append(ctx, key, p)
	}
	var old []byte
	rc, err := s.Open(ctx, key, 0, -1)
	switch {
	case err == nil:
		old, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
	case !errors.Is(err, ErrNotFound):
		return err
	}
	return s.Put(ctx, key, io.MultiReader(bytes.NewReader(old), bytes.NewReader(p)), nil)
}

// Aborter is an optional capability: a Storage whose writes leave
// something behind when their process dies mid-write (local temporary
// files, unfinished multipart uploads) can remove those leftovers.
type Aborter interface {
	// AbortIncomplete removes what unfinished writes of keys under prefix
	// left, and nothing a List shows. Call it only for a prefix no live
	// writer uses, such as an abandoned run folder: a write still going on
	// under prefix would fail.
	AbortIncomplete(ctx context.Context, prefix string) error
}
