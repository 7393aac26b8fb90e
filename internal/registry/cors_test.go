package registry

import (
	"strings"
	"testing"
)

func TestCORSConfigValidation(t *testing.T) {
	age := func(n int) *int { return &n }
	good := []string{
		`{"cors":{"origins":["*"]}}`,
		`{"cors":{"origins":[]}}`,
		`{"cors":{"origins":["https://app.example.com","http://127.0.0.1:5173","https://*.example.com"],"credentials":true}}`,
		`{"cors":{"expose_headers":["X-Total-Count"],"max_age":600}}`,
	}
	for _, g := range good {
		c, err := ParseConfig([]byte(g))
		if err == nil {
			err = c.Validate(nil)
		}
		if err != nil {
			t.Errorf("%s: %v", g, err)
		}
	}
	bad := map[string]string{
		`{"cors":{"origin":["*"]}}`:                                        "unknown field",
		`{"cors":{"origins":"*"}}`:                                         "cannot unmarshal",
		`{"cors":{"origins":["app.example.com"]}}`:                         "not an origin",
		`{"cors":{"origins":["https://app.example.com/"]}}`:                "not an origin",
		`{"cors":{"origins":["https://app.example.com/path"]}}`:            "not an origin",
		`{"cors":{"origins":["ftp://app.example.com"]}}`:                   "not an origin",
		`{"cors":{"origins":["https://*.*.example.com"]}}`:                 "more than one",
		`{"cors":{"origins":["https://App.example.com"]}}`:                 "lower case",
		`{"cors":{"origins":["*"],"credentials":true}}`:                    "explicit origins",
		`{"cors":{"credentials":true}}`:                                    "explicit origins",
		`{"cors":{"expose_headers":["bad header"]}}`:                       "not a header name",
		`{"cors":{"max_age":-1}}`:                                          "outside",
		`{"cors":{"max_age":86401}}`:                                       "outside",
		`{"cors":{"origins":["https://u:p@app.example.com"]}}`:             "not an origin",
		`{"cors":{"origins":["https://app.example.com?x=1"]}}`:             "not an origin",
		`{"cors":{"origins":["https://app.example.com"]},"cors2":{}}`:      "unknown field",
		`{"cors":{"origins":["https://app.example.com"],"max_age":"600"}}`: "cannot unmarshal",
	}
	for doc, want := range bad {
		c, err := ParseConfig([]byte(doc))
		if err == nil {
			err = c.Validate(nil)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", doc, err, want)
		}
	}
	many := make([]string, maxCORSOrigins+1)
	for i := range many {
		many[i] = "https://a.example.com"
	}
	if err := (Config{CORS: &CORS{Origins: many}}).Validate(nil); err == nil {
		t.Errorf("%d origins accepted", len(many))
	}
	if err := (Config{CORS: &CORS{Origins: many[:maxCORSOrigins], MaxAge: age(MaxCORSMaxAge)}}).Validate(nil); err != nil {
		t.Errorf("%d origins refused: %v", maxCORSOrigins, err)
	}
}
