package engine

import (
	"context"
	"hash/fnv"
	"time"
)

// tryAdvisoryLock takes a lock shared by every process on the metadata
// database (see Store.TryLock).
func (e *Engine) tryAdvisoryLock(ctx context.Context, key int64) (unlock func(), ok bool, err error) {
	return e.store.TryLock(ctx, key, func(err error) { e.log.Warn("release lock", "err", err) })
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
