package engine

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/notify"
)

// Confirmation phrases an operator types to start a restore (spec "Frases de
// confirmação"). They are checked by the engine, not only by frontends.
const (
	// ConfirmRestore confirms a restore over a database.
	ConfirmRestore = "RESTAURAR"
	// ConfirmVerify confirms a restore in verification mode (into a
	// temporary database).
	ConfirmVerify = "VERIFICAR RESTORE"
)

// ErrConfirmation reports a missing or wrong confirmation phrase; the
// message names the phrase to type.
var ErrConfirmation = errors.New("confirmation phrase does not match")

// Keys of a restore or verification execution's Metadata.
const (
	metaRestoreRequest = "request"                    // the options it was requested with (restoreRequestMeta)
	metaVerification   = "verification"               // the drivers.VerifyReport of a verification
	metaSafetyBackup   = "safety_backup_execution_id" // the backup taken of the target first
)

// RestoreRequest asks for a restore (or a verification) of one backup, as
// the API's POST /api/backups/:executionId/restore does.
type RestoreRequest struct {
	// ExecutionID is the backup execution to restore: a completed backup
	// whose files retention has not deleted.
	ExecutionID string
	// ConfirmationPhrase must be ConfirmRestore, or ConfirmVerify in
	// verification mode.
	ConfirmationPhrase string
	// VerificationMode restores into a temporary database on the server of
	// the target ("dg_verify_" and 8 hex digits of the execution ID), checks
	// it against the backup's metadata (tables, row counts) and drops it.
	// The datasource's driver must implement drivers.Verifier.
	VerificationMode bool
	// KeepVerificationDatabase leaves the temporary database in place
	// (verification mode only).
	KeepVerificationDatabase bool
	// StorageLocationID restores from that storage location only; empty
	// means the job's storage locations in order, the first whose copy
	// verifies.
	StorageLocationID string
	// Target is where to restore; nil means the backup's own datasource
	// (or TargetDatasourceID). Its Password is stored sealed with the
	// engine's secret key while the restore waits in the queue, never in
	// clear.
	Target *drivers.Source
	// TargetDatasourceID restores into that registered datasource (of the
	// backup's type) instead of the backup's own; its connection and
	// password are read when the restore runs. Not with Target.
	TargetDatasourceID string
	// Recreate drops and recreates the target database before restoring
	// (network databases).
	Recreate bool
	// SafetyBackup takes a backup of the current state of the backup's own
	// datasource before restoring over it (spec rollback, Passo 2): only
	// with a nil Target. It runs inside the restore execution, after a copy
	// of the backup verified; when it fails, the restore does not start.
	SafetyBackup bool
	// RequestedBy names who asked, for the logs.
	RequestedBy string
}

// restoreRequestMeta is a RestoreRequest as stored in the execution's
// Metadata: no confirmation phrase, the target's password sealed.
type restoreRequestMeta struct {
	VerificationMode         bool            `json:"verification_mode"`
	KeepVerificationDatabase bool            `json:"keep_verification_database,omitempty"`
	StorageLocationID        string          `json:"storage_location_id,omitempty"`
	Target                   *drivers.Source `json:"target,omitempty"` // Password is json:"-"
	TargetPasswordSealed     string          `json:"target_password_sealed,omitempty"`
	TargetDatasourceID       string          `json:"target_datasource_id,omitempty"`
	Recreate                 bool            `json:"recreate,omitempty"`
	SafetyBackup             bool            `json:"safety_backup,omitempty"`
	RequestedBy              string          `json:"requested_by,omitempty"`
}

// checkConfirmation checks the phrase req needs.
func checkConfirmation(req *RestoreRequest) error {
	want, what := ConfirmRestore, "a restore"
	if req.VerificationMode {
		want, what = ConfirmVerify, "a verification restore"
	}
	if strings.TrimSpace(req.ConfirmationPhrase) != want {
		return fmt.Errorf("restore %s: %w: type %q to confirm %s", req.ExecutionID, ErrConfirmation, want, what)
	}
	return nil
}

