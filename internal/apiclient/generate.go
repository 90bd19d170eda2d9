// Package apiclient is a Go client of DataGuardian's HTTP API, generated
// by oapi-codegen (pinned by the tool directive in go.mod) from
// openapi.json, the OpenAPI 3.0 document httpapi serves at
// /openapi-3.0.json. Do not edit client.gen.go: change the API, then run
//
//	go generate ./internal/apiclient
//
// which dumps the document again (cmd/dumpspec) and regenerates the
// client; TestOpenAPIDocumentFresh and TestClientFresh fail until then.
//
// Authenticate with a bearer token through a RequestEditorFn:
//
//	c, err := apiclient.NewClientWithResponses(url, apiclient.WithRequestEditorFn(
//		func(_ context.Context, r *http.Request) error {
//			r.Header.Set("Authorization", "Bearer "+token)
//			return nil
//		}))
package apiclient

//go:generate go run ./cmd/dumpspec -o openapi.json -o31 openapi-3.1.json
//go:generate go tool oapi-codegen -config cfg.yaml openapi.json
