package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/engine"
	"github.com/dataguardian/dataguardian/manifest"
)

// Errors an Options.Auth hook may wrap to choose the response status: an
// error matching ErrForbidden answers 403, any other error 401.
var (
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
)

// fieldError is an error about one request field. It matches its cause
// with errors.Is and renders as an RFC 9457 error detail naming the field.
type fieldError struct {
	location string // e.g. "body.type", "query.limit"
	value    any
	err      error
}

func (e *fieldError) Error() string { return e.location + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// ErrorDetail implements huma.ErrorDetailer.
func (e *fieldError) ErrorDetail() *huma.ErrorDetail {
	return &huma.ErrorDetail{Location: e.location, Message: message(e.err), Value: e.value}
}

// inField attributes err to the request field at location.
func inField(location string, value any, err error) error {
	return &fieldError{location: location, value: value, err: err}
}

// statusOf is the one place errors become HTTP statuses.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, engine.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, engine.ErrAlreadyExists), errors.Is(err, engine.ErrNotRestorable), errors.Is(err, engine.ErrInUse):
		return http.StatusConflict
	case errors.Is(err, engine.ErrInvalid), errors.Is(err, engine.ErrConfirmation),
		errors.Is(err, drivers.ErrUnknownType), errors.Is(err, manifest.ErrUnknownType),
		errors.Is(err, manifest.ErrUnknownCompression), errors.Is(err, manifest.ErrInvalidOptions):
		return http.StatusUnprocessableEntity
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}

// message is the text of err a person can act on: the engine's message
// without the sentinel's generic prefix.
func message(err error) string {
	return strings.TrimPrefix(err.Error(), engine.ErrInvalid.Error()+": ")
}

// problem turns an error of the engine into RFC 9457 problem JSON. A
// server error is logged and answered with a generic message, since its
// text may name internals; every other error keeps the engine's message,
// which names the field and the fix.
func problem(log *slog.Logger, op string, err error) error {
	var se huma.StatusError
	if errors.As(err, &se) {
		return err // already a response (validation done by a handler)
	}
	status := statusOf(err)
	if status >= 500 {
		log.Error("request failed", "operation", op, "err", err)
		return huma.NewError(status, "internal error: the server logged the cause; retry later or contact the operator")
	}
	var fe *fieldError
	if errors.As(err, &fe) {
		return huma.NewError(status, message(fe.err), fe)
	}
	var ef *engine.FieldError
	if errors.As(err, &ef) && status == http.StatusUnprocessableEntity {
		return huma.NewError(status, message(err), &fieldError{location: "body." + ef.Field, err: err})
	}
	return huma.NewError(status, message(err))
}

// authError makes an Auth hook's error match ErrUnauthorized unless it
// already matches ErrUnauthorized or ErrForbidden.
func authError(err error) error {
	if errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrForbidden) || errors.Is(err, errAuthStore) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnauthorized, err)
}

// writeProblem writes err (a huma.StatusError from problem) outside a huma
// operation, as huma itself would.
func writeProblem(w http.ResponseWriter, err error) {
	var se huma.StatusError
	if !errors.As(err, &se) {
		se = huma.NewError(http.StatusInternalServerError, "internal error")
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(se.GetStatus())
	_ = json.NewEncoder(w).Encode(se)
}

// redactProblem is a huma transformer that drops the echoed value of every
// error detail about the request body: huma's validation echoes the whole
// object for an unexpected property, which may hold a password.
func redactProblem(_ huma.Context, _ string, v any) (any, error) {
	if m, ok := v.(*huma.ErrorModel); ok {
		for _, d := range m.Errors {
			if d != nil && (d.Location == "body" || strings.HasPrefix(d.Location, "body.")) {
				d.Value = nil
			}
		}
	}
	return v, nil
}
