// Command http-api is a small REST-style function that routes its own
// sub-paths and methods, the way a Supabase function does:
//
//	GET    /functions/v1/http-api/users/7     →  {"id": "7", "method": "GET"}
//	PUT    /functions/v1/http-api/users/7     →  {"id": "7", "method": "PUT", "body": ...}
//	DELETE /functions/v1/http-api/users/7     →  204
//	POST   /functions/v1/http-api/echo?x=1&x=2 →  the method, path, every query value, headers, body
//	POST   /functions/v1/http-api/text        →  text/plain
//	POST   /functions/v1/http-api/binary      →  the request's bytes reversed, as application/octet-stream
//	GET    /functions/v1/http-api/cookies     →  two Set-Cookie headers
//	anything else                             →  404 {"error": "..."} from the function itself
package main

import (
	"encoding/json"
	"slices"
	"strings"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

func init() {
	aerofn.Handle(func(ev aerofn.Event) (any, error) {
		parts := strings.Split(strings.Trim(ev.Path, "/"), "/")
		switch {
		case parts[0] == "users" && len(parts) == 2:
			return user(ev, parts[1])
		case ev.Path == "/echo" || ev.Path == "/":
			var body any
			if len(ev.Body) > 0 && ev.BodyEncoding == "" {
				_ = json.Unmarshal(ev.Body, &body)
			} else if len(ev.Body) > 0 {
				b, _ := ev.BodyBytes()
				body = b // []byte: base64 in JSON
			}
			return aerofn.Response{
				Headers: map[string]string{"x-echo": ev.Header("x-custom")},
				Body: map[string]any{
					"method": ev.Method, "path": ev.Path, "query": ev.Query, "headers": ev.Headers,
					"body": body, "body_encoding": ev.BodyEncoding, "role": ev.Role, "user_id": ev.UserID,
				},
			}, nil
		case ev.Path == "/text":
			b, _ := ev.BodyBytes()
			return aerofn.Response{Headers: map[string]string{"content-type": "text/plain; charset=utf-8"},
				Body: "you sent: " + string(b)}, nil
		case ev.Path == "/binary":
			b, err := ev.BodyBytes()
			if err != nil {
				return nil, err
			}
			b = slices.Clone(b)
			slices.Reverse(b)
			return aerofn.Response{Headers: map[string]string{"content-type": "application/octet-stream"}, Body: b}, nil
		case ev.Path == "/cookies":
			return aerofn.Response{StatusCode: 200,
				HeaderValues: aerofn.Values{"set-cookie": {"a=1; Path=/", "b=2; Path=/"}}, Body: map[string]bool{"ok": true}}, nil
		}
		return aerofn.Response{StatusCode: 404, Body: map[string]string{"error": "no route for " + ev.Method + " " + ev.Path}}, nil
	})
}

func user(ev aerofn.Event, id string) (any, error) {
	switch ev.Method {
	case "GET":
		return map[string]string{"id": id, "method": ev.Method}, nil
	case "PUT", "PATCH":
		var body any
		if err := ev.DecodeBody(&body); err != nil {
			return aerofn.Response{StatusCode: 400, Body: map[string]string{"error": "body: " + err.Error()}}, nil
		}
		return map[string]any{"id": id, "method": ev.Method, "body": body}, nil
	case "DELETE":
		return aerofn.Response{StatusCode: 204}, nil
	}
	return aerofn.Response{StatusCode: 405, Headers: map[string]string{"allow": "GET, PUT, PATCH, DELETE"},
		Body: map[string]string{"error": ev.Method + " is not allowed on a user"}}, nil
}

func main() {}
