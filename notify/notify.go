// Package notify defines notifications (what happened, how severe, about
// which entity) and the Notifier interface every delivery channel implements:
// in-app records, e-mail, webhooks and WhatsApp.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Severity of a notification.
type Severity string

// Severities, as stored in notifications.severity.
const (
	Info     Severity = "info"
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

// Notification types named by the product documents.
const (
	BackupCompleted    = "backup_completed"
	BackupFailed       = "backup_failed"
	RestoreCompleted   = "restore_completed"
	RestoreFailed      = "restore_failed"
	ConnectionLost     = "connection_lost"
	ConnectionRestored = "connection_restored"
)

// ErrDelivery reports a channel that could not deliver a notification.
var ErrDelivery = errors.New("notification not delivered")

// Notification is one event worth telling a person about.
type Notification struct {
	Type       string         `json:"type"`
	Severity   Severity       `json:"severity"`
	Title      string         `json:"title"`
	Message    string         `json:"message"`
	EntityType string         `json:"entity_type,omitempty"` // "datasource", "execution", ...
	EntityID   string         `json:"entity_id,omitempty"`
	CreatedAt  time.Time      `json:"created_at"`
	Data       map[string]any `json:"data,omitempty"` // template variables
}

// Notifier delivers notifications through one channel.
//
// Notify must return promptly when ctx is done, must not log or return
// secrets (SMTP passwords, tokens), and must be safe for concurrent use.
// A delivery failure is an error matching ErrDelivery.
type Notifier interface {
	Name() string
	Notify(ctx context.Context, n Notification) error
}

// Log is a Notifier that writes notifications to a slog.Logger; the engine
// uses it when no other channel is configured.
type Log struct {
	Logger *slog.Logger // nil means slog.Default()
}

var _ Notifier = Log{}

// Name returns "log".
func (Log) Name() string { return "log" }

// Notify logs n at a level matching its severity.
func (l Log) Notify(ctx context.Context, n Notification) error {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	level := slog.LevelInfo
	switch n.Severity {
	case Warning:
		level = slog.LevelWarn
	case Critical:
		level = slog.LevelError
	}
	logger.Log(ctx, level, n.Title, "type", n.Type, "entity", n.EntityType, "entity_id", n.EntityID, "message", n.Message)
	return nil
}

// Multi delivers to every notifier and joins their errors, so one failing
// channel never keeps the others from delivering.
type Multi []Notifier

// Name returns "multi".
func (Multi) Name() string { return "multi" }

// Notify delivers n to every channel.
func (m Multi) Notify(ctx context.Context, n Notification) error {
	var errs []error
	for _, c := range m {
		if err := c.Notify(ctx, n); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name(), err))
		}
	}
	return errors.Join(errs...)
}
