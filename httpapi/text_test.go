package httpapi_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/httpapi"
)

// TestRefusesNULAndInvalidUTF8: a NUL character or invalid UTF-8 in a JSON
// string (value or property name, at any depth), anywhere in the raw body,
// in a path parameter or a query value is refused with 422 naming the
// field before the handler runs; nothing is stored.
func TestRefusesNULAndInvalidUTF8(t *testing.T) {
	e, app := newEngine(t)
	api := newTestAPI(t, e)
	ct := "Content-Type: application/json"
	appJSON := strings.ReplaceAll(app, `\`, `\\`)

	for _, tc := range []struct {
		name, method, path, body, location string
	}{
		{"NUL in a value", "POST", "/api/datasources",
			`{"name":"a\u0000b","type":"sqlite","path":"` + appJSON + `"}`, "body.name"},
		{"NUL in a nested value", "POST", "/api/datasources",
			`{"name":"x","type":"sqlite","path":"` + appJSON + `","options":{"mode":"ro\u0000"}}`, "body.options.mode"},
		{"NUL in a property name", "POST", "/api/datasources",
			`{"name":"x","type":"sqlite","path":"` + appJSON + `","options":{"a\u0000":"b"}}`, "body.options"},
		{"NUL in an array element", "POST", "/api/backup-jobs",
			`{"name":"j","datasource_id":"d","storage_location_ids":["ok","\u0000"]}`, "body.storage_location_ids[1]"},
		{"invalid UTF-8 in a value", "POST", "/api/datasources",
			"{\"name\":\"caf\xe9\",\"type\":\"sqlite\"}", "body.name"},
		{"invalid UTF-8 in a property name", "POST", "/api/datasources",
			"{\"name\":\"x\",\"type\":\"sqlite\",\"options\":{\"\xff\":\"b\"}}", "body.options.\ufffd"},
		{"invalid UTF-8 outside strings", "POST", "/api/datasources",
			"{\"name\":\"x\",\"type\":\"sqlite\"}\xff", "body"},
		{"a raw NUL byte", "POST", "/api/datasources",
			"{\"name\":\"x\x00\",\"type\":\"sqlite\"}", "body"},
		{"NUL in a path parameter", "GET", "/api/datasources/%00", "", "path.id"},
		{"invalid UTF-8 in a path parameter", "DELETE", "/api/datasources/%ff", "", "path.id"},
		{"NUL in a query value", "GET", "/api/datasources?type=a%00", "", "query.type"},
		{"invalid UTF-8 in a query value", "GET", "/api/datasources?type=%C3", "", "query.type"},
		{"NUL in an unknown query parameter", "GET", "/api/datasources?x=%00", "", "query.x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []any{ct}
			if tc.body != "" {
				args = append(args, strings.NewReader(tc.body))
			}
			resp := api.Do(tc.method, tc.path, args...)
			if resp.Code != http.StatusUnprocessableEntity {
				t.Fatalf("%d %s", resp.Code, resp.Body)
			}
			p := decode[problemJSON](t, resp.Body.Bytes())
			if len(p.Errors) != 1 || p.Errors[0].Location != tc.location {
				t.Errorf("problem %+v, want location %s", p, tc.location)
			}
			if bytes.Contains(resp.Body.Bytes(), []byte{0}) || bytes.Contains(resp.Body.Bytes(), []byte(`\u0000`)) {
				t.Errorf("the answer echoes the NUL: %s", resp.Body)
			}
		})
	}
	if dss, _ := e.Store().ListDatasources(t.Context()); len(dss) != 0 {
		t.Errorf("%d datasources stored", len(dss))
	}

	// Good text passes through: non-ASCII, escapes, a body read by huma.
	resp := api.Post("/api/datasources", ct, strings.NewReader(`{"name":"Banco Produção \u00e9 \ud83d\ude00","type":"sqlite","path":"`+
		appJSON+`","options":{"k":"v"}}`))
	if resp.Code != http.StatusCreated || !strings.Contains(resp.Body.String(), "Banco Produção é 😀") {
		t.Fatalf("good text: %d %s", resp.Code, resp.Body)
	}
	if resp := api.Get("/api/datasources?type=sqlite"); resp.Code != http.StatusOK {
		t.Errorf("good query: %d %s", resp.Code, resp.Body)
	}

	// Huma still answers a bad body and an oversized one as before.
	if resp := api.Post("/api/datasources", ct, strings.NewReader(`{"name":`)); resp.Code != http.StatusBadRequest &&
		resp.Code != http.StatusUnprocessableEntity {
		t.Errorf("truncated JSON: %d %s", resp.Code, resp.Body)
	}
	big := `{"name":"` + strings.Repeat("x", httpapi.DefaultMaxBodyBytes) + "\x00\"}"
	if resp := api.Post("/api/datasources", ct, strings.NewReader(big)); resp.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d %.200s", resp.Code, resp.Body)
	}
}
