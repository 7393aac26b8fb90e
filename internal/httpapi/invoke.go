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
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/invoker"
	"github.com/aerodb/aerofn/internal/registry"
)

// httpEvent is what handler receives for an HTTP call (docs/ABI.md). Its
// JSON (appendJSON) has headers and query (the first value of each, by
// name), headers_all and query_all (every value), each object's keys in
// byte order, as encoding/json encodes the maps they once were.
type httpEvent struct {
	Trigger      string
	Method       string
	Path         string
	Headers      eventFields // lower-case names
	Query        eventFields
	Body         json.RawMessage
	BodyEncoding string // omitted when empty
	UserID       *string
	Role         string
	RequestID    string
}

// eventFields are a request's headers or query parameters: sorted by name,
// each name once, each with at least one value. A sorted slice rather than
// the two maps per object a call used to build.
type eventFields []eventField

type eventField struct {
	name   string
	values []string
}

// sortFields sorts fs by name and merges the values of equal names, in
// their order in fs.
func sortFields(fs eventFields) eventFields {
	if len(fs) < 2 {
		return fs
	}
	slices.SortStableFunc(fs, func(a, b eventField) int { return strings.Compare(a.name, b.name) })
	out := fs[:1]
	for _, f := range fs[1:] {
		if last := &out[len(out)-1]; last.name == f.name {
			last.values = append(slices.Clip(last.values), f.values...)
			continue
		}
		out = append(out, f)
	}
	return out
}

// headerFields are r's headers as the event has them: names in lower
// case, the caller's credentials left out.
func headerFields(h http.Header) eventFields {
	fs := make(eventFields, 0, len(h))
	for k, vs := range h {
		if len(vs) == 0 {
			continue
		}
		lk := lowerHeaderName(k)
		if hiddenHeaders[lk] {
			continue
		}
		fs = append(fs, eventField{name: lk, values: vs})
	}
	return sortFields(fs)
}

// queryFields are a raw query's parameters.
func queryFields(rawQuery string) eventFields {
	if rawQuery == "" {
		return nil
	}
	q, _ := url.ParseQuery(rawQuery)
	fs := make(eventFields, 0, len(q))
	for k, vs := range q {
		if len(vs) > 0 {
			fs = append(fs, eventField{name: k, values: vs})
		}
	}
	return sortFields(fs)
}

// lowerHeaderName is strings.ToLower(k), without an allocation for the
// headers most requests carry.
func lowerHeaderName(k string) string {
	if lk, ok := commonLowerNames[k]; ok {
		return lk
	}
	return strings.ToLower(k)
}

var commonLowerNames = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control", "Connection",
		"Content-Length", "Content-Type", "Cookie", "Origin", "Pragma", "Referer", "User-Agent", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id", "Apikey", "If-None-Match", "If-Modified-Since",
		"Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-Dest", "Traceparent", "Tracestate"} {
		m[k] = strings.ToLower(k)
	}
	return m
}()

// hiddenHeaders never reach a function: the caller's credentials are
// represented by user_id and role instead.
var hiddenHeaders = map[string]bool{"authorization": true, "apikey": true}

func (a *API) invoke(w http.ResponseWriter, r *http.Request, name, subpath string) error {
	p, tokErr := a.principal(r)
	if tokErr != nil && !errors.Is(tokErr, auth.ErrMissingToken) {
		return tokErr
	}
	if tokErr != nil {
		p = auth.Anon()
	}
	requestID := requestIDFrom(r.Header.Get("X-Request-Id"))
	res, httpStatus := answer()
	out, err := a.cfg.Invoker.Invoke(r.Context(), name, invoker.Call{Trigger: "http", Principal: p, RequestID: requestID,
		Check: func(fn registry.Function) error {
			if tokErr != nil && fn.Config.RequiresJWT() {
				return apiError(http.StatusUnauthorized, "missing_token", "function %q requires a bearer token", name)
			}
			if !fn.Config.AllowsMethod(r.Method) {
				w.Header().Set("Allow", strings.Join(fn.Config.Methods, ", "))
				return methodNotAllowed(r.Method, strings.Join(fn.Config.Methods, ", "))
			}
			return nil
		},
		// Built once the call is admitted: a call this node refuses is
		// answered without reading its body or building its event.
		BuildEvent: func(_ registry.Function, eff auth.Principal) ([]byte, string, error) {
			ev, err := httpEventOf(w, r, subpath, requestID, eff)
			return ev, "", err
		},
		CheckOutput: checkResult, HTTPStatus: httpStatus})
	if errors.Is(err, invoker.ErrBusy) {
		// The body stays unread; closing the connection after the answer
		// spares the server reading it to keep the connection alive.
		w.Header().Set("Connection", "close")
	}
	if err != nil {
		return invokeError(name, err)
	}
	return a.respond(w, out, *res, requestID)
}

