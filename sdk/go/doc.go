// Package aerofn is the Go guest SDK for aerofn functions: a function is a Go
// program compiled to WebAssembly that registers one handler and reaches the
// world only through the host functions of docs/ABI.md (database queries, log
// lines, whitelisted environment variables and allow-listed HTTP fetches).
//
// A function registers its handler in init, because a module built with
// -buildmode=c-shared runs package initialisation during _initialize and
// never calls main:
//
//	package main
//
//	import aerofn "github.com/aerodb/aerofn/sdk/go"
//
//	func init() {
//		aerofn.Handle(func(ev aerofn.Event) (any, error) {
//			return map[string]string{"message": "hi " + ev.UserID}, nil
//		})
//	}
//
//	func main() {}
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o fn.wasm .
//
// The handler's result is encoded as JSON and becomes the call's result; a
// [Response] controls the HTTP status, headers and body. A returned error, or
// a panic, fails the call with its message as the error output.
//
// Outside wasip1 the package still compiles so that code using it can be
// vetted and unit-tested on the build machine: there [Query] and [Fetch]
// return errors, [Env] finds nothing and [Log] writes to standard error.
package aerofn
