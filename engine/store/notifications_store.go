package store

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
)

// GetNotification returns the notification with id.
func (s *Store) GetNotification(ctx context.Context, id string) (*Notification, error) {
	return getRow[Notification](ctx, s.db, "id", id)
}

// MarkNotificationRead marks the notification with id read and returns it;
// marking a read notification again is not an error.
func (s *Store) MarkNotificationRead(ctx context.Context, id string) (*Notification, error) {
	n, err := s.GetNotification(ctx, id)
	if err != nil {
		return nil, err
	}
	n.Read = true
	if err := updateRow(ctx, s.db, n, "read"); err != nil {
		return nil, err
	}
	return n, nil
}

// MarkAllNotificationsRead marks every unread notification read and
// returns how many it marked.
func (s *Store) MarkAllNotificationsRead(ctx context.Context) (int64, error) {
	res, err := s.db.NewUpdate().Model((*Notification)(nil)).
		Set("? = ?", bun.Ident("read"), true).
		Where("? = ?", bun.Ident("read"), false).
		Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("mark notifications read: %w", dbError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("mark notifications read: %w", err)
	}
	return n, nil
}

// DeleteNotification deletes the notification with id; an unknown id
// gives ErrNotFound.
func (s *Store) DeleteNotification(ctx context.Context, id string) error {
	res, err := s.db.NewDelete().Model((*Notification)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete notification %s: %w", id, dbError(err))
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("delete notification %s: %w", id, ErrNotFound)
	}
	return nil
}

// GetNotificationTemplate returns the template version with id.
func (s *Store) GetNotificationTemplate(ctx context.Context, id string) (*NotificationTemplate, error) {
	return getRow[NotificationTemplate](ctx, s.db, "id", id)
}

// ListNotificationTemplates returns every stored template version, by
// type, channel and version.
func (s *Store) ListNotificationTemplates(ctx context.Context) ([]NotificationTemplate, error) {
	return listRows[NotificationTemplate](ctx, s.db.NewSelect().Order("key", "channel", "version"))
}

// LastTemplateVersion is the highest stored version of the template for
// notification type typ on channel, 0 when there is none.
func (s *Store) LastTemplateVersion(ctx context.Context, typ, channel string) (int, error) {
	var v int
	err := s.db.NewSelect().Model((*NotificationTemplate)(nil)).ColumnExpr("COALESCE(MAX(?), 0)", bun.Ident("version")).
		Where("? = ? AND ? = ?", bun.Ident("key"), typ, bun.Ident("channel"), channel).Scan(ctx, &v)
	return v, dbError(err)
}

// CreateNotificationTemplate inserts a template version, assigning its ID
// and timestamps.
func (s *Store) CreateNotificationTemplate(ctx context.Context, t *NotificationTemplate) error {
	return insertRow(ctx, s.db, t)
}
