// Package health checks the connections of datasources and the storage
// locations, records the outcomes in the metadata store and moves each
// datasource between healthy, warning and critical, notifying when a
// connection is lost or restored. A Service runs single checks and
// cycles; a Worker runs a cycle every Options.Interval.
//
// The package depends on the metadata store (*store.Store: the health
// rows, the datasources' status, the advisory lock of a cycle and the last
// storage result kept as a setting) and on what its host gives it in Deps:
// the driver registry, and callbacks for what only the engine can do. A
// datasource's Source needs its password unsealed and its paths confined
// to the allowed roots (the engine's Source), a storage location is opened
// through the engine's openers and path policy (OpenStorage), a
// notification is recorded in-app and delivered to the engine's channels
// (Notify), and a status change is published on the engine's event bus
// (Publish, with a StatusChange: the bus and its Event type, which the
// HTTP API streams, stay in the engine). The package never imports the
// engine, which re-exports its types under their former names
// (engine.HealthOptions, engine.HealthWorker, …).
package health

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"strings"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/engine/store"
	"github.com/dataguardian/dataguardian/notify"
	"github.com/dataguardian/dataguardian/storage"
)

// probePrefix is where CheckStorages writes its probe objects.
const probePrefix = "_system/health-probe-"

// maxErrorLen bounds the error_message stored per health check.
const maxErrorLen = 1000

// recordTimeout bounds the store writes of a finished check, which run even
// when the caller's context ends meanwhile, so a completed check is never lost.
const recordTimeout = 30 * time.Second

// lockKey is the PostgreSQL advisory lock that lets one process at a
// time run a health cycle on a shared metadata database ("dghlth").
const lockKey int64 = 0x6467686c7468

// Deps is what a Service needs from its host besides the store. Drivers,
// Source and OpenStorage are required; the others may be nil.
type Deps struct {
	// Drivers maps datasource types to the drivers that ping them.
	Drivers *drivers.Registry
	// Source returns the connection of a datasource, password unsealed; its
	// error is recorded as the check's (status error).
	Source func(ds *store.Datasource) (drivers.Source, error)
	// OpenStorage opens a storage location; its error makes the location
	// unreachable.
	OpenStorage func(ctx context.Context, loc *store.StorageLocation) (storage.Storage, error)
	// Notify records and delivers connection_lost and connection_restored;
	// nil drops them.
	Notify func(ctx context.Context, n notify.Notification)
	// Publish is told of every change of a datasource's status; nil
	// ignores them.
	Publish func(c StatusChange)
	// Now returns the current time (of checks, reports, retention); nil
	// means time.Now in UTC.
	Now func() time.Time
	// Log receives the service's warnings; nil means slog.Default().
	Log *slog.Logger
}

// StatusChange is a check that changed a datasource's status (the
// engine's datasource:status-changed event).
type StatusChange struct {
	DatasourceID string
	Name         string // the datasource's
	Previous     store.DatasourceStatus
	Status       store.DatasourceStatus
	// HealthStatus is the outcome of the check that changed it.
	HealthStatus        store.HealthStatus
	ConsecutiveFailures int
	At                  time.Time // when the check ran
}

// Service checks datasources and storage locations and records the
// results. It is safe for concurrent use.
type Service struct {
	store *store.Store
	opts  Options
	d     Deps
	log   *slog.Logger
}

