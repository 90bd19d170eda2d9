package httpapi

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dataguardian/dataguardian/engine"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage"
)

// registerResources registers the operations on storage locations, backup jobs, sync jobs and executions.
func registerResources(add adder, h *handlers) {
	reg := func(op huma.Operation, f func(huma.API, huma.Operation)) { add(op, f) }
	registerDatasources(add, h) // datasources.go: update, delete
	st := []string{"Storage locations"}
	reg(huma.Operation{OperationID: "list-storage-locations", Method: http.MethodGet, Path: "/api/storage-locations",
		Summary: "List storage locations, by name", Tags: st},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.listStorageLocations) })
	reg(huma.Operation{OperationID: "create-storage-location", Method: http.MethodPost, Path: "/api/storage-locations",
		Summary: "Register a storage location (a local directory is created if missing and must be writable)",
		Tags:    st, DefaultStatus: http.StatusCreated},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.createStorageLocation) })
	reg(huma.Operation{OperationID: "get-storage-location", Method: http.MethodGet, Path: "/api/storage-locations/{id}",
		Summary: "Get one storage location", Tags: st},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.getStorageLocation) })
	reg(huma.Operation{OperationID: "update-storage-location", Method: http.MethodPut, Path: "/api/storage-locations/{id}",
		Summary: "Replace a storage location's name, type, config and enabled flag", Tags: st},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.updateStorageLocation) })
	reg(huma.Operation{OperationID: "delete-storage-location", Method: http.MethodDelete, Path: "/api/storage-locations/{id}",
		Summary: "Delete a storage location no job uses (its files stay)", Tags: st, DefaultStatus: http.StatusNoContent},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.deleteStorageLocation) })

	bj := []string{"Backup jobs"}
	reg(huma.Operation{OperationID: "list-backup-jobs", Method: http.MethodGet, Path: "/api/backup-jobs",
		Summary: "List backup jobs, by name (the internal jobs of sync jobs are not listed)", Tags: bj},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.listBackupJobs) })
	reg(huma.Operation{OperationID: "create-backup-job", Method: http.MethodPost, Path: "/api/backup-jobs",
		Summary: "Create a backup job", Tags: bj, DefaultStatus: http.StatusCreated},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.createBackupJob) })
	reg(huma.Operation{OperationID: "get-backup-job", Method: http.MethodGet, Path: "/api/backup-jobs/{id}",
		Summary: "Get one backup job", Tags: bj},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.getBackupJob) })
	reg(huma.Operation{OperationID: "update-backup-job", Method: http.MethodPut, Path: "/api/backup-jobs/{id}",
		Summary: "Replace a backup job's settings (validated as on create)", Tags: bj},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.updateBackupJob) })
	reg(huma.Operation{OperationID: "delete-backup-job", Method: http.MethodDelete, Path: "/api/backup-jobs/{id}",
		Summary: "Delete a backup job (its executions and backup files stay)", Tags: bj, DefaultStatus: http.StatusNoContent},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.deleteBackupJob) })

	sj := []string{"Sync jobs"}
	reg(huma.Operation{OperationID: "list-sync-jobs", Method: http.MethodGet, Path: "/api/sync-jobs",
		Summary: "List database sync jobs, by name", Tags: sj},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.listSyncJobs) })
	reg(huma.Operation{OperationID: "create-sync-job", Method: http.MethodPost, Path: "/api/sync-jobs",
		Summary: "Create a sync job copying a source datasource into a target of the same type",
		Tags:    sj, DefaultStatus: http.StatusCreated},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.createSyncJob) })
	reg(huma.Operation{OperationID: "get-sync-job", Method: http.MethodGet, Path: "/api/sync-jobs/{id}",
		Summary: "Get one sync job", Tags: sj},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.getSyncJob) })
	reg(huma.Operation{OperationID: "update-sync-job", Method: http.MethodPut, Path: "/api/sync-jobs/{id}",
		Summary: "Replace a sync job's settings (validated as on create)",
		Description: "A new schedule or timezone recomputes next_execution_at; an unchanged one keeps it. " +
			"A new source or storage location applies from the next run. `enabled` omitted keeps the current value.",
		Tags: sj},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.updateSyncJob) })
	reg(huma.Operation{OperationID: "delete-sync-job", Method: http.MethodDelete, Path: "/api/sync-jobs/{id}",
		Summary: "Delete a sync job and its run history (the backups it made stay)",
		Description: "The backups of the source it made stay in storage, listed and restorable under the source " +
			"datasource. Refused with 409 while a run is in progress.",
		Tags: sj, DefaultStatus: http.StatusNoContent},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.deleteSyncJob) })
	reg(huma.Operation{OperationID: "run-sync-job", Method: http.MethodPost, Path: "/api/sync-jobs/{id}/run",
		Summary: "Queue a run of a sync job now", Tags: sj, DefaultStatus: http.StatusAccepted},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.runSyncJob) })
	reg(huma.Operation{OperationID: "list-sync-job-executions", Method: http.MethodGet, Path: "/api/sync-jobs/{id}/executions",
		Summary: "List a sync job's executions, newest first", Tags: sj},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.listSyncExecutions) })

	ex := []string{"Executions"}
	reg(huma.Operation{OperationID: "get-execution", Method: http.MethodGet, Path: "/api/executions/{id}",
		Summary: "Get one execution", Tags: ex},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.getExecution) })
	reg(huma.Operation{OperationID: "list-execution-logs", Method: http.MethodGet, Path: "/api/executions/{id}/logs",
		Summary: "List an execution's log lines, oldest first", Tags: ex},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.executionLogs) })
	reg(huma.Operation{OperationID: "mark-execution-restored", Method: http.MethodPost, Path: "/api/executions/{id}/mark-restored",
		Summary: "Record that a backup was restored by hand (creates a restore_completed notification)", Tags: ex},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.markRestored) })
	reg(huma.Operation{OperationID: "pin-execution", Method: http.MethodPost, Path: "/api/executions/{id}/pin",
		Summary: "Pin a completed backup: retention never deletes it",
		Description: "A pinned backup takes no slot of its job's retention policy (max_backups, GFS) and is kept until " +
			"unpinned; `reason` is stored as metadata.pinned_reason. The safety backup a restore takes first is pinned " +
			"automatically. 409 when the execution is not a completed backup or retention already deleted its files.",
		Tags: ex},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.pinExecution) })
	reg(huma.Operation{OperationID: "unpin-execution", Method: http.MethodDelete, Path: "/api/executions/{id}/pin",
		Summary:     "Unpin a backup: its job's retention policy applies to it again",
		Description: "Answers the backup, also when it was not pinned. 409 when the execution is not a backup.",
		Tags:        ex},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.unpinExecution) })
	reg(huma.Operation{OperationID: "retry-execution-upload", Method: http.MethodPost, Path: "/api/executions/{id}/retry-upload",
		Summary: "Copy a verified copy of a backup onto every storage whose copy is missing or damaged",
		Description: "Answers 200 with the state of every copy, also when some storage still fails (`complete` " +
			"is false and those copies show status unreachable with the error): retry once the storage is back. " +
			"409 when the execution is not a completed backup or no storage holds a verified copy to copy from.",
		Tags: ex},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.retryUpload) })
	binary := &huma.Schema{Type: huma.TypeString, Format: "binary"}
	reg(huma.Operation{OperationID: "download-execution", Method: http.MethodGet, Path: "/api/executions/{id}/download",
		Summary: "Download a completed backup: its file, or a zip of its parts and manifest.json",
		Description: "Every copy is verified (manifest, sizes, sha256) before anything is sent. A single-file " +
			"backup is sent as is, with Content-Length and Range support; a split backup is streamed as a " +
			"zip (stored, not recompressed) of its parts and manifest.json.",
		Tags: ex,
		Responses: map[string]*huma.Response{
			"200": {Description: "The backup file, or a zip of its parts",
				Headers: map[string]*huma.Param{
					"Content-Disposition": {Description: "attachment; filename=…", Schema: &huma.Schema{Type: huma.TypeString}},
				},
				Content: map[string]*huma.MediaType{
					"application/octet-stream": {Schema: binary},
					"application/zip":          {Schema: binary},
				}},
			"206": {Description: "The requested range of a single-file backup",
				Content: map[string]*huma.MediaType{"application/octet-stream": {Schema: binary}}},
		}},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.download) })
	reg(huma.Operation{OperationID: "create-download-link", Method: http.MethodPost, Path: "/api/executions/{id}/download-link",
		Summary: "A download link for a completed backup, usable without a token for a minute",
		Description: "A browser cannot send an Authorization header with a plain link. The answer's `url` (relative to the " +
			"API's server) carries a ticket in its query that lets GET /api/executions/{id}/download run without a token " +
			"until `expires_at`, for this backup only, and only while the token that asked for it is valid and holds " +
			"`backups.download`. 409 when the execution is not a completed backup.",
		Tags: ex},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.createDownloadLink) })
}

