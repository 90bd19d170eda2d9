// Package dataguardian is the library a program imports to back up,
// verify and restore databases: it registers datasources and storage
// locations, backs datasources up into a folder layout a person can recover
// by hand (compressed, split, sha256-checked parts and a manifest.json), keeps
// the right copies and restores any backup after verifying it.
//
// New returns an Engine on embedded defaults (SQLite metadata and a secret
// key under ./dataguardian-data); Config selects PostgreSQL metadata, other
// drivers and storages. The plug-in interfaces live in the packages of their
// kind and are re-exported here: Storage (package storage), Driver (package
// drivers), Queue (package engine/queue) and Notifier (package notify).
// The built-in drivers and the local storage (package defaults) fill a
// Config that leaves them out. ARCHITECTURE.md maps the packages.
package dataguardian

import (
	"context"

	"github.com/dataguardian/dataguardian/defaults"
	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/engine"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/notify"
	"github.com/dataguardian/dataguardian/storage"
)

// The engine and its configuration.
type (
	Engine           = engine.Engine
	Config           = engine.Config
	RestoreOptions   = engine.RestoreOptions
	RestoreRequest   = engine.RestoreRequest
	WorkerOptions    = engine.WorkerOptions
	SchedulerOptions = engine.SchedulerOptions
	HealthOptions    = engine.HealthOptions
	CleanupOptions   = engine.CleanupOptions
	QueueOptions     = engine.QueueOptions
	Event            = engine.Event
)

// The plug-in interfaces.
type (
	Storage  = storage.Storage
	Driver   = drivers.Driver
	Queue    = engine.Queue
	Notifier = notify.Notifier
)

// Domain types.
type (
	Source          = drivers.Source
	Datasource      = engine.Datasource
	SyncJob         = engine.SyncJob
	StorageLocation = engine.StorageLocation
	BackupJob       = engine.BackupJob
	Retention       = engine.Retention
	Execution       = engine.Execution
	Manifest        = manifest.Manifest
	Notification    = notify.Notification
)

// Statuses and operations of executions, per-storage copy statuses and
// datasource health statuses, as the API and the metadata store spell them.
type (
	ExecutionStatus  = engine.ExecutionStatus
	Operation        = engine.Operation
	StorageStatus    = engine.StorageStatus
	DatasourceStatus = engine.DatasourceStatus
)

// Values of ExecutionStatus, Operation, StorageStatus and DatasourceStatus.
const (
	ExecutionQueued    = engine.ExecutionQueued
	ExecutionRunning   = engine.ExecutionRunning
	ExecutionCompleted = engine.ExecutionCompleted
	ExecutionFailed    = engine.ExecutionFailed
	ExecutionCancelled = engine.ExecutionCancelled

	OperationBackup  = engine.OperationBackup
	OperationRestore = engine.OperationRestore
	OperationVerify  = engine.OperationVerify

	StorageAvailable   = engine.StorageAvailable
	StorageMissing     = engine.StorageMissing
	StorageCorrupt     = engine.StorageCorrupt
	StorageUnreachable = engine.StorageUnreachable
	StorageUnknown     = engine.StorageUnknown

	DatasourceHealthy  = engine.DatasourceHealthy
	DatasourceWarning  = engine.DatasourceWarning
	DatasourceCritical = engine.DatasourceCritical
	DatasourceUnknown  = engine.DatasourceUnknown
)

// Confirmation phrases an operator types to start a restore
// (RestoreRequest.ConfirmationPhrase).
const (
	ConfirmRestore = engine.ConfirmRestore
	ConfirmVerify  = engine.ConfirmVerify
)

// Sentinel errors, for errors.Is.
var (
	ErrNotFound         = engine.ErrNotFound
	ErrAlreadyExists    = engine.ErrAlreadyExists
	ErrInvalid          = engine.ErrInvalid
	ErrNotRestorable    = engine.ErrNotRestorable
	ErrConfirmation     = engine.ErrConfirmation
	ErrChecksumMismatch = manifest.ErrChecksumMismatch
	ErrMissingPart      = manifest.ErrMissingPart
	ErrSizeMismatch     = manifest.ErrSizeMismatch
	ErrNoManifest       = manifest.ErrNoManifest
)

// New opens the metadata store named by cfg (migrating it) and returns a
// ready Engine. The zero Config runs on embedded defaults; a nil Drivers or
// StorageOpeners gets the built-ins (package defaults).
func New(ctx context.Context, cfg Config) (*Engine, error) {
	defaults.Fill(&cfg.Drivers, &cfg.StorageOpeners)
	return engine.New(ctx, cfg)
}
