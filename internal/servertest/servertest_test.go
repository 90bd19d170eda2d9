package servertest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/internal/servertest"
)

// Start builds the binary, runs it with a known admin token on a free port
// and the cleanup's Stop ends it with status 0.
func TestStartStop(t *testing.T) {
	srv := servertest.Start(t, &servertest.Options{Args: []string{"--log-level", "debug"}})
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") || strings.HasSuffix(srv.URL, ":0") {
		t.Errorf("URL %q is not a bound local address", srv.URL)
	}
	if code, body := srv.Do(t, http.MethodGet, "/api/tokens/me", srv.Token, nil); code != http.StatusOK {
		t.Fatalf("GET /api/tokens/me with the admin token: %d %s", code, body)
	}
	if code, _ := srv.Do(t, http.MethodGet, "/api/tokens/me", "", nil); code != http.StatusUnauthorized {
		t.Errorf("GET /api/tokens/me without a token: %d, want 401", code)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("a second Stop: %v, want the first result (nil)", err)
	}
}
