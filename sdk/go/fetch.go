package aerofn

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// FetchRequest is an outgoing HTTP request. The URL must be on the
// function's allow-list. An empty Method means GET. Body may hold any bytes
// (string(b) of a []byte): a body that is not UTF-8 text crosses to the host
// as base64, flagged body_encoding "base64".
type FetchRequest struct {
	URL          string            `json:"url"`
	Method       string            `json:"method,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
	Body         string            `json:"body,omitempty"`
	BodyEncoding string            `json:"body_encoding,omitempty"` // set by Fetch
}

// FetchResponse is the reply to a [FetchRequest]. Any status, 4xx and 5xx
// included, is a response rather than an error, as in net/http. Body is the
// response's bytes as they came, binary included ([]byte(Body) gets them).
type FetchResponse struct {
	Status       int    `json:"status"`
	Headers      Values `json:"headers"`
	Body         string `json:"body"`
	BodyEncoding string `json:"body_encoding,omitempty"` // "" once decoded
}

// DecodeJSON decodes the response body as JSON into v.
func (r *FetchResponse) DecodeJSON(v any) error {
	if err := json.Unmarshal([]byte(r.Body), v); err != nil {
		return fmt.Errorf("decoding response body: %w", err)
	}
	return nil
}

// FetchError is a request the host did not make or could not complete: a URL
// off the allow-list, a timeout, a refused connection.
type FetchError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *FetchError) Error() string {
	return "http_fetch " + e.Code + ": " + e.Message
}

// Fetch makes an HTTP request through the host. It returns a *FetchError when
// the host refused or failed the request.
func Fetch(req FetchRequest) (*FetchResponse, error) {
	if req.Method == "" {
		req.Method = "GET"
	}
	req.BodyEncoding = ""
	if !utf8.ValidString(req.Body) {
		req.Body, req.BodyEncoding = base64.StdEncoding.EncodeToString([]byte(req.Body)), "base64"
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding fetch request: %w", err)
	}
	return parseFetchReply(host.httpFetch(b))
}

func parseFetchReply(reply []byte) (*FetchResponse, error) {
	if len(reply) == 0 {
		return nil, errors.New("decoding http_fetch reply: empty reply")
	}
	var w struct {
		FetchResponse
		Error *FetchError `json:"error"`
	}
	if err := json.Unmarshal(reply, &w); err != nil {
		return nil, fmt.Errorf("decoding http_fetch reply: %w", err)
	}
	if w.Error != nil {
		return nil, w.Error
	}
	if w.BodyEncoding == "base64" {
		b, err := base64.StdEncoding.DecodeString(w.Body)
		if err != nil {
			return nil, fmt.Errorf("decoding http_fetch reply body: %w", err)
		}
		w.Body, w.BodyEncoding = string(b), ""
	}
	return &w.FetchResponse, nil
}
