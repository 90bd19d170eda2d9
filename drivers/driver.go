// Package drivers defines the Driver interface a datasource type implements
// (dump, restore, health ping) and the types shared by all drivers.
//
// Each datasource type has its own sub-package (drivers/sqlite,
// drivers/files, ...). Every driver must pass drivers/drivertest.
package drivers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/dataguardian/dataguardian/manifest"
)

// Sentinel errors shared by drivers.
var (
	// ErrUnsupported reports an operation a driver does not implement.
	ErrUnsupported = errors.New("not supported by this driver")
	// ErrUnknownType reports a datasource type with no registered driver.
	ErrUnknownType = errors.New("unknown datasource type")
	// ErrInvalidSource reports a Source missing what the driver needs.
	ErrInvalidSource = errors.New("invalid datasource")
	// ErrUnsafeArchive reports an archive entry that would escape the restore target.
	ErrUnsafeArchive = errors.New("unsafe archive entry")
)

// Source says where a datasource lives and how to reach it. Network
// databases use Host, Port, Database, Username and Password; file based
// types (sqlite, files) use Path. Password is a secret: String redacts it.
type Source struct {
	Type     string            `json:"type"`
	Host     string            `json:"host,omitempty"`
	Port     int               `json:"port,omitempty"`
	Database string            `json:"database,omitempty"`
	Username string            `json:"username,omitempty"`
	Password string            `json:"-"`
	Path     string            `json:"path,omitempty"`
	Options  map[string]string `json:"options,omitempty"`
}

// String describes the source without its password.
func (s Source) String() string {
	if s.Path != "" {
		return fmt.Sprintf("%s:%s", s.Type, s.Path)
	}
	return fmt.Sprintf("%s://%s@%s:%d/%s", s.Type, s.Username, s.Host, s.Port, s.Database)
}

// Metadata describes what a dump contains. It lands in manifest.json.
type Metadata = manifest.Metadata

// DumpOptions are per-dump settings; nil means defaults.
type DumpOptions struct {
	// Logf, if set, receives progress lines and the dump tool's stderr for
	// the execution log.
	Logf func(format string, args ...any)
}

// Log passes a progress line to o.Logf when it is set; it is safe to call
// on a nil *DumpOptions.
func (o *DumpOptions) Log(format string, args ...any) {
	if o != nil && o.Logf != nil {
		o.Logf(format, args...)
	}
}

// RestoreOptions are per-restore settings; nil means defaults.
type RestoreOptions struct {
	// Recreate drops and recreates the target database before restoring
	// (network databases); false restores into the existing database,
	// replacing the objects the backup contains.
	Recreate bool
	// Logf, if set, receives progress lines for the execution log.
	Logf func(format string, args ...any)
}

// Health check statuses, as stored in health_checks.status.
const (
	HealthOK          = "ok"
	HealthTimeout     = "timeout"
	HealthAuthFailed  = "auth_failed"
	HealthUnreachable = "unreachable"
	HealthError       = "error"
)

// Health is the result of one Ping.
type Health struct {
	Status    string         `json:"status"`
	Latency   time.Duration  `json:"latency"`
	Version   string         `json:"database_version,omitempty"`
	Metadata  map[string]any `json:"metadata,omitempty"`
	ErrorText string         `json:"error_message,omitempty"`
}

// Driver backs up and restores one datasource type.
//
// The contract every implementation must honour:
//   - Dump must write one consistent snapshot of src to w as a standard
//     format (Format) and return what it contains. It must stop promptly and
//     return ctx.Err() (wrapped) when ctx is cancelled.
//   - Restore must read the stream Dump produced from r and make target hold
//     exactly that data. It must read r to io.EOF before it commits anything
//     to target where the type allows (the final checksums are checked at
//     EOF), and it must stop with an error matching ctx.Err() when ctx is
//     cancelled. It must not leave target half-replaced where the
//     type allows an atomic swap (sqlite, files).
//   - Ping must return a Health whose Status is one of the Health* constants;
//     it returns an error only for a programming error, not for a down server.
//   - No method may put a password in process arguments, logs or errors.
type Driver interface {
	// Type is the datasource type: "postgres", "mysql", "sqlite", "files".
	Type() string
	// Format is the base file format: "dump", "sql", "db", "tar".
	Format() string
	Dump(ctx context.Context, src Source, w io.Writer, opts *DumpOptions) (Metadata, error)
	Restore(ctx context.Context, target Source, r io.Reader, opts *RestoreOptions) error
	Ping(ctx context.Context, src Source) Health
}