// ---------------------------------------------------------------------------
// Shared helpers.

// Page is the pagination of every list operation: embedded in an
// operation's input, it adds the limit and offset query parameters. The
// answer's Link header names the next page while there is one (NextPage).
type Page struct {
	Limit  int `query:"limit" minimum:"1" maximum:"1000" default:"50" doc:"Most items to return; the answer's Link header names the next page while there is one"`
	Offset int `query:"offset" minimum:"0" default:"0" doc:"Items to skip"`
}

// probe is the limit to read from the store, which skips Offset: one item
// beyond the page tells whether there is a next one (see cut).
func (p Page) probe() int { return p.Limit + 1 }

// NextPage is the Link header of a list answer: embedded in an
// operation's output, it documents and sends it.
type NextPage struct {
	Link string `header:"Link" doc:"While more items follow: <URL of the next page>; rel=\"next\" (RFC 8288), the same request with offset advanced by limit; absent on the last page"`
}

type requestURLKey struct{}

// keepURL is the middleware that lets a handler read its request's URL
// (for NextPage).
func keepURL(ctx huma.Context, next func(huma.Context)) {
	u := ctx.URL()
	next(huma.WithValue(ctx, requestURLKey{}, &u))
}

// nextPage is the NextPage of an answer holding page p of a list, when
// more items follow: the request's URL (under the API's base path) with
// offset advanced by limit.
func (h *handlers) nextPage(ctx context.Context, p Page, more bool) NextPage {
	u, ok := ctx.Value(requestURLKey{}).(*url.URL)
	if !more || !ok {
		return NextPage{}
	}
	q := u.Query()
	q.Set("limit", strconv.Itoa(p.Limit))
	q.Set("offset", strconv.Itoa(p.Offset+p.Limit))
	return NextPage{Link: "<" + strings.TrimSuffix(h.basePath, "/") + u.Path + "?" + q.Encode() + `>; rel="next"`}
}

// cut trims xs, read from the store with p.probe() as limit, to the page
// and reports whether more items follow.
func cut[T any](xs []T, p Page) ([]T, bool) {
	if len(xs) > p.Limit {
		return xs[:p.Limit], true
	}
	return xs, false
}

// pageOf is the page p of xs, read from the store with p.probe() as limit
// from p.Offset, each converted by conv, and whether more items follow.
func pageOf[T, R any](xs []T, p Page, conv func(*T) R) ([]R, bool) {
	xs, more := cut(xs, p)
	out := make([]R, 0, len(xs))
	for i := range xs {
		out = append(out, conv(&xs[i]))
	}
	return out, more
}

// inBody attributes an engine error to the first of fields its message
// names (after removing the quoted name of the object, which may contain
// anything), so the problem says which body field to fix.
func inBody(err error, name string, fields ...string) error {
	var ef *engine.FieldError
	if !errors.Is(err, engine.ErrInvalid) || errors.As(err, &ef) { // problem names an engine.FieldError's field
		return err
	}
	msg := strings.Replace(err.Error(), strconv.Quote(name), "", 1)
	for _, f := range fields {
		if strings.Contains(msg, f) {
			return inField("body."+f, nil, err)
		}
	}
	return err
}

// ---------------------------------------------------------------------------
// Storage locations.

