package console_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/console"
	"github.com/dataguardian/dataguardian/console/internal/build"
)

// The committed API table and bundle are what `go generate ./console`
// makes of the sources and of the committed OpenAPI document (which
// internal/apiclient's test keeps fresh): a change of either without
// regenerating fails here.
func TestDistIsFresh(t *testing.T) {
	spec, err := os.ReadFile(build.Spec)
	if err != nil {
		t.Fatal(err)
	}
	table, err := build.APITable(spec)
	if err != nil {
		t.Fatal(err)
	}
	if committed, _ := os.ReadFile(filepath.Join("src", "api.gen.js")); !bytes.Equal(committed, table) {
		t.Errorf("src/api.gen.js is stale: run go generate ./console")
	}
	want, err := build.Bundle("src")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	err = filepath.WalkDir("dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel("dist", p)
		got[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range want {
		if !bytes.Equal(got[name], data) {
			t.Errorf("dist/%s is stale: run go generate ./console", name)
		}
		delete(got, name)
	}
	for name := range got {
		t.Errorf("dist/%s is no output of the build: remove it (go generate ./console)", name)
	}
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(console.Handler())
	defer srv.Close()
	for _, c := range []struct {
		method, path string
		status       int
		contentType  string
		body         string
	}{
		{"GET", "/", 200, "text/html", `src="assets/main.js"`},
		{"GET", "/assets/main.js", 200, "text/javascript", "get-current-api-token"},
		{"GET", "/assets/app.css", 200, "text/css", "prefers-color-scheme"},
		{"GET", "/assets/", 404, "", ""},
		{"GET", "/secret.key", 404, "", ""},
		{"POST", "/", 405, "", ""},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != c.status || !strings.HasPrefix(res.Header.Get("Content-Type"), c.contentType) ||
			!strings.Contains(string(body), c.body) {
			t.Errorf("%s %s: %d %q, want %d %q containing %q", c.method, c.path, res.StatusCode,
				res.Header.Get("Content-Type"), c.status, c.contentType, c.body)
		}
		if got := res.Header.Get("Content-Security-Policy"); got != console.CSP {
			t.Errorf("%s %s: Content-Security-Policy %q", c.method, c.path, got)
		}
	}
}

// Assets go gzipped to a client that accepts it, whole otherwise, and a
// client holding the current version gets 304.
func TestHandlerCompressesAndRevalidates(t *testing.T) {
	srv := httptest.NewServer(console.Handler())
	defer srv.Close()
	get := func(header, value string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", srv.URL+"/assets/main.js", nil)
		req.Header.Set(header, value)
		res, err := http.DefaultTransport.RoundTrip(req) // no transparent decompression
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	plainRes, plain := get("Accept-Encoding", "identity")
	gzRes, gz := get("Accept-Encoding", "gzip, br")
	if plainRes.Header.Get("Content-Encoding") != "" || gzRes.Header.Get("Content-Encoding") != "gzip" || len(gz) >= len(plain)/2 {
		t.Fatalf("identity %d bytes (%q), gzip %d bytes (%q)", len(plain), plainRes.Header.Get("Content-Encoding"), len(gz), gzRes.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	if unzipped, _ := io.ReadAll(zr); !bytes.Equal(unzipped, plain) {
		t.Fatal("the gzipped asset is not the asset")
	}
	etag := plainRes.Header.Get("ETag")
	if res, _ := get("If-None-Match", etag); etag == "" || res.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match %s: %d", etag, res.StatusCode)
	}
}
