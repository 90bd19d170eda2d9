package engine

import (
	"context"

	"github.com/dataguardian/dataguardian/engine/cleanup"
	"github.com/dataguardian/dataguardian/engine/health"
	"github.com/dataguardian/dataguardian/engine/queue"
	"github.com/dataguardian/dataguardian/engine/scheduler"
	"github.com/dataguardian/dataguardian/engine/secrets"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/engine/worker"
)

// The engine's names for the types of its sub-packages, so that callers
// (and the root package, which re-exports them) need one import. Each is
// documented where it is defined.

// Metadata store (package store): models, filters, sentinel errors.
type (
	APIToken             = store.APIToken
	BackupJob            = store.BackupJob
	BackupJobFilter      = store.BackupJobFilter
	ConflictError        = store.ConflictError
	Datasource           = store.Datasource
	DatasourceBackups    = store.DatasourceBackups
	DatasourceFilter     = store.DatasourceFilter
	DatasourceStatus     = store.DatasourceStatus
	Execution            = store.Execution
	ExecutionFilter      = store.ExecutionFilter
	ExecutionLog         = store.ExecutionLog
	ExecutionRecord      = store.ExecutionRecord
	ExecutionStatus      = store.ExecutionStatus
	ExecutionStorage     = store.ExecutionStorage
	FieldError           = store.FieldError
	HealthCheck          = store.HealthCheck
	HealthStatus         = store.HealthStatus
	Notification         = store.Notification
	NotificationFilter   = store.NotificationFilter
	NotificationTemplate = store.NotificationTemplate
	Operation            = store.Operation
	Setting              = store.Setting
	Severity             = store.Severity
	StorageLocation      = store.StorageLocation
	StorageStatus        = store.StorageStatus
	Store                = store.Store
	StoreConfig          = store.StoreConfig
	Retention            = store.Retention
	SyncExecution        = store.SyncExecution
	SyncJob              = store.SyncJob
)

// Statuses, operations and limits of the metadata store.
const (
	DatasourceHealthy           = store.DatasourceHealthy
	DatasourceWarning           = store.DatasourceWarning
	DatasourceCritical          = store.DatasourceCritical
	DatasourceUnknown           = store.DatasourceUnknown
	ExecutionQueued             = store.ExecutionQueued
	ExecutionRunning            = store.ExecutionRunning
	ExecutionCompleted          = store.ExecutionCompleted
	ExecutionFailed             = store.ExecutionFailed
	ExecutionCancelled          = store.ExecutionCancelled
	HealthOK                    = store.HealthOK
	HealthTimeout               = store.HealthTimeout
	HealthAuthFailed            = store.HealthAuthFailed
	HealthUnreachable           = store.HealthUnreachable
	HealthError                 = store.HealthError
	OperationBackup             = store.OperationBackup
	OperationRestore            = store.OperationRestore
	OperationVerify             = store.OperationVerify
	SeverityInfo                = store.SeverityInfo
	SeverityWarning             = store.SeverityWarning
	SeverityCritical            = store.SeverityCritical
	StorageAvailable            = store.StorageAvailable
	StorageMissing              = store.StorageMissing
	StorageCorrupt              = store.StorageCorrupt
	StorageUnreachable          = store.StorageUnreachable
	StorageUnknown              = store.StorageUnknown
	DefaultRetryAttempts        = store.DefaultRetryAttempts
	MaxRetryAttempts            = store.MaxRetryAttempts
	DefaultRetryDelaySeconds    = store.DefaultRetryDelaySeconds
	MinRetryDelaySeconds        = store.MinRetryDelaySeconds
	MaxRetryDelaySeconds        = store.MaxRetryDelaySeconds
	DefaultListLimit            = store.DefaultListLimit
	DefaultMaxExecutionLogLines = store.DefaultMaxExecutionLogLines
	DefaultStorePath            = store.DefaultStorePath
)

// Sentinel errors of the metadata store.
var (
	ErrNotFound      = store.ErrNotFound
	ErrAlreadyExists = store.ErrAlreadyExists
	ErrInvalid       = store.ErrInvalid
)