// StorageLocation is a storage location as the API returns it. Secret
// config values (keys naming a secret, password, token, access or private
// key, or credentials) are write-only.
type StorageLocation struct {
	ID        string            `json:"id" doc:"Storage location ID (UUID)"`
	Name      string            `json:"name" doc:"Unique name" example:"Disco local"`
	Type      string            `json:"type" doc:"Storage type" example:"local"`
	Config    map[string]string `json:"config,omitempty" doc:"Type-specific settings without secrets; local: path" example:"{\"path\":\"/var/backups/dataguardian\"}"`
	Enabled   bool              `json:"enabled" doc:"Whether backups may be written to it"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

func storageLocationOf(l *engine.StorageLocation) StorageLocation {
	var cfg map[string]string
	for k, v := range l.Config {
		if engine.SecretConfigKey(k) {
			continue
		}
		if cfg == nil {
			cfg = map[string]string{}
		}
		cfg[k] = v
	}
	return StorageLocation{ID: l.ID, Name: l.Name, Type: l.Type, Config: cfg, Enabled: l.Enabled,
		CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt}
}

// StorageLocationWrite is the body of POST and PUT /api/storage-locations.
type StorageLocationWrite struct {
	Name    string            `json:"name" minLength:"1" maxLength:"200" doc:"Unique name" example:"Disco local"`
	Type    string            `json:"type,omitempty" default:"local" doc:"Storage type" example:"local"`
	Config  map[string]string `json:"config" doc:"Type-specific settings. local: path (created if missing, must be writable). s3: endpoint (URL, default https://s3.amazonaws.com), bucket (must exist), prefix (ending in /), region, access_key_id and secret_access_key (or neither: the AWS environment and profile chain), session_token, path_style (true for MinIO and most self-hosted services), part_size_mb (5 to 5120, default 16). sftp: host, port (default 22), user, path (absolute, on the server), host_key (required: the server's public key as ssh-keyscan prints it), password or private_key (+ private_key_passphrase). Secrets (keys naming a secret, password, token, access or private key) are stored sealed and never returned; on PUT an omitted secret keeps its stored value while no other setting changed" example:"{\"path\":\"/var/backups/dataguardian\"}"`
	Enabled *bool             `json:"enabled,omitempty" doc:"Whether backups may be written to it; default true on create, unchanged on update"`
}

type storageLocationsOutput struct {
	NextPage
	Body []StorageLocation
}
type storageLocationOutput struct{ Body StorageLocation }
type createStorageLocationInput struct{ Body StorageLocationWrite }
type updateStorageLocationInput struct {
	ID   string `path:"id" doc:"Storage location ID"`
	Body StorageLocationWrite
}

var storageFields = []string{"type", "name", "config"}

func storageProblem(h *handlers, op string, name string, err error) error {
	var ef *engine.FieldError
	if errors.As(err, &ef) {
		return problem(h.log, op, err)
	}
	if errors.Is(err, engine.ErrInvalid) && !strings.Contains(err.Error(), "type ") &&
		!strings.Contains(err.Error(), "name is empty") {
		return problem(h.log, op, inField("body.config.path", nil, err))
	}
	return problem(h.log, op, inBody(err, name, storageFields...))
}

func (h *handlers) listStorageLocations(ctx context.Context, in *Page) (*storageLocationsOutput, error) {
	ls, err := h.e.Store().FindStorageLocations(ctx, in.probe(), in.Offset)
	if err != nil {
		return nil, problem(h.log, "list-storage-locations", err)
	}
	body, more := pageOf(ls, *in, storageLocationOf)
	return &storageLocationsOutput{Body: body, NextPage: h.nextPage(ctx, *in, more)}, nil
}

func (h *handlers) createStorageLocation(ctx context.Context, in *createStorageLocationInput) (*storageLocationOutput, error) {
	b := in.Body
	loc := &engine.StorageLocation{Name: b.Name, Type: b.Type, Config: b.Config}
	if loc.Type == "" {
		loc.Type = "local"
	}
	if err := h.e.CreateStorageLocation(ctx, loc); err != nil {
		return nil, storageProblem(h, "create-storage-location", b.Name, err)
	}
	if b.Enabled != nil && !*b.Enabled {
		loc.Enabled = false
		if err := h.e.Store().UpdateStorageLocation(ctx, loc, "enabled"); err != nil {
			return nil, problem(h.log, "create-storage-location", err)
		}
	}
	return &storageLocationOutput{Body: storageLocationOf(loc)}, nil
}

func (h *handlers) getStorageLocation(ctx context.Context, in *idInput) (*storageLocationOutput, error) {
	loc, err := h.e.Store().GetStorageLocation(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, "get-storage-location", err)
	}
	return &storageLocationOutput{Body: storageLocationOf(loc)}, nil
}

func (h *handlers) updateStorageLocation(ctx context.Context, in *updateStorageLocationInput) (*storageLocationOutput, error) {
	cur, err := h.e.Store().GetStorageLocation(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, "update-storage-location", err)
	}
	b := in.Body
	// Write-only secrets: the engine keeps those left out while the
	// location points where it did.
	loc := &engine.StorageLocation{ID: cur.ID, Name: b.Name, Type: b.Type, Config: b.Config, Enabled: cur.Enabled}
	if loc.Type == "" {
		loc.Type = "local"
	}
	if b.Enabled != nil {
		loc.Enabled = *b.Enabled
	}
	if err := h.e.UpdateStorageLocation(ctx, loc); err != nil {
		return nil, storageProblem(h, "update-storage-location", b.Name, err)
	}
	return &storageLocationOutput{Body: storageLocationOf(loc)}, nil
}

func (h *handlers) deleteStorageLocation(ctx context.Context, in *idInput) (*struct{}, error) {
	if err := h.e.DeleteStorageLocation(ctx, in.ID); err != nil {
		return nil, problem(h.log, "delete-storage-location", err)
	}
	return nil, nil
}

// ---------------------------------------------------------------------------
// Backup jobs.

// Retention is a backup job's retention policy.
type Retention struct {
	MaxBackups  int  `json:"max_backups" minimum:"0" doc:"Keep the newest N completed backups; 0 is unlimited unless a keep_* tier is set" example:"3"`
	AutoDelete  bool `json:"auto_delete" doc:"Delete what the policy drops; false only reports it" example:"true"`
	KeepDaily   int  `json:"keep_daily,omitempty" minimum:"0" doc:"Keep the newest backup of each of the last N days with one"`
	KeepWeekly  int  `json:"keep_weekly,omitempty" minimum:"0" doc:"Keep the newest backup of each of the last N ISO weeks with one"`
	KeepMonthly int  `json:"keep_monthly,omitempty" minimum:"0" doc:"Keep the newest backup of each of the last N months with one"`
}

func (r Retention) policy() engine.Retention {
	return engine.Retention{MaxBackups: r.MaxBackups, AutoDelete: r.AutoDelete, KeepDaily: r.KeepDaily,
		KeepWeekly: r.KeepWeekly, KeepMonthly: r.KeepMonthly}
}

// BackupJob is a backup job as the API returns it.
type BackupJob struct {
	ID                   string     `json:"id" doc:"Backup job ID (UUID)"`
	Name                 string     `json:"name" doc:"Name" example:"Backup diário"`
	DatasourceID         string     `json:"datasource_id" doc:"Datasource backed up"`
	Schedule             string     `json:"schedule" doc:"Cron expression; empty runs only on demand" example:"0 6 * * *"`
	Timezone             string     `json:"timezone,omitempty" doc:"IANA time zone of the schedule; empty is UTC" example:"America/Sao_Paulo"`
	StorageLocationIDs   []string   `json:"storage_location_ids" doc:"Storage locations written to; the first is preferred for restores"`
	Compression          string     `json:"compression" enum:"gzip,zstd,lz4,none" doc:"Compression of the dump"`
	MaxFileSizeMB        int        `json:"max_file_size_mb" doc:"Largest part in MiB; bigger backups are split"`
	Retention            Retention  `json:"retention" doc:"Retention policy"`
	Enabled              bool       `json:"enabled" doc:"Whether the schedule runs"`
	RetryAttempts        int        `json:"retry_attempts" doc:"How many times a failed backup is run again; 0 never retries" example:"2"`
	RetryDelaySeconds    int        `json:"retry_delay_seconds" doc:"Wait before the first retry in seconds, doubled for each next one up to an hour" example:"300"`
	EncryptionRecipients []string   `json:"encryption_recipients,omitempty" doc:"age public keys every backup is encrypted to (after compression); absent: backups are not encrypted"`
	NextExecutionAt      *time.Time `json:"next_execution_at" nullable:"true" doc:"Next scheduled run, null without a schedule"`
	LastExecutionAt      *time.Time `json:"last_execution_at" nullable:"true" doc:"Last run, null before the first"`
	CreatedAt            time.Time  `json:"created_at"`
	UpdatedAt            time.Time  `json:"updated_at"`
}

func backupJobOf(j *engine.BackupJob) BackupJob {
	r := j.Retention
	ids := j.StorageLocationIDs
	if ids == nil {
		ids = []string{}
	}
	return BackupJob{ID: j.ID, Name: j.Name, DatasourceID: j.DatasourceID, Schedule: j.Schedule, Timezone: j.Timezone,
		StorageLocationIDs: ids, Compression: j.Compression, MaxFileSizeMB: j.MaxFileSizeMB,
		Retention: Retention{MaxBackups: r.MaxBackups, AutoDelete: r.AutoDelete, KeepDaily: r.KeepDaily,
			KeepWeekly: r.KeepWeekly, KeepMonthly: r.KeepMonthly},
		Enabled: j.Enabled, RetryAttempts: j.RetryAttempts, RetryDelaySeconds: j.RetryDelaySeconds,
		EncryptionRecipients: j.EncryptionRecipients, NextExecutionAt: j.NextExecutionAt, LastExecutionAt: j.LastExecutionAt,
		CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt}
}

// BackupJobCreate is the body of POST /api/backup-jobs.
type BackupJobCreate struct {
	Name         string `json:"name" minLength:"1" maxLength:"200" doc:"Name" example:"Backup diário"`
	DatasourceID string `json:"datasource_id" minLength:"1" doc:"Datasource to back up"`
	BackupJobSettings
}

// BackupJobSettings are the fields of a backup job that PUT replaces.
type BackupJobSettings struct {
	Schedule             string     `json:"schedule,omitempty" doc:"Cron expression; empty runs only on demand" example:"0 6 * * *"`
	Timezone             string     `json:"timezone,omitempty" doc:"IANA time zone of the schedule; empty is UTC" example:"America/Sao_Paulo"`
	StorageLocationIDs   []string   `json:"storage_location_ids" minItems:"1" doc:"Storage locations to write to, in order of preference"`
	Compression          string     `json:"compression,omitempty" enum:"gzip,zstd,lz4,none" doc:"Compression; default gzip (any gunzip recovers it by hand)"`
	MaxFileSizeMB        int        `json:"max_file_size_mb,omitempty" minimum:"0" doc:"Largest part in MiB; 0 is the default"`
	Retention            *Retention `json:"retention,omitempty" doc:"Retention policy; omitted keeps every backup"`
	Enabled              *bool      `json:"enabled,omitempty" doc:"Whether the schedule runs; default true on create, unchanged on update"`
	RetryAttempts        *int       `json:"retry_attempts,omitempty" minimum:"0" maximum:"10" doc:"How many times a failed backup is run again; 0 never retries; default 2 on create, unchanged on update" example:"2"`
	RetryDelaySeconds    *int       `json:"retry_delay_seconds,omitempty" minimum:"10" maximum:"86400" doc:"Wait before the first retry in seconds, doubled for each next one up to an hour (a longer wait is kept as is); default 300 on create, unchanged on update" example:"300"`
	EncryptionRecipients *[]string  `json:"encryption_recipients,omitempty" maxItems:"20" doc:"age public keys (\"age1…\", from age-keygen) to encrypt every new backup to, after compression; any one's secret key decrypts (give it to the server with --age-identity for restores and verifications). [] stops encrypting; omitted: none on create, unchanged on update. Older backups keep the keys they were made with" example:"[\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"]"`
}