// httpEventOf reads the request's body and builds the event of an HTTP call
// that acts for eff.
func httpEventOf(w http.ResponseWriter, r *http.Request, subpath, requestID string, eff auth.Principal) ([]byte, error) {
	body, err := readInvokeBody(w, r)
	if err != nil {
		return nil, err
	}
	ev := httpEvent{Trigger: "http", Method: r.Method, Path: subpath, Headers: headerFields(r.Header), Query: queryFields(r.URL.RawQuery),
		RequestID: requestID, Role: string(eff.Role)}
	if eff.UserID != "" {
		ev.UserID = &eff.UserID
	}
	ev.Body, ev.BodyEncoding, err = eventBody(r.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, err
	}
	return encodeEvent(ev)
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
	if h, ok := ev.(httpEvent); ok {
		b, err := h.appendJSON(make([]byte, 0, 512+len(h.Body)))
		if err != nil {
			return nil, err
		}
		// The limit counts the newline json.Encoder ends with, as below.
		if len(b)+1 > MaxEvent {
			return nil, eventTooLarge(len(b) + 1)
		}
		return b, nil
	}
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

// invokeError is the one mapping of a call the invoker did not run to the
// API's answer, for every endpoint that runs a function.
func invokeError(name string, err error) error {
	switch {
	case errors.Is(err, invoker.ErrNotFound), errors.Is(err, invoker.ErrDisabled):
		return notFound("function %q does not exist or is disabled", name)
	case errors.Is(err, invoker.ErrBusy):
		return &Error{Status: http.StatusTooManyRequests, Code: "too_many_requests", Message: "this node is running as many calls as it admits; retry shortly", RetryAfter: 1}
	case errors.Is(err, invoker.ErrNotReady):
		return &Error{Status: http.StatusServiceUnavailable, Code: "not_ready",
			Message: "this node has no compiled copy of the function's module yet and is compiling it; retry in a few seconds", RetryAfter: 5}
	}
	return err
}

// answer returns the hook that works out a call's HTTP answer inside the
// call (so that its status is in the invocation's record) and where it puts
// the parsed result.
func answer() (*result, func(invoker.Outcome) int) {
	res := &result{}
	return res, func(out invoker.Outcome) int {
		if out.Status == engine.StatusSuccess {
			*res = buildResult(out.Output)
			return res.status
		}
		return failureStatus(out.Status)
	}
}

// failureStatus is the HTTP status of a call that did not succeed.
func failureStatus(st engine.Status) int {
	switch st {
	case engine.StatusTimeout:
		return http.StatusGatewayTimeout
	case engine.StatusMemoryExceeded:
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}

// respond maps an outcome to the HTTP answer; res is the result of a
// successful call, built by answer's hook.
func (a *API) respond(w http.ResponseWriter, out invoker.Outcome, res result, requestID string) error {
	fn := out.Function
	// Both ids in one allocation; the keys are already canonical.
	ids := []string{requestID, out.ID}
	h := w.Header()
	h["X-Request-Id"] = ids[0:1:1]
	h["X-Aerofn-Invocation-Id"] = ids[1:2:2]
	switch out.Status {
	case engine.StatusSuccess:
		res.write(w)
		return nil
	case engine.StatusTimeout:
		return apiError(http.StatusGatewayTimeout, "timeout", "function %q did not finish within %s", fn.Name, fn.Config.TimeoutDuration())
	case engine.StatusMemoryExceeded:
		return apiError(http.StatusInsufficientStorage, "memory_limit_exceeded", "function %q exceeded its memory limit of %d MiB", fn.Name, fn.Config.MemoryBytes()>>20)
	case engine.StatusInterrupted:
		return &Error{Status: http.StatusServiceUnavailable, Code: "interrupted", RetryAfter: 1,
			Message: fmt.Sprintf("the node stopped before function %q finished; the call was cut short", fn.Name)}
	default:
		msg := out.Error
		if msg == "" {
			msg = "function failed"
		}
		return &Error{Status: http.StatusInternalServerError, Code: "function_error", Message: msg, FromFunction: true}
	}
}

// readInvokeBody reads a body that becomes an event, at most MaxInvokeBody.
func readInvokeBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	// Built only when needed: formatting it costs every call a Sprintf.
	tooLarge := func() error {
		return apiError(http.StatusRequestEntityTooLarge, "payload_too_large", "request body exceeds %d bytes", MaxInvokeBody)
	}
	if r.ContentLength > MaxInvokeBody {
		return nil, tooLarge()
	}
	if r.ContentLength == 0 {
		return nil, nil
	}
	if r.ContentLength > 0 {
		// net/http's body ends at Content-Length: read it into one slice
		// of that size, without MaxBytesReader's wrapper and a buffer.
		body := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, badRequest("bad_body", "reading request body: %v", err)
		}
		return body, nil
	}
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxInvokeBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge()
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
	mt := contentType
	if mt != "application/json" && mt != "" {
		// The usual two need no parsing (ParseMediaType builds a map);
		// an empty one parses as "" too.
		mt, _, _ = mime.ParseMediaType(contentType)
	}
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
	StatusCode *int                    `json:"statusCode"`
	Headers    map[string]headerValues `json:"headers"`
	Body       json.RawMessage         `json:"body"`
	IsBase64   bool                    `json:"isBase64Encoded"`
}

