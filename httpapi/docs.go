package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// DocsHandler returns the handler of GET /docs: a reference of api's
// OpenAPI document rendered on the server as one HTML page, with no
// script and nothing loaded from elsewhere (huma's own docs page loads
// its UI from a CDN and is blank without internet). New mounts it; a
// service that calls Register on its own huma API (with DocsPath "" as
// in Config) mounts it beside that API's openapi.json, which the page
// links to by a relative URL, so it works under a path prefix too.
//
// The page is rendered once, on its first request: register every
// operation before serving it.
func DocsHandler(api huma.API) http.Handler {
	render := sync.OnceValues(func() ([]byte, error) {
		var b bytes.Buffer
		err := docsTemplate.Execute(&b, docsPageOf(api.OpenAPI()))
		return b.Bytes(), err
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, err := render()
		if err != nil {
			http.Error(w, "render docs: "+err.Error(), http.StatusInternalServerError)
			return
		}
		sum := sha256.Sum256(page)
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", docsCSP)
		h.Set("Cache-Control", "no-cache") // revalidate: the ETag changes with the document
		h.Set("ETag", `"`+base64.RawURLEncoding.EncodeToString(sum[:16])+`"`)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(page))
	})
}

// docsCSP allows the page's one <style> block (by its hash) and nothing
// else: no script, image, font, frame or connection.
var docsCSP = func() string {
	sum := sha256.Sum256([]byte(docsCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

type docsPage struct {
	Title, Version, OpenAPI string
	Description             template.HTML
	Servers                 []string
	CSS                     template.CSS
	Tags                    []*docsTag
}

type docsTag struct {
	Name, ID    string
	Description template.HTML
	Ops         []*docsOp // every operation with this tag, for the contents
	Primary     []*docsOp // those whose first tag it is, described in its section
}

type docsOp struct {
	ID, Method, Path, Summary string
	Deprecated                bool
	Description, Permission   template.HTML
	Params                    []docsField
	Body                      *docsBody
	Responses                 []docsResponse
}

type docsField struct {
	Name, In, Type   string
	Depth            int // 0 for a property of the body, 1 and 2 for nested ones
	Required         bool
	Description      template.HTML
	Enum             []string
	Default, Example string
}

type docsBody struct {
	Required    bool
	Description template.HTML
	Content     []docsContent
}

type docsContent struct {
	MediaType, Type string
	Fields          []docsField
}

type docsResponse struct {
	Status      string
	Description template.HTML
	Content     []docsContent
}

// docsNestDepth is how deep nested object properties of a request body
// are listed (as dotted names: a.b.c).
const docsNestDepth = 2

func docsPageOf(oapi *huma.OpenAPI) *docsPage {
	p := &docsPage{OpenAPI: oapi.OpenAPI, CSS: template.CSS(docsCSS)}
	if oapi.Info != nil {
		p.Title, p.Version, p.Description = oapi.Info.Title, oapi.Info.Version, markdown(oapi.Info.Description)
	}
	if p.Title == "" {
		p.Title = "API"
	}
	for _, s := range oapi.Servers {
		if s != nil && s.URL != "" {
			p.Servers = append(p.Servers, s.URL)
		}
	}
	var reg huma.Registry
	if oapi.Components != nil {
		reg = oapi.Components.Schemas
	}
	tags := map[string]*docsTag{}
	tag := func(name string) *docsTag {
		t := tags[name]
		if t == nil {
			t = &docsTag{Name: name, ID: "tag-" + docsSlug(name)}
			tags[name] = t
			p.Tags = append(p.Tags, t)
		}
		return t
	}
	for _, t := range oapi.Tags { // declared tags first, in their order
		if t != nil {
			tag(t.Name).Description = markdown(t.Description)
		}
	}
	paths := make([]string, 0, len(oapi.Paths))
	for path := range oapi.Paths {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	ids := map[string]bool{}
	for _, path := range paths {
		item := oapi.Paths[path]
		if item == nil {
			continue
		}
		for _, m := range []struct {
			method string
			op     *huma.Operation
		}{{"GET", item.Get}, {"POST", item.Post}, {"PUT", item.Put}, {"PATCH", item.Patch},
			{"DELETE", item.Delete}, {"HEAD", item.Head}, {"OPTIONS", item.Options}, {"TRACE", item.Trace}} {
			if m.op == nil {
				continue
			}
			op := docsOpOf(reg, m.method, path, m.op)
			op.ID = docsUniqueID(ids, "op-"+docsSlug(m.op.OperationID), "op-"+docsSlug(m.method+" "+path))
			names := m.op.Tags
			if len(names) == 0 {
				names = []string{"Other"}
			}
			for i, name := range names {
				t := tag(name)
				t.Ops = append(t.Ops, op)
				if i == 0 {
					t.Primary = append(t.Primary, op)
				}
			}
		}
	}
	return p
}

func docsOpOf(reg huma.Registry, method, path string, o *huma.Operation) *docsOp {
	perm := permissionSentence(permissionsOfDoc(o))
	op := &docsOp{Method: method, Path: path, Summary: o.Summary, Deprecated: o.Deprecated,
		Permission: markdownInline(perm)}
	// The description ends with the permission sentence (see secure): it
	// is shown once, as the permission line.
	var paras []string
	for _, para := range docsParagraphs(o.Description) {
		if para != perm {
			paras = append(paras, para)
		}
	}
	op.Description = markdown(strings.Join(paras, "\n\n"))
	for _, prm := range o.Parameters {
		if prm == nil {
			continue
		}
		f := docsField{Name: prm.Name, In: prm.In, Required: prm.Required}
		desc := prm.Description
		if s := resolve(reg, prm.Schema); s != nil {
			f.Type = schemaType(prm.Schema)
			f.Enum = docsValues(s.Enum)
			if s.Default != nil {
				f.Default = docsValue(s.Default)
			}
			if len(s.Examples) > 0 {
				f.Example = docsValue(s.Examples[0])
			}
			if desc == "" {
				desc = s.Description
			}
		}
		if prm.Example != nil {
			f.Example = docsValue(prm.Example)
		}
		f.Description = markdownInline(desc)
		op.Params = append(op.Params, f)
	}
	if rb := o.RequestBody; rb != nil {
		body := &docsBody{Required: rb.Required, Description: markdown(rb.Description)}
		for _, mt := range docsKeys(rb.Content) {
			c := docsContent{MediaType: mt}
			if s := rb.Content[mt].Schema; s != nil {
				c.Type = schemaType(s)
				c.Fields = docsFields(reg, s, "", 0)
			}
			body.Content = append(body.Content, c)
		}
		op.Body = body
	}
	statuses := docsKeys(o.Responses)
	sort.SliceStable(statuses, func(i, j int) bool { return statusOrder(statuses[i]) < statusOrder(statuses[j]) })
	for _, status := range statuses {
		resp := o.Responses[status]
		if resp == nil {
			continue
		}
		r := docsResponse{Status: status, Description: markdownInline(resp.Description)}
		for _, mt := range docsKeys(resp.Content) {
			c := docsContent{MediaType: mt}
			if s := resp.Content[mt].Schema; s != nil {
				c.Type = schemaType(s)
			}
			r.Content = append(r.Content, c)
		}
		op.Responses = append(op.Responses, r)
	}
	return op
}

// permissionSentence says who may call an operation that accepts perms
// (any one of them; none: any valid token), or that is public, in the
// words secure appends to its description.
func permissionSentence(perms []string, public bool) string {
	switch {
	case public:
		return "Public: no API token needed."
	case len(perms) == 0:
		return "Needs any valid API token."
	}
	return "Needs permission `" + strings.Join(perms, "` or `") + "`."
}

// permissionsOfDoc returns the permissions op's document lists
// (PermissionsExtension) and whether op is public: it has neither those
// nor a security requirement.
func permissionsOfDoc(op *huma.Operation) ([]string, bool) {
	switch perms := op.Extensions[PermissionsExtension].(type) {
	case []string:
		return perms, false
	case []any: // a document read back from JSON
		var out []string
		for _, p := range perms {
			if s, ok := p.(string); ok {
				out = append(out, s)
			}
		}
		return out, false
	}
	return nil, len(op.Security) == 0
}

// docsFields lists the properties of the object s (after $ref), sorted by
// name, each followed by its own properties up to docsNestDepth.
func docsFields(reg huma.Registry, s *huma.Schema, prefix string, depth int) []docsField {
	obj := resolve(reg, s)
	if obj == nil {
		return nil
	}
	if obj.Type == huma.TypeArray && prefix != "" {
		obj = resolve(reg, obj.Items)
		prefix += "[]"
		if obj == nil {
			return nil
		}
	}
	var fields []docsField
	for _, name := range docsKeys(obj.Properties) {
		ps := obj.Properties[name]
		target := resolve(reg, ps)
		if target == nil {
			continue
		}
		f := docsField{Name: prefix + name, Type: schemaType(ps), Depth: depth,
			Required: slices.Contains(obj.Required, name)}
		desc := ps.Description
		if desc == "" {
			desc = target.Description
		}
		if ps.ReadOnly || target.ReadOnly {
			desc = strings.TrimSpace(desc + " (read-only)")
		}
		if ps.WriteOnly || target.WriteOnly {
			desc = strings.TrimSpace(desc + " (write-only)")
		}
		f.Description = markdownInline(desc)
		f.Enum = docsValues(target.Enum)
		if d := ps.Default; d != nil {
			f.Default = docsValue(d)
		} else if target.Default != nil {
			f.Default = docsValue(target.Default)
		}
		if ex := append(slices.Clip(ps.Examples), target.Examples...); len(ex) > 0 {
			f.Example = docsValue(ex[0])
		}
		fields = append(fields, f)
		if depth < docsNestDepth {
			fields = append(fields, docsFields(reg, ps, f.Name+".", depth+1)...)
		}
	}
	return fields
}

// resolve follows s's $ref into the registry; nil if it goes nowhere.
func resolve(reg huma.Registry, s *huma.Schema) *huma.Schema {
	for range 8 { // a chain of $refs, never a loop
		if s == nil || s.Ref == "" {
			return s
		}
		if reg == nil {
			return nil
		}
		s = reg.SchemaFromRef(s.Ref)
	}
	return nil
}

// schemaType names s's type: a component's name, "array of X", "string
// (date-time)", "integer or null".
func schemaType(s *huma.Schema) string {
	if s == nil {
		return ""
	}
	if s.Ref != "" {
		return s.Ref[strings.LastIndex(s.Ref, "/")+1:]
	}
	var t string
	switch {
	case s.Type == huma.TypeArray:
		t = "array"
		if it := schemaType(s.Items); it != "" {
			t += " of " + it
		}
	case s.Type != "":
		t = s.Type
		if s.Format != "" {
			t += " (" + s.Format + ")"
		}
	default:
		var alts []string
		for _, a := range append(slices.Clip(s.OneOf), s.AnyOf...) {
			if at := schemaType(a); at != "" && !slices.Contains(alts, at) {
				alts = append(alts, at)
			}
		}
		t = strings.Join(alts, " or ")
	}
	if t == "" {
		t = "any"
	}
	if s.Nullable {
		t += " or null"
	}
	return t
}

func docsValues(vs []any) []string {
	var out []string
	for _, v := range vs {
		out = append(out, docsValue(v))
	}
	return out
}

// docsValue writes v as JSON, so that "1" and 1 differ.
func docsValue(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the template escapes
	if enc.Encode(v) != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func docsKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// statusOrder sorts 2XX before 200 before 4XX, and default last.
func statusOrder(s string) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n * 10
	}
	if len(s) == 3 && s[1:] == "XX" && s[0] >= '1' && s[0] <= '5' {
		return int(s[0]-'0')*1000 - 1
	}
	return 1 << 30
}

var docsSlugRun = regexp.MustCompile(`[^a-z0-9]+`)

// docsSlug makes an anchor from s: lower-case letters, digits and dashes.
func docsSlug(s string) string {
	return strings.Trim(docsSlugRun.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

func docsUniqueID(seen map[string]bool, id, fallback string) string {
	if id == "op-" {
		id = fallback
	}
	for n, base := 2, id; seen[id]; n++ {
		id = base + "-" + strconv.Itoa(n)
	}
	seen[id] = true
	return id
}

var docsBlankLine = regexp.MustCompile(`\n[ \t]*\n`)

func docsParagraphs(s string) []string {
	var paras []string
	for _, p := range docsBlankLine.Split(strings.ReplaceAll(s, "\r\n", "\n"), -1) {
		if p = strings.TrimSpace(p); p != "" {
			paras = append(paras, p)
		}
	}
	return paras
}

// markdown renders the subset of Markdown our descriptions use:
// paragraphs (split at blank lines) of markdownInline text.
func markdown(s string) template.HTML {
	var b strings.Builder
	for _, p := range docsParagraphs(s) {
		b.WriteString("<p>")
		b.WriteString(string(markdownInline(p)))
		b.WriteString("</p>\n")
	}
	return template.HTML(b.String())
}

// markdownInline renders `code` and **bold** in s and escapes everything
// else; a delimiter without its closing one is text.
func markdownInline(s string) template.HTML {
	var b strings.Builder
	bold := false
	for i := 0; i < len(s); {
		switch {
		case s[i] == '`':
			if end := strings.IndexByte(s[i+1:], '`'); end >= 0 {
				b.WriteString("<code>" + template.HTMLEscapeString(s[i+1:i+1+end]) + "</code>")
				i += end + 2
				continue
			}
		case strings.HasPrefix(s[i:], "**"):
			if bold {
				b.WriteString("</strong>")
				bold = false
				i += 2
				continue
			}
			if strings.Contains(s[i+2:], "**") {
				b.WriteString("<strong>")
				bold = true
				i += 2
				continue
			}
		}
		next := i + 1
		if j := strings.IndexAny(s[next:], "`*"); j >= 0 {
			next += j
		} else {
			next = len(s)
		}
		b.WriteString(template.HTMLEscapeString(s[i:next]))
		i = next
	}
	if bold { // the closing ** was inside `code`
		b.WriteString("</strong>")
	}
	return template.HTML(b.String())
}

var docsTemplate = template.Must(template.New("docs").Funcs(template.FuncMap{
	"lower": strings.ToLower,
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}} {{.Version}} reference</title>
<style>{{.CSS}}</style>
</head>
<body>
<header>
<h1>{{.Title}} <span class="ver">{{.Version}}</span></h1>
{{.Description}}
{{- with .Servers}}<p>Base path: {{range $i, $s := .}}{{if $i}}, {{end}}<code>{{$s}}</code>{{end}}</p>{{end}}
<p class="raw">OpenAPI {{.OpenAPI}} document: <a href="openapi.json">openapi.json</a> · <a href="openapi.yaml">openapi.yaml</a></p>
</header>
<nav>
<h2>Contents</h2>
{{- range .Tags}}
<h3>{{if .Primary}}<a href="#{{.ID}}">{{.Name}}</a>{{else}}{{.Name}}{{end}}</h3>
<ul>
{{- range .Ops}}
<li><a href="#{{.ID}}"><span class="m {{lower .Method}}">{{.Method}}</span> {{.Path}}</a> {{.Summary}}</li>
{{- end}}
</ul>
{{- end}}
</nav>
<main>
{{- range .Tags}}{{if .Primary}}
<section>
<h2 id="{{.ID}}">{{.Name}}</h2>
{{- with .Description}}
{{.}}{{end}}
{{- range .Primary}}
<article id="{{.ID}}">
<h3><a href="#{{.ID}}"><span class="m {{lower .Method}}">{{.Method}}</span> <code>{{.Path}}</code></a></h3>
<p class="sum">{{.Summary}}{{if .Deprecated}} <em>(deprecated)</em>{{end}}</p>
{{with .Description}}{{.}}{{end -}}
<p class="perm">{{.Permission}}</p>
{{- with .Params}}
<h4>Parameters</h4>
<table><thead><tr><th>Name</th><th>In</th><th>Type</th><th>Required</th><th>Description</th></tr></thead><tbody>
{{- range .}}
<tr><td><code>{{.Name}}</code></td><td>{{.In}}</td><td>{{.Type}}</td><td>{{if .Required}}yes{{end}}</td><td>{{template "field" .}}</td></tr>
{{- end}}
</tbody></table>
{{- end}}
{{- with .Body}}
<h4>Request body{{if .Required}} (required){{end}}</h4>
{{- with .Description}}
{{.}}{{end}}
{{- range .Content}}
<p><code>{{.MediaType}}</code>: {{.Type}}</p>
{{- with .Fields}}
<table><thead><tr><th>Property</th><th>Type</th><th>Required</th><th>Description</th></tr></thead><tbody>
{{- range .}}
<tr><td class="d{{.Depth}}"><code>{{.Name}}</code></td><td>{{.Type}}</td><td>{{if .Required}}yes{{end}}</td><td>{{template "field" .}}</td></tr>
{{- end}}
</tbody></table>
{{- end}}
{{- end}}
{{- end}}
<h4>Responses</h4>
<table><thead><tr><th>Status</th><th>Description</th><th>Content</th></tr></thead><tbody>
{{- range .Responses}}
<tr><td>{{.Status}}</td><td>{{.Description}}</td><td>{{range $i, $c := .Content}}{{if $i}}<br>{{end}}<code>{{$c.MediaType}}</code>{{with $c.Type}} {{.}}{{end}}{{end}}</td></tr>
{{- end}}
</tbody></table>
</article>
{{- end}}
</section>
{{- end}}{{end}}
</main>
</body>
</html>
{{define "field"}}{{.Description}}
{{- with .Enum}}<div class="v">One of: {{range $i, $v := .}}{{if $i}}, {{end}}<code>{{$v}}</code>{{end}}</div>{{end}}
{{- with .Default}}<div class="v">Default: <code>{{.}}</code></div>{{end}}
{{- with .Example}}<div class="v">Example: <code>{{.}}</code></div>{{end}}
{{- end}}`))

// docsCSS is the page's only style, allowed by its hash in docsCSP.
const docsCSS = `
body{font:15px/1.5 system-ui,sans-serif;color:#1d2430;background:#fff;margin:0 auto;max-width:72rem;padding:0 1.25rem 4rem}
h1{margin:1.5rem 0 .5rem}.ver{font-size:.6em;color:#5b6676;font-weight:normal}
h2{border-bottom:2px solid #d8dee8;padding-bottom:.25rem;margin-top:2.5rem}
h3{margin:0}h4{margin:1rem 0 .25rem}
a{color:#1a5fb4;text-decoration:none}a:hover{text-decoration:underline}
code{font:.9em/1.4 ui-monospace,monospace;background:#f1f3f7;padding:0 .2em;border-radius:3px;overflow-wrap:anywhere}
nav ul{list-style:none;padding:0;margin:0 0 .75rem}nav li{padding:.1rem 0}nav h3{font-size:1rem;margin-top:.75rem}
article{border:1px solid #d8dee8;border-radius:6px;padding:.75rem 1rem;margin:1rem 0}
article:target{border-color:#1a5fb4;box-shadow:0 0 0 2px #c4d8f3}
h3 a{color:inherit}.sum{font-weight:600;margin:.25rem 0}.perm{color:#5b6676}
.m{display:inline-block;min-width:4.2em;font:600 .8em ui-monospace,monospace;text-align:center;border-radius:3px;padding:.05em .3em;color:#fff;background:#5b6676}
.get{background:#1f7a4d}.post{background:#1a5fb4}.put{background:#a05a00}.patch{background:#7a4fa0}.delete{background:#b3261e}
table{border-collapse:collapse;width:100%;margin:.25rem 0 .5rem;font-size:.93em}
th,td{border:1px solid #d8dee8;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f6f8fa}
td p{margin:0}.v{color:#5b6676}.d1{padding-left:1.5rem}.d2{padding-left:2.75rem}
@media (prefers-color-scheme:dark){body{background:#14181f;color:#dde3ea}code{background:#242a35}th{background:#1c222b}
th,td,article,h2{border-color:#323a47}a{color:#78aeea}.perm,.v,.ver{color:#9aa5b4}}
`
