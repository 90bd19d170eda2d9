package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
)

// Text the API refuses in requests: the metadata databases cannot store a
// NUL character (PostgreSQL refuses it in text), and invalid UTF-8 would
// be stored as something else than what was sent.
const (
	msgNUL         = "contains a NUL character (U+0000): remove it"
	msgKeyNUL      = "has a property name containing a NUL character (U+0000): remove it"
	msgInvalidUTF8 = "is not valid UTF-8: send UTF-8 text"
)

// checkText is an operation middleware refusing, with 422 problem JSON
// naming the field, a path parameter, a query value or a string of the
// JSON body (value or property name) that holds a NUL character or invalid
// UTF-8, before the handler runs. It reads the body (at most the
// operation's MaxBodyBytes, so huma still answers 413 beyond it) and hands
// the bytes on to huma.
func checkText(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		op := ctx.Operation()
		for _, p := range op.Parameters {
			if p == nil || p.In != "path" {
				continue
			}
			if msg := badText(ctx.Param(p.Name)); msg != "" {
				writeTextError(api, ctx, "path."+p.Name, msg)
				return
			}
		}
		u := ctx.URL()
		for name, values := range u.Query() {
			for _, v := range values {
				if msg := badText(name + v); msg != "" {
					writeTextError(api, ctx, "query."+strings.ToValidUTF8(strings.ReplaceAll(name, "\x00", ""), ""), msg)
					return
				}
			}
		}
		if op.RequestBody == nil {
			next(ctx)
			return
		}
		body, err := readBounded(ctx, op)
		if err == nil && int64(len(body)) != op.MaxBodyBytes { // at the limit huma answers 413
			if loc, msg := checkJSONText(body); loc != "" {
				writeTextError(api, ctx, loc, msg)
				return
			}
		}
		var r io.Reader = bytes.NewReader(body)
		if err != nil {
			r = io.MultiReader(r, errReader{err}) // huma reports it as it would have
		}
		next(&bodyContext{humaContext: ctx, body: r})
	}
}

// readBounded reads the request body of ctx: at most op.MaxBodyBytes
// (when positive), within op.BodyReadTimeout as huma would.
func readBounded(ctx huma.Context, op *huma.Operation) ([]byte, error) {
	r := ctx.BodyReader()
	if r == nil {
		return nil, nil
	}
	if op.BodyReadTimeout > 0 {
		_ = ctx.SetReadDeadline(time.Now().Add(op.BodyReadTimeout))
	} else if op.BodyReadTimeout < 0 {
		_ = ctx.SetReadDeadline(time.Time{})
	}
	if op.MaxBodyBytes > 0 {
		r = io.LimitReader(r, op.MaxBodyBytes)
	}
	return io.ReadAll(r)
}

// badText returns why s may not be stored, or "".
func badText(s string) string {
	switch {
	case strings.IndexByte(s, 0) >= 0:
		return msgNUL
	case !utf8.ValidString(s):
		return msgInvalidUTF8
	}
	return ""
}

// checkJSONText walks the JSON text body and returns the location (e.g.
// "body.options.x", "body.items[2]") and the problem of the first string
// holding a NUL character or invalid UTF-8, or "" when there is none. A
// body that is not JSON is left to huma, except for a NUL byte or invalid
// UTF-8 anywhere in it.
func checkJSONText(body []byte) (string, string) {
	if len(body) == 0 {
		return "", ""
	}
	type frame struct {
		object  bool
		wantKey bool   // object: the next string is a property name
		key     string // object: the current property
		index   int    // array: the current element
	}
	var stack []frame
	// pathOf is the location of the value at the current position of the
	// n outermost containers.
	pathOf := func(n int) string {
		var b strings.Builder
		b.WriteString("body")
		for _, f := range stack[:n] {
			if f.object {
				b.WriteString("." + strings.ToValidUTF8(strings.ReplaceAll(f.key, "\x00", ""), ""))
			} else {
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
			}
		}
		return b.String()
	}
	path := func() string { return pathOf(len(stack)) }
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			break // the end, or not JSON: huma says why
		}
		raw := body[start:dec.InputOffset()] // the token and the separators before it
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].wantKey = true
			}
			continue
		}
		if top != nil && top.object && top.wantKey {
			key := tok.(string)
			if strings.IndexByte(key, 0) >= 0 {
				return pathOf(len(stack) - 1), msgKeyNUL
			}
			top.key, top.wantKey = key, false
			if !utf8.Valid(raw) {
				return path(), msgInvalidUTF8
			}
			continue
		}
		if top != nil && !top.object {
			top.index++
		}
		switch v := tok.(type) {
		case json.Delim: // '{' or '['
			stack = append(stack, frame{object: v == '{', wantKey: v == '{', index: -1})
			continue
		case string:
			if strings.IndexByte(v, 0) >= 0 {
				return path(), msgNUL
			}
			if !utf8.Valid(raw) {
				return path(), msgInvalidUTF8
			}
		}
		if top != nil && top.object {
			top.wantKey = true
		}
	}
	if bytes.IndexByte(body, 0) >= 0 {
		return "body", msgNUL
	}
	if !utf8.Valid(body) {
		return "body", msgInvalidUTF8
	}
	return "", ""
}

// writeTextError answers 422 naming location; the value is not echoed.
func writeTextError(api huma.API, ctx huma.Context, location, msg string) {
	_ = huma.WriteErr(api, ctx, http.StatusUnprocessableEntity, "validation failed: "+location+" "+msg,
		&huma.ErrorDetail{Location: location, Message: msg})
}

// humaContext is huma.Context under a name that can be embedded beside
// its Context method.
type humaContext huma.Context

// bodyContext is a huma.Context whose body was read already.
type bodyContext struct {
	humaContext
	body io.Reader
}

func (c *bodyContext) BodyReader() io.Reader { return c.body }

// Unwrap returns the adapter's context (humago.Unwrap follows it).
func (c *bodyContext) Unwrap() huma.Context { return c.humaContext }

// errReader returns its error: the read error of a body, handed on.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