// headerValues is a response header's value: a string, or a list of strings
// for a header sent several times (Set-Cookie).
type headerValues []string

func (h *headerValues) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*h = headerValues{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("a header value is a string or a list of strings")
	}
	*h = l
	return nil
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

// result is the HTTP answer a handler's output describes.
type result struct {
	status int
	header http.Header
	// contentType, when header is nil: one of the shared values below, set
	// without building a header map for the usual answer (a JSON or text
	// body the function returned as it is).
	contentType []string
	body        []byte
}

// The Content-Type values of results without a header map, shared by every
// answer: net/http only reads them.
var (
	contentTypeJSON = []string{"application/json"}
	contentTypeText = []string{"text/plain; charset=utf-8"}
)

// buildResult maps a successful call's output to the response: an object
// with a statusCode is a response description; any other JSON is a 200
// body, nothing a 204. (A statusCode outside 200-599 has already failed the
// call through checkResult.)
func buildResult(output []byte) result {
	trimmed := bytes.TrimSpace(output)
	if len(trimmed) == 0 {
		return result{status: http.StatusNoContent}
	}
	hr, err := parseResult(trimmed)
	if err != nil {
		return result{status: http.StatusInternalServerError, header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}},
			body: []byte(err.Error())}
	}
	if hr == nil {
		res := result{status: http.StatusOK, contentType: contentTypeText, body: output}
		if json.Valid(trimmed) {
			res.contentType = contentTypeJSON
		}
		return res
	}
	res := result{status: *hr.StatusCode, header: http.Header{}}
	for k, vs := range hr.Headers {
		for _, v := range vs {
			addFunctionHeader(res.header, k, v)
		}
	}
	var s string
	switch {
	case len(hr.Body) == 0 || string(hr.Body) == "null":
	case json.Unmarshal(hr.Body, &s) == nil:
		res.body = []byte(s)
		if hr.IsBase64 {
			if dec, err := base64.StdEncoding.DecodeString(s); err == nil {
				res.body = dec
			}
		}
		if res.header.Get("Content-Type") == "" {
			if hr.IsBase64 {
				res.header.Set("Content-Type", "application/octet-stream")
			} else {
				res.header.Set("Content-Type", "text/plain; charset=utf-8")
			}
		}
	default:
		res.body = hr.Body
		if res.header.Get("Content-Type") == "" {
			res.header.Set("Content-Type", "application/json")
		}
	}
	return res
}

// write sends the answer. Vary is added to (keeping the Vary: Origin of CORS),
// every other header the function set replaces aerofn's.
func (res result) write(w http.ResponseWriter) {
	h := w.Header()
	if res.contentType != nil {
		h["Content-Type"] = res.contentType
	}
	for k, vs := range res.header {
		if k == "Vary" {
			h[k] = append(h[k], vs...)
		} else {
			h[k] = vs
		}
	}
	w.WriteHeader(res.status)
	_, _ = w.Write(res.body)
}

// addFunctionHeader adds a header of the function's response. Framing
// headers and the ids are the server's; CORS headers are aerofn's
// (AEROFN_CORS_ORIGINS or the function's cors block decide them) and so is
// x-relay-error, so the function's own are dropped.
func addFunctionHeader(h http.Header, k, v string) {
	ck := http.CanonicalHeaderKey(k)
	if hopByHop[ck] || strings.HasPrefix(ck, "Access-Control-") || ck == relayErrorHeader {
		return
	}
	h.Add(ck, v)
}
