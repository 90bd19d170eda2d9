// Package console is the operator's web console: a small JavaScript
// application over the public API (the same calls, permissions and errors
// a generated client sees), served from files embedded in the binary.
//
// Handler serves it at the root of wherever it is mounted: index.html at
// "/" and its assets under "/assets/". The application calls the API
// relative to that root ("api/..."), so a service that mounts httpapi
// under a prefix gets the console under the same prefix (httpapi.New
// mounts it). Nothing is loaded from elsewhere: the Content-Security-Policy
// of every answer (CSP) allows only the server's own scripts, styles and
// API.
//
// The sources are in src/; `go generate ./console` regenerates the API
// table (src/api.gen.js, from the OpenAPI document committed in
// internal/apiclient) and bundles them into dist/ with esbuild's Go API.
// Users need only Go: dist/ is committed and embedded, and a test fails
// when it is not what the sources build.
package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:generate go run ./internal/build/gen

//go:embed dist
var dist embed.FS

// CSP is the Content-Security-Policy of the console: scripts, styles and
// connections (the API, its event stream) from the server itself only; no
// inline script or style, no frames, no forms posted elsewhere.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded file, ready to serve: its bytes, gzipped once at
// start, and an ETag.
type asset struct {
	name     string
	data, gz []byte
	etag     string
}

// assets reads dist once: "/" is index.html, the rest by their paths.
var assets = sync.OnceValue(func() map[string]*asset {
	out := map[string]*asset{}
	err := fs.WalkDir(dist, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := dist.ReadFile(p)
		if err != nil {
			return err
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(data)
		zw.Close()
		sum := sha256.Sum256(data)
		a := &asset{name: path.Base(p), data: data, gz: gz.Bytes(), etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		out[strings.TrimPrefix(p, "dist")] = a
		return nil
	})
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	out["/"] = out["/index.html"]
	return out
})

// Handler returns the console's handler: GET / (index.html) and GET
// /assets/..., anything else 404. Files are sent gzipped to clients that
// accept it, revalidated by ETag.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		a, ok := assets()[r.URL.Path]
		if !ok || r.URL.Path != "/" && !strings.HasPrefix(r.URL.Path, "/assets/") {
			http.NotFound(w, r)
			return
		}
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		h.Set("Vary", "Accept-Encoding")
		if ct := mime.TypeByExtension(path.Ext(a.name)); ct != "" {
			h.Set("Content-Type", ct)
		}
		body := a.data
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			h.Set("Content-Encoding", "gzip")
			body = a.gz
		}
		http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(body))
	})
}
