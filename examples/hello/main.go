// Command hello is the seed's first example: an HTTP function that greets the
// name in the request body.
//
//	POST /functions/v1/hello {"name": "World"}  →  {"message": "Hello, World!"}
//
// A missing body or name greets "World"; a body that is not a JSON object is
// a 400.
package main

import aerofn "github.com/aerodb/aerofn/sdk/go"

// request is the body hello reads.
type request struct {
	Name string `json:"name"`
}

func init() {
	// Decoding a request and encoding the reply's map is then prepared once
	// per version, in the snapshot every call starts from, not in each call.
	aerofn.Prepare(request{})
	aerofn.Handle(hello)
}

func hello(ev aerofn.Event) (any, error) {
	var in request
	if err := ev.DecodeBody(&in); err != nil {
		return aerofn.Response{
			StatusCode: 400,
			Body:       map[string]string{"error": `want a JSON body like {"name": "World"}`},
		}, nil
	}
	if in.Name == "" {
		in.Name = "World"
	}
	return map[string]string{"message": "Hello, " + in.Name + "!"}, nil
}

// main is never called: a c-shared module runs init and then its exports.
func main() {}
