package e2e

import (
	"bytes"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/httpapi"
	"github.com/dataguardian/dataguardian/internal/servertest"
)

// TestTokensAdminCannotMintMore: a token holding only tokens.admin cannot
// create a token with permissions it lacks, nor one outliving it; the
// admin token still can.
func TestTokensAdminCannotMintMore(t *testing.T) {
	srv := servertest.Start(t, nil)
	admin := client{t, srv, srv.Token}
	var ta httpapi.CreatedAPIToken
	admin.must(http.StatusCreated, "POST", "/api/tokens", map[string]any{"name": "token-admin", "permissions": []string{"tokens.admin"}}, &ta)
	tokAdmin := client{t, srv, ta.Secret}

	for _, perms := range [][]string{{"write"}, {"backups.download"}, httpapi.AllPermissions} {
		code, b := tokAdmin.call("POST", "/api/tokens", map[string]any{"name": "escalated", "permissions": perms})
		p := decodeProblem(t, b)
		if code != http.StatusForbidden || !strings.Contains(p.Detail, `"`+perms[len(perms)-1]+`"`) || strings.Contains(p.Detail, `"tokens.admin"`) {
			t.Errorf("tokens.admin creates %v: %d %s", perms, code, b)
		}
	}
	var toks []httpapi.APIToken
	admin.must(http.StatusOK, "GET", "/api/tokens", nil, &toks)
	if len(toks) != 2 {
		t.Errorf("%d tokens after refused creations, want 2: %+v", len(toks), toks)
	}
	tokAdmin.must(http.StatusCreated, "POST", "/api/tokens", map[string]any{"name": "another-token-admin", "permissions": []string{"tokens.admin"}}, nil)
	for _, perms := range [][]string{{"write"}, {"backups.download"}, httpapi.AllPermissions} {
		admin.must(http.StatusCreated, "POST", "/api/tokens", map[string]any{"name": "by-admin", "permissions": perms}, nil)
	}

	// An expiring token may only create tokens expiring no later.
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	var temp httpapi.CreatedAPIToken
	admin.must(http.StatusCreated, "POST", "/api/tokens", map[string]any{"name": "temp", "permissions": []string{"tokens.admin", "read"},
		"expires_at": exp}, &temp)
	tc := client{t, srv, temp.Secret}
	b := tc.must(http.StatusUnprocessableEntity, "POST", "/api/tokens", map[string]any{"name": "forever", "permissions": []string{"read"}}, nil)
	if p := decodeProblem(t, b); len(p.Errors) == 0 || p.Errors[0].Location != "body.expires_at" {
		t.Errorf("no expiry: %s", b)
	}
	tc.must(http.StatusUnprocessableEntity, "POST", "/api/tokens", map[string]any{"name": "later", "permissions": []string{"read"},
		"expires_at": exp.Add(time.Hour)}, nil)
	tc.must(http.StatusCreated, "POST", "/api/tokens", map[string]any{"name": "sooner", "permissions": []string{"read"},
		"expires_at": exp.Add(-time.Minute)}, nil)
}

