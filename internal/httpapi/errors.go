package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
)

// Error is the one error type every handler failure becomes: a status, a
// stable machine-readable code and a message for people.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter int // seconds, for 429 and 503
	// FromFunction marks the failure the function itself reported (it
	// returned an error or trapped): its 500 is the function's answer, not
	// aerofn's, so it carries no x-relay-error.
	FromFunction bool
}

// relayErrorHeader marks every error aerofn generates itself.
const relayErrorHeader = "X-Relay-Error"

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func apiError(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badRequest(code, format string, args ...any) *Error {
	return apiError(http.StatusBadRequest, code, format, args...)
}

func notFound(format string, args ...any) *Error {
	return apiError(http.StatusNotFound, "not_found", format, args...)
}

type body struct {
	Error   string `json:"error"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// handlerFunc is an http handler that returns its failure.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (a *API) wrap(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.writeError(w, r, err)
		}
	}
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			e = apiError(http.StatusRequestEntityTooLarge, "payload_too_large", "request body exceeds %d bytes", mbe.Limit)
		} else {
			a.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "error", err)
			e = apiError(http.StatusInternalServerError, "internal_error", "internal error; see the server log")
		}
	}
	if (e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable) && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if !e.FromFunction {
		// functions-js reads this to tell aerofn's own errors (FunctionsRelayError)
		// from the function's (FunctionsHttpError).
		w.Header().Set(relayErrorHeader, "true")
	}
	writeJSON(w, e.Status, body{Error: e.Message, Code: e.Code, Message: e.Message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		slog.Error("encoding response", "error", err)
		status = http.StatusInternalServerError
		b = []byte(`{"error":"encoding response","code":"internal_error","message":"encoding response"}`)
		w.Header().Set(relayErrorHeader, "true")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// maxLimit is the most entries one list answers.
const maxLimit = 1000

// limitParam is the request's ?limit=, 1-1000, or def when there is none:
// the one parser of every list endpoint's limit.
func limitParam(r *http.Request, def int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		return 0, badRequest("invalid_limit", "limit %q is not a whole number from 1 to %d", v, maxLimit)
	}
	return n, nil
}

// decodeJSON reads a small JSON body strictly.
func decodeJSON(r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("invalid_json", "request body is not valid JSON for this endpoint: %v", err)
	}
	// One JSON value and nothing after it: a body with more is not what the
	// client meant to send, and acting on its first half would store that.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("invalid_json", "request body has data after its JSON value")
	}
	return nil
}
