package store

import (
	"context"
	"fmt"
	"time"
)

// TryLock takes a lock shared by every process on the metadata database:
// on PostgreSQL a session advisory lock on a dedicated connection (ok false
// when another process holds it); on SQLite nothing (one process by
// design). unlock releases it; it waits at most 30 s and reports a failed
// release to warn.
func (s *Store) TryLock(ctx context.Context, key int64, warn func(error)) (unlock func(), ok bool, err error) {
	if !s.postgres() {
		return func() {}, true, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("take lock %d: %w", key, err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock(?)", key).Scan(&ok); err != nil {
		conn.Close()
		return nil, false, fmt.Errorf("take lock %d: %w", key, err)
	}
	if !ok {
		conn.Close()
		return nil, false, nil
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock(?)", key); err != nil && warn != nil {
			warn(fmt.Errorf("release lock %d: %w", key, err))
		}
		conn.Close()
	}, true, nil
}
