// Package httpapi is the optional REST API of DataGuardian: a huma v2 API
// over net/http that exposes an [engine.Engine] with the paths, verbs and
// JSON shapes of the product specification, an OpenAPI 3.1 document at
// /openapi.json and a documentation page at /docs ([DocsHandler]: HTML
// rendered on the server from that document, nothing loaded from the
// internet, so it works on an offline server).
//
// [New] returns an http.Handler any service can mount on its own mux.
// Errors are RFC 9457 problem JSON (application/problem+json) mapped from
// the engine's sentinel errors in one place; request bodies are limited in
// size and unknown JSON fields are rejected.
//
// [New] also serves the web console (package console) at / and /assets/:
// public files that call the API with the token the user signs in with.
//
// Authentication: pass [TokenAuth] (API tokens stored by the engine, each
// holding permissions) or your own check as [Options].Auth to check every
// /api request, or put the handler behind your own middleware. GET
// /health, /openapi.json, /docs and the console's files are public.
package httpapi
