package store

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors of the metadata store, re-exported by package engine and
// the root package. Errors returned by the Store, the queue and the engine
// wrap them, so callers test with errors.Is.
var (
	// ErrInvalid reports input that cannot be used; the message names the
	// field and what to set.
	ErrInvalid = errors.New("invalid input")
	// ErrNotFound reports a row (datasource, job, execution, setting, …) that
	// does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists reports a write that would duplicate a unique value,
	// such as a second datasource with the same name. The error is a
	// *ConflictError naming the columns.
	ErrAlreadyExists = errors.New("already exists")
)

// ConflictError reports a unique constraint violation. It matches
// ErrAlreadyExists with errors.Is and unwraps to the database's own error.
type ConflictError struct {
	Table   string   // e.g. "datasources"
	Columns []string // e.g. ["name"]; empty when the database did not say
	Err     error    // the driver's error
}

func (e *ConflictError) Error() string {
	cols := strings.Join(e.Columns, ", ")
	switch {
	case e.Table != "" && cols != "":
		return "a row with the same " + cols + " already exists in " + e.Table
	case e.Table != "":
		return "a row with the same unique value already exists in " + e.Table
	default:
		return "a row with the same unique value already exists: " + e.Err.Error()
	}
}

// Is reports whether target is ErrAlreadyExists.
func (e *ConflictError) Is(target error) bool { return target == ErrAlreadyExists }

// Unwrap returns the driver's error.
func (e *ConflictError) Unwrap() error { return e.Err }

// FieldError is an invalid input that one field is to blame for. It
// matches ErrInvalid with errors.Is and unwraps to its cause; Field names
// the field as an API body does ("path", "password", "config.path",
// "options.sslmode"), so a frontend can point at it.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Err.Error() }

// Is reports whether target is ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }

// InvalidField returns a *FieldError about field whose message is
// "invalid input: " and the formatted text, like other ErrInvalid errors.
func InvalidField(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))}
}
