package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/alitto/pond/v2"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/notify"
	"github.com/dataguardian/dataguardian/storage"
)

// Defaults applied by HealthOptions.WithDefaults.
const (
	DefaultHealthInterval       = 5 * time.Minute
	DefaultHealthTimeout        = 5 * time.Second
	DefaultHealthConcurrency    = 32
	DefaultHealthSlowThreshold  = time.Second
	DefaultFailuresForCritical  = 3
	DefaultHealthCheckRetention = 7 * 24 * time.Hour
)

// healthProbePrefix is where CheckStorages writes its probe objects.
const healthProbePrefix = "_system/health-probe-"

// maxHealthErrorLen bounds the error_message stored per health check.
const maxHealthErrorLen = 1000

// recordTimeout bounds the store writes of a finished check, which run even
// when the caller's context ends meanwhile, so a completed check is never lost.
const recordTimeout = 30 * time.Second

// healthLockKey is the PostgreSQL advisory lock that lets one process at a
// time run a health cycle on a shared metadata database ("dghlth").
const healthLockKey int64 = 0x6467686c7468

// HealthOptions configure health checks. The zero value means the
// documented defaults.
type HealthOptions struct {
	// Interval between the starts of two cycles of a HealthWorker; 0 means
	// DefaultHealthInterval (5 min).
	Interval time.Duration
	// Timeout bounds one check (connect, SELECT 1, details); 0 means
	// DefaultHealthTimeout (5 s). A check that has no answer by then is
	// recorded as "timeout".
	Timeout time.Duration
	// Concurrency bounds how many checks of a cycle run at once; 0 means
	// DefaultHealthConcurrency (32). A cycle lasts about
	// ceil(silent datasources / Concurrency) × Timeout: to keep a cycle
	// within 2 × Timeout when N datasources may stop answering at once,
	// set it to at least N (a waiting check costs a goroutine and a socket).
	Concurrency int
	// SlowThreshold: a successful check that took longer (the whole check,
	// as the engine measured it) makes the datasource "warning"; 0 means
	// DefaultHealthSlowThreshold (1 s).
	SlowThreshold time.Duration
	// FailuresForCritical is how many consecutive failed checks make a
	// datasource "critical" and send connection_lost; 0 means
	// DefaultFailuresForCritical (3).
	FailuresForCritical int
	// Retention: health checks older than this are deleted by each cycle;
	// 0 means DefaultHealthCheckRetention (7 days), a negative value keeps
	// them forever.
	Retention time.Duration
}

// WithDefaults returns o with every zero field set to its documented default.
func (o HealthOptions) WithDefaults() HealthOptions {
	if o.Interval == 0 {
		o.Interval = DefaultHealthInterval
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultHealthTimeout
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultHealthConcurrency
	}
	if o.SlowThreshold == 0 {
		o.SlowThreshold = DefaultHealthSlowThreshold
	}
	if o.FailuresForCritical == 0 {
		o.FailuresForCritical = DefaultFailuresForCritical
	}
	if o.Retention == 0 {
		o.Retention = DefaultHealthCheckRetention
	}
	return o
}

func (o HealthOptions) validate() error {
	bad := func(field string, v any, help string) error {
		return fmt.Errorf("%w: HealthOptions.%s %v: %s", ErrInvalid, field, v, help)
	}
	switch {
	case o.Interval < 0:
		return bad("Interval", o.Interval, "use a positive duration (0 means 5m)")
	case o.Timeout < 0:
		return bad("Timeout", o.Timeout, "use a positive duration (0 means 5s)")
	case o.Concurrency < 0:
		return bad("Concurrency", o.Concurrency, "use a positive number of checks at once (0 means 32)")
	case o.SlowThreshold < 0:
		return bad("SlowThreshold", o.SlowThreshold, "use a positive duration (0 means 1s)")
	case o.FailuresForCritical < 0:
		return bad("FailuresForCritical", o.FailuresForCritical, "use a positive number of consecutive failures (0 means 3)")
	}
	return nil
}

