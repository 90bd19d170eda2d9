package engine

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/uptrace/bun/dialect"
)

// tryAdvisoryLock takes a lock shared by every process on the metadata
// database: on PostgreSQL a session advisory lock on a dedicated connection
// (ok false when another process holds it); on SQLite nothing (one process
// by design). unlock releases it.
func (e *Engine) tryAdvisoryLock(ctx context.Context, key int64) (unlock func(), ok bool, err error) {
	db := e.store.DB()
	if db.Dialect().Name() != dialect.PG {
		return func() {}, true, nil
	}
	conn, err := db.Conn(ctx)
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
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock(?)", key); err != nil {
			e.log.Warn("release lock", "key", key, "err", err)
		}
		conn.Close()
	}, true, nil
}

// lockDatasource waits until this process is the only one working on the
// datasource (backups, restores and syncs run one at a time per datasource
// across every process sharing the metadata database), polling every
// 500 ms, or until ctx is done.
func (e *Engine) lockDatasource(ctx context.Context, id string) (unlock func(), err error) {
	h := fnv.New64a()
	h.Write([]byte("datasource:" + id))
	key := int64(h.Sum64())
	for {
		unlock, ok, err := e.tryAdvisoryLock(ctx, key)
		if err != nil || ok {
			return unlock, err
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
