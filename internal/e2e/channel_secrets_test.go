package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/httpapi"
	"github.com/dataguardian/dataguardian/internal/servertest"
	"github.com/dataguardian/dataguardian/notify"
)

// hookRecorder is a webhook receiver on loopback that records the API key
// header and whether the body was signed with the given secrets.
type hookRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string // "X-Api-Key value|signed with secret N (-1 for none)"
}

func newHookRecorder(t *testing.T, secrets ...string) *hookRecorder {
	h := &hookRecorder{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		signedWith := "-"
		for _, s := range secrets {
			if notify.VerifySignature(s, body, r.Header.Get(notify.SignatureHeader)) {
				signedWith = s
			}
		}
		h.mu.Lock()
		h.seen = append(h.seen, r.Header.Get("X-Api-Key")+"|"+signedWith)
		h.mu.Unlock()
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookRecorder) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen...)
}

// waitFor polls until h received want, or fails after 15 s.
func (h *hookRecorder) waitFor(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		for _, r := range h.requests() {
			if r == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s received %q, want %q", h.URL, h.requests(), want)
		}
	}
}

// TestChannelSecretsDoNotFollowANewURL: pointing the webhook elsewhere
// while sending its secret and headers back redacted is refused with 422
// naming the fields, and the new address never sees the stored key or a
// body signed with the stored secret; sent again, new secrets go there.
func TestChannelSecretsDoNotFollowANewURL(t *testing.T) {
	const (
		secret    = "stored-secret-0123456789abcdef"
		newSecret = "new-secret-0123456789abcdef-xyz"
	)
	srv := servertest.Start(t, nil)
	c := client{t, srv, srv.Token}
	good := newHookRecorder(t, secret, newSecret)
	evil := newHookRecorder(t, secret, newSecret)
	settings := func(url, secret, key string) map[string]any {
		return map[string]any{"webhook": map[string]any{"enabled": true, "url": url, "secret": secret,
			"headers": map[string]string{"X-Api-Key": key}}}
	}
	const path = "/api/system/settings/notifications"
	c.must(http.StatusOK, "PUT", path, settings(good.URL+"/hook", secret, "k-123"), nil)

	// Redacted secrets with a new URL: refused, naming both fields.
	code, b := c.call("PUT", path, settings(evil.URL+"/hook", "********", "********"))
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("PUT with a new url and redacted secrets: %d %s, want 422", code, b)
	}
	locs := map[string]string{}
	for _, e := range decodeProblem(t, b).Errors {
		locs[e.Location] = e.Message
	}
	for _, field := range []string{"body.webhook.secret", "body.webhook.headers"} {
		if !strings.Contains(locs[field], "the url changed, so the stored secret is not sent to the new address: send it again") {
			t.Errorf("no error at %s in %s", field, b)
		}
	}
	if strings.Contains(string(b), "k-123") || strings.Contains(string(b), secret) {
		t.Errorf("the answer shows a secret: %s", b)
	}
	// Only the header redacted: still refused for the header.
	code, b = c.call("PUT", path, settings(evil.URL+"/hook", newSecret, "********"))
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(b), "body.webhook.headers") || strings.Contains(string(b), "body.webhook.secret") {
		t.Fatalf("PUT with a new url and the header redacted: %d %s, want 422 at body.webhook.headers", code, b)
	}
	var got notify.ChannelSettings
	c.must(http.StatusOK, "GET", path, nil, &got)
	if got.Webhook == nil || got.Webhook.URL != good.URL+"/hook" {
		t.Fatalf("settings after the refused PUTs: %+v", got.Webhook)
	}

	// A backup notifies the configured receiver, with the stored key.
	app := sqliteApp(t, 10)
	var ds httpapi.Datasource
	c.must(http.StatusCreated, "POST", "/api/datasources", map[string]any{"name": "app", "type": "sqlite", "path": app}, &ds)
	var locations []httpapi.StorageLocation
	c.must(http.StatusOK, "GET", "/api/storage-locations", nil, &locations)
	var job httpapi.BackupJob
	c.must(http.StatusCreated, "POST", "/api/backup-jobs", map[string]any{"name": "nightly", "datasource_id": ds.ID,
		"storage_location_ids": []string{locations[0].ID}}, &job)
	runBackup := func() {
		var run httpapi.Execution
		c.must(http.StatusAccepted, "POST", "/api/backup-jobs/"+job.ID+"/run", nil, &run)
		if x := c.waitExecution(run.ID); x.Status != "completed" {
			t.Fatalf("backup: %+v", x)
		}
	}
	runBackup()
	good.waitFor(t, "k-123|"+secret)
	if r := evil.requests(); len(r) != 0 {
		t.Fatalf("the new address received %q", r)
	}

	// Secrets sent again: the new address gets those, never the stored ones.
	c.must(http.StatusOK, "PUT", path, settings(evil.URL+"/hook", newSecret, "k-456"), nil)
	runBackup()
	evil.waitFor(t, "k-456|"+newSecret)
	for _, r := range evil.requests() {
		if strings.Contains(r, "k-123") || strings.HasSuffix(r, "|"+secret) {
			t.Errorf("the new address received the stored secret: %q", r)
		}
	}
}
