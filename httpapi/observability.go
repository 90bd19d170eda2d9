package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sort"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dataguardian/dataguardian/engine"
)

// ---------------------------------------------------------------------------
// Plain handlers: GET /metrics and GET /api/events.

// SSE tuning. Package variables so the package's tests can shorten them.
var (
	// sseHeartbeat is how often an idle event stream gets a comment line,
	// so proxies keep it open and a vanished client is noticed.
	sseHeartbeat = 15 * time.Second
	// sseWriteTimeout bounds one write to a client: a client that reads
	// nothing for this long is disconnected.
	sseWriteTimeout = 30 * time.Second
	// sseBuffer is each client's subscription buffer; when it is full (a
	// slow client) the bus drops events for that client, never blocks.
	sseBuffer = 64
)

// MetricsAccess selects who may read GET /metrics (Options.Metrics).
type MetricsAccess int

const (
	// MetricsPublic serves /metrics without a token. Its labels name jobs
	// by ID only: a job's name may say what it backs up.
	MetricsPublic MetricsAccess = iota
	// MetricsToken serves /metrics to callers holding PermMetrics,
	// authenticated through Options.Auth like /api (401 without a valid
	// token, 403 without the permission). Job labels carry names as well
	// as IDs.
	MetricsToken
)

// publicPaths says which paths need no token, for the API's description.
func publicPaths(m MetricsAccess) string {
	if m == MetricsToken {
		return "/health is public; /metrics needs a token holding `" + PermMetrics + "`."
	}
	return "/health and /metrics are public."
}

// MountObservability adds the two operations that are not huma operations
// to mux: GET /metrics (Prometheus text format; public unless
// Options.Metrics is MetricsToken) and GET /api/events (server-sent
// events). Register documents both in the OpenAPI document; New mounts
// them on its mux, so Options.Auth guards /api/events like the rest of
// /api (and /metrics with MetricsToken). A service that calls Register on
// its own huma API calls MountObservability on its own mux, and
// authenticates /metrics itself with MetricsToken.
//
// Each call creates its own Prometheus registry (no package globals): the
// engine's collector, the Go runtime collector and the process collector.
func MountObservability(mux *http.ServeMux, e *engine.Engine, opts *Options) {
	o := opts.withDefaults()
	h := &handlers{e: e, log: o.Logger, auth: o.Auth != nil, metrics: o.Metrics}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(e, o.Logger, o.Metrics == MetricsToken),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var metrics http.Handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(o.Logger.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})
	if o.Metrics == MetricsToken {
		metrics = h.require(PermMetrics, metrics)
	}
	mux.Handle("GET /metrics", metrics)
	mux.Handle("GET /api/events", h.require(PermRead, serveEvents(e, o.Done)))
}

