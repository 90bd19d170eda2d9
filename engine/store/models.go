package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/dataguardian/dataguardian/retention"
	"github.com/dataguardian/dataguardian/storage"
	"github.com/uptrace/bun"
)

// The rows of the metadata store. Table names and status values follow the
// product specification (spec/*.md) and are part of the public contract.
//
// Conventions shared by every model:
//   - IDs are UUID strings, assigned by the Store on insert when empty.
//   - Times are UTC; created_at/updated_at are set by the Store. On SQLite
//     they are text in bun's fixed format, so comparing and ordering them
//     in SQL is correct only against values bun formats (query arguments),
//     never against SQL's CURRENT_TIMESTAMP or datetime('now').
//   - Optional references are empty strings in Go and NULL in the database
//     (bun "nullzero"); optional times are nil pointers.
//   - Map, slice and struct fields are stored as JSON (jsonb on PostgreSQL,
//     text on SQLite).
//   - Secrets are never exported to JSON (json:"-").

// DatasourceStatus is the connection status of a datasource.
type DatasourceStatus string

// Datasource statuses.
const (
	DatasourceHealthy  DatasourceStatus = "healthy"
	DatasourceWarning  DatasourceStatus = "warning"
	DatasourceCritical DatasourceStatus = "critical"
	DatasourceUnknown  DatasourceStatus = "unknown" // no check yet
)

// Datasource is a database (or file tree) DataGuardian watches and backs up.
type Datasource struct {
	bun.BaseModel `bun:"table:datasources" json:"-"`

	ID                  string            `bun:"id,pk" json:"id"`
	Name                string            `bun:"name,notnull,unique" json:"name"`
	Type                string            `bun:"type,notnull" json:"type"` // "postgres", "mysql", "sqlite", "files", …
	Host                string            `bun:"host" json:"host,omitempty"`
	Port                int               `bun:"port,notnull" json:"port,omitempty"`
	Database            string            `bun:"database" json:"database,omitempty"`
	Username            string            `bun:"username" json:"username,omitempty"`
	PasswordEncrypted   []byte            `bun:"password_encrypted" json:"-"` // sealed with a Sealer
	Path                string            `bun:"path" json:"path,omitempty"`
	Options             map[string]string `bun:"options" json:"options,omitempty"`
	Enabled             bool              `bun:"enabled,notnull" json:"enabled"`
	Status              DatasourceStatus  `bun:"status,notnull" json:"status"`
	LastHealthCheckAt   *time.Time        `bun:"last_health_check_at" json:"last_health_check_at"`
	ConsecutiveFailures int               `bun:"consecutive_failures,notnull" json:"consecutive_failures"`
	CreatedAt           time.Time         `bun:"created_at,notnull" json:"created_at"`
	UpdatedAt           time.Time         `bun:"updated_at,notnull" json:"updated_at"`
}

// StorageLocation is a place backups are written to.
type StorageLocation struct {
	bun.BaseModel `bun:"table:storage_locations" json:"-"`

	ID        string            `bun:"id,pk" json:"id"`
	Name      string            `bun:"name,notnull,unique" json:"name"`
	Type      string            `bun:"type,notnull" json:"type"`       // "local"
	Config    map[string]string `bun:"config" json:"config,omitempty"` // e.g. {"path": "/var/backups"}
	Enabled   bool              `bun:"enabled,notnull" json:"enabled"`
	CreatedAt time.Time         `bun:"created_at,notnull" json:"created_at"`
	UpdatedAt time.Time         `bun:"updated_at,notnull" json:"updated_at"`
}

// Retention is a backup job's retention policy as stored (spec:
// {"max_backups": 3, "auto_delete": true}); see retention.Policy.
type Retention = retention.Policy

