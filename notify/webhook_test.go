package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testSecret = "0123456789abcdef-secret"

type hookRequest struct {
	Header http.Header
	Body   []byte
}

// hookServer answers with statuses[i] on the i-th request (then 204).
func hookServer(t *testing.T, respond func(i int, w http.ResponseWriter)) (*httptest.Server, func() []hookRequest) {
	t.Helper()
	var mu sync.Mutex
	var reqs []hookRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, hookRequest{r.Header.Clone(), b})
		i := len(reqs) - 1
		mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/hook/tok3n" {
			http.Error(w, "wrong method or path", http.StatusMethodNotAllowed)
			return
		}
		respond(i, w)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []hookRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]hookRequest(nil), reqs...)
	}
}

func noWait(int) time.Duration { return time.Millisecond }

func TestWebhookSignedPayload(t *testing.T) {
	srv, reqs := hookServer(t, func(int, http.ResponseWriter) {})
	w := &Webhook{URL: srv.URL + "/hook/tok3n", Secret: testSecret, Headers: map[string]string{"Authorization": "Bearer xyz"}}
	n := backupCompleted()
	if err := w.Notify(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	got := reqs()
	if len(got) != 1 {
		t.Fatalf("%d requests", len(got))
	}
	r := got[0]
	if !VerifySignature(testSecret, r.Body, r.Header.Get(SignatureHeader)) {
		t.Fatalf("signature %q does not verify", r.Header.Get(SignatureHeader))
	}
	if VerifySignature("other-secret", r.Body, r.Header.Get(SignatureHeader)) || VerifySignature(testSecret, append(r.Body, ' '), r.Header.Get(SignatureHeader)) {
		t.Fatal("signature verifies with the wrong secret or body")
	}
	if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Authorization") != "Bearer xyz" || r.Header.Get(EventHeader) != BackupCompleted {
		t.Errorf("headers = %v", r.Header)
	}
	var p WebhookPayload
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.Event.ID, "evt_") || r.Header.Get(DeliveryHeader) != p.Event.ID {
		t.Errorf("event id %q, header %q", p.Event.ID, r.Header.Get(DeliveryHeader))
	}
	if ts := r.Header.Get(TimestampHeader); ts != strconv.FormatInt(p.Event.Timestamp.Unix(), 10) || time.Since(p.Event.Timestamp) > time.Minute {
		t.Errorf("timestamp header %q, body %v", ts, p.Event.Timestamp)
	}
	if p.Type != BackupCompleted || p.Title != n.Title || p.EntityID != "e-1" || p.Data["job_name"] != "Produção diária" {
		t.Errorf("payload = %+v", p)
	}
	if p.Subject != "[DataGuardian] Backup concluído: Produção diária" || !strings.HasPrefix(p.Text, "Backup concluído: ") {
		t.Errorf("subject %q text %q", p.Subject, p.Text)
	}
	if strings.Contains(string(r.Body), testSecret) {
		t.Error("body carries the secret")
	}
}

func TestWebhookRetriesThenSucceeds(t *testing.T) {
	srv, reqs := hookServer(t, func(i int, w http.ResponseWriter) {
		switch i {
		case 0:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 1:
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	var waits []int
	w := &Webhook{URL: srv.URL + "/hook/tok3n", Secret: testSecret, Backoff: func(a int) time.Duration { waits = append(waits, a); return time.Millisecond }}
	if err := w.Notify(context.Background(), backupCompleted()); err != nil {
		t.Fatal(err)
	}
	got := reqs()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	if string(got[0].Body) != string(got[2].Body) || got[0].Header.Get(DeliveryHeader) != got[2].Header.Get(DeliveryHeader) {
		t.Error("a retry changed the body or the delivery id")
	}
	if len(waits) != 2 || waits[0] != 1 || waits[1] != 2 {
		t.Errorf("backoff called with %v, want [1 2]", waits)
	}
}

func TestWebhookGivesUpAfterMaxAttempts(t *testing.T) {
	srv, reqs := hookServer(t, func(_ int, w http.ResponseWriter) {
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
	})
	w := &Webhook{URL: srv.URL + "/hook/tok3n", Secret: testSecret, Backoff: noWait}
	err := w.Notify(context.Background(), backupCompleted())
	if !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), "500 Internal Server Error") || !strings.Contains(err.Error(), "down for maintenance") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "tok3n") {
		t.Errorf("error shows the URL's path: %v", err)
	}
	if n := len(reqs()); n != 4 {
		t.Fatalf("%d requests, want the default 4", n)
	}
}