// serveEvents streams the engine's events as server-sent events:
//
//	event: execution:status-changed
//	data: {"type":"execution:status-changed","entity_id":"…","status":"running",…}
//
// It subscribes before answering, writes a ": connected" comment first (a
// client that has read it will receive every later event), a ": keep-alive"
// comment every sseHeartbeat, flushes after every message, and ends when
// the client goes away or done is closed. Events are not replayed (no
// Last-Event-ID).
func serveEvents(e *engine.Engine, done <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		events, cancel := e.Events().Subscribe(sseBuffer)
		defer cancel()
		rc := http.NewResponseController(w)
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
		w.WriteHeader(http.StatusOK)
		write := func(b []byte) bool {
			// A server WriteTimeout would cut the stream: each write gets
			// its own deadline instead (ignored where unsupported).
			_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
			if _, err := w.Write(b); err != nil {
				return false
			}
			if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
				return false
			}
			return true
		}
		if !write([]byte(": connected\nretry: 5000\n\n")) {
			return
		}
		tick := time.NewTicker(sseHeartbeat)
		defer tick.Stop()
		var buf bytes.Buffer
		for {
			select {
			case <-r.Context().Done():
				return
			case <-done:
				return
			case <-tick.C:
				if !write([]byte(": keep-alive\n\n")) {
					return
				}
			case ev, ok := <-events:
				if !ok {
					return
				}
				data, err := json.Marshal(ev)
				if err != nil {
					continue
				}
				buf.Reset()
				fmt.Fprintf(&buf, "event: %s\ndata: %s\n\n", ev.Type, data)
				if !write(buf.Bytes()) {
					return
				}
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Prometheus collector: reads the engine on every scrape.

type collector struct {
	e     *engine.Engine
	log   *slog.Logger
	names bool // job labels carry the job's name as well as its ID

	datasources, executions                    *prometheus.Desc
	execSeconds, execBytes                     *prometheus.Desc
	queueDepth, queueRunning, queueOldest      *prometheus.Desc
	queueScheduled, queueExpired, queueFailed  *prometheus.Desc
	lastSuccess, lastDuration, lastSize        *prometheus.Desc
	subscribers, dropped, jobs, scrapeFailures *prometheus.Desc
}

// newCollector returns the engine's collector; with names, the per-job
// metrics are labelled job_id and job (the name), else job_id only, so
// that each metric has one label set.
func newCollector(e *engine.Engine, log *slog.Logger, names bool) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("dataguardian_"+name, help, labels, nil)
	}
	job := []string{"job_id"}
	if names {
		job = append(job, "job")
	}
	return &collector{e: e, log: log, names: names,
		datasources:    d("datasources", "Datasources by connection status.", "status"),
		executions:     d("executions", "Executions recorded, by operation (backup, restore, verify) and status.", "operation", "status"),
		execSeconds:    d("executions_duration_seconds", "Summed duration of the recorded executions, by operation and status.", "operation", "status"),
		execBytes:      d("executions_stored_bytes", "Summed stored (compressed) size of the recorded executions, by operation and status.", "operation", "status"),
		queueDepth:     d("queue_depth", "Due tasks waiting for a worker."),
		queueRunning:   d("queue_running", "Tasks claimed by a worker with a live lease."),
		queueOldest:    d("queue_oldest_age_seconds", "How long the oldest due task has waited past its run time."),
		queueScheduled: d("queue_scheduled", "Queued tasks whose run time is still ahead (retries)."),
		queueExpired:   d("queue_expired_leases", "Claimed tasks whose lease expired (their worker stopped), not yet recovered."),
		queueFailed:    d("queue_failed", "Tasks that used all their attempts."),
		lastSuccess:    d("backup_last_success_timestamp_seconds", "When the job's last completed backup finished (Unix time).", job...),
		lastDuration:   d("backup_last_success_duration_seconds", "How long the job's last completed backup took.", job...),
		lastSize:       d("backup_last_success_size_bytes", "Stored (compressed) size of the job's last completed backup.", job...),
		jobs:           d("backup_jobs", "Backup jobs, by whether they are enabled.", "enabled"),
		subscribers:    d("events_subscribers", "Live event subscriptions (SSE clients)."),
		dropped:        d("events_dropped_total", "Event deliveries skipped because a subscriber was too slow."),
		scrapeFailures: d("scrape_errors", "Parts of this scrape that could not be read (see the server log).", "part"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.datasources, c.executions, c.execSeconds, c.execBytes, c.queueDepth, c.queueRunning, c.queueOldest,
		c.queueScheduled, c.queueExpired, c.queueFailed, c.lastSuccess, c.lastDuration, c.lastSize,
		c.jobs, c.subscribers, c.dropped, c.scrapeFailures} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	failed := func(part string, err error) {
		c.log.Error("metrics: read "+part, "err", err)
		gauge(c.scrapeFailures, 1, part)
	}
	st := c.e.Store()

	if byStatus, err := st.DatasourceCounts(ctx); err != nil {
		failed("datasources", err)
	} else {
		for s, n := range byStatus {
			gauge(c.datasources, float64(n), s)
		}
	}
	if rows, err := st.ExecutionCounts(ctx, time.Time{}); err != nil {
		failed("executions", err)
	} else {
		for _, r := range rows {
			gauge(c.executions, float64(r.N), r.Operation, r.Status)
			gauge(c.execSeconds, float64(r.DurationMS)/1000, r.Operation, r.Status)
			gauge(c.execBytes, float64(r.Bytes), r.Operation, r.Status)
		}
	}
	if qs, err := c.e.Queue().Stats(ctx); err != nil {
		failed("queue", err)
	} else {
		gauge(c.queueDepth, float64(qs.Depth))
		gauge(c.queueRunning, float64(qs.Running))
		gauge(c.queueOldest, qs.OldestAge.Seconds())
		gauge(c.queueScheduled, float64(qs.Scheduled))
		gauge(c.queueExpired, float64(qs.Expired))
		gauge(c.queueFailed, float64(qs.Failed))
	}
	if lbs, err := st.LastBackups(ctx); err != nil {
		failed("last_backups", err)
	} else {
		for _, b := range lbs {
			job := []string{b.JobID}
			if c.names {
				job = append(job, b.JobName)
			}
			gauge(c.lastSuccess, float64(b.FinishedAt.UnixMilli())/1000, job...)
			gauge(c.lastDuration, float64(b.DurationMS)/1000, job...)
			gauge(c.lastSize, float64(b.CompressedSizeBytes), job...)
		}
	}
	if jobs, err := c.e.Store().ListBackupJobs(ctx); err != nil {
		failed("jobs", err)
	} else {
		var on, off int
		for i := range jobs {
			if jobs[i].Enabled {
				on++
			} else {
				off++
			}
		}
		gauge(c.jobs, float64(on), "true")
		gauge(c.jobs, float64(off), "false")
	}
	gauge(c.subscribers, float64(c.e.Events().Subscribers()))
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(c.e.Events().Dropped()))
}

