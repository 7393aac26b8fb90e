package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/invoker"
)

// benchRequest is the serve bench's request as wrk sends it.
func benchRequest() *http.Request {
	r := httptest.NewRequest("POST", "/functions/v1/echo-wat", strings.NewReader(`{"name":"World"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer x.y.z")
	r.Header.Set("X-Request-Id", "bench-echo-wat-c64-r0")
	r.Header.Set("User-Agent", "wrk")
	r.Header.Set("Accept", "*/*")
	return r
}

// BenchmarkHTTPEvent: reading the body and building the event of the
// serve bench's request, the part of a call the HTTP API adds before the
// guest runs.
func BenchmarkHTTPEvent(b *testing.B) {
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		r := benchRequest()
		if _, err := httpEventOf(w, r, "/", "bench-echo-wat-c64-r0", auth.Anon()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRespond: the answer of a successful call whose output is a
// JSON body (the echo's), from the output to the written response.
func BenchmarkRespond(b *testing.B) {
	a := &API{}
	output := []byte(`{"trigger":"http","method":"POST","path":"/","headers":{"accept":"*/*","content-length":"16","content-type":"application/json"},"query":{},"body":{"name":"World"},"user_id":null,"role":"anon","request_id":"bench"}`)
	b.ReportAllocs()
	for b.Loop() {
		res, status := answer()
		out := invoker.Outcome{ID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", Status: engine.StatusSuccess, Output: output}
		if checkResult(output) != nil || status(out) != 200 {
			b.Fatal("not a 200")
		}
		w := httptest.NewRecorder()
		if err := a.respond(w, out, *res, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}