// BackupJob backs up one datasource on a cron schedule into one or more
// storage locations.
type BackupJob struct {
	bun.BaseModel `bun:"table:backup_jobs" json:"-"`

	ID                 string    `bun:"id,pk" json:"id"`
	Name               string    `bun:"name,notnull" json:"name"`
	DatasourceID       string    `bun:"datasource_id,notnull" json:"datasource_id"`
	Schedule           string    `bun:"schedule" json:"schedule"` // cron expression
	Timezone           string    `bun:"timezone" json:"timezone,omitempty"`
	StorageLocationIDs []string  `bun:"storage_location_ids" json:"storage_location_ids"` // ordered: the first is preferred for restores
	Compression        string    `bun:"compression" json:"compression"`                   // "gzip", "zstd", "lz4", "none"
	MaxFileSizeMB      int       `bun:"max_file_size_mb,notnull" json:"max_file_size_mb"` // largest part in MiB; 0 at creation means DefaultMaxFileSizeMB
	Retention          Retention `bun:"retention" json:"retention"`
	Enabled            bool      `bun:"enabled,notnull" json:"enabled"`
	RetryAttempts      int       `bun:"retry_attempts,notnull" json:"retry_attempts"`           // failed backups run again this many times (0..MaxRetryAttempts); 0 never retries
	RetryDelaySeconds  int       `bun:"retry_delay_seconds,notnull" json:"retry_delay_seconds"` // wait before the first retry, doubled per retry up to an hour; 0 at creation means DefaultRetryDelaySeconds
	// EncryptionRecipients are age public keys ("age1…"): when set, every
	// backup of the job is encrypted to them (see manifest.Encrypt).
	EncryptionRecipients []string   `bun:"encryption_recipients" json:"encryption_recipients,omitempty"`
	NextExecutionAt      *time.Time `bun:"next_execution_at" json:"next_execution_at"`
	LastExecutionAt      *time.Time `bun:"last_execution_at" json:"last_execution_at"`
	CreatedAt            time.Time  `bun:"created_at,notnull" json:"created_at"`
	UpdatedAt            time.Time  `bun:"updated_at,notnull" json:"updated_at"`
}

// Operation is what an execution does.
type Operation string

// Operations.
const (
	OperationBackup  Operation = "backup"
	OperationRestore Operation = "restore"
	OperationVerify  Operation = "verify" // restore into a temporary database and check it
)

// ExecutionStatus is the state of an execution.
type ExecutionStatus string

// Execution statuses.
const (
	ExecutionQueued    ExecutionStatus = "queued"
	ExecutionRunning   ExecutionStatus = "running"
	ExecutionCompleted ExecutionStatus = "completed"
	ExecutionFailed    ExecutionStatus = "failed"
	ExecutionCancelled ExecutionStatus = "cancelled"
)

// Terminal reports whether s is a final status.
func (s ExecutionStatus) Terminal() bool {
	return s == ExecutionCompleted || s == ExecutionFailed || s == ExecutionCancelled
}