// ---------------------------------------------------------------------------
// huma operations.

// registerObservability registers the operations on health summaries, the
// dashboard, events and metrics. /api/events and /metrics are documented
// here and served by MountObservability's plain handlers.
func registerObservability(add adder, h *handlers) {
	tags := []string{"Health"}
	add(huma.Operation{OperationID: "get-api-health", Method: http.MethodGet, Path: "/api/health",
		Summary: "Health of each service: metadata database, queue, storages, workers",
		Description: "`status` is `ok` when every service is `ok`, else `degraded`; 503 when the metadata database " +
			"does not answer. This server has no Redis: the spec's `services.redis` is `services.queue` (the " +
			"queue lives in the metadata database). When backups or restores do not start, read " +
			"`services.queue.oldest_age_seconds` and `services.workers`. `services.storages` is the health " +
			"worker's last check of each location (`checked_at`): polling this endpoint does not touch storage.",
		Tags: tags},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.apiHealth) })
	add(huma.Operation{OperationID: "get-datasources-health", Method: http.MethodGet, Path: "/api/health/datasources",
		Summary: "Connection status of every datasource with its latest health check", Tags: tags},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.datasourcesHealth) })
	add(huma.Operation{OperationID: "get-storage-health", Method: http.MethodGet, Path: "/api/health/storage",
		Summary: "Health of every enabled storage location (the health worker's last check, or now with refresh=true)",
		Description: "Answers 200 with each location's outcome; `status` is `degraded` when one is unreachable. " +
			"Without `refresh` nothing touches storage: each location shows the health worker's last check " +
			"(`checked_at`; a location created or changed since is checked on the spot). With `refresh=true` " +
			"every location is checked now: a probe object is written, read back and deleted, and the free " +
			"space read.",
		Tags: tags},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.storageHealth) })
	add(huma.Operation{OperationID: "get-dashboard-overview", Method: http.MethodGet, Path: "/api/dashboard/overview",
		Summary: "The numbers of an operator's front page", Tags: []string{"Dashboard"}},
		func(a huma.API, op huma.Operation) { huma.Register(a, op, h.dashboard) })

	// Streaming and Prometheus: documented only, served by MountObservability.
	add(huma.Operation{OperationID: "stream-events", Method: http.MethodGet, Path: "/api/events",
		Summary: "Server-sent events: datasource and execution status changes",
		Description: "A `text/event-stream`. Each message is `event: <type>` (`" + engine.EventExecutionStatus +
			"` or `" + engine.EventDatasourceStatus + "`) and `data: <Event JSON>`. The stream starts with a " +
			"`: connected` comment and carries a `: keep-alive` comment every 15 s. Events are not replayed; a " +
			"client too slow to read misses events rather than slowing the server.",
		Tags: []string{"Events"},
		Responses: map[string]*huma.Response{"200": {Description: "The event stream",
			Content: map[string]*huma.MediaType{"text/event-stream": {Schema: &huma.Schema{Type: "string",
				Description: "Server-sent events; each data line is an Event JSON object"}}}}}},
		func(a huma.API, op huma.Operation) {
			op.Responses["default"] = errorResponse(a)
			a.OpenAPI().AddOperation(&op)
		})
	summary, labels := "Prometheus metrics (public)", "labelled `job_id`"
	if h.metrics == MetricsToken {
		summary, labels = "Prometheus metrics", "labelled `job_id` and `job` (the name)"
	}
	add(huma.Operation{OperationID: "get-metrics", Method: http.MethodGet, Path: "/metrics",
		Summary: summary,
		Description: "Prometheus text format: `dataguardian_*` (datasources by status, executions by operation " +
			"and status with their summed duration and stored bytes, queue depth/running/oldest age, each job's last completed backup time, duration and " +
			"size " + labels + ", event subscribers) plus Go runtime and process metrics.",
		Tags: []string{"Health"},
		Responses: map[string]*huma.Response{"200": {Description: "Metrics in the Prometheus text format",
			Content: map[string]*huma.MediaType{"text/plain": {Schema: &huma.Schema{Type: "string"}}}}}},
		func(a huma.API, op huma.Operation) {
			if h.metrics == MetricsToken {
				op.Responses["default"] = errorResponse(a) // 401, 403, 429
			}
			a.OpenAPI().AddOperation(&op)
		})
}

