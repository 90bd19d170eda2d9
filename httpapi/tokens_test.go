package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/engine"
	"github.com/dataguardian/dataguardian/httpapi"
)

// tokenServer serves the API over e with API token authentication and
// returns its URL and a bootstrapped admin token.
func tokenServer(t *testing.T, e *engine.Engine) (string, string) {
	t.Helper()
	admin, err := httpapi.BootstrapAdminToken(context.Background(), e, "")
	if err != nil || !strings.HasPrefix(admin, engine.TokenPrefix) {
		t.Fatalf("bootstrap: %q, %v", admin, err)
	}
	srv := httptest.NewServer(httpapi.New(e, &httpapi.Options{Logger: quiet(), Auth: httpapi.TokenAuth(e)}))
	t.Cleanup(srv.Close)
	return srv.URL, admin
}

func TestBootstrapAdminToken(t *testing.T) {
	ctx := context.Background()
	e, _ := newEngine(t)
	first, err := httpapi.BootstrapAdminToken(ctx, e, "")
	if err != nil || first == "" {
		t.Fatalf("first start: %q, %v", first, err)
	}
	if again, err := httpapi.BootstrapAdminToken(ctx, e, ""); err != nil || again != "" {
		t.Errorf("second start printed a token again: %q, %v", again, err)
	}
	tok, err := e.Store().AuthenticateAPIToken(ctx, first)
	if err != nil || !slices.Equal(tok.Permissions, slices.Sorted(slices.Values(httpapi.AllPermissions))) {
		t.Fatalf("generated admin token: %+v, %v", tok, err)
	}

	// DG_ADMIN_TOKEN: stored once, idempotent, too short refused; one
	// stored by an older version gains the permissions added since.
	chosen := strings.Repeat("a1", 20)
	if _, err := e.Store().ImportAPIToken(ctx, "admin (DG_ADMIN_TOKEN)", chosen, []string{httpapi.PermRead}, nil); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if out, err := httpapi.BootstrapAdminToken(ctx, e, chosen); err != nil || out != "" {
			t.Fatalf("DG_ADMIN_TOKEN: %q, %v", out, err)
		}
	}
	if tok, err := e.Store().AuthenticateAPIToken(ctx, chosen); err != nil ||
		!slices.Equal(tok.Permissions, slices.Sorted(slices.Values(httpapi.AllPermissions))) {
		t.Errorf("DG_ADMIN_TOKEN: %+v, %v; want every permission", tok, err)
	}
	if n, _ := e.Store().CountAPITokens(ctx); n != 2 {
		t.Errorf("%d tokens, want 2 (generated + DG_ADMIN_TOKEN once)", n)
	}
	_, err = httpapi.BootstrapAdminToken(ctx, e, "short")
	if !errors.Is(err, engine.ErrInvalid) || !strings.Contains(err.Error(), "at least 32") || strings.Contains(err.Error(), "short") {
		t.Errorf("short DG_ADMIN_TOKEN: %v", err)
	}
	if _, err := e.Store().AuthenticateAPIToken(ctx, first+"x"); !errors.Is(err, engine.ErrInvalidToken) {
		t.Errorf("wrong token: %v", err)
	}
}

