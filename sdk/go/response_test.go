package aerofn

import (
	"encoding/json"
	"testing"
)

func TestResponseJSON(t *testing.T) {
	tests := []struct {
		name string
		r    any
		want string
	}{
		{"default status", Response{Body: map[string]int{"n": 1}}, `{"statusCode":200,"body":{"n":1}}`},
		{"pointer", &Response{StatusCode: 201, Headers: map[string]string{"location": "/x"}}, `{"statusCode":201,"headers":{"location":"/x"}}`},
		{"string body", Response{StatusCode: 404, Body: "not found"}, `{"statusCode":404,"body":"not found"}`},
		{"bytes as base64", Response{Headers: map[string]string{"content-type": "text/html"}, Body: []byte("<p>")}, `{"statusCode":200,"headers":{"content-type":"text/html"},"body":"PHA+","isBase64Encoded":true}`},
		{"binary bytes", Response{Body: []byte{0xff, 0x00, 0xfe}}, `{"statusCode":200,"body":"/wD+","isBase64Encoded":true}`},
		{"repeated headers", Response{Headers: map[string]string{"set-cookie": "a=1", "x": "y"}, HeaderValues: Values{"set-cookie": {"b=2", "c=3"}, "vary": {"accept"}}},
			`{"statusCode":200,"headers":{"set-cookie":["a=1","b=2","c=3"],"vary":["accept"],"x":"y"}}`},
		{"raw json body", Response{Body: json.RawMessage(`[1,2]`)}, `{"statusCode":200,"body":[1,2]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeResult(tt.r)
			if err != nil || string(got) != tt.want {
				t.Errorf("encodeResult = %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestResponseRoundTrip(t *testing.T) {
	var r Response
	if err := json.Unmarshal([]byte(`{"statusCode":418,"headers":{"a":"b"},"body":"tea"}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.StatusCode != 418 || r.Headers["a"] != "b" || r.Body != "tea" {
		t.Errorf("decoded %+v", r)
	}
}
