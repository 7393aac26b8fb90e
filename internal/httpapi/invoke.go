package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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
	requestID := requestIDFrom(r.Header.Get("X-Request-Id"))
	// Admission before anything that costs: a call this node refuses is
	// answered without reading its body or building its event.
	adm, err := a.cfg.Invoker.Admit()
	if err != nil {
		// The body stays unread; closing the connection after the answer
		// spares the server reading it to keep the connection alive.
		w.Header().Set("Connection", "close")
		return a.invokeError(err)
	}
	defer adm.Release()
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
	ev.Body, ev.BodyEncoding, err = eventBody(r.Header.Get("Content-Type"), body)
	if err != nil {
		return err
	}
	evJSON, err := encodeEvent(ev)
	if err != nil {
		return err
	}
	out, err := adm.Invoke(r.Context(), fn, invoker.Call{Trigger: "http", Event: evJSON, Principal: p, RequestID: requestID,
		CheckOutput: checkResult})
	if err != nil {
		return a.invokeError(err)
	}
	return a.respond(w, fn, out, requestID)
}

// MaxRequestID is the longest X-Request-Id kept.
const MaxRequestID = 128

// requestIDFrom keeps a caller's X-Request-Id when it is 1-128 visible
// ASCII characters (0x21-0x7e: what trace ids and UUIDs are made of), and
// makes a new one otherwise: the id is echoed in a response header, handed
// to the function and stored with the record, so it must be plain text.
func requestIDFrom(h string) string {
	if h == "" || len(h) > MaxRequestID {
		return uuid.NewString()
	}
	for i := 0; i < len(h); i++ {
		if h[i] < 0x21 || h[i] > 0x7e {
			return uuid.NewString()
		}
	}
	return h
}

// encodeEvent encodes an event as the guest reads it, at most MaxEvent
// bytes. Without HTML escaping: a JSON body full of '<' would otherwise
// grow sixfold.
func encodeEvent(ev any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, fmt.Errorf("encoding event: %w", err)
	}
	if buf.Len() > MaxEvent {
		return nil, eventTooLarge(buf.Len())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func eventTooLarge(n int) error {
	return apiError(http.StatusRequestEntityTooLarge, "payload_too_large",
		"the event would be %d bytes, over the %d-byte limit (the body as the function gets it: text escaped, binary in base64)", n, MaxEvent)
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
		return writeResult(w, out.Output)
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
	tooLarge := apiError(http.StatusRequestEntityTooLarge, "payload_too_large", "request body exceeds %d bytes", MaxInvokeBody)
	if r.ContentLength > MaxInvokeBody {
		return nil, tooLarge
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + 1) // +1: ReadFrom stops at EOF without growing again
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxInvokeBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, badRequest("bad_body", "reading request body: %v", err)
	}
	return buf.Bytes(), nil
}

// eventBody is the request body as JSON when it is JSON, a string when it is
// text, and base64 (flagged) when it is binary. Its size as encoded is
// checked before it is encoded: text full of control characters grows
// sixfold, binary by a third.
func eventBody(contentType string, body []byte) (json.RawMessage, string, error) {
	if len(body) == 0 {
		return json.RawMessage("null"), "", nil
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if (mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "") && json.Valid(body) {
		return json.RawMessage(body), "", nil
	}
	if utf8.Valid(body) {
		if n := jsonStringLen(body); n > MaxEvent {
			return nil, "", eventTooLarge(n)
		}
		return jsonNoHTML(string(body)), "", nil
	}
	if n := base64.StdEncoding.EncodedLen(len(body)) + 2; n > MaxEvent {
		return nil, "", eventTooLarge(n)
	}
	return jsonNoHTML(base64.StdEncoding.EncodeToString(body)), "base64", nil
}

// jsonNoHTML encodes a string as encoding/json does, without escaping <, >
// and & (which would make each six bytes).
func jsonNoHTML(s string) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// jsonStringLen is the length of valid UTF-8 s encoded as a JSON string by
// encoding/json without HTML escaping, quotes included.
func jsonStringLen(s []byte) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			case c < 0x20:
				n += 6 // \u00XX
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == '\u2028' || r == '\u2029' || r == utf8.RuneError && size == 1 {
			n += 6
		} else {
			n += size
		}
		i += size
	}
	return n
}

type handlerResponse struct {
	StatusCode *int              `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       json.RawMessage   `json:"body"`
	IsBase64   bool              `json:"isBase64Encoded"`
}

// hopByHop are headers a function may not set: they describe the connection
// or the framing, which belong to the server (and, set wrongly, could
// desynchronise a proxy in front of aerofn). The request and invocation ids
// are the server's too: a log or a proxy that trusts them must not be lied to.
var hopByHop = map[string]bool{"Connection": true, "Keep-Alive": true, "Transfer-Encoding": true, "Upgrade": true,
	"Trailer": true, "Te": true, "Proxy-Connection": true, "Proxy-Authenticate": true, "Content-Length": true,
	"X-Request-Id": true, "X-Aerofn-Invocation-Id": true}

// parseResult reads a handler's result as a response description: an
// object with a statusCode. nil, nil: the result is not one, and is sent as
// a 200 body. A statusCode outside 200-599 is an error: a 1xx would leave
// the connection hanging (101 switches protocols, turning a proxy's
// connection into a tunnel), and anything else is not HTTP.
func parseResult(output []byte) (*handlerResponse, error) {
	trimmed := bytes.TrimSpace(output)
	if len(trimmed) == 0 || trimmed[0] != '{' || !bytes.Contains(trimmed, []byte(`"statusCode"`)) {
		return nil, nil
	}
	var hr handlerResponse
	if err := json.Unmarshal(trimmed, &hr); err != nil || hr.StatusCode == nil {
		return nil, nil
	}
	if c := *hr.StatusCode; c < 200 || c > 599 {
		return nil, fmt.Errorf("the function answered statusCode %d; a function may answer 200-599", c)
	}
	return &hr, nil
}

// checkResult is an HTTP call's invoker.Call.CheckOutput.
func checkResult(output []byte) error {
	_, err := parseResult(output)
	return err
}

// writeResult maps a handler's result to the response: an object with a
// statusCode is a response description; any other JSON is a 200 body.
func writeResult(w http.ResponseWriter, output []byte) error {
	trimmed := bytes.TrimSpace(output)
	if len(trimmed) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	hr, err := parseResult(trimmed)
	if err != nil {
		return apiError(http.StatusInternalServerError, "function_error", "%v", err)
	}
	if hr != nil {
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
		w.WriteHeader(*hr.StatusCode)
		_, _ = w.Write(body)
		return nil
	}
	if json.Valid(trimmed) {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(output)
	return nil
}