// OpenStore opens the metadata database; see store.Open.
func OpenStore(ctx context.Context, rawURL string) (*Store, error) { return store.Open(ctx, rawURL) }

// API tokens (kept in the store, as SHA-256 of their secret only).
const (
	TokenPrefix    = store.TokenPrefix
	MinTokenLength = store.MinTokenLength
)

// ErrInvalidToken reports an API token that is unknown, revoked or expired.
var ErrInvalidToken = store.ErrInvalidToken

// HashToken is how API token secrets are stored: hex SHA-256.
func HashToken(secret string) string { return store.HashToken(secret) }

// SyncBackupJobName is the name of the backup job through which sync job
// syncJobID backs up its source.
func SyncBackupJobName(syncJobID string) string { return store.SyncBackupJobName(syncJobID) }

// SyncBackupRetention is the retention of the backup job of a sync job.
var SyncBackupRetention = store.SyncBackupRetention

// Durable queue (package queue).
type (
	Task          = queue.Task
	Queue         = queue.Queue
	Recoverer     = queue.Recoverer
	Adopter       = queue.Adopter
	RecoveredTask = queue.RecoveredTask
	QueueStats    = queue.Stats
	QueueOptions  = queue.Options
	StoreQueue    = queue.StoreQueue
)

// Task kinds and queue defaults.
const (
	TaskBackup              = queue.TaskBackup
	TaskRestore             = queue.TaskRestore
	TaskVerify              = queue.TaskVerify
	TaskSync                = queue.TaskSync
	DefaultQueueMaxAttempts = queue.DefaultMaxAttempts
	LeaseExpiredReason      = queue.LeaseExpiredReason
)

// Errors of the queue contract.
var (
	ErrQueueEmpty        = queue.ErrEmpty
	ErrLeaseLost         = queue.ErrLeaseLost
	ErrAttemptsExhausted = queue.ErrAttemptsExhausted
)

// NewStoreQueue returns the durable queue kept in s; see queue.NewStoreQueue.
func NewStoreQueue(s *Store, opts *QueueOptions) *StoreQueue { return queue.NewStoreQueue(s, opts) }

// Scheduler of due runs (package scheduler).
type (
	Scheduler        = scheduler.Scheduler
	SchedulerOptions = scheduler.Options
)

// Task worker (package worker).
type (
	Worker        = worker.Worker
	WorkerOptions = worker.Options
)

// OwnerStoppedReason is why a worker hands back a task that its previous
// process held when it stopped.
const OwnerStoppedReason = worker.OwnerStoppedReason

// Secret sealer (package secrets).
type Sealer = secrets.Sealer

// SecretKeyEnv is the environment variable the reference binary reads the secret key from.
const SecretKeyEnv = secrets.SecretKeyEnv

// ErrDecrypt reports sealed data that cannot be opened with the key.
var ErrDecrypt = secrets.ErrDecrypt

// Health checks (package health).
type (
	HealthOptions     = health.Options
	HealthCycleReport = health.CycleReport
	StorageHealth     = health.StorageHealth
	HealthWorker      = health.Worker
)

// Defaults applied by HealthOptions.WithDefaults.
const (
	DefaultHealthInterval       = health.DefaultInterval
	DefaultHealthTimeout        = health.DefaultTimeout
	DefaultHealthConcurrency    = health.DefaultConcurrency
	DefaultHealthSlowThreshold  = health.DefaultSlowThreshold
	DefaultFailuresForCritical  = health.DefaultFailuresForCritical
	DefaultHealthCheckRetention = health.DefaultRetention
)

// Cleanup: retention enforcement and the sweep of abandoned run folders
// (package cleanup).
type (
	CleanupOptions = cleanup.Options
	CleanupReport  = cleanup.Report
	CleanupWorker  = cleanup.Worker
)

// CleanupLogKey is where retention deletions are logged in every storage.
const CleanupLogKey = cleanup.LogKey
