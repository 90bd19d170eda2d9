package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/dataguardian/dataguardian/engine/store"
)

// Execution.Metadata keys of a pinned backup.
const (
	metaPinnedReason = "pinned_reason" // why it is pinned, e.g. "safety backup before restore <id>"
	metaPinnedAt     = "pinned_at"     // when it was pinned by PinExecution
)

// maxPinReason bounds the reason PinExecution stores, in bytes.
const maxPinReason = 500

// PinExecution pins the completed backup made by execution id: retention
// never deletes it and it takes no slot of its job's policy (see
// Execution.Pinned). reason says why, for people (metadata.pinned_reason);
// empty means "pinned by hand". Pinning a pinned backup replaces the
// reason. An execution that is not a completed backup with files, or whose
// files retention already deleted, is refused with an error matching
// ErrNotRestorable; a reason longer than 500 bytes with ErrInvalid.
func (e *Engine) PinExecution(ctx context.Context, id, reason string) (*Execution, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		reason = "pinned by hand"
	}
	if len(reason) > maxPinReason {
		return nil, store.InvalidField("reason", "reason is %d bytes long; keep it under %d", len(reason), maxPinReason)
	}
	x, err := e.store.GetExecution(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("pin execution %s: %w", id, err)
	}
	if x.Operation != OperationBackup || x.Status != ExecutionCompleted || x.BackupPath == "" {
		return x, fmt.Errorf("pin execution %s: %w: it is a %s execution with status %s; only a completed backup can be pinned",
			id, ErrNotRestorable, x.Operation, x.Status)
	}
	if _, gone := x.Metadata[metaRetentionDeleted]; gone {
		return x, fmt.Errorf("pin execution %s: %w: retention already deleted its files; pin a backup that still exists",
			id, ErrNotRestorable)
	}
	if x.Metadata == nil {
		x.Metadata = map[string]any{}
	}
	x.Pinned = true
	x.Metadata[metaPinnedReason], x.Metadata[metaPinnedAt] = reason, e.now()
	if err := e.store.UpdateExecution(ctx, x, "pinned", "metadata"); err != nil {
		return x, fmt.Errorf("pin execution %s: %w", id, err)
	}
	return x, nil
}

// UnpinExecution unpins the backup made by execution id (a no-op when it
// is not pinned): its job's retention policy applies to it again from the
// next cleanup. An execution that is not a backup is refused with an error
// matching ErrNotRestorable.
func (e *Engine) UnpinExecution(ctx context.Context, id string) (*Execution, error) {
	x, err := e.store.GetExecution(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("unpin execution %s: %w", id, err)
	}
	if x.Operation != OperationBackup {
		return x, fmt.Errorf("unpin execution %s: %w: it is a %s execution; only backups are pinned", id, ErrNotRestorable, x.Operation)
	}
	_, hasReason := x.Metadata[metaPinnedReason]
	if !x.Pinned && !hasReason {
		return x, nil
	}
	x.Pinned = false
	delete(x.Metadata, metaPinnedReason)
	delete(x.Metadata, metaPinnedAt)
	if err := e.store.UpdateExecution(ctx, x, "pinned", "metadata"); err != nil {
		return x, fmt.Errorf("unpin execution %s: %w", id, err)
	}
	return x, nil
}
