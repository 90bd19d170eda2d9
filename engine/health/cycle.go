package health

import (
	"context"
	"fmt"
	"time"

	"github.com/alitto/pond/v2"

	"github.com/dataguardian/dataguardian/engine/store"
)

// CycleReport summarises one health cycle.
type CycleReport struct {
	StartedAt time.Time     `json:"started_at"`
	Duration  time.Duration `json:"duration"`
	// Skipped: another process holds the health lock of the shared
	// (PostgreSQL) metadata database and runs the cycle; nothing was checked.
	Skipped     bool `json:"skipped,omitempty"`
	Datasources int  `json:"datasources"` // enabled datasources found
	Checked     int  `json:"checked"`     // checks recorded
	// Checks counts the recorded checks per outcome (ok, timeout, …).
	Checks map[store.HealthStatus]int `json:"checks"`
	// Statuses counts the checked datasources per new status.
	Statuses map[store.DatasourceStatus]int `json:"statuses"`
	// Errors counts checks that ran but could not be recorded.
	Errors   int             `json:"errors"`
	Pruned   int64           `json:"pruned"` // old health checks deleted
	Storages []StorageHealth `json:"storages"`
}

// RunCycle checks every enabled datasource once, concurrently (at most
// opts.Concurrency at a time, each bounded by opts.Timeout), records the
// results as CheckDatasource does, checks every enabled storage location,
// and deletes health checks older than opts.Retention. Datasources checked
// least recently go first.
//
// On a PostgreSQL metadata database shared by several processes, one cycle
// runs at a time (an advisory lock): the others return a Skipped report, so
// a failure is never counted twice.
//
// When ctx ends, checks not yet started are dropped, checks under way stop
// unrecorded, and the error is ctx's.
func (s *Service) RunCycle(ctx context.Context, opts Options) (rep CycleReport, err error) {
	opts = opts.WithDefaults()
	rep = CycleReport{StartedAt: s.now(), Checks: map[store.HealthStatus]int{}, Statuses: map[store.DatasourceStatus]int{}}
	if err := opts.Validate(); err != nil {
		return rep, err
	}
	start := time.Now()
	defer func() { rep.Duration = time.Since(start) }()

	unlock, ok, err := s.lock(ctx)
	if err != nil {
		return rep, fmt.Errorf("health cycle: %w", err)
	}
	if !ok {
		rep.Skipped = true
		return rep, nil
	}
	defer unlock()

	dss, err := s.store.DatasourcesToCheck(ctx)
	if err != nil {
		return rep, fmt.Errorf("health cycle: %w", err)
	}
	rep.Datasources = len(dss)

	storages := make(chan []StorageHealth, 1)
	go func() {
		sh, err := s.checkStorages(ctx, opts.Timeout)
		if err != nil {
			s.log.Warn("health cycle: storages", "err", err)
		}
		storages <- sh
	}()

	// Pings run in the pool; one recorder writes their results in
	// batches (one transaction each), so a thousand checks cost a few
	// transactions instead of a thousand.
	results := make(chan pingResult, min(len(dss), 4*opts.Concurrency)+1)
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		s.recordResults(ctx, results, opts, &rep)
	}()
	pool := pond.NewPool(opts.Concurrency, pond.WithContext(ctx))
	group := pool.NewGroup()
	for i := range dss {
		ds := &dss[i]
		group.Submit(func() {
			r, err := s.pingDatasource(ctx, ds, opts)
			if err == nil {
				results <- r
			}
		})
	}
	_ = group.Wait() // the only error is ctx's, checked below
	pool.StopAndWait()
	close(results)
	<-recorded
	rep.Storages = <-storages

	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("health cycle: %w", err)
	}
	if opts.Retention > 0 {
		n, err := s.store.PruneHealthChecks(ctx, s.now().Add(-opts.Retention))
		if err != nil {
			s.log.Warn("health cycle: prune health checks", "err", err)
		}
		rep.Pruned = n
	}
	return rep, nil
}

// maxBatch bounds the checks recorded in one transaction.
const maxBatch = 256

// recordResults records the pings arriving on results in batches of what
// has arrived, until results is closed, and counts them into rep.
func (s *Service) recordResults(ctx context.Context, results <-chan pingResult, o Options, rep *CycleReport) {
	batch := make([]pingResult, 0, maxBatch)
	for r := range results {
		batch = append(batch[:0], r)
	fill:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-results:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		if err := s.record(ctx, batch, o); err != nil {
			rep.Errors += len(batch)
			s.log.Error("health cycle: record checks", "checks", len(batch), "err", err)
			continue
		}
		for _, r := range batch {
			rep.Checked++
			rep.Checks[r.hc.Status]++
			rep.Statuses[r.ds.Status]++
		}
	}
}

// lock takes the health-cycle lock, shared by every process on the
// metadata database (ok false when another process holds it).
func (s *Service) lock(ctx context.Context) (unlock func(), ok bool, err error) {
	return s.store.TryLock(ctx, lockKey, func(err error) { s.log.Warn("release lock", "err", err) })
}
