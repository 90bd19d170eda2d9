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
	"regexp"
	"slices"
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

// Every operation the sources name (call, page, all, can, and the
// notification actions) is one of the OpenAPI document's, and every call's path
// parameters are exactly those of the operation's path: a renamed
// operation or parameter fails here, not in an operator's browser.
func TestSourcesNameTheAPI(t *testing.T) {
	table, err := os.ReadFile(filepath.Join("src", "api.gen.js"))
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for _, m := range regexp.MustCompile(`"([a-z-]+)": \["[A-Z]+", "([^"]+)"`).FindAllSubmatch(table, -1) {
		paths[string(m[1])] = string(m[2])
	}
	if len(paths) < 40 {
		t.Fatalf("%d operations read from src/api.gen.js", len(paths))
	}
	named := regexp.MustCompile(`\b(?:call|can|act|page|all)\("([a-z-]+)"(?:, \{ params: \{([^}]*)\})?`)
	pathParam := regexp.MustCompile(`\{(\w+)\}`)
	var sites int
	err = filepath.WalkDir("src", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".js") || strings.HasSuffix(p, ".gen.js") {
			return err
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range named.FindAllSubmatch(src, -1) {
			sites++
			op := string(m[1])
			path, ok := paths[op]
			if !ok {
				t.Errorf("%s: operation %q is not in the OpenAPI document", p, op)
				continue
			}
			if m[2] == nil {
				continue
			}
			var want, got []string
			for _, pm := range pathParam.FindAllStringSubmatch(path, -1) {
				want = append(want, pm[1])
			}
			for _, kv := range strings.Split(string(m[2]), ",") {
				got = append(got, strings.TrimSpace(strings.SplitN(kv, ":", 2)[0]))
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s: %s is called with path parameters %v, its path %s has %v", p, op, got, path, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sites < 40 {
		t.Errorf("only %d operations found named in the sources", sites)
	}
}