// RequestRestore checks req and queues a restore execution
// (operation=restore, or operation=verify in verification mode) of the
// backup on q (nil means the engine's queue), for a restore worker to run.
// The returned execution is queued; its outcome (completed or failed, with
// logs and a notification) is recorded when it runs.
//
// It refuses, queueing nothing: a wrong or missing confirmation phrase
// (ErrConfirmation), a backup that is not restorable (ErrNotRestorable,
// ErrNotFound), and unusable options (ErrInvalid naming the field: a target
// of another type, verification mode for a driver without
// drivers.Verifier, a safety backup with a separate target, …).
func (e *Engine) RequestRestore(ctx context.Context, q Queue, req RestoreRequest) (*Execution, error) {
	if q == nil {
		q = e.cfg.Queue
	}
	if err := checkConfirmation(&req); err != nil {
		return nil, err
	}
	exec, err := e.newRestoreExecution(ctx, req)
	if err != nil {
		return nil, err
	}
	kind := TaskRestore
	if req.VerificationMode {
		kind = TaskVerify
	}
	if err := q.Enqueue(ctx, Task{ID: exec.ID, Kind: kind, ExecutionID: exec.ID, Attempt: 1, RunAt: e.now()}); err != nil {
		e.finish(ctx, exec, execLog{e: e, id: exec.ID, prefix: "[RESTORE]"}, fmt.Errorf("enqueue: %w", err))
		return exec, err
	}
	return exec, nil
}

// newRestoreExecution checks req (but not its phrase) and records a queued
// restore or verification execution holding req's options.
func (e *Engine) newRestoreExecution(ctx context.Context, req RestoreRequest) (*Execution, error) {
	p, err := e.restorable(ctx, req.ExecutionID)
	if err != nil {
		return nil, err
	}
	if err := e.checkRestore(ctx, p, &req); err != nil {
		return nil, err
	}
	meta := restoreRequestMeta{VerificationMode: req.VerificationMode, KeepVerificationDatabase: req.KeepVerificationDatabase,
		StorageLocationID: req.StorageLocationID, Recreate: req.Recreate, SafetyBackup: req.SafetyBackup, RequestedBy: req.RequestedBy,
		TargetDatasourceID: req.TargetDatasourceID}
	if req.Target != nil {
		t := *req.Target
		meta.Target = &t
		if t.Password != "" {
			sealed, err := e.sealer.Seal([]byte(t.Password))
			if err != nil {
				return nil, fmt.Errorf("restore %s: target password: %w", req.ExecutionID, err)
			}
			meta.TargetPasswordSealed = base64.StdEncoding.EncodeToString(sealed)
		}
	}
	op := OperationRestore
	if req.VerificationMode {
		op = OperationVerify
	}
	b := p.backup
	exec := &Execution{JobID: p.job.ID, DatasourceID: p.ds.ID, Operation: op, Status: ExecutionQueued,
		SourceExecutionID: b.ID, BackupPath: b.BackupPath, Compression: b.Compression, Attempt: 1,
		Metadata: map[string]any{metaRestoreRequest: meta}}
	if err := e.store.CreateExecution(ctx, exec); err != nil {
		return nil, fmt.Errorf("restore %s: %w", req.ExecutionID, err)
	}
	e.publishExecution(exec)
	return exec, nil
}

// restoreRequestOf rebuilds the request a restore execution was queued
// with, the target's password unsealed; the phrase was checked then.
func (e *Engine) restoreRequestOf(exec *Execution) (RestoreRequest, error) {
	req := RestoreRequest{ExecutionID: exec.SourceExecutionID}
	raw, ok := exec.Metadata[metaRestoreRequest]
	if !ok {
		return req, fmt.Errorf("%w: execution %s holds no restore request in its metadata", ErrInvalid, exec.ID)
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return req, fmt.Errorf("read restore request: %w", err)
	}
	var m restoreRequestMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return req, fmt.Errorf("read restore request: %w", err)
	}
	req.VerificationMode, req.KeepVerificationDatabase, req.StorageLocationID = m.VerificationMode, m.KeepVerificationDatabase, m.StorageLocationID
	req.Recreate, req.SafetyBackup, req.RequestedBy, req.Target = m.Recreate, m.SafetyBackup, m.RequestedBy, m.Target
	req.TargetDatasourceID = m.TargetDatasourceID
	if m.TargetPasswordSealed != "" && req.Target != nil {
		sealed, err := base64.StdEncoding.DecodeString(m.TargetPasswordSealed)
		if err != nil {
			return req, fmt.Errorf("read restore request: target password: %w", err)
		}
		pw, err := e.sealer.Open(sealed)
		if err != nil {
			return req, fmt.Errorf("read restore request: target password: %w", err)
		}
		req.Target.Password = string(pw)
	}
	if req.VerificationMode != (exec.Operation == OperationVerify) {
		return req, fmt.Errorf("%w: execution %s is a %s execution but its request says verification_mode=%v", ErrInvalid, exec.ID, exec.Operation, req.VerificationMode)
	}
	return req, nil
}

