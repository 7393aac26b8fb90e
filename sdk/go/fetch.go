package aerofn

import (
	"encoding/json"
	"errors"
	"fmt"
)

// FetchRequest is an outgoing HTTP request. The URL must be on the
// function's allow-list. An empty Method means GET.
type FetchRequest struct {
	URL     string            `json:"url"`
	Method  string            `json:"method,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
}

// FetchResponse is the reply to a [FetchRequest]. Any status, 4xx and 5xx
// included, is a response rather than an error, as in net/http.
type FetchResponse struct {
	Status  int    `json:"status"`
	Headers Values `json:"headers"`
	Body    string `json:"body"`
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
	return &w.FetchResponse, nil
}