// BackupJobUpdate is the body of PUT /api/backup-jobs/{id}. The datasource
// of a job cannot change.
type BackupJobUpdate struct {
	Name string `json:"name" minLength:"1" maxLength:"200" doc:"Name" example:"Backup diário"`
	BackupJobSettings
}

type backupJobsOutput struct {
	NextPage
	Body []BackupJob
}
type backupJobOutput struct{ Body BackupJob }
type createBackupJobInput struct{ Body BackupJobCreate }
type updateBackupJobInput struct {
	ID   string `path:"id" doc:"Backup job ID"`
	Body BackupJobUpdate
}

var jobFields = []string{"retry_attempts", "retry_delay_seconds", "encryption_recipients", "datasource_id", "storage_location_ids", "compression",
	"max_file_size_mb", "retention", "timezone", "schedule", "name"}

// syncJobPrefix starts the names of the internal backup jobs of sync jobs.
var syncJobPrefix = engine.SyncBackupJobName("")

// apply sets the fields of j that s holds; the retry and encryption
// fields s leaves out stay as they are in j (the defaults on create, the
// stored values on update).
func (s BackupJobSettings) apply(j *engine.BackupJob) {
	j.Schedule, j.Timezone, j.StorageLocationIDs = s.Schedule, s.Timezone, s.StorageLocationIDs
	j.Compression, j.MaxFileSizeMB = s.Compression, s.MaxFileSizeMB
	if s.RetryAttempts != nil {
		j.RetryAttempts = *s.RetryAttempts
	}
	if s.RetryDelaySeconds != nil {
		j.RetryDelaySeconds = *s.RetryDelaySeconds
	}
	if s.EncryptionRecipients != nil {
		j.EncryptionRecipients = *s.EncryptionRecipients
	}
	j.Retention = engine.Retention{}
	if s.Retention != nil {
		j.Retention = s.Retention.policy()
	}
}