// healthOptions are the options of checks not run by a HealthWorker
// (CheckDatasource, CheckStorages).
func (e *Engine) healthOptions() HealthOptions {
	return e.cfg.Health.WithDefaults()
}

// ---------------------------------------------------------------------------
// Status transitions (pure).

// healthTransition is what one check does to a datasource.
type healthTransition struct {
	prev, next DatasourceStatus
	failures   int  // consecutive_failures after the check
	lost       bool // entered critical: send connection_lost
	restored   bool // left critical with a successful check: send connection_restored
}

// nextHealth applies one check outcome to a datasource's status and count
// of consecutive failures (spec §1):
//   - ok, within slowThreshold → healthy; ok but slow → warning; the count
//     resets to 0;
//   - a failure adds one: below n failures → warning, n or more → critical.
//
// connection_lost is sent once, when the datasource enters critical (the
// n-th failure, not again at n+1, …). connection_restored is sent when a
// check succeeds while the datasource is critical: a single failed check
// only ever warned, so there is nothing to restore from (the spec's "voltou
// após uma falha" read as: after a confirmed failure).
func nextHealth(prev DatasourceStatus, prevFailures int, st HealthStatus, slow bool, n int) healthTransition {
	t := healthTransition{prev: prev}
	if st == HealthOK {
		t.next = DatasourceHealthy
		if slow {
			t.next = DatasourceWarning
		}
		t.restored = prev == DatasourceCritical
		return t
	}
	t.failures = prevFailures + 1
	t.next = DatasourceWarning
	if t.failures >= n {
		t.next = DatasourceCritical
	}
	t.lost = t.next == DatasourceCritical && prev != DatasourceCritical
	return t
}

// ---------------------------------------------------------------------------
// One check.

// pingResult is a finished Ping of one datasource, not yet recorded.
type pingResult struct {
	ds  *Datasource
	hc  *HealthCheck
	err string // full error text for notifications (already redacted)
}

// CheckDatasource checks the datasource id now, whether enabled or not (the
// API's POST /api/datasources/:id/health-check): it pings it with the
// health timeout, records the HealthCheck and updates the datasource's
// status, last_health_check_at and consecutive_failures, notifying and
// publishing an event as a HealthWorker cycle would. The error is non-nil
// only when the check could not be run or recorded (unknown id, ctx
// cancelled, store down); a datasource that does not answer is a
// HealthCheck with a failure status and a nil error.
func (e *Engine) CheckDatasource(ctx context.Context, id string) (*HealthCheck, error) {
	ds, err := e.store.GetDatasource(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("check datasource %s: %w", id, err)
	}
	return e.checkDatasource(ctx, ds, e.healthOptions())
}

func (e *Engine) checkDatasource(ctx context.Context, ds *Datasource, o HealthOptions) (*HealthCheck, error) {
	r, err := e.pingDatasource(ctx, ds, o)
	if err != nil {
		return nil, fmt.Errorf("check datasource %s: %w", ds.Name, err)
	}
	if err := e.recordHealth(ctx, []pingResult{r}, o); err != nil {
		return nil, fmt.Errorf("check datasource %s: %w", ds.Name, err)
	}
	return r.hc, nil
}

