package aerofn

import "encoding/json"

// Response is an HTTP result: returned from a handler of an HTTP call it sets
// the status, headers and body of the reply. A string Body is sent as it is
// (so set a content-type header for it); []byte is sent the same way and must
// be text, since the result crosses the host boundary as JSON. Any other Body
// is sent as JSON. Returning anything but a Response sends that value as a
// 200 JSON body.
type Response struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers,omitempty"`
	Body       any               `json:"body,omitempty"`
}

// responseWire has Response's fields and tags without its methods, so
// MarshalJSON can call json.Marshal without recursing.
type responseWire Response

// MarshalJSON fills in a missing status (200) and sends []byte as text
// rather than the base64 encoding/json would give it.
func (r Response) MarshalJSON() ([]byte, error) {
	if r.StatusCode == 0 {
		r.StatusCode = 200
	}
	if b, ok := r.Body.([]byte); ok {
		r.Body = string(b)
	}
	return json.Marshal(responseWire(r))
}