func reservedJobName(name string) error {
	if strings.HasPrefix(name, syncJobPrefix) {
		return inField("body.name", name, fmt.Errorf("%w: names starting with %q are reserved for sync jobs: choose another name",
			engine.ErrInvalid, syncJobPrefix))
	}
	return nil
}

func (h *handlers) listBackupJobs(ctx context.Context, in *Page) (*backupJobsOutput, error) {
	js, err := h.e.Store().FindBackupJobs(ctx, engine.BackupJobFilter{ExcludeSyncJobs: true, Limit: in.probe(), Offset: in.Offset})
	if err != nil {
		return nil, problem(h.log, "list-backup-jobs", err)
	}
	body, more := pageOf(js, *in, backupJobOf)
	return &backupJobsOutput{Body: body, NextPage: h.nextPage(ctx, *in, more)}, nil
}

func (h *handlers) createBackupJob(ctx context.Context, in *createBackupJobInput) (*backupJobOutput, error) {
	b := in.Body
	if err := reservedJobName(b.Name); err != nil {
		return nil, problem(h.log, "create-backup-job", err)
	}
	job := &engine.BackupJob{Name: b.Name, DatasourceID: b.DatasourceID,
		RetryAttempts: engine.DefaultRetryAttempts, RetryDelaySeconds: engine.DefaultRetryDelaySeconds}
	b.apply(job)
	if err := h.e.CreateBackupJob(ctx, job); err != nil {
		return nil, problem(h.log, "create-backup-job", inBody(err, b.Name, jobFields...))
	}
	if b.Enabled != nil && !*b.Enabled {
		job.Enabled = false
		if err := h.e.UpdateBackupJob(ctx, job); err != nil {
			return nil, problem(h.log, "create-backup-job", err)
		}
	}
	return &backupJobOutput{Body: backupJobOf(job)}, nil
}

func (h *handlers) getBackupJob(ctx context.Context, in *idInput) (*backupJobOutput, error) {
	j, err := h.e.Store().GetBackupJob(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, "get-backup-job", err)
	}
	return &backupJobOutput{Body: backupJobOf(j)}, nil
}

// syncOwned refuses changes to the backup job a sync job runs through.
func syncOwned(j *engine.BackupJob) error {
	if strings.HasPrefix(j.Name, syncJobPrefix) {
		return fmt.Errorf("%w: backup job %s belongs to sync job %s: change or delete the sync job instead (/api/sync-jobs/%s)",
			engine.ErrInUse, j.ID, strings.TrimPrefix(j.Name, syncJobPrefix), strings.TrimPrefix(j.Name, syncJobPrefix))
	}
	return nil
}

func (h *handlers) updateBackupJob(ctx context.Context, in *updateBackupJobInput) (*backupJobOutput, error) {
	cur, err := h.e.Store().GetBackupJob(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, "update-backup-job", err)
	}
	if err := syncOwned(cur); err != nil {
		return nil, problem(h.log, "update-backup-job", err)
	}
	b := in.Body
	if err := reservedJobName(b.Name); err != nil {
		return nil, problem(h.log, "update-backup-job", err)
	}
	job := &engine.BackupJob{ID: cur.ID, Name: b.Name, DatasourceID: cur.DatasourceID, Enabled: cur.Enabled,
		RetryAttempts: cur.RetryAttempts, RetryDelaySeconds: cur.RetryDelaySeconds, EncryptionRecipients: cur.EncryptionRecipients}
	b.apply(job)
	if b.Enabled != nil {
		job.Enabled = *b.Enabled
	}
	if err := h.e.UpdateBackupJob(ctx, job); err != nil {
		return nil, problem(h.log, "update-backup-job", inBody(err, b.Name, jobFields...))
	}
	// Read back: the response shows what is stored (timestamps included).
	j, err := h.e.Store().GetBackupJob(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, "update-backup-job", err)
	}
	return &backupJobOutput{Body: backupJobOf(j)}, nil
}

func (h *handlers) deleteBackupJob(ctx context.Context, in *idInput) (*struct{}, error) {
	cur, err := h.e.Store().GetBackupJob(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, "delete-backup-job", err)
	}
	if err := syncOwned(cur); err != nil {
		return nil, problem(h.log, "delete-backup-job", err)
	}
	if err := h.e.DeleteBackupJob(ctx, in.ID); err != nil {
		return nil, problem(h.log, "delete-backup-job", err)
	}
	return nil, nil
}

// ---------------------------------------------------------------------------
// Sync jobs.

// SyncJob is a database sync job: a backup of the source restored into
// the target.
type SyncJob struct {
	ID                 string     `json:"id" doc:"Sync job ID (UUID)"`
	Name               string     `json:"name" doc:"Name" example:"Produção para homologação"`
	SourceDatasourceID string     `json:"source_datasource_id" doc:"Datasource copied from"`
	TargetDatasourceID string     `json:"target_datasource_id" doc:"Datasource overwritten with the copy"`
	Schedule           string     `json:"schedule" doc:"Cron expression; empty runs only on demand" example:"0 3 * * *"`
	Timezone           string     `json:"timezone,omitempty" doc:"IANA time zone of the schedule"`
	StorageLocationID  string     `json:"storage_location_id,omitempty" doc:"Storage the source's backups go to"`
	Enabled            bool       `json:"enabled" doc:"Whether the schedule runs"`
	NextExecutionAt    *time.Time `json:"next_execution_at" nullable:"true" doc:"Next scheduled run"`
	LastExecutionAt    *time.Time `json:"last_execution_at" nullable:"true" doc:"Last run"`
	CreatedAt          time.Time  `json:"created_at"`
	UpdatedAt          time.Time  `json:"updated_at"`
}

func syncJobOf(j *engine.SyncJob) SyncJob {
	return SyncJob{ID: j.ID, Name: j.Name, SourceDatasourceID: j.SourceDatasourceID, TargetDatasourceID: j.TargetDatasourceID,
		Schedule: j.Schedule, Timezone: j.Timezone, StorageLocationID: j.StorageLocationID, Enabled: j.Enabled,
		NextExecutionAt: j.NextExecutionAt, LastExecutionAt: j.LastExecutionAt, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt}
}

