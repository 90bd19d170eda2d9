// Package httpapi will hold the optional huma v2 REST API over an Engine
// (endpoints of the product documents, OpenAPI, server-sent events). It is
// empty until that work lands; the library is complete without it.
package httpapi