// errorResponse is the problem JSON response huma documents for errors.
func errorResponse(a huma.API) *huma.Response {
	return &huma.Response{Description: "Error (RFC 9457 problem JSON)",
		Content: map[string]*huma.MediaType{"application/problem+json": {
			Schema: a.OpenAPI().Components.Schemas.Schema(reflect.TypeOf(huma.ErrorModel{}), true, "")}}}
}

// ---------------------------------------------------------------------------
// GET /api/health.

// APIHealth is the body of GET /api/health.
type APIHealth struct {
	Status   string    `json:"status" enum:"ok,degraded" doc:"ok when every service is ok"`
	Time     time.Time `json:"time" doc:"Server time"`
	Services Services  `json:"services"`
}

// Services is the health of each service DataGuardian depends on.
type Services struct {
	Database DatabaseHealth         `json:"database" doc:"The metadata database"`
	Queue    QueueHealth            `json:"queue" doc:"The task queue (stored in the metadata database; the spec's services.redis)"`
	Storages []engine.StorageHealth `json:"storages" doc:"Each enabled storage location, as the health worker last checked it (see checked_at)"`
	Workers  WorkersHealth          `json:"workers" doc:"Whether queued work is being taken"`
}

// DatabaseHealth is the metadata database's health.
type DatabaseHealth struct {
	Status    string `json:"status" enum:"ok,error"`
	Dialect   string `json:"dialect" doc:"sqlite or pg"`
	LatencyMS int64  `json:"latency_ms" doc:"Ping round trip"`
	Error     string `json:"error,omitempty" doc:"Why it failed and what to do"`
}

// QueueHealth is the queue's health and load.
type QueueHealth struct {
	Status           string  `json:"status" enum:"ok,degraded,error" doc:"degraded when due work waits over a minute or leases expired"`
	Depth            int     `json:"depth" doc:"Due tasks waiting for a worker"`
	Running          int     `json:"running" doc:"Tasks a worker holds"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds" doc:"How long the oldest due task has waited"`
	Scheduled        int     `json:"scheduled" doc:"Retries waiting for their time"`
	ExpiredLeases    int     `json:"expired_leases" doc:"Claimed tasks whose worker stopped, not yet recovered"`
	Failed           int     `json:"failed" doc:"Tasks that used all their attempts"`
	Error            string  `json:"error,omitempty"`
}

// WorkersHealth says whether workers take queued work.
type WorkersHealth struct {
	Status           string `json:"status" enum:"ok,degraded,unknown" doc:"degraded when due work is not being taken"`
	Running          int    `json:"running" doc:"Tasks being run by a worker (any process)"`
	Message          string `json:"message,omitempty" doc:"What to check when degraded"`
	EventSubscribers int    `json:"event_subscribers" doc:"Clients of GET /api/events"`
}

// queueStall is how long due work may wait before the queue and the
// workers count as degraded.
const queueStall = time.Minute

type apiHealthOutput struct {
	Status int
	Body   APIHealth
}