// SyncJobCreate is the body of POST /api/sync-jobs.
type SyncJobCreate struct {
	Name               string `json:"name" minLength:"1" maxLength:"200" doc:"Name" example:"Produção para homologação"`
	SourceDatasourceID string `json:"source_datasource_id" minLength:"1" doc:"Datasource to copy from"`
	TargetDatasourceID string `json:"target_datasource_id" minLength:"1" doc:"Datasource to overwrite, of the same type"`
	StorageLocationID  string `json:"storage_location_id" minLength:"1" doc:"Storage the source's backups go to"`
	Schedule           string `json:"schedule,omitempty" doc:"Cron expression; empty runs only on demand" example:"0 3 * * *"`
	Timezone           string `json:"timezone,omitempty" doc:"IANA time zone of the schedule" example:"America/Sao_Paulo"`
}

// SyncJobUpdate is the body of PUT /api/sync-jobs/{id}.
type SyncJobUpdate struct {
	SyncJobCreate
	Enabled *bool `json:"enabled,omitempty" doc:"Whether the schedule runs; omitted keeps the current value"`
}

// SyncExecution is one run of a sync job.
type SyncExecution struct {
	ID                 string     `json:"id" doc:"Sync execution ID"`
	SyncJobID          string     `json:"sync_job_id" doc:"Sync job"`
	Status             string     `json:"status" enum:"queued,running,completed,failed,cancelled" doc:"State of the run"`
	BackupExecutionID  string     `json:"backup_execution_id,omitempty" doc:"Backup of the source"`
	RestoreExecutionID string     `json:"restore_execution_id,omitempty" doc:"Restore into the target"`
	StartedAt          *time.Time `json:"started_at" nullable:"true"`
	FinishedAt         *time.Time `json:"finished_at" nullable:"true"`
	ErrorMessage       string     `json:"error_message,omitempty" doc:"Why it failed"`
	CreatedAt          time.Time  `json:"created_at"`
}

func syncExecutionOf(x *engine.SyncExecution) SyncExecution {
	return SyncExecution{ID: x.ID, SyncJobID: x.SyncJobID, Status: string(x.Status), BackupExecutionID: x.BackupExecutionID,
		RestoreExecutionID: x.RestoreExecutionID, StartedAt: x.StartedAt, FinishedAt: x.FinishedAt,
		ErrorMessage: x.ErrorMessage, CreatedAt: x.CreatedAt}
}

type syncJobsOutput struct {
	NextPage
	Body []SyncJob
}
type syncJobOutput struct{ Body SyncJob }
type createSyncJobInput struct{ Body SyncJobCreate }
type updateSyncJobInput struct {
	ID   string `path:"id" doc:"Sync job ID"`
	Body SyncJobUpdate
}
type syncExecutionOutput struct{ Body SyncExecution }
type syncExecutionsOutput struct {
	NextPage
	Body []SyncExecution
}
type listSyncExecutionsInput struct {
	ID string `path:"id" doc:"Sync job ID"`
	Page
}

var syncFields = []string{"source_datasource_id", "target_datasource_id", "storage_location_id", "timezone", "schedule", "name"}

func (h *handlers) listSyncJobs(ctx context.Context, in *Page) (*syncJobsOutput, error) {
	js, err := h.e.Store().FindSyncJobs(ctx, in.probe(), in.Offset)
	if err != nil {
		return nil, problem(h.log, "list-sync-jobs", err)
	}
	body, more := pageOf(js, *in, syncJobOf)
	return &syncJobsOutput{Body: body, NextPage: h.nextPage(ctx, *in, more)}, nil
}

func (h *handlers) createSyncJob(ctx context.Context, in *createSyncJobInput) (*syncJobOutput, error) {
	b := in.Body
	j := &engine.SyncJob{Name: b.Name, SourceDatasourceID: b.SourceDatasourceID, TargetDatasourceID: b.TargetDatasourceID,
		StorageLocationID: b.StorageLocationID, Schedule: b.Schedule, Timezone: b.Timezone}
	if err := h.e.CreateSyncJob(ctx, j); err != nil {
		return nil, problem(h.log, "create-sync-job", inBody(err, b.Name, syncFields...))
	}
	return &syncJobOutput{Body: syncJobOf(j)}, nil
}

func (h *handlers) getSyncJob(ctx context.Context, in *idInput) (*syncJobOutput, error) {
	j, err := h.e.Store().GetSyncJob(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, "get-sync-job", err)
	}
	return &syncJobOutput{Body: syncJobOf(j)}, nil
}

func (h *handlers) updateSyncJob(ctx context.Context, in *updateSyncJobInput) (*syncJobOutput, error) {
	const op = "update-sync-job"
	cur, err := h.e.Store().GetSyncJob(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, op, err)
	}
	b := in.Body
	j := &engine.SyncJob{ID: cur.ID, Name: b.Name, SourceDatasourceID: b.SourceDatasourceID, TargetDatasourceID: b.TargetDatasourceID,
		StorageLocationID: b.StorageLocationID, Schedule: b.Schedule, Timezone: b.Timezone, Enabled: cur.Enabled}
	if b.Enabled != nil {
		j.Enabled = *b.Enabled
	}
	if err := h.e.UpdateSyncJob(ctx, j); err != nil {
		return nil, problem(h.log, op, inBody(err, b.Name, syncFields...))
	}
	return h.getSyncJob(ctx, &idInput{ID: in.ID})
}

func (h *handlers) deleteSyncJob(ctx context.Context, in *idInput) (*struct{}, error) {
	if err := h.e.DeleteSyncJob(ctx, in.ID); err != nil {
		return nil, problem(h.log, "delete-sync-job", err)
	}
	return nil, nil
}

func (h *handlers) runSyncJob(ctx context.Context, in *idInput) (*syncExecutionOutput, error) {
	x, err := h.e.RunSyncNow(ctx, h.e.Queue(), in.ID)
	if err != nil {
		return nil, problem(h.log, "run-sync-job", err)
	}
	return &syncExecutionOutput{Body: syncExecutionOf(x)}, nil
}

func (h *handlers) listSyncExecutions(ctx context.Context, in *listSyncExecutionsInput) (*syncExecutionsOutput, error) {
	if _, err := h.e.Store().GetSyncJob(ctx, in.ID); err != nil {
		return nil, problem(h.log, "list-sync-job-executions", err)
	}
	xs, err := h.e.Store().ListSyncExecutions(ctx, in.ID, in.probe(), in.Offset)
	if err != nil {
		return nil, problem(h.log, "list-sync-job-executions", err)
	}
	body, more := pageOf(xs, in.Page, syncExecutionOf)
	return &syncExecutionsOutput{Body: body, NextPage: h.nextPage(ctx, in.Page, more)}, nil
}

// ---------------------------------------------------------------------------
// Executions.

