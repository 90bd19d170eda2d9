package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian"

	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/dataguardian/dataguardian/engine"
)

type obsEnv struct {
	e   *engine.Engine
	ds  *engine.Datasource
	loc *engine.StorageLocation
	job *engine.BackupJob
	srv *httptest.Server
}

// newObsEnv returns an engine with a SQLite datasource, a local storage
// location and a backup job, served over real HTTP the way New will once
// it calls MountObservability.
func newObsEnv(t *testing.T) *obsEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	app := filepath.Join(dir, "app.db")
	db, err := sql.Open("sqlite", app)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t (x); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := dataguardian.New(ctx, engine.Config{DataDir: filepath.Join(dir, "meta"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	env := &obsEnv{e: e}
	env.ds = &engine.Datasource{Name: "app", Type: "sqlite", Path: app, Enabled: true}
	if err := e.CreateDatasource(ctx, env.ds, ""); err != nil {
		t.Fatal(err)
	}
	env.loc = &engine.StorageLocation{Name: "disk", Type: "local", Enabled: true,
		Config: map[string]string{"path": filepath.Join(dir, "backups")}}
	if err := e.CreateStorageLocation(ctx, env.loc); err != nil {
		t.Fatal(err)
	}
	env.job = &engine.BackupJob{Name: "nightly", DatasourceID: env.ds.ID, Schedule: "0 3 * * *",
		StorageLocationIDs: []string{env.loc.ID}, Enabled: true}
	if err := e.CreateBackupJob(ctx, env.job); err != nil {
		t.Fatal(err)
	}

	opts := &Options{Logger: log}
	mux := http.NewServeMux()
	api := humago.New(mux, Config(opts))
	Register(api, e, opts)
	MountObservability(mux, e, opts)
	mux.Handle("GET /openapi.json", OpenAPIHandler(api))
	env.srv = httptest.NewServer(mux)
	t.Cleanup(env.srv.Close)
	return env
}

func (env *obsEnv) get(t *testing.T, path string) []byte {
	t.Helper()
	resp, err := http.Get(env.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

func obsDecode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func TestAPIHealth(t *testing.T) {
	env := newObsEnv(t)
	b := env.get(t, "/api/health")
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	sv, _ := raw["services"].(map[string]any)
	for _, k := range []string{"database", "queue", "storages", "workers"} {
		if _, ok := sv[k]; !ok {
			t.Errorf("services.%s missing: %s", k, b)
		}
	}
	q, _ := sv["queue"].(map[string]any)
	for _, k := range []string{"depth", "running", "oldest_age_seconds"} {
		if _, ok := q[k]; !ok {
			t.Errorf("services.queue.%s missing: %s", k, b)
		}
	}
	h := obsDecode[APIHealth](t, b)
	if h.Status != "ok" || h.Services.Database.Status != "ok" || h.Services.Database.Dialect != "sqlite" ||
		h.Services.Queue.Status != "ok" || h.Services.Workers.Status != "ok" {
		t.Errorf("health %s", b)
	}
	if len(h.Services.Storages) != 1 || h.Services.Storages[0].Status != engine.HealthOK || h.Services.Storages[0].Name != "disk" {
		t.Errorf("storages %+v", h.Services.Storages)
	}
}

func TestDatasourcesHealth(t *testing.T) {
	env := newObsEnv(t)
	before := obsDecode[DatasourcesHealth](t, env.get(t, "/api/health/datasources"))
	if len(before.Datasources) != 1 || before.Datasources[0].Status != "unknown" || before.Datasources[0].LatestCheck != nil ||
		before.Counts["unknown"] != 1 {
		t.Fatalf("before a check: %+v", before)
	}
	for range 2 {
		resp, err := http.Post(env.srv.URL+"/api/datasources/"+env.ds.ID+"/health-check", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("health-check: %d", resp.StatusCode)
		}
	}
	newest, err := env.e.Store().ListHealthChecks(context.Background(), env.ds.ID, 1, 0)
	if err != nil || len(newest) != 1 {
		t.Fatal(newest, err)
	}
	after := obsDecode[DatasourcesHealth](t, env.get(t, "/api/health/datasources"))
	d := after.Datasources[0]
	if d.Status != "healthy" || d.LastHealthCheckAt == nil || d.LatestCheck == nil || d.LatestCheck.Status != "ok" ||
		d.LatestCheck.ID != newest[0].ID || d.LatestCheck.LatencyMS == nil ||
		after.Counts["healthy"] != 1 || after.Counts["unknown"] != 0 {
		t.Errorf("after a check: %+v (latest %+v)", after, d.LatestCheck)
	}
}

func TestStorageHealth(t *testing.T) {
	env := newObsEnv(t)
	sh := obsDecode[StoragesHealth](t, env.get(t, "/api/health/storage"))
	if sh.Status != "ok" || len(sh.Storages) != 1 {
		t.Fatalf("%+v", sh)
	}
	s := sh.Storages[0]
	if s.StorageLocationID != env.loc.ID || s.Status != engine.HealthOK || s.Type != "local" || s.CheckedAt.IsZero() {
		t.Errorf("%+v", s)
	}
}

func TestDashboardOverview(t *testing.T) {
	env := newObsEnv(t)
	ctx := context.Background()
	x, err := env.e.RunBackup(ctx, env.job.ID)
	if err != nil {
		t.Fatal(err)
	}
	ov := obsDecode[Overview](t, env.get(t, "/api/dashboard/overview"))
	if ov.Datasources.Total != 1 || ov.Datasources.ByStatus["unknown"] != 1 {
		t.Errorf("datasources %+v", ov.Datasources)
	}
	if ov.Jobs.Total != 1 || ov.Jobs.Enabled != 1 {
		t.Errorf("jobs %+v", ov.Jobs)
	}
	if ov.Executions24h.Total != 1 || ov.Executions24h.ByStatus["completed"] != 1 || ov.Executions24h.ByStatus["failed"] != 0 {
		t.Errorf("executions %+v", ov.Executions24h)
	}
	if len(ov.LastBackups) != 1 || ov.LastBackups[0].ExecutionID != x.ID || ov.LastBackups[0].JobName != "nightly" ||
		ov.LastBackups[0].CompressedSizeBytes != x.CompressedSizeBytes || time.Since(ov.LastBackups[0].FinishedAt) > time.Minute {
		t.Errorf("last backups %+v (execution %+v)", ov.LastBackups, x)
	}
	if x.CompressedSizeBytes <= 0 || ov.Storage.UsedBytes != x.CompressedSizeBytes || len(ov.Storage.Locations) != 1 ||
		ov.Storage.Locations[0].UsedBytes != x.CompressedSizeBytes {
		t.Errorf("storage %+v, backup %d bytes", ov.Storage, x.CompressedSizeBytes)
	}
	if ov.Storage.FreeBytes != nil && *ov.Storage.FreeBytes == 0 {
		t.Errorf("free bytes 0")
	}
	if ov.Queue.Depth != 0 || ov.Queue.Status != "ok" {
		t.Errorf("queue %+v", ov.Queue)
	}
	t.Logf("next runs %+v, free %v", ov.NextRuns, ov.Storage.FreeBytes)
}

// sseMsg is one server-sent message; comment holds a comment line's text.
type sseMsg struct {
	event, comment string
	data           []byte
}

func readSSE(r *bufio.Reader) (sseMsg, error) {
	var m sseMsg
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return m, err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if m.event != "" || m.data != nil || m.comment != "" {
				return m, nil
			}
		case strings.HasPrefix(line, ":"):
			m.comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "event: "):
			m.event = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			m.data = []byte(line[len("data: "):])
		}
	}
}

// connectSSE opens /api/events and returns once the subscription is live.
func connectSSE(ctx context.Context, t *testing.T, url string, c *http.Client) (*bufio.Reader, func()) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/events", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return nil, nil
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Errorf("events: %d %q", resp.StatusCode, ct)
	}
	r := bufio.NewReader(resp.Body)
	m, err := readSSE(r)
	if err != nil || m.comment != "connected" {
		t.Errorf("first message %+v %v", m, err)
	}
	return r, func() { resp.Body.Close() }
}