// TestInvalidTokensGetOneAnswer: an expired, a revoked and an unknown token
// get the same 401 body, which names no token.
func TestInvalidTokensGetOneAnswer(t *testing.T) {
	srv := servertest.Start(t, nil)
	admin := client{t, srv, srv.Token}
	const name = "secret-token-name"
	var expiring, revoked httpapi.CreatedAPIToken
	exp := time.Now().Add(1500 * time.Millisecond)
	admin.must(http.StatusCreated, "POST", "/api/tokens", map[string]any{"name": name, "permissions": []string{"read"}, "expires_at": exp}, &expiring)
	admin.must(http.StatusCreated, "POST", "/api/tokens", map[string]any{"name": "revoked", "permissions": []string{"read"}}, &revoked)
	admin.must(http.StatusNoContent, "DELETE", "/api/tokens/"+revoked.ID, nil, nil)
	client{t, srv, expiring.Secret}.must(http.StatusOK, "GET", "/api/datasources", nil, nil)
	time.Sleep(time.Until(exp) + 100*time.Millisecond)

	code, want := client{t, srv, expiring.Secret}.call("GET", "/api/datasources", nil)
	if code != http.StatusUnauthorized || bytes.Contains(want, []byte(name)) || bytes.Contains(want, []byte(expiring.ID)) {
		t.Fatalf("expired token: %d %s", code, want)
	}
	for what, tok := range map[string]string{"revoked": revoked.Secret, "unknown": "dgt_" + strings.Repeat("x", 43)} {
		if code, b := (client{t, srv, tok}).call("GET", "/api/datasources", nil); code != http.StatusUnauthorized || !bytes.Equal(b, want) {
			t.Errorf("%s token: %d %s, want the expired token's %s", what, code, b, want)
		}
	}
}

// TestFailedAuthRateLimit: after many bad tokens from one address, every
// /api request from it answers 429 with Retry-After, even with a valid
// token; /health and /metrics stay open.
func TestFailedAuthRateLimit(t *testing.T) {
	srv := servertest.Start(t, nil)
	var last servertest.Response
	for i := range 25 {
		last = srv.Send(t, "GET", "/api/datasources", "dgt_guess"+strconv.Itoa(i)+strings.Repeat("x", 40), nil)
		if i < httpapi.DefaultAuthFailureLimit && last.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %s", i+1, last.Code, last.Body)
		}
	}
	for _, r := range []servertest.Response{last, srv.Send(t, "GET", "/api/datasources", srv.Token, nil), srv.Send(t, "GET", "/api/events", "", nil)} {
		secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if r.Code != http.StatusTooManyRequests || err != nil || secs < 1 || secs > 60 ||
			r.Header.Get("Content-Type") != "application/problem+json" || decodeProblem(t, r.Body).Status != 429 {
			t.Errorf("blocked: %d %v %s", r.Code, r.Header, r.Body)
		}
	}
	for _, p := range []string{"/health", "/metrics"} {
		if r := srv.Send(t, "GET", p, "", nil); r.Code != http.StatusOK {
			t.Errorf("%s while blocked: %d %s", p, r.Code, r.Body)
		}
	}
}

// TestNULAndInvalidUTF8Refused: a NUL character or invalid UTF-8 in a body,
// a path parameter or a query value answers 422 naming the field, never 500.
func TestNULAndInvalidUTF8Refused(t *testing.T) {
	srv := servertest.Start(t, nil)
	c := client{t, srv, srv.Token}
	app := sqliteApp(t, 1)

	b := c.must(http.StatusUnprocessableEntity, "POST", "/api/datasources", map[string]any{"name": "a\u0000b", "type": "sqlite", "path": app}, nil)
	if p := decodeProblem(t, b); len(p.Errors) == 0 || p.Errors[0].Location != "body.name" {
		t.Errorf("NUL in name: %s", b)
	}
	body := []byte("{\"name\":\"caf\xe9\",\"type\":\"sqlite\",\"path\":" + strconv.Quote(app) + "}")
	if r := srv.Send(t, "POST", "/api/datasources", srv.Token, body); r.Code != http.StatusUnprocessableEntity {
		t.Errorf("invalid UTF-8 in the body: %d %s", r.Code, r.Body)
	}
	for _, path := range []string{"/api/datasources/%00", "/api/datasources/%ff", "/api/backup-jobs/%00/executions",
		"/api/datasources?type=%00", "/api/executions/%00/download"} {
		if r := srv.Send(t, "GET", path, srv.Token, nil); r.Code != http.StatusUnprocessableEntity && r.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d %s", path, r.Code, r.Body)
		}
	}
	var dss []httpapi.Datasource
	c.must(http.StatusOK, "GET", "/api/datasources", nil, &dss)
	if len(dss) != 0 {
		t.Errorf("stored: %+v", dss)
	}
}

