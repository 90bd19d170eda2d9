package httpapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dataguardian/dataguardian/engine"
)

// Execution is one run of a backup, restore or verification.
type Execution struct {
	ID                  string     `json:"id" doc:"Execution ID"`
	JobID               string     `json:"job_id,omitempty" doc:"Backup job, empty for ad-hoc runs"`
	DatasourceID        string     `json:"datasource_id" doc:"Datasource backed up or restored"`
	Operation           string     `json:"operation" enum:"backup,restore,verify" doc:"What the execution does"`
	Status              string     `json:"status" enum:"queued,running,completed,failed,cancelled" doc:"State of the execution"`
	SourceExecutionID   string     `json:"source_execution_id,omitempty" doc:"Restores: the backup restored"`
	StartedAt           *time.Time `json:"started_at" nullable:"true" doc:"When a worker started it, null while queued"`
	FinishedAt          *time.Time `json:"finished_at" nullable:"true" doc:"When it ended, null until then"`
	DurationMS          int64      `json:"duration_ms" doc:"Run time in milliseconds"`
	SizeBytes           int64      `json:"size_bytes" doc:"Uncompressed size of the backup"`
	CompressedSizeBytes int64      `json:"compressed_size_bytes" doc:"Stored size of the backup"`
	BackupPath          string     `json:"backup_path,omitempty" doc:"Run folder in the storage" example:"550e8400-e29b-41d4-a716-446655440000/2025-02-13_060001"`
	Compression         string     `json:"compression,omitempty" doc:"gzip, zstd, lz4 or none"`
	Checksum            string     `json:"checksum,omitempty" doc:"sha256:<hex> of the backup"`
	ErrorMessage        string     `json:"error_message,omitempty" doc:"Why it failed"`
	Metadata            RawObject  `json:"metadata,omitempty" doc:"Execution metadata: database version, tables and rows backed up, restore reports"`
	RestoredAt          *time.Time `json:"restored_at,omitempty" doc:"When this backup was marked restored"`
	RestoredBy          string     `json:"restored_by,omitempty" doc:"Who marked it restored"`
	RestoreReason       string     `json:"restore_reason,omitempty" doc:"Why it was restored"`
	Attempt             int        `json:"attempt" doc:"Attempt number, from 1"`
	Pinned              bool       `json:"pinned" doc:"Backups: kept whatever the retention policy says (metadata.pinned_reason says why); see POST /api/executions/{id}/pin"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

func executionOf(x *engine.Execution) Execution {
	return Execution{ID: x.ID, JobID: x.JobID, DatasourceID: x.DatasourceID, Operation: string(x.Operation),
		Status: string(x.Status), SourceExecutionID: x.SourceExecutionID, StartedAt: x.StartedAt,
		FinishedAt: x.FinishedAt, DurationMS: x.DurationMS, SizeBytes: x.SizeBytes,
		CompressedSizeBytes: x.CompressedSizeBytes, BackupPath: x.BackupPath, Compression: x.Compression,
		Checksum: x.Checksum, ErrorMessage: x.ErrorMessage, Metadata: rawObjectOf(x.Metadata), RestoredAt: x.RestoredAt,
		RestoredBy: x.RestoredBy, RestoreReason: x.RestoreReason, Attempt: x.Attempt, Pinned: x.Pinned,
		CreatedAt: x.CreatedAt, UpdatedAt: x.UpdatedAt}
}

// RawObject is a JSON object passed through as stored (execution
// metadata): its schema is an object with any properties.
type RawObject json.RawMessage

// MarshalJSON implements json.Marshaler.
func (o RawObject) MarshalJSON() ([]byte, error) {
	if len(o) == 0 {
		return []byte("null"), nil
	}
	return o, nil
}

// UnmarshalJSON implements json.Unmarshaler (clients decoding an
// Execution keep the object as JSON).
func (o *RawObject) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*o = nil
		return nil
	}
	*o = append((*o)[:0], b...)
	return nil
}

// Schema implements huma.SchemaProvider.
func (RawObject) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: huma.TypeObject, AdditionalProperties: true}
}

// rawObjectOf encodes m (nil stays nil).
func rawObjectOf(m map[string]any) RawObject {
	if len(m) == 0 {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil { // values decoded from JSON always encode
		return nil
	}
	return b
}

type listJobExecutionsInput struct {
	ID     string `path:"id" doc:"Backup job ID"`
	Status string `query:"status" enum:"queued,running,completed,failed,cancelled" doc:"Only executions in this state"`
	Page
}

type executionsOutput struct {
	NextPage
	Body []Execution
}

type executionOutput struct {
	Body Execution
}

func (h *handlers) listJobExecutions(ctx context.Context, in *listJobExecutionsInput) (*executionsOutput, error) {
	// The job must exist: an unknown id is a 404, not an empty list.
	if _, err := h.e.Store().GetBackupJob(ctx, in.ID); err != nil {
		return nil, problem(h.log, "list-backup-job-executions", err)
	}
	// Records: the metadata goes out as stored, without a decode and an
	// encode per execution (most of a page's cost).
	xs, err := h.e.Store().ListExecutionRecords(ctx, engine.ExecutionFilter{JobID: in.ID,
		Status: engine.ExecutionStatus(in.Status), Limit: in.probe(), Offset: in.Offset})
	if err != nil {
		return nil, problem(h.log, "list-backup-job-executions", err)
	}
	xs, more := cut(xs, in.Page)
	out := &executionsOutput{Body: make([]Execution, 0, len(xs)), NextPage: h.nextPage(ctx, in.Page, more)}
	for i := range xs {
		x := executionOf(&xs[i].Execution)
		x.Metadata = RawObject(xs[i].RawMetadata)
		if string(x.Metadata) == "null" {
			x.Metadata = nil
		}
		out.Body = append(out.Body, x)
	}
	return out, nil
}

// runBackupJob answers 202 with the job's queued backup: a new one, or the
// one already queued (engine.Engine.RunNow; the operation description says so).
func (h *handlers) runBackupJob(ctx context.Context, in *idInput) (*executionOutput, error) {
	x, _, err := h.e.RunNow(ctx, in.ID)
	if err != nil {
		return nil, problem(h.log, "run-backup-job", err)
	}
	return &executionOutput{Body: executionOf(x)}, nil
}