// waitCompleted reads r until the completed event of a backup of job.
func waitCompleted(r *bufio.Reader, jobID string) ([]engine.Event, error) {
	var seen []engine.Event
	for {
		m, err := readSSE(r)
		if err != nil {
			return seen, err
		}
		if m.event != engine.EventExecutionStatus {
			continue
		}
		var ev engine.Event
		if err := json.Unmarshal(m.data, &ev); err != nil {
			return seen, err
		}
		if ev.Data["job_id"] != jobID {
			continue
		}
		seen = append(seen, ev)
		if ev.Status == string(engine.ExecutionCompleted) {
			return seen, nil
		}
	}
}

func TestEventsStream(t *testing.T) {
	env := newObsEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, closeBody := connectSSE(ctx, t, env.srv.URL, http.DefaultClient)
	if r == nil {
		return
	}
	defer closeBody()
	if n := env.e.Events().Subscribers(); n != 1 {
		t.Errorf("subscribers %d", n)
	}
	x, err := env.e.RunBackup(context.Background(), env.job.ID)
	if err != nil {
		t.Fatal(err)
	}
	seen, err := waitCompleted(r, env.job.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range seen {
		if ev.EntityID != x.ID {
			t.Errorf("event of another execution: %+v", ev)
		}
		got = append(got, ev.Status)
	}
	if strings.Join(got, ",") != "queued,running,completed" {
		t.Errorf("statuses %v", got)
	}

	cancel() // the client leaves
	deadline := time.Now().Add(5 * time.Second)
	for env.e.Events().Subscribers() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("subscriber not freed: %d", env.e.Events().Subscribers())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEventsHeartbeat(t *testing.T) {
	old := sseHeartbeat
	sseHeartbeat = 20 * time.Millisecond
	defer func() { sseHeartbeat = old }()
	env := newObsEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, closeBody := connectSSE(ctx, t, env.srv.URL, http.DefaultClient)
	if r == nil {
		return
	}
	defer closeBody()
	m, err := readSSE(r)
	if err != nil || m.comment != "keep-alive" {
		t.Errorf("heartbeat %+v %v", m, err)
	}
}

// heapInUse is the heap and goroutine stacks in use after a GC.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// TestEvents100Clients connects 100 SSE clients, runs a backup, and checks
// they all receive its completed event. It logs the heap the connected
// clients cost (server and client sides of this process: an upper bound).
func TestEvents100Clients(t *testing.T) {
	const clients = 100
	env := newObsEnv(t)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	base := heapInUse()
	goroutines := runtime.NumGoroutine()
	readers := make([]*bufio.Reader, clients)
	var closers []func()
	for i := range readers {
		r, cl := connectSSE(ctx, t, env.srv.URL, c)
		if r == nil {
			t.FailNow()
		}
		readers[i] = r
		closers = append(closers, cl)
	}
	connected := heapInUse()
	if n := env.e.Events().Subscribers(); n != clients {
		t.Fatalf("subscribers %d", n)
	}
	t.Logf("%d SSE clients: heap+stacks in use +%.2f MiB (%.1f KiB per client, both ends), goroutines +%d",
		clients, float64(connected-base)/(1<<20), float64(connected-base)/1024/clients, runtime.NumGoroutine()-goroutines)
	if delta := int64(connected) - int64(base); delta > 50<<20 {
		t.Errorf("100 SSE clients cost %d bytes of heap, want < 50 MiB", delta)
	}

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen, err := waitCompleted(r, env.job.ID)
			if err != nil {
				errs <- fmt.Errorf("client %d: %w (saw %d events)", i, err, len(seen))
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	if _, err := env.e.RunBackup(context.Background(), env.job.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("not every client received the completed event")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, cl := range closers {
		cl()
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for env.e.Events().Subscribers() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("subscribers left: %d", env.e.Events().Subscribers())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metricValue returns the value of the sample whose line starts with
// prefix (name and labels as written).
func metricValue(t *testing.T, text, prefix string) float64 {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(l[len(prefix):]), 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return v
		}
	}
	t.Errorf("no sample %s in:\n%s", prefix, text)
	return -1
}

func TestMetrics(t *testing.T) {
	env := newObsEnv(t)
	ctx := context.Background()
	if _, err := env.e.CheckDatasource(ctx, env.ds.ID); err != nil {
		t.Fatal(err)
	}
	x, err := env.e.RunBackup(ctx, env.job.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(env.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	text := string(b)
	lintMetrics(t, b)
	job := fmt.Sprintf(`{job_id="%s"}`, env.job.ID) // public: IDs, never names
	if strings.Contains(text, env.job.Name) {
		t.Errorf("public metrics name the job %q", env.job.Name)
	}
	for prefix, want := range map[string]float64{
		`dataguardian_datasources{status="healthy"}`:                                  1,
		`dataguardian_datasources{status="critical"}`:                                 0,
		`dataguardian_executions{operation="backup",status="completed"}`:              1,
		`dataguardian_executions_stored_bytes{operation="backup",status="completed"}`: float64(x.CompressedSizeBytes),
		`dataguardian_queue_depth`:                                                    0,
		`dataguardian_queue_running`:                                                  0,
		`dataguardian_queue_oldest_age_seconds`:                                       0,
		`dataguardian_backup_jobs{enabled="true"}`:                                    1,
		`dataguardian_events_subscribers`:                                             0,
		`dataguardian_backup_last_success_size_bytes` + job:                           float64(x.CompressedSizeBytes),
		`dataguardian_backup_last_success_duration_seconds` + job:                     float64(x.DurationMS) / 1000,
	} {
		if got := metricValue(t, text, prefix); got != want {
			t.Errorf("%s = %v, want %v", prefix, got, want)
		}
	}
	last := metricValue(t, text, "dataguardian_backup_last_success_timestamp_seconds"+job)
	if d := time.Since(time.UnixMilli(int64(last * 1000))); d < 0 || d > time.Minute {
		t.Errorf("last success %v ago", d)
	}
	if strings.Contains(text, "dataguardian_scrape_errors") {
		t.Errorf("scrape errors:\n%s", text)
	}
	if !strings.Contains(text, "go_goroutines") || !strings.Contains(text, "# TYPE dataguardian_events_dropped_total counter") {
		t.Errorf("runtime or counter metrics missing")
	}
}

// lintMetrics fails t on what `promtool check metrics` reports.
func lintMetrics(t *testing.T, text []byte) {
	t.Helper()
	problems, err := promlint.New(bytes.NewReader(text)).Lint()
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestMetricsToken: with MetricsToken, GET /metrics needs a token holding
// PermMetrics (401 without one, 403 without the permission, refused
// guesses count towards the failed-authentication limit), and its job
// labels carry names; the OpenAPI document says so.
func TestMetricsToken(t *testing.T) {
	env := newObsEnv(t)
	ctx := context.Background()
	if _, err := env.e.RunBackup(ctx, env.job.ID); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(New(env.e, &Options{Logger: log, Auth: TokenAuth(env.e), Metrics: MetricsToken, AuthFailureLimit: 3}))
	defer srv.Close()
	token := func(perms ...string) string {
		s, _, err := env.e.Store().CreateAPIToken(ctx, "t", perms, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	scrape := func(tok string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	metrics, reader := token(PermMetrics), token(PermRead)
	if code, b := scrape(""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d %s", code, b)
	}
	if code, b := scrape(reader); code != http.StatusForbidden || !strings.Contains(b, PermMetrics) {
		t.Errorf("read token: %d %s", code, b)
	}
	code, text := scrape(metrics)
	if code != http.StatusOK {
		t.Fatalf("metrics token: %d %s", code, text)
	}
	lintMetrics(t, []byte(text))
	job := fmt.Sprintf(`{job="nightly",job_id="%s"}`, env.job.ID)
	metricValue(t, text, "dataguardian_backup_last_success_timestamp_seconds"+job)
	for range 2 {
		scrape("guess")
	}
	if code, _ := scrape(metrics); code != http.StatusTooManyRequests {
		t.Errorf("after 3 failures: %d, want 429", code)
	}

	var doc struct {
		Info  struct{ Description string } `json:"info"`
		Paths map[string]map[string]struct {
			Summary     string                `json:"summary"`
			Security    []map[string][]string `json:"security"`
			Permissions []string              `json:"x-permissions"`
		} `json:"paths"`
	}
	code, b := scrapePath(t, srv.URL+"/openapi.json")
	if err := json.Unmarshal(b, &doc); code != http.StatusOK || err != nil {
		t.Fatalf("openapi: %d %v", code, err)
	}
	op := doc.Paths["/metrics"]["get"]
	if len(op.Security) != 1 || op.Security[0]["bearer"] == nil || !slices.Equal(op.Permissions, []string{PermMetrics}) ||
		strings.Contains(op.Summary, "public") || !strings.Contains(doc.Info.Description, "/metrics needs a token") {
		t.Errorf("/metrics in the OpenAPI document: %+v; %q", op, doc.Info.Description)
	}
}

func scrapePath(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestObservabilityOpenAPI(t *testing.T) {
	env := newObsEnv(t)
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string                     `json:"operationId"`
			Responses   map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(env.get(t, "/openapi.json"), &doc); err != nil {
		t.Fatal(err)
	}
	for path, id := range map[string]string{"/api/health": "get-api-health", "/api/health/datasources": "get-datasources-health",
		"/api/health/storage": "get-storage-health", "/api/dashboard/overview": "get-dashboard-overview",
		"/api/events": "stream-events", "/metrics": "get-metrics"} {
		op := doc.Paths[path]["get"]
		if op.OperationID != id || len(op.Responses) == 0 {
			t.Errorf("%s: %+v", path, op)
		}
	}
	if !strings.Contains(string(doc.Paths["/api/events"]["get"].Responses["200"]), "text/event-stream") {
		t.Errorf("events response: %s", doc.Paths["/api/events"]["get"].Responses["200"])
	}
}

// TestEventsSlowClient: a client that reads nothing never holds up
// Publish; it misses events instead, and leaving frees its subscription.
func TestEventsSlowClient(t *testing.T) {
	env := newObsEnv(t)
	conn, err := net.Dial("tcp", env.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
	deadline := time.Now().Add(5 * time.Second)
	for env.e.Events().Subscribers() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("not subscribed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	big := strings.Repeat("x", 4096)
	start := time.Now()
	for i := range 5000 { // 20 MB: more than the socket buffers hold
		env.e.Events().Publish(engine.Event{Type: engine.EventExecutionStatus, EntityID: strconv.Itoa(i), Status: "running",
			Data: map[string]any{"pad": big}})
	}
	took := time.Since(start)
	t.Logf("5000 events published in %v to a client that reads nothing; %d dropped", took, env.e.Events().Dropped())
	if took > 2*time.Second {
		t.Errorf("publishing took %v: a slow client held up the bus", took)
	}
	if env.e.Events().Dropped() == 0 {
		t.Errorf("no event dropped for a client that reads nothing")
	}
	conn.Close()
	deadline = time.Now().Add(5 * time.Second)
	for env.e.Events().Subscribers() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("subscriber not freed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEventsDatasourceStatus: a health check that changes a datasource's
// status reaches SSE clients.
func TestEventsDatasourceStatus(t *testing.T) {
	env := newObsEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, closeBody := connectSSE(ctx, t, env.srv.URL, http.DefaultClient)
	if r == nil {
		return
	}
	defer closeBody()
	if _, err := env.e.CheckDatasource(context.Background(), env.ds.ID); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := readSSE(r)
		if err != nil {
			t.Fatal(err)
		}
		if m.event != engine.EventDatasourceStatus {
			continue
		}
		ev := obsDecode[engine.Event](t, m.data)
		if ev.EntityID != env.ds.ID || ev.Status != "healthy" {
			t.Errorf("event %+v", ev)
		}
		return
	}
}