// ExecutionLog is one log line of an execution.
type ExecutionLog struct {
	At      time.Time `json:"at" doc:"When it was written"`
	Level   string    `json:"level" doc:"info, warn or error" example:"info"`
	Message string    `json:"message" doc:"The line, with its [BACKUP] or [RESTORE] prefix" example:"[BACKUP] dump started"`
}

type executionLogsOutput struct{ Body []ExecutionLog }

// MarkRestored is the body of POST /api/executions/{id}/mark-restored.
type MarkRestored struct {
	RestoredAt *time.Time `json:"restored_at,omitempty" doc:"When it was restored; default now" example:"2025-02-13T10:30:00Z"`
	RestoredBy string     `json:"restored_by" minLength:"1" maxLength:"200" doc:"Who restored it" example:"operador"`
	Reason     string     `json:"reason" minLength:"1" maxLength:"2000" doc:"Why it was restored" example:"Rollback após deploy com bug na migração de dados"`
}

type markRestoredInput struct {
	ID   string `path:"id" doc:"Backup execution ID"`
	Body MarkRestored
}

// PinExecution is the optional body of POST /api/executions/{id}/pin.
type PinExecution struct {
	Reason string `json:"reason,omitempty" maxLength:"500" doc:"Why it is kept (metadata.pinned_reason); default \"pinned by hand\"" example:"last backup before the 2025 migration"`
}

type pinExecutionInput struct {
	ID   string `path:"id" doc:"Backup execution ID"`
	Body *PinExecution
}

// UploadCopy is the state of a backup's copy on one storage location.
type UploadCopy struct {
	StorageLocationID   string    `json:"storage_location_id" doc:"Storage location"`
	StorageLocationName string    `json:"storage_location_name,omitempty" doc:"Its name; empty once the location was deleted"`
	Status              string    `json:"status" doc:"available, missing (manifest.json or a part gone), corrupt (a size or checksum does not match) or unreachable" example:"available"`
	ErrorMessage        string    `json:"error_message,omitempty" doc:"Why the copy is not available"`
	UpdatedAt           time.Time `json:"updated_at"`
}

// RetryUploadResult is the answer of POST /api/executions/{id}/retry-upload.
type RetryUploadResult struct {
	Execution Execution    `json:"execution" doc:"The backup execution"`
	Complete  bool         `json:"complete" doc:"Whether every copy is now available; false: retry once the failed storages are back"`
	Storages  []UploadCopy `json:"storages" doc:"The state of each copy after the retry"`
}

type retryUploadOutput struct{ Body RetryUploadResult }

func (h *handlers) getExecution(ctx context.Context, in *idInput) (*executionOutput, error) {
	x, err := h.e.Store().GetExecution(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, "get-execution", err)
	}
	return &executionOutput{Body: executionOf(x)}, nil
}

func (h *handlers) executionLogs(ctx context.Context, in *idInput) (*executionLogsOutput, error) {
	if _, err := h.e.Store().GetExecution(ctx, in.ID); err != nil {
		return nil, problem(h.log, "list-execution-logs", err)
	}
	ls, err := h.e.ExecutionLogs(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, "list-execution-logs", err)
	}
	out := &executionLogsOutput{Body: make([]ExecutionLog, 0, len(ls))}
	for _, l := range ls {
		out.Body = append(out.Body, ExecutionLog{At: l.At, Level: l.Level, Message: l.Message})
	}
	return out, nil
}

func (h *handlers) markRestored(ctx context.Context, in *markRestoredInput) (*executionOutput, error) {
	var at time.Time
	if in.Body.RestoredAt != nil {
		at = *in.Body.RestoredAt
	}
	x, err := h.e.MarkRestored(ctx, in.ID, at, in.Body.RestoredBy, in.Body.Reason)
	if err != nil {
		return nil, problem(h.log, "mark-execution-restored", inBody(err, "", "restored_at", "restored_by", "reason"))
	}
	return &executionOutput{Body: executionOf(x)}, nil
}

func (h *handlers) pinExecution(ctx context.Context, in *pinExecutionInput) (*executionOutput, error) {
	reason := ""
	if in.Body != nil {
		reason = in.Body.Reason
	}
	x, err := h.e.PinExecution(ctx, in.ID, reason)
	if err != nil {
		return nil, problem(h.log, "pin-execution", err)
	}
	return &executionOutput{Body: executionOf(x)}, nil
}

func (h *handlers) unpinExecution(ctx context.Context, in *idInput) (*executionOutput, error) {
	x, err := h.e.UnpinExecution(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, "unpin-execution", err)
	}
	return &executionOutput{Body: executionOf(x)}, nil
}

