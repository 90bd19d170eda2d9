package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/yaml"
)

// OpenAPIPaths are where OpenAPIHandler serves the document: OpenAPI 3.1
// as JSON and YAML, and OpenAPI 3.0.3 (for generators that read only 3.0)
// as JSON and YAML.
var OpenAPIPaths = []string{"/openapi.json", "/openapi.yaml", "/openapi-3.0.json", "/openapi-3.0.yaml"}

// OpenAPIHandler serves api's OpenAPI document at the paths of
// OpenAPIPaths (by the last element of the request's path, so it also
// works under a prefix). The 3.0 document is huma's downgrade made valid
// 3.0: in 3.0 a $ref has no siblings (they are ignored, so they are
// dropped) and a schema has no contentMediaType.
func OpenAPIHandler(api huma.API) http.Handler {
	var once sync.Once
	docs := map[string][]byte{}
	var failed error
	build := func() {
		v31, err := json.Marshal(api.OpenAPI())
		if err != nil {
			failed = err
			return
		}
		v30, err := api.OpenAPI().Downgrade()
		if err == nil {
			v30, err = validOpenAPI30(v30)
		}
		if err != nil {
			failed = err
			return
		}
		docs["openapi.json"], docs["openapi-3.0.json"] = v31, v30
		for name, doc := range map[string][]byte{"openapi.yaml": v31, "openapi-3.0.yaml": v30} {
			var b bytes.Buffer
			if err := yaml.Convert(&b, bytes.NewReader(doc)); err != nil {
				failed = err
				return
			}
			docs[name] = b.Bytes()
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(build)
		if failed != nil {
			http.Error(w, "the OpenAPI document could not be made: "+failed.Error(), http.StatusInternalServerError)
			return
		}
		name := path.Base(r.URL.Path)
		doc, ok := docs[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if path.Ext(name) == ".yaml" {
			w.Header().Set("Content-Type", "application/openapi+yaml")
		} else {
			w.Header().Set("Content-Type", "application/openapi+json")
		}
		w.Write(doc)
	})
}

// validOpenAPI30 removes from an OpenAPI 3.0 document (JSON) what 3.0 does
// not allow and huma's downgrade leaves: siblings of $ref, and
// contentMediaType.
func validOpenAPI30(doc []byte) ([]byte, error) {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, err
	}
	var walk func(v any, inProperties bool)
	walk = func(v any, inProperties bool) {
		switch x := v.(type) {
		case map[string]any:
			if _, ref := x["$ref"]; ref && !inProperties {
				for k := range x {
					if k != "$ref" {
						delete(x, k)
					}
				}
				return
			}
			if !inProperties {
				delete(x, "contentMediaType")
			}
			for k, c := range x {
				// The keys of "properties" are names, not keywords.
				walk(c, !inProperties && k == "properties")
			}
		case []any:
			for _, c := range x {
				walk(c, false)
			}
		}
	}
	walk(v, false)
	return json.Marshal(v)
}

// buildVersion is the version of the main module built into the program,
// or "dev".
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// documentTags are the document's tags, in the order of the console's
// menu, each with what its operations are about.
var documentTags = []*huma.Tag{
	{Name: "Dashboard", Description: "Overview numbers for the dashboard"},
	{Name: "Datasources", Description: "The databases and directories to back up, and their connection status"},
	{Name: "Backup jobs", Description: "What to back up, where to, when and for how long"},
	{Name: "Backups", Description: "Completed backups per datasource (the Backups tab), and restores"},
	{Name: "Executions", Description: "Runs of backups, restores, verifications and syncs, their logs and files"},
	{Name: "Storage locations", Description: "Where backups are written"},
	{Name: "Sync jobs", Description: "One database copied into another on a schedule"},
	{Name: "Notifications", Description: "What happened, for the people who need to know"},
	{Name: "Notification templates", Description: "The text of each notification, per channel, with versions"},
	{Name: "Settings", Description: "Notification channels"},
	{Name: "API tokens", Description: "Tokens and the permissions they hold"},
	{Name: "Health", Description: "Liveness and the health of datasources, storages and workers"},
	{Name: "Events", Description: "Server-sent events as things change"},
}

// problemStatuses are the client and server errors an operation of this
// API can answer, with what each means; documentProblems picks those that
// apply to an operation.
var problemStatuses = map[int]string{
	http.StatusUnauthorized:          "No valid API token (missing, unknown, revoked or expired)",
	http.StatusForbidden:             "The token lacks the permission the operation needs (the detail names it)",
	http.StatusNotFound:              "No such object (the detail names which)",
	http.StatusConflict:              "The object's state does not allow it now (the detail says why and what to do)",
	http.StatusRequestEntityTooLarge: "The request body is larger than the server accepts",
	http.StatusUnprocessableEntity:   "Invalid input: each of errors names a field (location) and the fix",
	http.StatusTooManyRequests:       "Too many failed authentications from this address: retry after Retry-After seconds",
	http.StatusInternalServerError:   "The server failed; it logged the cause",
}

// documentProblems documents on the operation method path of api (after
// it was added) the problem JSON responses it can give, in place of a
// generic default: 401, 403 and 429 when it needs a token, 404 when its
// path names an object, 409 when it changes state, 413 and 422 when it
// reads a body, 422 when it reads parameters, and 500.
func documentProblems(api huma.API, method, p string) {
	item := api.OpenAPI().Paths[p]
	if item == nil {
		return
	}
	op := map[string]*huma.Operation{http.MethodGet: item.Get, http.MethodPost: item.Post, http.MethodPut: item.Put,
		http.MethodPatch: item.Patch, http.MethodDelete: item.Delete}[method]
	if op == nil {
		return
	}
	codes := []int{http.StatusInternalServerError}
	if len(op.Security) > 0 {
		codes = append(codes, http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests)
	}
	if strings.Contains(p, "{") {
		codes = append(codes, http.StatusNotFound)
	}
	if method != http.MethodGet && !strings.HasPrefix(p, "/api/notifications") {
		codes = append(codes, http.StatusConflict)
	}
	if op.RequestBody != nil {
		codes = append(codes, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity)
	}
	if len(op.Parameters) > 0 {
		codes = append(codes, http.StatusUnprocessableEntity)
	}
	if op.Responses == nil {
		op.Responses = map[string]*huma.Response{}
	}
	delete(op.Responses, "default")
	for _, code := range codes {
		key := strconv.Itoa(code)
		if _, ok := op.Responses[key]; ok && code != http.StatusInternalServerError && code != http.StatusUnprocessableEntity {
			continue // documented by the operation itself
		}
		r := errorResponse(api)
		r.Description = problemStatuses[code]
		op.Responses[key] = r
	}
}