// Execution is one run of a backup, restore or verification (table
// backup_executions, as in the spec).
type Execution struct {
	bun.BaseModel `bun:"table:backup_executions" json:"-"`

	ID                  string          `bun:"id,pk" json:"id"`
	JobID               string          `bun:"job_id,nullzero" json:"job_id,omitempty"` // empty for ad-hoc runs
	DatasourceID        string          `bun:"datasource_id,notnull" json:"datasource_id"`
	Operation           Operation       `bun:"operation,notnull" json:"operation"`
	Status              ExecutionStatus `bun:"status,notnull" json:"status"`
	SourceExecutionID   string          `bun:"source_execution_id,nullzero" json:"source_execution_id,omitempty"` // restores: the backup restored
	StartedAt           *time.Time      `bun:"started_at" json:"started_at"`
	FinishedAt          *time.Time      `bun:"finished_at" json:"finished_at"`
	DurationMS          int64           `bun:"duration_ms,notnull" json:"duration_ms"`
	SizeBytes           int64           `bun:"size_bytes,notnull" json:"size_bytes"` // uncompressed
	CompressedSizeBytes int64           `bun:"compressed_size_bytes,notnull" json:"compressed_size_bytes"`
	BackupPath          string          `bun:"backup_path" json:"backup_path,omitempty"` // run folder key, "jobid/2025-02-13_060001"
	Compression         string          `bun:"compression" json:"compression,omitempty"`
	Checksum            string          `bun:"checksum" json:"checksum,omitempty"` // "sha256:<hex>"
	ErrorMessage        string          `bun:"error_message" json:"error_message,omitempty"`
	Metadata            map[string]any  `bun:"metadata" json:"metadata,omitempty"` // spec: metadata.execution_logs
	RestoredAt          *time.Time      `bun:"restored_at" json:"restored_at,omitempty"`
	RestoredBy          string          `bun:"restored_by" json:"restored_by,omitempty"`
	RestoreReason       string          `bun:"restore_reason" json:"restore_reason,omitempty"`
	LeaseOwner          string          `bun:"lease_owner" json:"-"`
	LeaseExpiresAt      *time.Time      `bun:"lease_expires_at" json:"-"`
	Attempt             int             `bun:"attempt,notnull" json:"attempt"`
	// Pinned keeps a completed backup whatever its job's retention policy
	// says: retention never deletes it and it takes no slot of any rule.
	// A restore's safety backup is pinned automatically; the reason is in
	// Metadata["pinned_reason"].
	Pinned    bool      `bun:"pinned,notnull,default:false" json:"pinned"`
	CreatedAt time.Time `bun:"created_at,notnull" json:"created_at"`
	UpdatedAt time.Time `bun:"updated_at,notnull" json:"updated_at"`
}

// StorageStatus is the state of one backup's copy in one storage location.
type StorageStatus string

// Storage copy statuses.
const (
	// StorageAvailable: the copy was written or last verified whole.
	StorageAvailable StorageStatus = "available"
	// StorageMissing: the copy is not there, or not all of it: its
	// manifest.json or a part is gone (or the backup failed to reach it).
	StorageMissing StorageStatus = "missing"
	// StorageCorrupt: the copy is there but damaged: a part's size or
	// sha256, the whole stream's checksum or the manifest itself does not
	// match what the backup recorded (found by a restore, a verification
	// or a retry-upload).
	StorageCorrupt StorageStatus = "corrupt"
	// StorageUnreachable: the storage could not be used.
	StorageUnreachable StorageStatus = "unreachable"
	// StorageUnknown: no status recorded yet.
	StorageUnknown StorageStatus = "unknown"
)

// ExecutionStorage is the status of an execution's copy in one storage
// location.
type ExecutionStorage struct {
	bun.BaseModel `bun:"table:backup_execution_storages" json:"-"`

	ExecutionID       string        `bun:"execution_id,pk" json:"execution_id"`
	StorageLocationID string        `bun:"storage_location_id,pk" json:"storage_location_id"`
	Status            StorageStatus `bun:"status,notnull" json:"status"`
	ErrorMessage      string        `bun:"error_message" json:"error_message,omitempty"`
	UpdatedAt         time.Time     `bun:"updated_at,notnull" json:"updated_at"`
}

// ExecutionLog is one log line of an execution.
type ExecutionLog struct {
	bun.BaseModel `bun:"table:execution_logs" json:"-"`

	ID          int64     `bun:"id,pk,autoincrement" json:"id"`
	ExecutionID string    `bun:"execution_id,notnull" json:"execution_id"`
	At          time.Time `bun:"at,notnull" json:"at"`
	Level       string    `bun:"level,notnull" json:"level"` // "info", "warn", "error", …
	Message     string    `bun:"message,notnull" json:"message"`
}

// HealthStatus is the outcome of one health check.
type HealthStatus string