func (h *handlers) retryUpload(ctx context.Context, in *idInput) (*retryUploadOutput, error) {
	const op = "retry-execution-upload"
	x, err := h.e.RetryUpload(ctx, in.ID)
	// Storages still failing are an outcome to report, not a server fault.
	if err != nil && !errors.Is(err, engine.ErrUploadIncomplete) {
		return nil, problem(h.log, op, err)
	}
	ess, lerr := h.e.Store().ListExecutionStorages(ctx, x.ID)
	if lerr != nil {
		return nil, problem(h.log, op, lerr)
	}
	locs, lerr := h.e.Store().ListStorageLocations(ctx)
	if lerr != nil {
		return nil, problem(h.log, op, lerr)
	}
	names := make(map[string]string, len(locs))
	for _, l := range locs {
		names[l.ID] = l.Name
	}
	out := &retryUploadOutput{Body: RetryUploadResult{Execution: executionOf(x), Complete: err == nil,
		Storages: make([]UploadCopy, 0, len(ess))}}
	for _, es := range ess {
		out.Body.Storages = append(out.Body.Storages, UploadCopy{StorageLocationID: es.StorageLocationID,
			StorageLocationName: names[es.StorageLocationID], Status: string(es.Status), ErrorMessage: es.ErrorMessage,
			UpdatedAt: es.UpdatedAt})
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Download.

// downloadLinkTTL is how long a download link works.
const downloadLinkTTL = time.Minute

// DownloadLink is a link that downloads a backup without a token, for a
// while.
type DownloadLink struct {
	URL       string    `json:"url" doc:"The download's path and query, relative to the API's server: GET it without a token"`
	ExpiresAt time.Time `json:"expires_at" doc:"When the link stops working"`
}

type downloadLinkOutput struct{ Body DownloadLink }

func (h *handlers) createDownloadLink(ctx context.Context, in *idInput) (*downloadLinkOutput, error) {
	holder := ""
	if tok, ok := TokenFrom(ctx); ok {
		holder = tok.ID
	}
	tk, expires, err := h.e.DownloadTicket(ctx, in.ID, holder, downloadLinkTTL)
	if err != nil {
		return nil, problem(h.log, "create-download-link", err)
	}
	u := "/api/executions/" + url.PathEscape(in.ID) + "/download?" + url.Values{"ticket": {tk}}.Encode()
	return &downloadLinkOutput{Body: DownloadLink{URL: u, ExpiresAt: expires}}, nil
}

type downloadInput struct {
	ID     string `path:"id" doc:"ID (UUID)"`
	Ticket string `query:"ticket" doc:"The ticket of a download link (POST /api/executions/{id}/download-link), in place of a token"`
}

func (h *handlers) download(ctx context.Context, in *downloadInput) (*huma.StreamResponse, error) {
	c, err := h.e.OpenBackupCopy(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, "download-execution", err)
	}
	m := c.Manifest
	if len(m.Chunks) == 1 {
		return &huma.StreamResponse{Body: func(hc huma.Context) { h.serveFile(hc, c) }}, nil
	}
	return &huma.StreamResponse{Body: func(hc huma.Context) { h.serveZip(hc, c) }}, nil
}

func attachment(name string) string {
	return mime.FormatMediaType("attachment", map[string]string{"filename": name})
}

// serveFile sends the single part of a backup through http.ServeContent
// (Content-Length, Range, If-Range against the part's sha256 as ETag).
func (h *handlers) serveFile(hc huma.Context, c *engine.BackupCopy) {
	part := c.Manifest.Chunks[0]
	name := path.Base(part.File)
	r := &partReader{ctx: hc.Context(), st: c.Storage, key: c.Dir + "/" + part.File, size: part.SizeBytes}
	defer r.Close()
	w := &contextWriter{hc: hc, header: http.Header{}}
	w.header.Set("Content-Disposition", attachment(name))
	w.header.Set("Content-Type", "application/octet-stream")
	w.header.Set("ETag", strconv.Quote(strings.TrimPrefix(part.Checksum, "sha256:")))
	req := &http.Request{Method: hc.Method(), Header: http.Header{}, URL: &url.URL{Path: "/" + name}}
	hc.EachHeader(func(k, v string) { req.Header.Add(k, v) })
	http.ServeContent(w, req, name, c.Manifest.CreatedAt, r)
	if r.err != nil {
		h.log.Error("download failed", "execution", c.Execution.ID, "err", r.err)
	}
}

// serveZip streams a zip (stored entries) of every part and manifest.json,
// checking each part's size and sha256 as it goes. A damaged part stops the
// stream before the zip's central directory, so the client gets an invalid
// zip rather than bad data.
func (h *handlers) serveZip(hc huma.Context, c *engine.BackupCopy) {
	m := c.Manifest
	base, _, err := manifest.ParsePartName(m.Chunks[0].File)
	if err != nil || base == "" {
		base = "backup"
	}
	hc.SetHeader("Content-Type", "application/zip")
	hc.SetHeader("Content-Disposition", attachment(path.Base(base)+".zip"))
	hc.SetStatus(http.StatusOK)
	ctx := hc.Context()
	zw := zip.NewWriter(hc.BodyWriter())
	fail := func(err error) {
		h.log.Error("download failed", "execution", c.Execution.ID, "err", err)
	}
	for _, p := range m.Chunks {
		if err := zipPart(ctx, zw, c.Storage, c.Dir, p, m.CreatedAt); err != nil {
			fail(err)
			return
		}
	}
	w, err := zw.CreateHeader(&zip.FileHeader{Name: manifest.FileName, Method: zip.Store, Modified: m.CreatedAt})
	if err != nil {
		fail(err)
		return
	}
	rc, err := c.Storage.Open(ctx, c.Dir+"/"+manifest.FileName, 0, -1)
	if err != nil {
		fail(err)
		return
	}
	_, err = io.Copy(w, rc)
	rc.Close()
	if err != nil {
		fail(err)
		return
	}
	if err := zw.Close(); err != nil {
		fail(err)
	}
}

func zipPart(ctx context.Context, zw *zip.Writer, st storage.Storage, dir string, p manifest.Chunk, mod time.Time) error {
	w, err := zw.CreateHeader(&zip.FileHeader{Name: path.Base(p.File), Method: zip.Store, Modified: mod})
	if err != nil {
		return err
	}
	rc, err := st.Open(ctx, dir+"/"+p.File, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, sum), rc)
	if err != nil {
		return fmt.Errorf("part %s: %w", p.File, err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); n != p.SizeBytes || got != strings.TrimPrefix(p.Checksum, "sha256:") {
		return fmt.Errorf("part %s: %w: %d bytes sha256 %s, manifest says %d bytes %s",
			p.File, manifest.ErrChecksumMismatch, n, got, p.SizeBytes, p.Checksum)
	}
	return nil
}

// partReader is an io.ReadSeeker over one object of a storage, opened at
// the current offset on the first Read after a Seek.
type partReader struct {
	ctx  context.Context
	st   storage.Storage
	key  string
	size int64
	off  int64
	rc   io.ReadCloser
	err  error // the last read error other than io.EOF
}

func (p *partReader) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	if p.rc == nil {
		rc, err := p.st.Open(p.ctx, p.key, p.off, -1)
		if err != nil {
			p.err = err
			return 0, err
		}
		p.rc = rc
	}
	n, err := p.rc.Read(b)
	p.off += int64(n)
	if err != nil && err != io.EOF {
		p.err = err
	}
	return n, err
}

func (p *partReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += p.off
	case io.SeekEnd:
		offset += p.size
	}
	if offset < 0 {
		return 0, errors.New("seek before the start")
	}
	if offset != p.off {
		p.Close()
		p.off = offset
	}
	return offset, nil
}

func (p *partReader) Close() error {
	if p.rc == nil {
		return nil
	}
	err := p.rc.Close()
	p.rc = nil
	return err
}

// contextWriter is an http.ResponseWriter over a huma.Context, so that
// http.ServeContent works whatever the adapter.
type contextWriter struct {
	hc      huma.Context
	header  http.Header
	written bool
}

func (w *contextWriter) Header() http.Header { return w.header }

func (w *contextWriter) WriteHeader(code int) {
	if w.written {
		return
	}
	w.written = true
	for k, vs := range w.header {
		for i, v := range vs {
			if i == 0 {
				w.hc.SetHeader(k, v)
			} else {
				w.hc.AppendHeader(k, v)
			}
		}
	}
	w.hc.SetStatus(code)
}

func (w *contextWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return w.hc.BodyWriter().Write(b)
}
