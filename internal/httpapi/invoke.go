package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/invoker"
	"github.com/aerodb/aerofn/internal/registry"
)

// httpEvent is what handler receives for an HTTP call (docs/ABI.md).
type httpEvent struct {
	Trigger      string            `json:"trigger"`
	Method       string            `json:"method"`
	Path         string            `json:"path"`
	Headers      map[string]string `json:"headers"`
	Query        map[string]string `json:"query"`
	Body         json.RawMessage   `json:"body"`
	BodyEncoding string            `json:"body_encoding,omitempty"`
	UserID       *string           `json:"user_id"`
	Role         string            `json:"role"`
	RequestID    string            `json:"request_id"`
}

// hiddenHeaders never reach a function: the caller's credentials are
// represented by user_id and role instead.
var hiddenHeaders = map[string]bool{"authorization": true, "apikey": true}

func (a *API) invoke(w http.ResponseWriter, r *http.Request, name, subpath string) error {
	tokenPrincipal, tokErr := a.principal(r)
	if tokErr != nil && !errors.Is(tokErr, auth.ErrMissingToken) {
		return tokErr
	}
	fn, err := a.cfg.Invoker.Lookup(r.Context(), name)
	if errors.Is(err, invoker.ErrNotFound) {
		return notFound("function %q does not exist or is disabled", name)
	}
	if err != nil {
		return err
	}
	p := tokenPrincipal
	if tokErr != nil { // missing
		if fn.Config.RequiresJWT() {
			return apiError(http.StatusUnauthorized, "missing_token", "function %q requires a bearer token", name)
		}
		p = auth.Anon()
	}
	if !fn.Config.AllowsMethod(r.Method) {
		w.Header().Set("Allow", strings.Join(fn.Config.Methods, ", "))
		return methodNotAllowed(r.Method, strings.Join(fn.Config.Methods, ", "))
	}
	requestID := r.Header.Get("X-Request-Id")
	if requestID == "" || len(requestID) > 128 {
		requestID = uuid.NewString()
	}
	body, err := readInvokeBody(w, r)
	if err != nil {
		return err
	}
	ev := httpEvent{Trigger: "http", Method: r.Method, Path: subpath, Headers: map[string]string{}, Query: map[string]string{},
		RequestID: requestID}
	eff := invoker.EffectivePrincipal(fn, p)
	ev.Role = string(eff.Role)
	if eff.UserID != "" {
		ev.UserID = &eff.UserID
	}
	for k := range r.Header {
		lk := strings.ToLower(k)
		if hiddenHeaders[lk] {
			continue
		}
		ev.Headers[lk] = r.Header.Get(k)
	}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			ev.Query[k] = v[0]
		}
	}
	ev.Body, ev.BodyEncoding = eventBody(r.Header.Get("Content-Type"), body)
	evJSON, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encoding event: %w", err)
	}
	out, err := a.cfg.Invoker.Invoke(r.Context(), fn, invoker.Call{Trigger: "http", Event: evJSON, Principal: p, RequestID: requestID})
	if err != nil {
		return a.invokeError(err)
	}
	return a.respond(w, fn, out, requestID)
}

func (a *API) invokeError(err error) error {
	if errors.Is(err, invoker.ErrBusy) {
		return &Error{Status: http.StatusTooManyRequests, Code: "too_many_requests", Message: "this node is running as many calls as it admits; retry shortly", RetryAfter: 1}
	}
	if errors.Is(err, invoker.ErrNotReady) {
		return &Error{Status: http.StatusServiceUnavailable, Code: "not_ready",
			Message: "this node has no compiled copy of the function's module yet and is compiling it; retry in a few seconds", RetryAfter: 5}
	}
	return err
}

// respond maps an outcome to the HTTP answer.
func (a *API) respond(w http.ResponseWriter, fn registry.Function, out invoker.Outcome, requestID string) error {
	w.Header().Set("X-Request-Id", requestID)
	w.Header().Set("X-Aerofn-Invocation-Id", out.ID)
	switch out.Status {
	case engine.StatusSuccess:
		writeResult(w, out.Output)
		return nil
	case engine.StatusTimeout:
		return apiError(http.StatusGatewayTimeout, "timeout", "function %q did not finish within %s", fn.Name, fn.Config.TimeoutDuration())
	case engine.StatusMemoryExceeded:
		return apiError(http.StatusInsufficientStorage, "memory_limit_exceeded", "function %q exceeded its memory limit of %d MiB", fn.Name, fn.Config.MemoryBytes()>>20)
	default:
		msg := out.Error
		if msg == "" {
			msg = "function failed"
		}
		return apiError(http.StatusInternalServerError, "function_error", "%s", msg)
	}
}

// readInvokeBody reads a body that becomes an event, at most MaxInvokeBody.
func readInvokeBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxInvokeBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, apiError(http.StatusRequestEntityTooLarge, "payload_too_large", "request body exceeds %d bytes", MaxInvokeBody)
		}
		return nil, badRequest("bad_body", "reading request body: %v", err)
	}
	return body, nil
}

// eventBody is the request body as JSON when it is JSON, a string when it is
// text, and base64 (flagged) when it is binary.
func eventBody(contentType string, body []byte) (json.RawMessage, string) {
	if len(body) == 0 {
		return json.RawMessage("null"), ""
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if (mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "") && json.Valid(body) {
		return json.RawMessage(body), ""
	}
	if utf8.Valid(body) {
		b, _ := json.Marshal(string(body))
		return b, ""
	}
	b, _ := json.Marshal(base64.StdEncoding.EncodeToString(body))
	return b, "base64"
}

type handlerResponse struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       json.RawMessage   `json:"body"`
	IsBase64   bool              `json:"isBase64Encoded"`
}

// hopByHop are headers a function may not set: they describe the connection
// or the framing, which belong to the server (and, set wrongly, could
// desynchronise a proxy in front of aerofn).
var hopByHop = map[string]bool{"Connection": true, "Keep-Alive": true, "Transfer-Encoding": true, "Upgrade": true,
	"Trailer": true, "Te": true, "Proxy-Connection": true, "Proxy-Authenticate": true, "Content-Length": true}

// writeResult maps a handler's result to the response: an object with a
// statusCode is a response description; any other JSON is a 200 body.
func writeResult(w http.ResponseWriter, output []byte) {
	trimmed := bytes.TrimSpace(output)
	if len(trimmed) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if trimmed[0] == '{' && bytes.Contains(trimmed, []byte(`"statusCode"`)) {
		var hr handlerResponse
		if err := json.Unmarshal(trimmed, &hr); err == nil && hr.StatusCode >= 100 && hr.StatusCode <= 599 {
			for k, v := range hr.Headers {
				if !hopByHop[http.CanonicalHeaderKey(k)] {
					w.Header().Set(k, v)
				}
			}
			var body []byte
			var s string
			switch {
			case len(hr.Body) == 0 || string(hr.Body) == "null":
			case json.Unmarshal(hr.Body, &s) == nil:
				body = []byte(s)
				if hr.IsBase64 {
					if dec, err := base64.StdEncoding.DecodeString(s); err == nil {
						body = dec
					}
				}
				if w.Header().Get("Content-Type") == "" {
					w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				}
			default:
				body = hr.Body
				if w.Header().Get("Content-Type") == "" {
					w.Header().Set("Content-Type", "application/json")
				}
			}
			w.WriteHeader(hr.StatusCode)
			_, _ = w.Write(body)
			return
		}
	}
	if json.Valid(trimmed) {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(output)
}