// New returns a Service on st. opts (zero fields mean the defaults) apply
// to the checks not run by a Worker: CheckDatasource, CheckStorages and
// LastStorageHealth; they should be valid (Options.Validate).
func New(st *store.Store, opts Options, d Deps) *Service {
	if d.Notify == nil {
		d.Notify = func(context.Context, notify.Notification) {}
	}
	if d.Publish == nil {
		d.Publish = func(StatusChange) {}
	}
	if d.Now == nil {
		d.Now = func() time.Time { return time.Now().UTC() }
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return &Service{store: st, opts: opts.WithDefaults(), d: d, log: d.Log}
}

func (s *Service) now() time.Time { return s.d.Now() }

// ---------------------------------------------------------------------------
// Status transitions (pure).

// transition is what one check does to a datasource.
type transition struct {
	prev, next store.DatasourceStatus
	failures   int  // consecutive_failures after the check
	lost       bool // entered critical: send connection_lost
	restored   bool // left critical with a successful check: send connection_restored
}

// nextHealth applies one check outcome to a datasource's status and count of
// consecutive failures (spec §1):
//   - ok, within slowThreshold → healthy; ok but slow → warning; the count
//     resets to 0;
//   - a failure adds one: below n failures → warning, n or more → critical.
//
// connection_lost is sent once, when the datasource enters critical (the
// n-th failure, not again at n+1, …). connection_restored is sent when a
// check succeeds while the datasource is critical: a single failed check
// only ever warned, so there is nothing to restore from (the spec's "voltou
// após uma falha" read as: after a confirmed failure).
func nextHealth(prev store.DatasourceStatus, prevFailures int, st store.HealthStatus, slow bool, n int) transition {
	t := transition{prev: prev}
	if st == store.HealthOK {
		t.next = store.DatasourceHealthy
		if slow {
			t.next = store.DatasourceWarning
		}
		t.restored = prev == store.DatasourceCritical
		return t
	}
	t.failures = prevFailures + 1
	t.next = store.DatasourceWarning
	if t.failures >= n {
		t.next = store.DatasourceCritical
	}
	t.lost = t.next == store.DatasourceCritical && prev != store.DatasourceCritical
	return t
}

// ---------------------------------------------------------------------------
// One check.

// pingResult is a finished Ping of one datasource, not yet recorded.
type pingResult struct {
	ds  *store.Datasource
	hc  *store.HealthCheck
	err string // full error text for notifications (already redacted)
}

// CheckDatasource checks the datasource id now, whether enabled or not (the
// API's POST /api/datasources/:id/health-check): it pings it with the
// health timeout, records the HealthCheck and updates the datasource's
// status, last_health_check_at and consecutive_failures, notifying and
// publishing a status change as a Worker cycle would. The error is non-nil
// only when the check could not be run or recorded (unknown id, ctx
// cancelled, store down); a datasource that does not answer is a
// HealthCheck with a failure status and a nil error.
func (s *Service) CheckDatasource(ctx context.Context, id string) (*store.HealthCheck, error) {
	ds, err := s.store.GetDatasource(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("check datasource %s: %w", id, err)
	}
	return s.checkDatasource(ctx, ds, s.opts)
}

func (s *Service) checkDatasource(ctx context.Context, ds *store.Datasource, o Options) (*store.HealthCheck, error) {
	r, err := s.pingDatasource(ctx, ds, o)
	if err != nil {
		return nil, fmt.Errorf("check datasource %s: %w", ds.Name, err)
	}
	if err := s.record(ctx, []pingResult{r}, o); err != nil {
		return nil, fmt.Errorf("check datasource %s: %w", ds.Name, err)
	}
	return r.hc, nil
}

// pingDatasource runs one Ping of ds bounded by o.Timeout and turns it into
// an unrecorded HealthCheck. It fails only when ctx ends first: a check cut
// short by shutdown says nothing about the datasource and is not recorded.
func (s *Service) pingDatasource(ctx context.Context, ds *store.Datasource, o Options) (pingResult, error) {
	var h drivers.Health
	var password string
	start := time.Now()
	d, err := s.d.Drivers.Lookup(ds.Type)
	if err == nil {
		var src drivers.Source
		if src, err = s.d.Source(ds); err == nil {
			password = src.Password
			h = pingWithin(ctx, d, src, o.Timeout)
		}
	}
	if err != nil {
		h = drivers.Health{Status: drivers.HealthError, ErrorText: err.Error()}
	}
	took := time.Since(start)
	if err := ctx.Err(); err != nil {
		return pingResult{}, err
	}
	if h.Status != drivers.HealthOK && took >= o.Timeout {
		// Whatever the driver made of it, the deadline is what failed.
		h.Status = drivers.HealthTimeout
		if h.ErrorText == "" {
			h.ErrorText = fmt.Sprintf("connection timed out after %dms", o.Timeout.Milliseconds())
		}
	}
	switch store.HealthStatus(h.Status) {
	case store.HealthOK, store.HealthTimeout, store.HealthAuthFailed, store.HealthUnreachable, store.HealthError:
	default:
		h.ErrorText = fmt.Sprintf("driver %s returned unknown health status %q: %s", ds.Type, h.Status, h.ErrorText)
		h.Status = drivers.HealthError
	}
	msg := redactSecret(h.ErrorText, password)
	hc := &store.HealthCheck{DatasourceID: ds.ID, CheckedAt: s.now().Truncate(time.Microsecond),
		Status: store.HealthStatus(h.Status), ErrorMessage: truncate(msg, maxErrorLen)}
	md := map[string]any{"check_ms": took.Milliseconds()}
	if h.Status == drivers.HealthOK {
		lat := h.Latency
		if lat <= 0 {
			lat = took
		}
		ms := lat.Milliseconds()
		hc.LatencyMS = &ms
		maps.Copy(md, h.Metadata)
		if h.Version != "" {
			md["database_version"] = h.Version
		}
		if took > o.SlowThreshold {
			md["slow"] = true
		}
	}
	hc.Metadata = md
	return pingResult{ds: ds, hc: hc, err: msg}, nil
}

// pingWithin runs d.Ping under a timeout. A driver must stop at its
// context's deadline; one that does not is abandoned shortly after (its
// goroutine ends when the driver returns) so a cycle stays bounded, and a
// panicking driver becomes an error instead of a crash. When ctx itself
// ends (shutdown) it returns at once, without waiting for the driver.
func pingWithin(ctx context.Context, d drivers.Driver, src drivers.Source, timeout time.Duration) drivers.Health {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan drivers.Health, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- drivers.Health{Status: drivers.HealthError, ErrorText: fmt.Sprintf("driver %s panicked during ping: %v", src.Type, p)}
			}
		}()
		done <- d.Ping(pctx, src)
	}()
	select {
	case h := <-done:
		return h
	case <-pctx.Done():
	}
	if ctx.Err() != nil {
		// Shutdown: the result would be discarded, do not wait for it.
		return drivers.Health{Status: drivers.HealthError, ErrorText: ctx.Err().Error()}
	}
	grace := min(timeout/4, time.Second)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case h := <-done:
		return h
	case <-t.C:
		return drivers.Health{Status: drivers.HealthTimeout,
			ErrorText: fmt.Sprintf("no answer from %s after %dms", src, timeout.Milliseconds())}
	}
}