// Health check statuses.
const (
	HealthOK          HealthStatus = "ok"
	HealthTimeout     HealthStatus = "timeout"
	HealthAuthFailed  HealthStatus = "auth_failed"
	HealthUnreachable HealthStatus = "unreachable"
	HealthError       HealthStatus = "error"
)

// HealthCheck records one connectivity check of a datasource.
type HealthCheck struct {
	bun.BaseModel `bun:"table:health_checks" json:"-"`

	ID           string         `bun:"id,pk" json:"id"`
	DatasourceID string         `bun:"datasource_id,notnull" json:"datasource_id"`
	CheckedAt    time.Time      `bun:"checked_at,notnull" json:"checked_at"`
	Status       HealthStatus   `bun:"status,notnull" json:"status"`
	LatencyMS    *int64         `bun:"latency_ms" json:"latency_ms"` // nil when no answer
	Metadata     map[string]any `bun:"metadata" json:"metadata,omitempty"`
	ErrorMessage string         `bun:"error_message" json:"error_message,omitempty"`
}

// Severity ranks a notification.
type Severity string

// Notification severities.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Notification is an in-app notification ("connection_lost",
// "backup_failed", …).
type Notification struct {
	bun.BaseModel `bun:"table:notifications" json:"-"`

	ID         string    `bun:"id,pk" json:"id"`
	Type       string    `bun:"type,notnull" json:"type"`
	Severity   Severity  `bun:"severity,notnull" json:"severity"`
	Title      string    `bun:"title,notnull" json:"title"`
	Message    string    `bun:"message" json:"message"`
	EntityType string    `bun:"entity_type" json:"entity_type,omitempty"` // "datasource", "execution", …
	EntityID   string    `bun:"entity_id" json:"entity_id,omitempty"`
	Read       bool      `bun:"read,notnull" json:"read"`
	CreatedAt  time.Time `bun:"created_at,notnull" json:"created_at"`
}

// NotificationTemplate is one version of a message template for one channel.
type NotificationTemplate struct {
	bun.BaseModel `bun:"table:notification_templates" json:"-"`

	ID        string    `bun:"id,pk" json:"id"`
	Key       string    `bun:"key,notnull,unique:notification_templates_key_channel_version" json:"key"` // "backup_failed", …
	Channel   string    `bun:"channel,notnull,unique:notification_templates_key_channel_version" json:"channel"`
	Version   int       `bun:"version,notnull,unique:notification_templates_key_channel_version" json:"version"`
	Subject   string    `bun:"subject" json:"subject"`
	Body      string    `bun:"body,notnull" json:"body"`
	Active    bool      `bun:"active,notnull" json:"active"`
	CreatedAt time.Time `bun:"created_at,notnull" json:"created_at"`
}

// SyncJob copies one datasource into another on a schedule: a backup of the
// source restored into the target.
type SyncJob struct {
	bun.BaseModel `bun:"table:database_sync_jobs" json:"-"`

	ID                 string     `bun:"id,pk" json:"id"`
	Name               string     `bun:"name,notnull" json:"name"`
	SourceDatasourceID string     `bun:"source_datasource_id,notnull" json:"source_datasource_id"`
	TargetDatasourceID string     `bun:"target_datasource_id,notnull" json:"target_datasource_id"`
	Schedule           string     `bun:"schedule" json:"schedule"`
	Timezone           string     `bun:"timezone" json:"timezone,omitempty"`
	StorageLocationID  string     `bun:"storage_location_id,nullzero" json:"storage_location_id,omitempty"`
	Enabled            bool       `bun:"enabled,notnull" json:"enabled"`
	NextExecutionAt    *time.Time `bun:"next_execution_at" json:"next_execution_at"`
	LastExecutionAt    *time.Time `bun:"last_execution_at" json:"last_execution_at"`
	CreatedAt          time.Time  `bun:"created_at,notnull" json:"created_at"`
	UpdatedAt          time.Time  `bun:"updated_at,notnull" json:"updated_at"`
}