// backupJobNamed creates a datasource and a job named name on srv, runs a
// backup to completion and returns the job.
func backupJobNamed(t *testing.T, c client, name string) httpapi.BackupJob {
	t.Helper()
	var ds httpapi.Datasource
	c.must(http.StatusCreated, "POST", "/api/datasources", map[string]any{"name": "app", "type": "sqlite", "path": sqliteApp(t, 10)}, &ds)
	var locs []httpapi.StorageLocation
	c.must(http.StatusOK, "GET", "/api/storage-locations", nil, &locs)
	var job httpapi.BackupJob
	c.must(http.StatusCreated, "POST", "/api/backup-jobs", map[string]any{"name": name, "datasource_id": ds.ID,
		"storage_location_ids": []string{locs[0].ID}}, &job)
	var run httpapi.Execution
	c.must(http.StatusAccepted, "POST", "/api/backup-jobs/"+job.ID+"/run", nil, &run)
	if x := c.waitExecution(run.ID); x.Status != "completed" {
		t.Fatalf("backup: %+v", x)
	}
	return job
}

// TestPublicMetricsNameNoJob: the public /metrics labels jobs by ID only.
func TestPublicMetricsNameNoJob(t *testing.T) {
	srv := servertest.Start(t, nil)
	c := client{t, srv, srv.Token}
	job := backupJobNamed(t, c, "secret-job-name")
	b := client{t, srv, ""}.must(http.StatusOK, "GET", "/metrics", nil, nil)
	if bytes.Contains(b, []byte("secret-job-name")) {
		t.Errorf("public metrics name the job")
	}
	if !bytes.Contains(b, []byte(`dataguardian_backup_last_success_timestamp_seconds{job_id="`+job.ID+`"}`)) {
		t.Errorf("public metrics lack the job's ID:\n%s", b)
	}
}

// TestMetricsTokenAuth: with --metrics-auth token, /metrics needs a token
// holding "metrics" and then names jobs; a bad value is refused.
func TestMetricsTokenAuth(t *testing.T) {
	srv := servertest.Start(t, &servertest.Options{Args: []string{"--metrics-auth", "token"}})
	c := client{t, srv, srv.Token}
	job := backupJobNamed(t, c, "secret-job-name")
	var reader, scraper httpapi.CreatedAPIToken
	c.must(http.StatusCreated, "POST", "/api/tokens", map[string]any{"name": "reader", "permissions": []string{"read"}}, &reader)
	c.must(http.StatusCreated, "POST", "/api/tokens", map[string]any{"name": "prometheus", "permissions": []string{httpapi.PermMetrics}}, &scraper)

	if r := srv.Send(t, "GET", "/metrics", "", nil); r.Code != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d %s", r.Code, r.Body)
	}
	if b := (client{t, srv, reader.Secret}).must(http.StatusForbidden, "GET", "/metrics", nil, nil); !strings.Contains(decodeProblem(t, b).Detail, `"metrics"`) {
		t.Errorf("read token: %s", b)
	}
	b := client{t, srv, scraper.Secret}.must(http.StatusOK, "GET", "/metrics", nil, nil)
	if !bytes.Contains(b, []byte(`dataguardian_backup_last_success_timestamp_seconds{job="secret-job-name",job_id="`+job.ID+`"}`)) {
		t.Errorf("metrics token: no named job:\n%s", b)
	}
	client{t, srv, ""}.must(http.StatusOK, "GET", "/health", nil, nil)

	cmd := exec.Command(servertest.Binary(t), "serve", "--metrics-auth", "bogus", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0")
	cmd.Env = []string{"DG_METRICS_AUTH=token"}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--metrics-auth or DG_METRICS_AUTH \"bogus\": use none or token") {
		t.Errorf("bad --metrics-auth: %v\n%s", err, out)
	}
}