// pingDatasource runs one Ping of ds bounded by o.Timeout and turns it into
// an unrecorded HealthCheck. It fails only when ctx ends first: a check cut
// short by shutdown says nothing about the datasource and is not recorded.
func (e *Engine) pingDatasource(ctx context.Context, ds *Datasource, o HealthOptions) (pingResult, error) {
	var h drivers.Health
	var password string
	start := time.Now()
	d, err := e.cfg.Drivers.Lookup(ds.Type)
	if err == nil {
		var src drivers.Source
		if src, err = e.Source(ds); err == nil {
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
	switch HealthStatus(h.Status) {
	case HealthOK, HealthTimeout, HealthAuthFailed, HealthUnreachable, HealthError:
	default:
		h.ErrorText = fmt.Sprintf("driver %s returned unknown health status %q: %s", ds.Type, h.Status, h.ErrorText)
		h.Status = drivers.HealthError
	}
	msg := redactSecret(h.ErrorText, password)
	hc := &HealthCheck{DatasourceID: ds.ID, CheckedAt: e.now().Truncate(time.Microsecond),
		Status: HealthStatus(h.Status), ErrorMessage: truncate(msg, maxHealthErrorLen)}
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

// recordHealth stores the checks of rs in one transaction: each check row,
// and each datasource's new status, consecutive_failures and
// last_health_check_at, computed from the row as it is in the store (locked
// on PostgreSQL) so concurrent checks of one datasource count every
// failure once. Then it publishes status changes and sends notifications.
// It runs even when ctx has ended: these checks are done.
func (e *Engine) recordHealth(ctx context.Context, rs []pingResult, o HealthOptions) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	checks := make([]*HealthCheck, len(rs))
	for i, r := range rs {
		checks[i] = r.hc
	}
	ts := make([]healthTransition, len(rs))
	err := e.store.RecordHealth(ctx, checks, func(i int, cur *Datasource) (DatasourceStatus, int) {
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
			e.events.Publish(Event{Type: EventDatasourceStatus, EntityID: r.ds.ID, Status: string(t.next), At: checked,
				Data: map[string]any{"previous_status": string(t.prev), "health_status": string(r.hc.Status),
					"consecutive_failures": t.failures, "name": r.ds.Name}})
		}
		if t.lost {
			e.notify(ctx, notify.Notification{Type: notify.ConnectionLost, Severity: notify.Critical,
				Title:      fmt.Sprintf("%s: connection lost after %d failed checks", r.ds.Name, t.failures),
				Message:    r.err,
				EntityType: "datasource", EntityID: r.ds.ID, CreatedAt: checked,
				Data: map[string]any{"datasource_name": r.ds.Name, "health_status": string(r.hc.Status),
					"consecutive_failures": t.failures}})
		}
		if t.restored {
			e.notify(ctx, notify.Notification{Type: notify.ConnectionRestored, Severity: notify.Info,
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

// ---------------------------------------------------------------------------
// A cycle.

// HealthCycleReport summarises one health cycle.
type HealthCycleReport struct {
	StartedAt time.Time     `json:"started_at"`
	Duration  time.Duration `json:"duration"`
	// Skipped: another process holds the health lock of the shared
	// (PostgreSQL) metadata database and runs the cycle; nothing was checked.
	Skipped     bool `json:"skipped,omitempty"`
	Datasources int  `json:"datasources"` // enabled datasources found
	Checked     int  `json:"checked"`     // checks recorded
	// Checks counts the recorded checks per outcome (ok, timeout, …).
	Checks map[HealthStatus]int `json:"checks"`
	// Statuses counts the checked datasources per new status.
	Statuses map[DatasourceStatus]int `json:"statuses"`
	// Errors counts checks that ran but could not be recorded.
	Errors   int             `json:"errors"`
	Pruned   int64           `json:"pruned"` // old health checks deleted
	Storages []StorageHealth `json:"storages"`
}

// RunHealthCycle checks every enabled datasource once, concurrently (at
// most opts.Concurrency at a time, each bounded by opts.Timeout), records
// the results as CheckDatasource does, checks every enabled storage
// location, and deletes health checks older than opts.Retention. Datasources
// checked least recently go first.
//
// On a PostgreSQL metadata database shared by several processes, one cycle
// runs at a time (an advisory lock): the others return a Skipped report, so
// a failure is never counted twice.
//
// When ctx ends, checks not yet started are dropped, checks under way stop
// unrecorded, and the error is ctx's.
func (e *Engine) RunHealthCycle(ctx context.Context, opts HealthOptions) (rep HealthCycleReport, err error) {
	opts = opts.WithDefaults()
	rep = HealthCycleReport{StartedAt: e.now(), Checks: map[HealthStatus]int{}, Statuses: map[DatasourceStatus]int{}}
	if err := opts.validate(); err != nil {
		return rep, err
	}
	start := time.Now()
	defer func() { rep.Duration = time.Since(start) }()

	unlock, ok, err := e.lockHealth(ctx)
	if err != nil {
		return rep, fmt.Errorf("health cycle: %w", err)
	}
	if !ok {
		rep.Skipped = true
		return rep, nil
	}
	defer unlock()

	dss, err := e.store.DatasourcesToCheck(ctx)
	if err != nil {
		return rep, fmt.Errorf("health cycle: %w", err)
	}
	rep.Datasources = len(dss)

	storages := make(chan []StorageHealth, 1)
	go func() {
		sh, err := e.checkStorages(ctx, opts.Timeout)
		if err != nil {
			e.log.Warn("health cycle: storages", "err", err)
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
		e.recordResults(ctx, results, opts, &rep)
	}()
	pool := pond.NewPool(opts.Concurrency, pond.WithContext(ctx))
	group := pool.NewGroup()
	for i := range dss {
		ds := &dss[i]
		group.Submit(func() {
			r, err := e.pingDatasource(ctx, ds, opts)
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
		n, err := e.store.PruneHealthChecks(ctx, e.now().Add(-opts.Retention))
		if err != nil {
			e.log.Warn("health cycle: prune health checks", "err", err)
		}
		rep.Pruned = n
	}
	return rep, nil
}

// maxHealthBatch bounds the checks recorded in one transaction.
const maxHealthBatch = 256

// recordResults records the pings arriving on results in batches of what
// has arrived, until results is closed, and counts them into rep.
func (e *Engine) recordResults(ctx context.Context, results <-chan pingResult, o HealthOptions, rep *HealthCycleReport) {
	batch := make([]pingResult, 0, maxHealthBatch)
	for r := range results {
		batch = append(batch[:0], r)
	fill:
		for len(batch) < maxHealthBatch {
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
		if err := e.recordHealth(ctx, batch, o); err != nil {
			rep.Errors += len(batch)
			e.log.Error("health cycle: record checks", "checks", len(batch), "err", err)
			continue
		}
		for _, r := range batch {
			rep.Checked++
			rep.Checks[r.hc.Status]++
			rep.Statuses[r.ds.Status]++
		}
	}
}

// lockHealth takes the health-cycle lock (ok false when another process
// holds it).
func (e *Engine) lockHealth(ctx context.Context) (unlock func(), ok bool, err error) {
	return e.tryAdvisoryLock(ctx, healthLockKey)
}

// ---------------------------------------------------------------------------
// Storages.

// StorageHealth is the outcome of one storage location check.
type StorageHealth struct {
	StorageLocationID string       `json:"storage_location_id"`
	Name              string       `json:"name"`
	Type              string       `json:"type"`
	Status            HealthStatus `json:"status"` // ok or unreachable
	LatencyMS         int64        `json:"latency_ms"`
	// FreeBytes is the space left, when the storage can tell (nil otherwise).
	FreeBytes    *uint64   `json:"free_bytes,omitempty"`
	ErrorMessage string    `json:"error_message,omitempty"`
	CheckedAt    time.Time `json:"checked_at"`
}

// CheckStorages checks every enabled storage location, concurrently: it
// opens it, writes, reads back and deletes a small probe object under
// "_system/", and asks for the free space when the storage can tell. A
// location that fails any step is "unreachable" with the reason. The
// result is recorded as the last one (LastStorageHealth). The error is
// non-nil only when the locations cannot be listed.
func (e *Engine) CheckStorages(ctx context.Context) ([]StorageHealth, error) {
	return e.checkStorages(ctx, e.healthOptions().Timeout)
}

func (e *Engine) checkStorages(ctx context.Context, timeout time.Duration) ([]StorageHealth, error) {
	enabled, err := e.enabledStorages(ctx)
	if err != nil {
		return nil, fmt.Errorf("check storages: %w", err)
	}
	out := e.probeStorages(ctx, enabled, timeout)
	if ctx.Err() == nil {
		e.saveStorageHealth(ctx, &storageHealthRecord{CheckedAt: e.now(), Storages: out})
	}
	return out, nil
}

// enabledStorages returns the enabled storage locations, by name.
func (e *Engine) enabledStorages(ctx context.Context) ([]*StorageLocation, error) {
	locs, err := e.store.ListStorageLocations(ctx)
	if err != nil {
		return nil, err
	}
	var enabled []*StorageLocation
	for i := range locs {
		if locs[i].Enabled {
			enabled = append(enabled, &locs[i])
		}
	}
	return enabled, nil
}

// probeStorages checks locs concurrently, each within timeout.
func (e *Engine) probeStorages(ctx context.Context, locs []*StorageLocation, timeout time.Duration) []StorageHealth {
	out := make([]StorageHealth, len(locs))
	var wg sync.WaitGroup
	for i, loc := range locs {
		out[i] = StorageHealth{StorageLocationID: loc.ID, Name: loc.Name, Type: loc.Type}
		wg.Go(func() { e.checkStorage(ctx, loc, timeout, &out[i]) })
	}
	wg.Wait()
	return out
}

func (e *Engine) checkStorage(ctx context.Context, loc *StorageLocation, timeout time.Duration, sh *StorageHealth) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	err := e.probeStorage(ctx, loc, sh)
	sh.LatencyMS = time.Since(start).Milliseconds()
	sh.CheckedAt = e.now()
	sh.Status = HealthOK
	if err != nil {
		sh.Status, sh.ErrorMessage = HealthUnreachable, truncate(err.Error(), maxHealthErrorLen)
	}
}

func (e *Engine) probeStorage(ctx context.Context, loc *StorageLocation, sh *StorageHealth) error {
	st, err := e.openStorage(ctx, loc)
	if err != nil {
		return err
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	key := healthProbePrefix + hex.EncodeToString(rnd[:])
	body := []byte("dataguardian health probe " + e.now().Format(time.RFC3339Nano) + "\n")
	if err := st.Put(ctx, key, bytes.NewReader(body), nil); err != nil {
		return fmt.Errorf("write probe %s: %w", key, err)
	}
	rc, err := st.Open(ctx, key, 0, -1)
	if err == nil {
		var got []byte
		got, err = io.ReadAll(io.LimitReader(rc, int64(len(body))+1))
		rc.Close()
		if err == nil && !bytes.Equal(got, body) {
			err = errors.New("content differs from what was written")
		}
	}
	derr := st.Delete(context.WithoutCancel(ctx), key)
	if err != nil {
		return fmt.Errorf("read probe %s: %w", key, err)
	}
	if derr != nil {
		return fmt.Errorf("delete probe %s: %w", key, derr)
	}
	if fs, ok := st.(storage.FreeSpacer); ok {
		n, err := fs.FreeBytes()
		if err != nil {
			return err
		}
		sh.FreeBytes = &n
	}
	return nil
}

// ---------------------------------------------------------------------------
// The last storage result.

// storageHealthKey is the system setting holding the last storage checks,
// shared by every process on the metadata store (only one of them runs
// the health cycle).
const storageHealthKey = "health.storages"

// storageHealthRecord is the stored form of the last storage checks.
type storageHealthRecord struct {
	// CheckedAt is when the last full check (every enabled location) ran,
	// on the engine's clock.
	CheckedAt time.Time       `json:"checked_at"`
	Storages  []StorageHealth `json:"storages"`
	// saved is when the record was written (the store's clock); not stored.
	saved time.Time
}

func (e *Engine) saveStorageHealth(ctx context.Context, rec *storageHealthRecord) {
	v, err := json.Marshal(rec)
	if err == nil {
		err = e.store.PutSetting(context.WithoutCancel(ctx), &Setting{Key: storageHealthKey, Value: v})
	}
	if err != nil {
		e.log.Warn("record storage health", "err", err)
	}
}

// loadStorageHealth returns the stored record, or nil when there is none
// or it cannot be read.
func (e *Engine) loadStorageHealth(ctx context.Context) *storageHealthRecord {
	st, err := e.store.GetSetting(ctx, storageHealthKey)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			e.log.Warn("read storage health", "err", err)
		}
		return nil
	}
	rec := &storageHealthRecord{saved: st.UpdatedAt}
	if err := json.Unmarshal(st.Value, rec); err != nil {
		e.log.Warn("read storage health", "err", err)
		return nil
	}
	return rec
}

// LastStorageHealth returns the storage checks every health cycle (and
// CheckStorages) records in the metadata store, so that health endpoints
// can be polled without touching storage. It probes only what it has no
// recent result for, and records that too: every enabled location when
// there is no result yet or the last full check is older than two health
// intervals (no health worker runs), otherwise only locations enabled,
// created or changed since the result was recorded. Locations deleted or
// disabled since are left out; names and types are the current ones. The
// error is non-nil only when the locations cannot be listed.
func (e *Engine) LastStorageHealth(ctx context.Context) ([]StorageHealth, error) {
	o := e.healthOptions()
	rec := e.loadStorageHealth(ctx)
	if rec == nil || e.now().Sub(rec.CheckedAt) > 2*o.Interval {
		return e.checkStorages(ctx, o.Timeout)
	}
	enabled, err := e.enabledStorages(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage health: %w", err)
	}
	last := make(map[string]StorageHealth, len(rec.Storages))
	for _, sh := range rec.Storages {
		last[sh.StorageLocationID] = sh
	}
	out := make([]StorageHealth, len(enabled))
	var stale []*StorageLocation
	var at []int
	for i, loc := range enabled {
		sh, ok := last[loc.ID]
		if !ok || loc.UpdatedAt.After(rec.saved) {
			stale, at = append(stale, loc), append(at, i)
			continue
		}
		sh.Name, sh.Type = loc.Name, loc.Type
		out[i] = sh
	}
	if len(stale) == 0 {
		return out, nil
	}
	for j, sh := range e.probeStorages(ctx, stale, o.Timeout) {
		out[at[j]] = sh
	}
	if ctx.Err() == nil {
		e.saveStorageHealth(ctx, &storageHealthRecord{CheckedAt: rec.CheckedAt, Storages: out})
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// The worker.

// HealthWorker runs a health cycle (RunHealthCycle) every Interval. It is
// safe for concurrent use.
type HealthWorker struct {
	e    *Engine
	opts HealthOptions

	mu     sync.Mutex
	last   HealthCycleReport
	cycles int
}

// NewHealthWorker returns a worker checking e's datasources and storages
// with opts (zero fields mean the defaults).
func NewHealthWorker(e *Engine, opts HealthOptions) *HealthWorker {
	return &HealthWorker{e: e, opts: opts.WithDefaults()}
}

// Run runs a cycle at once and then one every Interval (a cycle longer than
// Interval delays the next; cycles never overlap) until ctx ends; then it
// stops the cycle under way and returns nil once every goroutine it started
// has ended. It returns an error only for invalid options.
func (w *HealthWorker) Run(ctx context.Context) error {
	if err := w.opts.validate(); err != nil {
		return err
	}
	log := w.e.log.WithGroup("health")
	tick := time.NewTicker(w.opts.Interval)
	defer tick.Stop()
	for {
		rep, err := w.e.RunHealthCycle(ctx, w.opts)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			log.Error("health cycle", "err", err)
		} else {
			w.mu.Lock()
			w.last, w.cycles = rep, w.cycles+1
			w.mu.Unlock()
			log.Debug("health cycle", "datasources", rep.Datasources, "checked", rep.Checked,
				"duration", rep.Duration, "checks", rep.Checks, "skipped", rep.Skipped)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Last returns the report of the last completed cycle and how many cycles
// have completed (0: none yet).
func (w *HealthWorker) Last() (HealthCycleReport, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.cycles
}