func (h *handlers) apiHealth(ctx context.Context, _ *struct{}) (*apiHealthOutput, error) {
	out := &apiHealthOutput{Status: http.StatusOK, Body: APIHealth{Status: "ok", Time: time.Now().UTC()}}
	sv := &out.Body.Services
	st := h.e.Store()
	sv.Database = DatabaseHealth{Status: "ok", Dialect: st.Dialect()}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	start := time.Now()
	err := st.Ping(pctx)
	cancel()
	sv.Database.LatencyMS = time.Since(start).Milliseconds()
	if err != nil {
		h.log.Error("api health: ping metadata store", "err", err)
		sv.Database.Status, sv.Database.Error = "error", "the metadata database does not answer: check that it runs and the server's --database-url"
		out.Status = http.StatusServiceUnavailable
	}

	sv.Queue.Status, sv.Workers.Status = "ok", "ok"
	qs, err := h.e.Queue().Stats(ctx)
	if err != nil {
		h.log.Error("api health: queue stats", "err", err)
		sv.Queue.Status, sv.Queue.Error = "error", "the queue cannot be read: see the server log"
		sv.Workers.Status = "unknown"
	} else {
		sv.Queue.Depth, sv.Queue.Running, sv.Queue.OldestAgeSeconds = qs.Depth, qs.Running, qs.OldestAge.Seconds()
		sv.Queue.Scheduled, sv.Queue.ExpiredLeases, sv.Queue.Failed = qs.Scheduled, qs.Expired, qs.Failed
		sv.Workers.Running = qs.Running
		if qs.OldestAge > queueStall || qs.Expired > 0 {
			sv.Queue.Status = "degraded"
		}
		switch {
		case qs.Depth > 0 && qs.OldestAge > queueStall:
			sv.Workers.Status = "degraded"
			sv.Workers.Message = fmt.Sprintf("the oldest due task has waited %s: check that a server with workers runs "+
				"(workers run in `dataguardian serve`) and its log", qs.OldestAge.Round(time.Second))
		case qs.Expired > 0:
			sv.Workers.Status = "degraded"
			sv.Workers.Message = fmt.Sprintf("%d task(s) lost their worker (lease expired); they are retried or failed automatically", qs.Expired)
		}
	}
	sv.Workers.EventSubscribers = h.e.Events().Subscribers()

	sv.Storages = []engine.StorageHealth{}
	if sts, err := h.e.LastStorageHealth(ctx); err != nil {
		h.log.Error("api health: check storages", "err", err)
		sv.Storages = append(sv.Storages, engine.StorageHealth{Name: "(storage locations)", Status: engine.HealthError,
			ErrorMessage: "the storage locations cannot be listed: see the server log", CheckedAt: time.Now().UTC()})
	} else if sts != nil {
		sv.Storages = sts
	}

	ok := sv.Database.Status == "ok" && sv.Queue.Status == "ok" && sv.Workers.Status == "ok"
	for _, s := range sv.Storages {
		ok = ok && s.Status == engine.HealthOK
	}
	if !ok {
		out.Body.Status = "degraded"
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// GET /api/health/datasources.

// DatasourceHealth is one datasource's connection status.
type DatasourceHealth struct {
	ID                  string       `json:"id"`
	Name                string       `json:"name"`
	Type                string       `json:"type"`
	Enabled             bool         `json:"enabled" doc:"Disabled datasources are not checked"`
	Status              string       `json:"status" enum:"healthy,warning,critical,unknown"`
	LastHealthCheckAt   *time.Time   `json:"last_health_check_at" nullable:"true"`
	ConsecutiveFailures int          `json:"consecutive_failures"`
	LatestCheck         *HealthCheck `json:"latest_check,omitempty" doc:"The latest health check; absent before the first"`
}

// DatasourcesHealth is the body of GET /api/health/datasources.
type DatasourcesHealth struct {
	Counts      map[string]int     `json:"counts" doc:"Datasources per status"`
	Datasources []DatasourceHealth `json:"datasources" doc:"By name"`
}

type datasourcesHealthOutput struct{ Body DatasourcesHealth }

func (h *handlers) datasourcesHealth(ctx context.Context, _ *struct{}) (*datasourcesHealthOutput, error) {
	const op = "get-datasources-health"
	dss, err := h.e.Store().ListDatasources(ctx)
	if err != nil {
		return nil, problem(h.log, op, err)
	}
	sort.Slice(dss, func(i, j int) bool { return dss[i].Name < dss[j].Name })
	latest, err := h.e.Store().LatestHealthChecks(ctx)
	if err != nil {
		return nil, problem(h.log, op, err)
	}
	out := &datasourcesHealthOutput{Body: DatasourcesHealth{Counts: map[string]int{"healthy": 0, "warning": 0, "critical": 0, "unknown": 0},
		Datasources: make([]DatasourceHealth, 0, len(dss))}}
	for i := range dss {
		ds := &dss[i]
		dh := DatasourceHealth{ID: ds.ID, Name: ds.Name, Type: ds.Type, Enabled: ds.Enabled, Status: string(ds.Status),
			LastHealthCheckAt: ds.LastHealthCheckAt, ConsecutiveFailures: ds.ConsecutiveFailures}
		if c, ok := latest[ds.ID]; ok {
			hc := healthCheckOf(c)
			dh.LatestCheck = &hc
		}
		out.Body.Counts[dh.Status]++
		out.Body.Datasources = append(out.Body.Datasources, dh)
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// GET /api/health/storage.

// StoragesHealth is the body of GET /api/health/storage.
type StoragesHealth struct {
	Status   string                 `json:"status" enum:"ok,degraded" doc:"ok when every location is reachable"`
	Storages []engine.StorageHealth `json:"storages"`
}

type storagesHealthOutput struct{ Body StoragesHealth }

type storageHealthInput struct {
	Refresh bool `query:"refresh" doc:"Check every location now (writes, reads back and deletes a probe object) instead of answering the health worker's last result"`
}

func (h *handlers) storageHealth(ctx context.Context, in *storageHealthInput) (*storagesHealthOutput, error) {
	check := h.e.LastStorageHealth
	if in.Refresh {
		check = h.e.CheckStorages
	}
	sts, err := check(ctx)
	if err != nil {
		return nil, problem(h.log, "get-storage-health", err)
	}
	out := &storagesHealthOutput{Body: StoragesHealth{Status: "ok", Storages: []engine.StorageHealth{}}}
	for _, s := range sts {
		if s.Status != engine.HealthOK {
			out.Body.Status = "degraded"
		}
		out.Body.Storages = append(out.Body.Storages, s)
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// GET /api/dashboard/overview.

// Overview is the body of GET /api/dashboard/overview.
type Overview struct {
	GeneratedAt   time.Time         `json:"generated_at"`
	Datasources   OverviewCounts    `json:"datasources" doc:"Datasources by connection status"`
	Jobs          OverviewJobs      `json:"jobs"`
	Executions24h OverviewCounts    `json:"executions_24h" doc:"Executions created in the last 24 hours, by status"`
	Storage       OverviewStorage   `json:"storage"`
	Queue         QueueHealth       `json:"queue"`
	LastBackups   []OverviewBackup  `json:"last_backups" doc:"Each job's last completed backup, by job name"`
	NextRuns      []OverviewNextRun `json:"next_runs" doc:"The next scheduled runs of enabled jobs, soonest first (at most 20)"`
}

// OverviewCounts is a total and its split by status.
type OverviewCounts struct {
	Total    int            `json:"total"`
	ByStatus map[string]int `json:"by_status"`
}

// OverviewJobs counts backup jobs.
type OverviewJobs struct {
	Total   int `json:"total"`
	Enabled int `json:"enabled"`
}

// OverviewStorage sums what backups use and what is left.
type OverviewStorage struct {
	UsedBytes int64                     `json:"used_bytes" doc:"Stored size of available backup copies, all locations"`
	FreeBytes *uint64                   `json:"free_bytes" nullable:"true" doc:"Free space summed over the locations that tell it; null when none does"`
	Locations []OverviewStorageLocation `json:"locations"`
}

// OverviewStorageLocation is one storage location on the dashboard.
type OverviewStorageLocation struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Type      string  `json:"type"`
	Status    string  `json:"status" doc:"ok or unreachable, as the health worker last checked it"`
	UsedBytes int64   `json:"used_bytes"`
	FreeBytes *uint64 `json:"free_bytes" nullable:"true"`
}

// OverviewBackup is a job's last completed backup.
type OverviewBackup struct {
	JobID               string    `json:"job_id"`
	JobName             string    `json:"job_name"`
	DatasourceID        string    `json:"datasource_id"`
	ExecutionID         string    `json:"execution_id"`
	FinishedAt          time.Time `json:"finished_at"`
	DurationMS          int64     `json:"duration_ms"`
	SizeBytes           int64     `json:"size_bytes"`
	CompressedSizeBytes int64     `json:"compressed_size_bytes"`
}

// OverviewNextRun is a job's next scheduled run.
type OverviewNextRun struct {
	JobID           string    `json:"job_id"`
	JobName         string    `json:"job_name"`
	Schedule        string    `json:"schedule"`
	NextExecutionAt time.Time `json:"next_execution_at"`
}

type overviewOutput struct{ Body Overview }

func (h *handlers) dashboard(ctx context.Context, _ *struct{}) (*overviewOutput, error) {
	const op = "get-dashboard-overview"
	st := h.e.Store()
	now := time.Now().UTC()
	ov := Overview{GeneratedAt: now, LastBackups: []OverviewBackup{}, NextRuns: []OverviewNextRun{},
		Storage: OverviewStorage{Locations: []OverviewStorageLocation{}}}

	dc, err := st.DatasourceCounts(ctx)
	if err != nil {
		return nil, problem(h.log, op, err)
	}
	ov.Datasources.ByStatus = dc
	for _, n := range dc {
		ov.Datasources.Total += n
	}

	ec, err := st.ExecutionCounts(ctx, now.Add(-24*time.Hour))
	if err != nil {
		return nil, problem(h.log, op, err)
	}
	ov.Executions24h.ByStatus = map[string]int{}
	for _, s := range []engine.ExecutionStatus{engine.ExecutionQueued, engine.ExecutionRunning,
		engine.ExecutionCompleted, engine.ExecutionFailed, engine.ExecutionCancelled} {
		ov.Executions24h.ByStatus[string(s)] = 0
	}
	for _, r := range ec {
		ov.Executions24h.ByStatus[r.Status] += r.N
		ov.Executions24h.Total += r.N
	}

	jobs, err := h.e.Store().ListBackupJobs(ctx)
	if err != nil {
		return nil, problem(h.log, op, err)
	}
	ov.Jobs.Total = len(jobs)
	for i := range jobs {
		j := &jobs[i]
		if !j.Enabled {
			continue
		}
		ov.Jobs.Enabled++
		if j.NextExecutionAt != nil {
			ov.NextRuns = append(ov.NextRuns, OverviewNextRun{JobID: j.ID, JobName: j.Name, Schedule: j.Schedule,
				NextExecutionAt: *j.NextExecutionAt})
		}
	}
	sort.Slice(ov.NextRuns, func(a, b int) bool { return ov.NextRuns[a].NextExecutionAt.Before(ov.NextRuns[b].NextExecutionAt) })
	if len(ov.NextRuns) > 20 {
		ov.NextRuns = ov.NextRuns[:20]
	}

	lbs, err := st.LastBackups(ctx)
	if err != nil {
		return nil, problem(h.log, op, err)
	}
	for _, b := range lbs {
		ov.LastBackups = append(ov.LastBackups, OverviewBackup{JobID: b.JobID, JobName: b.JobName, DatasourceID: b.DatasourceID,
			ExecutionID: b.ExecutionID, FinishedAt: b.FinishedAt.UTC(), DurationMS: b.DurationMS, SizeBytes: b.SizeBytes,
			CompressedSizeBytes: b.CompressedSizeBytes})
	}

	used, err := st.UsedBytes(ctx)
	if err != nil {
		return nil, problem(h.log, op, err)
	}
	sts, err := h.e.LastStorageHealth(ctx)
	if err != nil {
		return nil, problem(h.log, op, err)
	}
	for _, s := range sts {
		l := OverviewStorageLocation{ID: s.StorageLocationID, Name: s.Name, Type: s.Type, Status: string(s.Status),
			UsedBytes: used[s.StorageLocationID], FreeBytes: s.FreeBytes}
		ov.Storage.UsedBytes += l.UsedBytes
		if s.FreeBytes != nil {
			if ov.Storage.FreeBytes == nil {
				ov.Storage.FreeBytes = new(uint64)
			}
			*ov.Storage.FreeBytes += *s.FreeBytes
		}
		ov.Storage.Locations = append(ov.Storage.Locations, l)
	}

	qs, err := h.e.Queue().Stats(ctx)
	if err != nil {
		return nil, problem(h.log, op, err)
	}
	ov.Queue = QueueHealth{Status: "ok", Depth: qs.Depth, Running: qs.Running, OldestAgeSeconds: qs.OldestAge.Seconds(),
		Scheduled: qs.Scheduled, ExpiredLeases: qs.Expired, Failed: qs.Failed}
	if qs.OldestAge > queueStall || qs.Expired > 0 {
		ov.Queue.Status = "degraded"
	}
	return &overviewOutput{Body: ov}, nil
}
