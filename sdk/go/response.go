package aerofn

import (
	"encoding/base64"
	"encoding/json"
)

// Response is an HTTP result: returned from a handler of an HTTP call it sets
// the status, headers and body of the reply. A string Body is sent as it is
// (so set a content-type header for it); a []byte Body is sent byte for byte,
// binary included (it crosses the host boundary as base64, flagged
// isBase64Encoded). Any other Body is sent as JSON. Returning anything but a
// Response sends that value as a 200 JSON body.
//
// Headers sets one value per header; HeaderValues sets several (each
// Set-Cookie on its own line, say). A name in both gets all the values.
type Response struct {
	StatusCode   int               `json:"statusCode"`
	Headers      map[string]string `json:"headers,omitempty"`
	HeaderValues Values            `json:"-"`
	Body         any               `json:"body,omitempty"`
}

// responseWire is the shape the host reads (docs/ABI.md): a header's value is
// a string or a list of strings.
type responseWire struct {
	StatusCode int            `json:"statusCode"`
	Headers    map[string]any `json:"headers,omitempty"`
	Body       any            `json:"body,omitempty"`
	IsBase64   bool           `json:"isBase64Encoded,omitempty"`
}

// MarshalJSON fills in a missing status (200), sends []byte as base64 with
// isBase64Encoded, and merges Headers and HeaderValues.
func (r Response) MarshalJSON() ([]byte, error) {
	w := responseWire{StatusCode: r.StatusCode, Body: r.Body}
	if w.StatusCode == 0 {
		w.StatusCode = 200
	}
	if b, ok := r.Body.([]byte); ok {
		w.Body, w.IsBase64 = base64.StdEncoding.EncodeToString(b), true
	}
	if len(r.Headers)+len(r.HeaderValues) > 0 {
		w.Headers = make(map[string]any, len(r.Headers)+len(r.HeaderValues))
		for k, v := range r.Headers {
			w.Headers[k] = v
		}
		for k, vs := range r.HeaderValues {
			if v, ok := r.Headers[k]; ok {
				vs = append([]string{v}, vs...)
			}
			w.Headers[k] = vs
		}
	}
	return json.Marshal(w)
}
