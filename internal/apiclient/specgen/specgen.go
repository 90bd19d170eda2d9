// Package specgen produces the OpenAPI document from which package
// apiclient is generated: the one the current httpapi serves.
package specgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/dataguardian/dataguardian"

	"github.com/dataguardian/dataguardian/engine"
	"github.com/dataguardian/dataguardian/httpapi"
)

// Path is where httpapi serves the OpenAPI 3.0.3 document. The generator
// (oapi-codegen, on kin-openapi) reads OpenAPI 3.0, so the client is
// generated from the 3.0 downgrade of the 3.1 document at Path31.
const Path = "/openapi-3.0.json"

// Path31 is where httpapi serves the OpenAPI 3.1 document, committed
// beside the client as openapi-3.1.json for the linters and the
// TypeScript check (see TestOpenAPILint).
const Path31 = "/openapi.json"

// Document returns the OpenAPI document httpapi serves at path (Path or
// Path31), as
// indented JSON ending in a newline (the form committed beside the client,
// so that a change of the API reads as a small diff). It builds the API
// over a throwaway engine in a temporary directory, which it removes.
func Document(ctx context.Context, path string) (doc []byte, err error) {
	dir, err := os.MkdirTemp("", "dataguardian-specgen-")
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = fmt.Errorf("remove temp dir: %w", rerr)
		}
	}()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := dataguardian.New(ctx, engine.Config{DataDir: filepath.Join(dir, "data"), Logger: quiet})
	if err != nil {
		return nil, fmt.Errorf("open engine: %w", err)
	}
	defer e.Close()
	h := httpapi.New(e, &httpapi.Options{Logger: quiet, Auth: httpapi.TokenAuth(e)})
	return Fetch(ctx, h, path)
}

// Fetch returns the document h serves at path, in Document's form.
func Fetch(ctx context.Context, h http.Handler, path string) ([]byte, error) {
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("get %s: status %d: %s", path, rec.Code, rec.Body.Bytes())
	}
	return Canonical(rec.Body.Bytes())
}

// Canonical returns the JSON document raw indented with two spaces and
// ending in a newline, the form Document returns.
func Canonical(raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("indent openapi document: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}