func TestWebhookNoRetryOn400(t *testing.T) {
	srv, reqs := hookServer(t, func(_ int, w http.ResponseWriter) { http.Error(w, "bad payload", http.StatusBadRequest) })
	w := &Webhook{URL: srv.URL + "/hook/tok3n", Secret: testSecret, Backoff: noWait}
	err := w.Notify(context.Background(), backupCompleted())
	if !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), "400 Bad Request") {
		t.Fatalf("err = %v", err)
	}
	if n := len(reqs()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestWebhookRetryAfter(t *testing.T) {
	srv, reqs := hookServer(t, func(i int, w http.ResponseWriter) {
		if i == 0 {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	var backoffCalled atomic.Bool
	w := &Webhook{
		URL: srv.URL + "/hook/tok3n", Secret: testSecret,
		Backoff:       func(int) time.Duration { backoffCalled.Store(true); return time.Hour },
		MaxRetryAfter: 50 * time.Millisecond,
	}
	start := time.Now()
	if err := w.Notify(context.Background(), backupCompleted()); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	if d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("took %v, want the capped Retry-After (50ms)", d)
	}
	if backoffCalled.Load() {
		t.Error("Backoff used although Retry-After was given")
	}
	if n := len(reqs()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

func TestWebhookContextCancelStopsRetries(t *testing.T) {
	srv, reqs := hookServer(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) })
	ctx, cancel := context.WithCancel(context.Background())
	w := &Webhook{URL: srv.URL + "/hook/tok3n", Secret: testSecret, MaxAttempts: 10,
		Backoff: func(int) time.Duration { cancel(); return time.Hour }}
	start := time.Now()
	err := w.Notify(ctx, backupCompleted())
	if !errors.Is(err, ErrDelivery) || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("cancel did not stop the wait")
	}
	if n := len(reqs()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestWebhookNetworkErrorRetriedAndRedacted(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/hook/tok3n?token=abc"
	srv.Close() // nothing listens any more
	var calls int
	w := &Webhook{URL: url, Secret: testSecret, MaxAttempts: 3, Backoff: func(int) time.Duration { calls++; return time.Millisecond }}
	err := w.Notify(context.Background(), backupCompleted())
	if !errors.Is(err, ErrDelivery) || calls != 2 {
		t.Fatalf("err = %v after %d backoffs", err, calls)
	}
	if strings.Contains(err.Error(), "tok3n") || strings.Contains(err.Error(), "abc") || strings.Contains(err.Error(), testSecret) {
		t.Fatalf("error leaks the URL path or secret: %v", err)
	}
}

func TestWebhookDoesNotFollowRedirects(t *testing.T) {
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer target.Close()
	srv := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer srv.Close()
	w := &Webhook{URL: srv.URL, Secret: testSecret, Backoff: noWait}
	if err := w.Notify(context.Background(), backupCompleted()); !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), "307") {
		t.Fatalf("err = %v", err)
	}
	if hits.Load() != 0 {
		t.Fatal("redirect followed")
	}
}

func TestVerifySignatureRejectsMalformed(t *testing.T) {
	body := []byte(`{}`)
	good := Sign("k", body)
	for _, h := range []string{"", "sha256=", "sha1=" + good[7:], good[7:], "sha256=zz", good + "00"} {
		if VerifySignature("k", body, h) {
			t.Errorf("%q verified", h)
		}
	}
	if VerifySignature("", body, Sign("", body)) {
		t.Error("empty secret verified")
	}
	if !VerifySignature("k", body, " "+good) {
		t.Error("good signature with space refused")
	}
}

func TestRetryAfterParsing(t *testing.T) {
	if d := retryAfter("2"); d != 2*time.Second {
		t.Errorf("2 → %v", d)
	}
	if d := retryAfter(""); d != -1 {
		t.Errorf("empty → %v", d)
	}
	if d := retryAfter("soon"); d != -1 {
		t.Errorf("soon → %v", d)
	}
	if d := retryAfter(time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)); d < 59*time.Minute {
		t.Errorf("date → %v", d)
	}
	if d := defaultBackoff(1); d != time.Second {
		t.Errorf("backoff(1) = %v", d)
	}
	if d := defaultBackoff(3); d != 4*time.Second {
		t.Errorf("backoff(3) = %v", d)
	}
	if d := defaultBackoff(100); d != 30*time.Second {
		t.Errorf("backoff(100) = %v", d)
	}
}

func FuzzVerifySignature(f *testing.F) {
	f.Add("k", []byte(`{"a":1}`), "sha256=00")
	f.Add(testSecret, []byte{}, Sign(testSecret, nil))
	f.Fuzz(func(t *testing.T, secret string, body []byte, header string) {
		_ = VerifySignature(secret, body, header) // never panics
		if secret != "" && !VerifySignature(secret, body, Sign(secret, body)) {
			t.Fatal("Sign does not verify")
		}
	})
}
