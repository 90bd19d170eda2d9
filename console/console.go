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
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:generate go run ./internal/build/gen

//go:embed dist
var dist embed.FS

// CSP is the Content-Security-Policy of the console: scripts, styles and
// connections (the API, its event stream) from the server itself only; no
// inline script or style, no frames, no forms posted elsewhere.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler returns the console's handler: GET / (index.html) and GET
// /assets/..., anything else 404.
func Handler() http.Handler {
	root, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(root)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		switch {
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		case r.URL.Path == "/" || r.URL.Path == "/index.html":
			h.Set("Cache-Control", "no-cache")
			http.ServeFileFS(w, r, root, "index.html")
		case strings.HasPrefix(r.URL.Path, "/assets/") && !strings.HasSuffix(r.URL.Path, "/"): // no listings
			h.Set("Cache-Control", "no-cache")
			files.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}
