package e2e

import (
	"database/sql"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/httpapi"
	"github.com/dataguardian/dataguardian/internal/servertest"
)

// TestTemplateLimitsThroughTheAPI: a notification template that would
// render without bound is refused promptly with 422 naming the limit; a
// legitimate one is stored; and a restart on the same data directory does
// not render the stored versions again.
func TestTemplateLimitsThroughTheAPI(t *testing.T) {
	srv := servertest.Start(t, nil)
	c := client{t, srv, srv.Token}

	for _, tc := range []struct {
		body string
		want []string // the message names one of these limits
	}{
		// 100 million iterations writing a byte each: the output or the
		// time limit, whichever the server reaches first.
		{`{{range 10000}}{{range 10000}}x{{end}}{{end}}`, []string{"renders more than 64 KiB", "takes longer than 100ms to render"}},
		{`{{range 100000000}}{{end}}`, []string{"simplify loops"}},
		{`{{printf "%0100000000d" 1}}`, []string{"printf width is over 1000"}},
		{`{{define "x"}}{{template "x"}}{{end}}{{template "x"}}`, []string{"{{define}}, {{template}} and {{block}} are not supported"}},
	} {
		start := time.Now()
		code, b := c.call("POST", "/api/system/notification-templates",
			map[string]any{"type": "backup_failed", "channel": "email", "subject": "x", "body": tc.body})
		took := time.Since(start)
		if code != http.StatusUnprocessableEntity {
			t.Fatalf("POST %.40q: %d %s, want 422 problem JSON", tc.body, code, b)
		}
		p := decodeProblem(t, b)
		named := false
		for _, w := range tc.want {
			named = named || strings.Contains(p.Detail, w)
		}
		if !named || len(p.Errors) != 1 || p.Errors[0].Location != "body.body" {
			t.Errorf("POST %.40q: %s\nwant a message naming one of %q, at body.body", tc.body, b, tc.want)
		}
		t.Logf("%.40q refused in %v: %s", tc.body, took, p.Detail)
	}

	var tpl httpapi.NotificationTemplate
	c.must(http.StatusCreated, "POST", "/api/system/notification-templates",
		map[string]any{"type": "backup_failed", "channel": "email", "subject": "falha {{.Title}}",
			"body": "{{range $k, $v := .Data}}{{$k}}: {{$v}}\n{{end}}"}, &tpl)
	var tpls []httpapi.NotificationTemplate
	c.must(http.StatusOK, "GET", "/api/system/notification-templates", nil, &tpls)
	if len(tpls) != 1 || tpls[0].ID != tpl.ID || tpl.Version != 1 {
		t.Fatalf("templates: %+v (created %+v)", tpls, tpl)
	}

	// Restart on the same data after storing, as a server without the
	// limits accepted them, 30 versions that take seconds each to render:
	// the server starts (it parses stored versions but renders none) and
	// takes the next version promptly (it validates only the new one).
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	db, err := sql.Open("sqlite", filepath.Join(srv.DataDir, "dataguardian.db"))
	if err != nil {
		t.Fatal(err)
	}
	for v := 2; v <= 31; v++ {
		if _, err := db.Exec(`INSERT INTO notification_templates ("id", "key", "channel", "version", "subject", "body", "active", "created_at")
			SELECT ?, "key", "channel", ?, '', ?, 1, "created_at" FROM notification_templates WHERE "id" = ?`,
			fmt.Sprintf("00000000-0000-4000-8000-%012d", v), v, `{{range 10000}}{{range 10000}}x{{end}}{{end}}`, tpl.ID); err != nil {
			t.Fatalf("store version %d: %v", v, err)
		}
	}
	db.Close()
	start := time.Now()
	srv2 := servertest.Start(t, &servertest.Options{DataDir: srv.DataDir})
	t.Logf("restarted in %v", time.Since(start))
	c2 := client{t, srv2, srv2.Token}
	c2.must(http.StatusOK, "GET", "/api/system/notification-templates", nil, &tpls)
	if len(tpls) != 31 || tpls[0].ID != tpl.ID {
		t.Fatalf("templates after restart: %d, want 31", len(tpls))
	}
	var next httpapi.NotificationTemplate
	c2.must(http.StatusOK, "PUT", "/api/system/notification-templates/"+tpl.ID, map[string]any{"body": "v2 {{.Message}}"}, &next)
	if next.Version != 32 {
		t.Errorf("version after restart: %d, want 32", next.Version)
	}
	if strings.Contains(srv2.Stderr(), "notification template skipped") {
		t.Errorf("a stored template was skipped at start:\n%s", srv2.Stderr())
	}
}
