package engine

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