// SyncExecution is one run of a SyncJob.
type SyncExecution struct {
	bun.BaseModel `bun:"table:database_sync_executions" json:"-"`

	ID                 string          `bun:"id,pk" json:"id"`
	SyncJobID          string          `bun:"sync_job_id,notnull" json:"sync_job_id"`
	Status             ExecutionStatus `bun:"status,notnull" json:"status"`
	BackupExecutionID  string          `bun:"backup_execution_id,nullzero" json:"backup_execution_id,omitempty"`
	RestoreExecutionID string          `bun:"restore_execution_id,nullzero" json:"restore_execution_id,omitempty"`
	StartedAt          *time.Time      `bun:"started_at" json:"started_at"`
	FinishedAt         *time.Time      `bun:"finished_at" json:"finished_at"`
	ErrorMessage       string          `bun:"error_message" json:"error_message,omitempty"`
	CreatedAt          time.Time       `bun:"created_at,notnull" json:"created_at"`
}

// Setting is one system setting (SMTP, webhook, WhatsApp, …). Value is
// JSON; when Encrypted is true it is a JSON string holding a sealed,
// base64-encoded secret.
type Setting struct {
	bun.BaseModel `bun:"table:system_settings" json:"-"`

	Key       string          `bun:"key,pk" json:"key"`
	Value     json.RawMessage `bun:"value" json:"value"`
	Encrypted bool            `bun:"encrypted,notnull" json:"encrypted"`
	UpdatedAt time.Time       `bun:"updated_at,notnull" json:"updated_at"`
}

// APIToken is an API access token. Only its hash is stored.
type APIToken struct {
	bun.BaseModel `bun:"table:api_tokens" json:"-"`

	ID          string     `bun:"id,pk" json:"id"`
	Name        string     `bun:"name,notnull" json:"name"`
	TokenHash   string     `bun:"token_hash,notnull,unique" json:"-"`
	Permissions []string   `bun:"permissions" json:"permissions"` // e.g. "backups.restore_verify"
	CreatedAt   time.Time  `bun:"created_at,notnull" json:"created_at"`
	LastUsedAt  *time.Time `bun:"last_used_at" json:"last_used_at"`
	ExpiresAt   *time.Time `bun:"expires_at" json:"expires_at"`
}

// allModels lists every model, in creation order (referenced tables first).
var allModels = []any{
	(*Datasource)(nil),
	(*StorageLocation)(nil),
	(*BackupJob)(nil),
	(*Execution)(nil),
	(*ExecutionStorage)(nil),
	(*ExecutionLog)(nil),
	(*HealthCheck)(nil),
	(*Notification)(nil),
	(*NotificationTemplate)(nil),
	(*SyncJob)(nil),
	(*SyncExecution)(nil),
	(*Setting)(nil),
	(*APIToken)(nil),
}

// Retry settings of backup jobs (BackupJob.RetryAttempts and
// RetryDelaySeconds).
const (
	// DefaultRetryAttempts is how many times a failed backup is retried
	// when an API request leaves it out, and for the jobs that existed
	// before retries (the migration's default). The engine's zero value
	// is 0: never retry.
	DefaultRetryAttempts = 2
	// MaxRetryAttempts bounds BackupJob.RetryAttempts.
	MaxRetryAttempts = 10
	// DefaultRetryDelaySeconds is the wait before the first retry when
	// BackupJob.RetryDelaySeconds is 0 at creation.
	DefaultRetryDelaySeconds = 300
	// MinRetryDelaySeconds and MaxRetryDelaySeconds bound
	// BackupJob.RetryDelaySeconds.
	MinRetryDelaySeconds = 10
	MaxRetryDelaySeconds = 86400
)

// StorageOpener opens the Storage of a storage location of one type.
type StorageOpener func(ctx context.Context, loc *StorageLocation) (storage.Storage, error)
