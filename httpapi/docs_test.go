package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/humatest"

	"github.com/dataguardian/dataguardian/httpapi"
)

// htmlText is s as html/template writes it in text.
func htmlText(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	if err := template.Must(template.New("").Parse("{{.}}")).Execute(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// external matches anything a browser would fetch from elsewhere.
var external = regexp.MustCompile(`(?i)(?:\b(?:src|srcset|href|action|poster|data)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:|//))|url\s*\(|@import|<script|<iframe|<object|<embed`)

func getDocs(t *testing.T, h http.Handler, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/docs", nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// checkOffline checks the page is HTML allowed to load nothing but its
// own <style> block, and references nothing outside the server.
func checkOffline(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	page := rec.Body.String()
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /docs: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if rec.Header().Get("Cache-Control") == "" || rec.Header().Get("ETag") == "" {
		t.Errorf("GET /docs: Cache-Control %q, ETag %q", rec.Header().Get("Cache-Control"), rec.Header().Get("ETag"))
	}
	csp := rec.Header().Get("Content-Security-Policy")
	if !strings.HasPrefix(csp, "default-src 'none'; style-src ") || strings.Contains(csp, "script") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	start, end := strings.Index(page, "<style>"), strings.Index(page, "</style>")
	if start < 0 || end < start || strings.Count(page, "<style") != 1 || strings.Contains(page, " style=") {
		t.Fatalf("want one <style> block and no style attribute:\n%.500s", page)
	}
	sum := sha256.Sum256([]byte(page[start+len("<style>") : end]))
	if hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, hash) {
		t.Errorf("the CSP %q does not allow the page's <style> block (%s)", csp, hash)
	}
	if m := external.FindAllString(page, 5); m != nil {
		t.Errorf("the page loads or links outside the server: %q", m)
	}
	return page
}

func TestDocsPage(t *testing.T) {
	e, _ := newEngine(t)
	h := httpapi.New(e, &httpapi.Options{Logger: quiet()})
	rec := getDocs(t, h, nil)
	page := checkOffline(t, rec)

	// Every operation of the document, with an anchor, its path and summary.
	api := newTestAPI(t, e)
	ops := 0
	for path, item := range api.OpenAPI().Paths {
		for _, op := range []*huma.Operation{item.Get, item.Post, item.Put, item.Patch, item.Delete} {
			if op == nil {
				continue
			}
			ops++
			for _, want := range []string{`<article id="op-` + op.OperationID + `">`, "<code>" + htmlText(t, path) + "</code>",
				htmlText(t, op.Summary)} {
				if !strings.Contains(page, want) {
					t.Errorf("%s %s: the page lacks %q", op.Method, path, want)
				}
			}
		}
	}
	if ops < 40 {
		t.Fatalf("walked %d operations", ops)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if doc := rec.Body.Len(); rec.Code != 200 || len(page) > 2*doc {
		t.Errorf("the page has %d bytes for a document of %d (%d): want it proportional", len(page), doc, rec.Code)
	}

	for _, want := range []string{
		"<title>DataGuardian API dev reference</title>",
		// The document's description, markdown rendered and the rest escaped.
		"<code>Authorization: Bearer &lt;token&gt;</code>",
		// The restore operation's description and permission line.
		"<p><strong>Without <code>target_datasource_id</code>, the backup is restored over its own datasource",
		"<p>Needs confirmation_phrase &#34;RESTAURAR&#34;, or &#34;VERIFICAR RESTORE&#34; with verification_mode=true;",
		`<p class="perm">Needs permission <code>backups.restore</code> or <code>backups.restore_verify</code>.</p>`,
		`<p class="perm">Public: no API token needed.</p>`,
		// The request body's properties, nested ones as dotted names.
		`<code>application/json</code>: RestoreRequest`,
		`<code>confirmation_phrase</code></td><td>string</td>`,
		`<code>retention.max_backups</code></td><td>integer (int64)</td><td>yes</td>`,
		`<code>smtp.host</code></td><td>string</td><td>yes</td>`,
		// Parameters with their enum, default and example.
		`<code>executionId</code></td><td>path</td><td>string</td><td>yes</td>`,
		`<code>limit</code></td><td>query</td><td>integer (int64)</td><td></td>`,
		`Default: <code>50</code>`,
		`<code>&#34;queued&#34;</code>, <code>&#34;running&#34;</code>`,
		`Example: <code>&#34;postgres&#34;</code>`,
		// Responses and the links to the raw document, relative to /docs.
		`<tr><td>202</td><td>Accepted</td><td><code>application/json</code> Execution</td></tr>`,
		`<a href="openapi.json">`, `<a href="openapi.yaml">`,
		`<h3><a href="#tag-backups">Backups</a></h3>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(page, "Needs permission `") || strings.Count(page, "Needs permission <code>backups.restore</code> or") != 1 {
		t.Error("the permission sentence of a description should be shown once, as the permission line")
	}
	for _, link := range []string{"openapi.json", "openapi.yaml"} {
		u, _ := url.Parse("http://api.test/docs")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u.ResolveReference(&url.URL{Path: link}).String(), nil))
		if rec.Code != http.StatusOK {
			t.Errorf("the page's link %s answers %d", link, rec.Code)
		}
	}

	t.Run("revalidation", func(t *testing.T) {
		etag := getDocs(t, h, nil).Header().Get("ETag")
		if rec := getDocs(t, h, http.Header{"If-None-Match": {etag}}); rec.Code != http.StatusNotModified {
			t.Errorf("If-None-Match %s: %d, want 304", etag, rec.Code)
		}
	})
	t.Run("public with Auth", func(t *testing.T) {
		h := httpapi.New(e, &httpapi.Options{Logger: quiet(), Auth: func(*http.Request) error { return httpapi.ErrUnauthorized }})
		checkOffline(t, getDocs(t, h, nil))
	})
	t.Run("real server, HEAD", func(t *testing.T) {
		srv := httptest.NewServer(h)
		defer srv.Close()
		resp, err := http.Head(srv.URL + "/docs")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ContentLength != int64(len(page)) {
			t.Errorf("HEAD /docs: %d, length %d, want %d", resp.StatusCode, resp.ContentLength, len(page))
		}
	})
}

// TestDocsHandlerMarkdown checks the markdown subset the page renders
// from descriptions and that everything else in the document is escaped.
func TestDocsHandlerMarkdown(t *testing.T) {
	_, api := humatest.New(t, httpapi.Config(&httpapi.Options{Title: "Docs <b>test</b>", BasePath: "/dg"}))
	type in struct {
		Q    string `query:"q" enum:"a&b,<c>" doc:"Pick <one>"`
		Body struct {
			Name  string `json:"name" doc:"A **name**, not <b>bold</b>"`
			Inner struct {
				Deeper struct {
					Deepest struct {
						Leaf string `json:"leaf"`
					} `json:"deepest"`
				} `json:"deeper"`
			} `json:"inner"`
		}
	}
	cases := []struct{ description, want string }{
		{"plain <script>alert(1)</script> & \"quotes\"", "<p>plain &lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;quotes&#34;</p>"},
		{"a `x<y` b", "<p>a <code>x&lt;y</code> b</p>"},
		{"**bold `c`** d", "<p><strong>bold <code>c</code></strong> d</p>"},
		{"un**closed and a lone ` tick", "<p>un**closed and a lone ` tick</p>"},
		{"one * star", "<p>one * star</p>"},
		{"p1\nsame\n\n  \np2", "<p>p1\nsame</p>\n<p>p2</p>"},
		{"**`a**`**", "<p><strong><code>a**</code></strong></p>"},
		{"<a href=\"https://example.com\">x</a>", "<p>&lt;a href=&#34;https://example.com&#34;&gt;x&lt;/a&gt;</p>"},
	}
	for i, c := range cases {
		huma.Register(api, huma.Operation{OperationID: "case-" + string(rune('a'+i)), Method: http.MethodPost,
			Path: "/c/" + string(rune('a'+i)), Summary: "Case <" + c.description + ">", Tags: []string{"<T>"},
			Description: c.description},
			func(context.Context, *in) (*struct{}, error) { return nil, nil })
	}
	page := checkOffline(t, getDocs(t, httpapi.DocsHandler(api), nil))
	for i, c := range cases {
		id := `<article id="op-case-` + string(rune('a'+i)) + `">`
		start := strings.Index(page, id)
		if start < 0 {
			t.Fatalf("no %s", id)
		}
		art := page[start:]
		art = art[:strings.Index(art, "</article>")]
		if !strings.Contains(art, c.want) {
			t.Errorf("description %q: want %q in\n%s", c.description, c.want, art)
		}
	}
	for _, want := range []string{
		"<h1>Docs &lt;b&gt;test&lt;/b&gt; ", "Base path: <code>/dg</code>",
		`<h2 id="tag-t">&lt;T&gt;</h2>`, `<p class="perm">Public: no API token needed.</p>`,
		"<td>Pick &lt;one&gt;<div", `<code>&#34;a&amp;b&#34;</code>, <code>&#34;&lt;c&gt;&#34;</code>`,
		"A <strong>name</strong>, not &lt;b&gt;bold&lt;/b&gt;",
		`<code>inner.deeper.deepest</code>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(page, "inner.deeper.deepest.leaf") {
		t.Error("nested properties are listed two levels deep, not three")
	}
}