// executeRestore runs a queued restore or verification execution (what a
// restore worker does with a claimed task): it rebuilds the request from
// the execution's metadata, checks the backup again (retention may have
// deleted it meanwhile), then restores or verifies. The error is the
// failure, also recorded in the execution.
func (e *Engine) executeRestore(ctx context.Context, exec *Execution) error {
	if (exec.Operation != OperationRestore && exec.Operation != OperationVerify) || exec.Status.Terminal() {
		return fmt.Errorf("%w: execution %s is a %s execution with status %s, not a restore to run", ErrInvalid, exec.ID, exec.Operation, exec.Status)
	}
	l := execLog{e: e, id: exec.ID, prefix: "[RESTORE]"}
	req, err := e.restoreRequestOf(exec)
	var p *restorePlan
	if err == nil {
		p, err = e.restorable(ctx, req.ExecutionID)
	}
	if err == nil {
		err = e.checkRestore(ctx, p, &req)
	}
	var target drivers.Source
	if err == nil {
		target, err = e.restoreTarget(ctx, p.ds, &req)
	}
	if err != nil { // nothing started: record why
		e.finish(ctx, exec, l, err)
		return err
	}
	if req.RequestedBy != "" {
		l.info(ctx, "%s of backup %s requested by %s", exec.Operation, req.ExecutionID, req.RequestedBy)
	}
	if req.VerificationMode {
		return e.runVerify(ctx, exec, p.job, p.ds, target, req.StorageLocationID, req.KeepVerificationDatabase)
	}
	return e.runRestore(ctx, exec, p.job, p.ds, target,
		&RestoreOptions{StorageLocationID: req.StorageLocationID, Recreate: req.Recreate, SafetyBackup: req.SafetyBackup})
}

// MarkRestored records that the backup made by execution executionID was
// restored by hand (spec rollback, Passo 7: POST
// /api/executions/:id/mark-restored): restored_at (a zero at means now),
// restored_by and restore_reason on the backup execution, and an in-app
// notification restore_completed (info) naming who and why. by and reason
// are required; the execution must be a completed backup.
func (e *Engine) MarkRestored(ctx context.Context, executionID string, at time.Time, by, reason string) (*Execution, error) {
	by, reason = strings.TrimSpace(by), strings.TrimSpace(reason)
	switch {
	case by == "":
		return nil, fmt.Errorf("mark restored %s: %w: restored_by is empty: name who restored it", executionID, ErrInvalid)
	case reason == "":
		return nil, fmt.Errorf("mark restored %s: %w: reason is empty: say why it was restored", executionID, ErrInvalid)
	}
	now := e.now()
	if at.IsZero() {
		at = now
	}
	at = at.UTC()
	if at.After(now.Add(time.Minute)) {
		return nil, fmt.Errorf("mark restored %s: %w: restored_at %s is in the future", executionID, ErrInvalid, at.Format(time.RFC3339))
	}
	x, err := e.store.GetExecution(ctx, executionID)
	if err != nil {
		return nil, fmt.Errorf("mark restored %s: %w", executionID, err)
	}
	if x.Operation != OperationBackup || x.Status != ExecutionCompleted {
		return nil, fmt.Errorf("mark restored %s: %w: it is a %s execution with status %s; choose a completed backup",
			executionID, ErrNotRestorable, x.Operation, x.Status)
	}
	x.RestoredAt, x.RestoredBy, x.RestoreReason = &at, by, reason
	if err := e.store.UpdateExecution(ctx, x, "restored_at", "restored_by", "restore_reason"); err != nil {
		return nil, fmt.Errorf("mark restored %s: %w", executionID, err)
	}
	e.notify(ctx, notify.Notification{Type: "restore_completed", Severity: notify.Info, Title: "restore recorded",
		Message:    fmt.Sprintf("%s restored backup %s at %s: %s", by, x.BackupPath, at.Format(time.RFC3339), reason),
		EntityType: "execution", EntityID: x.ID, CreatedAt: now})
	return x, nil
}