// TestTokenAuthOverHTTP: 401 without a valid token, 403 without the
// permission, token CRUD, revocation takes effect at once, and the secret
// is stored nowhere.
func TestTokenAuthOverHTTP(t *testing.T) {
	e, app := newEngine(t)
	url, admin := tokenServer(t, e)
	as := func(token string) backupsClient { return backupsClient{t, url, token} }

	// Public endpoints need nothing; /api needs a valid bearer token.
	for _, p := range []string{"/health", "/metrics", "/openapi.json"} {
		if code, _ := as("").do("GET", p, nil); code != http.StatusOK {
			t.Errorf("GET %s without token: %d", p, code)
		}
	}
	req, _ := http.NewRequest("GET", url+"/api/datasources", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") ||
		resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("no token: %d %v", resp.StatusCode, resp.Header)
	}
	for _, bad := range []string{admin + "x", "dgt_nope"} {
		if code, b := as(bad).do("GET", "/api/datasources", nil); code != http.StatusUnauthorized || bytes.Contains(b, []byte(bad)) {
			t.Errorf("token %q: %d %s", bad, code, b)
		}
	}

	// The admin creates a read-only token; its secret is shown once.
	code, b := as(admin).do("POST", "/api/tokens", map[string]any{"name": "dashboard", "permissions": []string{"read"}})
	if code != http.StatusCreated {
		t.Fatalf("create token: %d %s", code, b)
	}
	created := decode[httpapi.CreatedAPIToken](t, b)
	reader := created.Secret
	if !strings.HasPrefix(reader, engine.TokenPrefix) || !slices.Equal(created.Permissions, []string{"read"}) {
		t.Fatalf("created: %s", b)
	}

	if code, _ := as(reader).do("GET", "/api/datasources", nil); code != http.StatusOK {
		t.Errorf("reader GET: %d", code)
	}
	for _, tc := range []struct{ method, path, perm string }{
		{"POST", "/api/datasources", "write"},
		{"GET", "/api/tokens", "tokens.admin"},
		{"POST", "/api/backup-jobs/x/run", "backups.run"},
		{"GET", "/api/executions/x/download", "backups.download"},
		{"PUT", "/api/system/settings/notifications", "settings.write"},
		{"GET", "/api/events", ""}, // allowed: checked below
	} {
		if tc.perm == "" {
			continue
		}
		code, b := as(reader).do(tc.method, tc.path, map[string]any{})
		if code != http.StatusForbidden || !bytes.Contains(b, []byte(tc.perm)) {
			t.Errorf("reader %s %s: %d %s, want 403 naming %s", tc.method, tc.path, code, b, tc.perm)
		}
	}
	code, b = as(reader).do("GET", "/api/tokens/me", nil)
	if me := decode[httpapi.APIToken](t, b); code != http.StatusOK || me.Name != "dashboard" || me.ID != created.ID {
		t.Errorf("me: %d %s", code, b)
	}

	// A token without read may not open the event stream.
	code, b = as(admin).do("POST", "/api/tokens", map[string]any{"name": "runner", "permissions": []string{"backups.run"}})
	if code != http.StatusCreated {
		t.Fatalf("create runner: %d %s", code, b)
	}
	runner := decode[httpapi.CreatedAPIToken](t, b)
	if code, b := as(runner.Secret).do("GET", "/api/events", nil); code != http.StatusForbidden {
		t.Errorf("events without read: %d %s", code, b)
	}

	// Bad input names the field.
	code, b = as(admin).do("POST", "/api/tokens", map[string]any{"name": "x", "permissions": []string{"root"}})
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("unknown permission: %d %s", code, b)
	}
	wantLocation(t, decode[problemJSON](t, b), "body.permissions[0]")
	code, b = as(admin).do("POST", "/api/tokens", map[string]any{"name": "x", "permissions": []string{"read"},
		"expires_at": time.Now().Add(-time.Hour)})
	if code != http.StatusUnprocessableEntity || !bytes.Contains(b, []byte("expires_at")) {
		t.Errorf("expired at creation: %d %s", code, b)
	}

	// Listing never shows a secret; the store holds none.
	code, b = as(admin).do("GET", "/api/tokens", nil)
	if code != http.StatusOK || len(decode[[]httpapi.APIToken](t, b)) != 3 {
		t.Errorf("list: %d %s", code, b)
	}
	for _, s := range []string{admin, reader, runner.Secret} {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("token list contains a secret")
		}
	}
	for _, f := range []string{"dataguardian.db", "dataguardian.db-wal"} {
		raw, _ := os.ReadFile(filepath.Join(filepath.Dir(app), "meta", f))
		for _, s := range []string{admin, reader} {
			if bytes.Contains(raw, []byte(s)) {
				t.Errorf("%s holds a token secret", f)
			}
		}
	}

	// Revocation is immediate; the last admin token cannot be revoked.
	if code, b := as(admin).do("DELETE", "/api/tokens/"+created.ID, nil); code != http.StatusNoContent {
		t.Errorf("revoke: %d %s", code, b)
	}
	if code, _ := as(reader).do("GET", "/api/datasources", nil); code != http.StatusUnauthorized {
		t.Errorf("revoked token still works: %d", code)
	}
	code, b = as(admin).do("GET", "/api/tokens/me", nil)
	me := decode[httpapi.APIToken](t, b)
	if code, b := as(admin).do("DELETE", "/api/tokens/"+me.ID, nil); code != http.StatusConflict || !bytes.Contains(b, []byte("tokens.admin")) {
		t.Errorf("revoke last admin: %d %s", code, b)
	}
	if code, _ := as(admin).do("DELETE", "/api/tokens/nope", nil); code != http.StatusNotFound {
		t.Errorf("revoke unknown: %d", code)
	}
}