// redactSecret hides secret (and its URL-escaped forms) in s.
func redactSecret(s, secret string) string {
	if secret == "" {
		return s
	}
	for _, v := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
		s = strings.ReplaceAll(s, v, "xxxxx")
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// record stores the checks of rs in one transaction: each check row, and
// each datasource's new status, consecutive_failures and
// last_health_check_at, computed from the row as it is in the store (locked
// on PostgreSQL) so concurrent checks of one datasource count every
// failure once. Then it publishes status changes and sends notifications.
// It runs even when ctx has ended: these checks are done.
func (s *Service) record(ctx context.Context, rs []pingResult, o Options) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	checks := make([]*store.HealthCheck, len(rs))
	for i, r := range rs {
		checks[i] = r.hc
	}
	ts := make([]transition, len(rs))
	err := s.store.RecordHealth(ctx, checks, func(i int, cur *store.Datasource) (store.DatasourceStatus, int) {
		r := rs[i]
		ts[i] = nextHealth(cur.Status, cur.ConsecutiveFailures, r.hc.Status, r.hc.Metadata["slow"] == true, o.FailuresForCritical)
		return ts[i].next, ts[i].failures
	})
	if err != nil {
		return fmt.Errorf("record health: %w", err)
	}
	for i, r := range rs {
		t := ts[i]
		if t.next == "" {
			continue
		}
		checked := r.hc.CheckedAt
		r.ds.Status, r.ds.ConsecutiveFailures, r.ds.LastHealthCheckAt = t.next, t.failures, &checked
		if t.next != t.prev {
			s.d.Publish(StatusChange{DatasourceID: r.ds.ID, Name: r.ds.Name, Previous: t.prev, Status: t.next,
				HealthStatus: r.hc.Status, ConsecutiveFailures: t.failures, At: checked})
		}
		if t.lost {
			s.d.Notify(ctx, notify.Notification{Type: notify.ConnectionLost, Severity: notify.Critical,
				Title:      fmt.Sprintf("%s: connection lost after %d failed checks", r.ds.Name, t.failures),
				Message:    r.err,
				EntityType: "datasource", EntityID: r.ds.ID, CreatedAt: checked,
				Data: map[string]any{"datasource_name": r.ds.Name, "health_status": string(r.hc.Status),
					"consecutive_failures": t.failures}})
		}
		if t.restored {
			s.d.Notify(ctx, notify.Notification{Type: notify.ConnectionRestored, Severity: notify.Info,
				Title:      fmt.Sprintf("%s: connection restored", r.ds.Name),
				EntityType: "datasource", EntityID: r.ds.ID, CreatedAt: checked,
				Data: map[string]any{"datasource_name": r.ds.Name, "latency_ms": derefInt64(r.hc.LatencyMS)}})
		}
	}
	return nil
}

func derefInt64(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
