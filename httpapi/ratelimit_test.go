package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian"

	"github.com/dataguardian/dataguardian/engine"
)

// fakeClock is a settable time source.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func limiterAt(t *testing.T, opts *Options) (*AuthLimiter, *fakeClock) {
	t.Helper()
	l := NewAuthLimiter(opts)
	if l == nil {
		t.Fatal("limiter turned off")
	}
	clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	l.now = clock.now
	return l, clock
}

func from(addr string) *http.Request {
	r := httptest.NewRequest("GET", "/api/datasources", nil)
	r.RemoteAddr = addr
	return r
}

// TestAuthLimiter: limit failures within the window block the address for
// a window, other addresses are not affected, and the block ends.
func TestAuthLimiter(t *testing.T) {
	l, clock := limiterAt(t, &Options{AuthFailureLimit: 3, AuthFailureWindow: time.Minute})
	a, b := from("192.0.2.1:1234"), from("192.0.2.2:1234")
	for i := range 2 {
		l.Failed(a)
		if _, blocked := l.Blocked(a); blocked {
			t.Fatalf("blocked after %d failures", i+1)
		}
		clock.advance(10 * time.Second)
	}
	l.Failed(a) // the third, 20 s after the first
	wait, blocked := l.Blocked(a)
	if !blocked || wait != time.Minute {
		t.Fatalf("after 3 failures: blocked %v, wait %v; want a whole window", blocked, wait)
	}
	if _, blocked := l.Blocked(from("192.0.2.1:9999")); !blocked {
		t.Errorf("another port of the same host is not blocked")
	}
	if _, blocked := l.Blocked(b); blocked {
		t.Errorf("another address is blocked")
	}
	clock.advance(59 * time.Second)
	l.Failed(a) // failures while blocked do not extend the block
	if wait, blocked := l.Blocked(a); !blocked || wait != time.Second {
		t.Errorf("59 s later: blocked %v, wait %v", blocked, wait)
	}
	clock.advance(time.Second)
	if _, blocked := l.Blocked(a); blocked {
		t.Errorf("still blocked after the window")
	}
	l.Failed(a)
	if _, blocked := l.Blocked(a); blocked {
		t.Errorf("blocked by the first failure of a new window")
	}

	// Failures spread over more than a window never block.
	for range 10 {
		l.Failed(b)
		clock.advance(31 * time.Second)
	}
	if _, blocked := l.Blocked(b); blocked {
		t.Errorf("2 failures a minute blocked the address")
	}
}

// TestAuthLimiterBounded: the limiter tracks at most max addresses, forgets
// those whose window passed, and keeps blocked ones when it must evict.
func TestAuthLimiterBounded(t *testing.T) {
	l, clock := limiterAt(t, &Options{AuthFailureLimit: 2})
	l.max = 100
	blocked := from("198.51.100.1:1")
	l.Failed(blocked)
	l.Failed(blocked)
	for i := range 1000 {
		l.Failed(from(fmt.Sprintf("10.0.%d.%d:1", i/256, i%256)))
		if len(l.clients) > l.max {
			t.Fatalf("%d clients tracked, max %d", len(l.clients), l.max)
		}
	}
	if _, ok := l.Blocked(blocked); !ok {
		t.Errorf("a blocked address was evicted while unblocked ones could be")
	}
	clock.advance(DefaultAuthFailureWindow)
	l.Failed(from("10.1.0.1:1"))
	if len(l.clients) != 1 {
		t.Errorf("%d clients tracked after every window passed, want 1", len(l.clients))
	}
}

func TestAuthLimiterOff(t *testing.T) {
	for _, o := range []*Options{{AuthFailureLimit: -1}, {AuthFailureWindow: -1}} {
		l := NewAuthLimiter(o)
		if l != nil {
			t.Errorf("%+v: limiter on", o)
		}
		for range 100 {
			l.Failed(from("192.0.2.1:1"))
		}
		if _, blocked := l.Blocked(from("192.0.2.1:1")); blocked {
			t.Errorf("a nil limiter blocks")
		}
	}
	if l := NewAuthLimiter(nil); l == nil || l.limit != DefaultAuthFailureLimit || l.window != DefaultAuthFailureWindow {
		t.Errorf("defaults: %+v", l)
	}
}

func TestClientAddr(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.7:443":                 "192.0.2.7",
		"[::ffff:192.0.2.7]:443":        "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443":    "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:1":      "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:1":           "2001:db8:1:3::/64",
		"[fe80::1%eth0]:1":              "fe80::/64",
		"not-an-address":                "not-an-address",
		"@":                             "@",
		"[2001:db8:1:2:3:4:5:6%x]:1234": "2001:db8:1:2::/64",
	} {
		if got := clientAddr(from(addr)); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
	r := from("192.0.2.7:1")
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	if got := clientAddr(r); got != "192.0.2.7" {
		t.Errorf("X-Forwarded-For trusted: %s", got)
	}
}

// TestNewLimitsFailedAuth: behind New, an address that sent limit bad
// tokens gets 429 problem JSON with Retry-After on every /api request,
// even with a valid token, while /health and /metrics stay open; a
// forbidden request does not count.
func TestNewLimitsFailedAuth(t *testing.T) {
	e, err := dataguardian.New(context.Background(), engine.Config{DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var calls atomic.Int64
	auth := func(r *http.Request) error {
		calls.Add(1)
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			*r = *r.WithContext(WithPermissions(r.Context(), PermissionSet(AllPermissions)))
			return nil
		case "Bearer forbidden":
			return fmt.Errorf("%w: not you", ErrForbidden)
		}
		return errors.New("bad token")
	}
	srv := httptest.NewServer(New(e, &Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Auth: auth, AuthFailureLimit: 3}))
	defer srv.Close()
	get := func(path, token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for range 5 {
		if resp := get("/api/datasources", "forbidden"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("forbidden: %d", resp.StatusCode)
		}
	}
	for i := range 3 {
		if resp := get("/api/datasources", "guess"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i+1, resp.StatusCode)
		}
	}
	before := calls.Load()
	for _, tok := range []string{"guess", "good", ""} {
		req, _ := http.NewRequest("GET", srv.URL+"/api/datasources", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != http.StatusTooManyRequests || p.Status != 429 || secs < 1 || secs > 60 ||
			resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("token %q after 3 failures: %d %+v Retry-After %q", tok, resp.StatusCode, p, resp.Header.Get("Retry-After"))
		}
	}
	if calls.Load() != before {
		t.Errorf("Auth was called for a blocked address")
	}
	for _, p := range []string{"/health", "/metrics"} {
		if resp := get(p, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("%s while blocked: %d", p, resp.StatusCode)
		}
	}
}