// Registry maps datasource types to drivers. The zero value is empty and
// ready to use; it is not safe for concurrent Register calls.
type Registry struct {
	m map[string]Driver
}

// Register adds d under d.Type(), replacing any driver of that type.
func (r *Registry) Register(d Driver) {
	if r.m == nil {
		r.m = make(map[string]Driver)
	}
	r.m[d.Type()] = d
}

// Lookup returns the driver for typ or an error matching ErrUnknownType.
func (r *Registry) Lookup(typ string) (Driver, error) {
	if d, ok := r.m[typ]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("%w %q: registered types are %v", ErrUnknownType, typ, r.Types())
}

// Types lists the registered types, sorted.
func (r *Registry) Types() []string {
	out := make([]string, 0, len(r.m))
	for t := range r.m {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Log passes a progress line to o.Logf when it is set; it is safe to call
// on a nil *RestoreOptions.
func (o *RestoreOptions) Log(format string, args ...any) {
	if o != nil && o.Logf != nil {
		o.Logf(format, args...)
	}
}

// VerifyOptions are the settings of one verification restore.
type VerifyOptions struct {
	// Database names the temporary database (or file) to restore into; the
	// engine derives it from the execution ID. Drivers must refuse a name
	// that already exists rather than overwrite it.
	Database string
	// Keep leaves the temporary database in place after the checks
	// (keep_verification_database=true).
	Keep bool
	// Logf, if set, receives progress lines for the execution log.
	Logf func(format string, args ...any)
}

// TableCheck is the verification of one table.
type TableCheck struct {
	Table        string `json:"table"`
	Rows         int64  `json:"rows"`          // counted in the restored copy
	ExpectedRows int64  `json:"expected_rows"` // from the backup metadata; -1 when unknown
	OK           bool   `json:"ok"`
}

// VerifyReport is the outcome of a verification restore.
type VerifyReport struct {
	Database string       `json:"database"` // the temporary database restored into
	Kept     bool         `json:"kept"`     // it was left in place
	Tables   []TableCheck `json:"tables"`
	OK       bool         `json:"ok"` // every expected table present with the expected rows
	Problems []string     `json:"problems,omitempty"`
}

// Verifier is an optional capability of a Driver: restore a backup stream
// into a temporary database named opts.Database on the server of src, check
// it against md (tables present, row counts), report, and drop it unless
// opts.Keep. It must drop the temporary database on every failure path,
// cancellation included, unless Keep is set.
type Verifier interface {
	Verify(ctx context.Context, src Source, r io.Reader, md Metadata, opts *VerifyOptions) (*VerifyReport, error)
}

// SourcePath is a path of the server's file system that a driver reads,
// writes or connects to for a Source.
type SourcePath struct {
	// Field names the Source field holding it, as an API body names it:
	// "path", "host", "options.sslrootcert".
	Field string
	Path  string
}

// Pather is an optional capability of a Driver: the paths of the server's
// file system a Source makes the driver use (the file or directory to back
// up and restore over, a Unix socket, a certificate file), so that the
// engine can confine them to the directories the operator allowed. A
// driver that reaches files without implementing it cannot be confined.
type Pather interface {
	Paths(src Source) []SourcePath
}

// Checker is an optional capability of a Driver: validate a Source without
// connecting, so that a datasource that can never work is refused when it
// is registered rather than at its first backup. Errors match
// ErrInvalidSource (a *FieldError when one field is to blame).
type Checker interface {
	Check(src Source) error
}

// Inspector is an optional capability of a Driver: whether a restore
// target already holds data, so that a restore never replaces data
// unasked (the CLI refuses a non-empty target without --force or
// --recreate).
type Inspector interface {
	// Empty reports whether target holds nothing a restore would replace:
	// a missing or empty directory (files), a missing or empty file
	// (sqlite), a missing database or one without tables, views,
	// sequences or routines (network databases). It must not create or
	// change anything.
	Empty(ctx context.Context, target Source) (bool, error)
}