// TestTokenExpiry: an expired token is refused with 401, with the same
// answer as an unknown or revoked token, which names no token; the server
// log says which it was.
func TestTokenExpiry(t *testing.T) {
	e, _ := newEngine(t)
	var logged strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), nil))
	admin, err := httpapi.BootstrapAdminToken(context.Background(), e, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(e, &httpapi.Options{Logger: log, Auth: httpapi.TokenAuth(e)}))
	t.Cleanup(srv.Close)
	exp := time.Now().Add(time.Second)
	const name = "short-lived-token-name"
	secret, tok, err := e.Store().CreateAPIToken(context.Background(), name, []string{"read"}, &exp)
	if err != nil {
		t.Fatal(err)
	}
	revokedSecret, revoked, err := e.Store().CreateAPIToken(context.Background(), "revoked", []string{"read"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Store().DeleteAPIToken(context.Background(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	c := backupsClient{t, srv.URL, secret}
	if code, _ := c.do("GET", "/api/datasources", nil); code != http.StatusOK {
		t.Fatalf("before expiry: %d", code)
	}
	time.Sleep(time.Until(exp) + 50*time.Millisecond)
	code, expired := c.do("GET", "/api/datasources", nil)
	if code != http.StatusUnauthorized || !bytes.Contains(expired, []byte("invalid or expired API token")) ||
		bytes.Contains(expired, []byte(name)) || bytes.Contains(expired, []byte(tok.ID)) {
		t.Errorf("after expiry: %d %s", code, expired)
	}
	for _, other := range []string{revokedSecret, admin + "x", "dgt_nope"} {
		if code, b := (backupsClient{t, srv.URL, other}).do("GET", "/api/datasources", nil); code != http.StatusUnauthorized ||
			!bytes.Equal(b, expired) {
			t.Errorf("token %q: %d %s, want the expired token's answer %s", other, code, b, expired)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logged.String(), "expired") || !strings.Contains(logged.String(), tok.ID) ||
		strings.Contains(logged.String(), secret) {
		t.Errorf("server log:\n%s", logged.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestCreateTokenWithinOwnPermissions: a token may create tokens holding
// some of its own permissions only (403 naming those it lacks), and a
// token that expires only tokens expiring no later (422 on expires_at);
// without an Auth hook the embedding service is trusted.
func TestCreateTokenWithinOwnPermissions(t *testing.T) {
	e, _ := newEngine(t)
	url, admin := tokenServer(t, e)
	as := func(token string) backupsClient { return backupsClient{t, url, token} }
	create := func(token string, body map[string]any) (int, []byte) {
		return as(token).do("POST", "/api/tokens", body)
	}

	code, b := create(admin, map[string]any{"name": "token-admin", "permissions": []string{"tokens.admin", "read"}})
	if code != http.StatusCreated {
		t.Fatalf("admin creates a tokens.admin token: %d %s", code, b)
	}
	tokAdmin := decode[httpapi.CreatedAPIToken](t, b).Secret
	for _, perms := range [][]string{{"write"}, {"backups.download"}, httpapi.AllPermissions, {"read", "write", "backups.download"}} {
		code, b := create(tokAdmin, map[string]any{"name": "escalated", "permissions": perms})
		p := decode[problemJSON](t, b)
		if code != http.StatusForbidden || !strings.Contains(p.Detail, `"`+perms[len(perms)-1]+`"`) ||
			strings.Contains(p.Detail, `"read"`) || strings.Contains(p.Detail, `"tokens.admin"`) {
			t.Errorf("tokens.admin+read creates %v: %d %s", perms, code, b)
		}
		wantLocation(t, p, "body.permissions")
	}
	if code, b := create(tokAdmin, map[string]any{"name": "reader", "permissions": []string{"read"}}); code != http.StatusCreated {
		t.Errorf("tokens.admin+read creates read: %d %s", code, b)
	}
	if code, b := create(admin, map[string]any{"name": "all", "permissions": httpapi.AllPermissions}); code != http.StatusCreated {
		t.Errorf("admin creates every permission: %d %s", code, b)
	}

	// An expiring token creates tokens expiring no later.
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	code, b = create(admin, map[string]any{"name": "temp-admin", "permissions": httpapi.AllPermissions, "expires_at": exp})
	if code != http.StatusCreated {
		t.Fatalf("create expiring admin: %d %s", code, b)
	}
	temp := decode[httpapi.CreatedAPIToken](t, b).Secret
	for _, at := range []any{nil, exp.Add(time.Second)} {
		body := map[string]any{"name": "outliver", "permissions": []string{"read"}}
		if at != nil {
			body["expires_at"] = at
		}
		code, b := create(temp, body)
		p := decode[problemJSON](t, b)
		if code != http.StatusUnprocessableEntity || !strings.Contains(p.Detail, exp.Format(time.RFC3339)) {
			t.Errorf("expiring token creates one expiring %v: %d %s", at, code, b)
		}
		wantLocation(t, p, "body.expires_at")
	}
	for _, at := range []time.Time{exp, exp.Add(-time.Minute)} {
		if code, b := create(temp, map[string]any{"name": "ok", "permissions": []string{"read"}, "expires_at": at}); code != http.StatusCreated {
			t.Errorf("expiring token creates one expiring %v: %d %s", at, code, b)
		}
	}

	// Without an Auth hook, the embedding service is trusted.
	api := newTestAPI(t, e)
	if resp := api.Post("/api/tokens", map[string]any{"name": "embedder", "permissions": httpapi.AllPermissions}); resp.Code != http.StatusCreated {
		t.Errorf("without Auth: %d %s", resp.Code, resp.Body)
	}
}

// TestOpenAPISecurity: every /api operation names its permissions as bearer
// scopes; /health and /metrics are public.
func TestOpenAPISecurity(t *testing.T) {
	e, _ := newEngine(t)
	url, _ := tokenServer(t, e)
	code, b := backupsClient{t, url, ""}.do("GET", "/openapi.json", nil)
	if code != http.StatusOK {
		t.Fatal(code)
	}
	var doc struct {
		Components struct {
			SecuritySchemes map[string]struct{ Type, Scheme string } `json:"securitySchemes"`
		} `json:"components"`
		Paths map[string]map[string]struct {
			OperationID string                 `json:"operationId"`
			Security    *[]map[string][]string `json:"security"`
			Permissions []string               `json:"x-permissions"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if s := doc.Components.SecuritySchemes["bearer"]; s.Type != "http" || s.Scheme != "bearer" {
		t.Errorf("security scheme: %+v", doc.Components.SecuritySchemes)
	}
	scopes := map[string][]string{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			scopes[op.OperationID] = op.Permissions
			// A public operation says so (security: []); any other needs
			// the bearer scheme, without scopes (OAuth2's alone), and lists
			// its permissions in x-permissions.
			public := !strings.HasPrefix(path, "/api/")
			if op.Security == nil {
				t.Errorf("%s %s: no security requirement list", method, path)
			} else if sec := *op.Security; public != (len(sec) == 0) || (!public && (len(sec) != 1 || sec[0]["bearer"] == nil || len(sec[0]["bearer"]) != 0)) {
				t.Errorf("%s %s: security %v (public %v)", method, path, sec, public)
			}
			if public != (op.Permissions == nil) {
				t.Errorf("%s %s: x-permissions %v (public %v)", method, path, op.Permissions, public)
			}
		}
	}
	for op, want := range map[string][]string{
		"list-datasources":   {"read"},
		"create-datasource":  {"write"},
		"run-backup-job":     {"backups.run"},
		"restore-backup":     {"backups.restore", "backups.restore_verify"},
		"download-execution": {"backups.download"},
		"create-api-token":   {"tokens.admin"},
		"stream-events":      {"read"},
	} {
		if !slices.Equal(scopes[op], want) {
			t.Errorf("%s x-permissions %v, want %v", op, scopes[op], want)
		}
	}
}
