//go:build !wasip1

package main

// Off wasm there is no host: the runtime only builds, so that go vet and go
// build of the whole module work on any platform. Every host call fails.

func hostLog(level int32, msg string) {}

func hostEnv(key string) (string, bool) { return "", false }

func hostDBQuery(req string) string {
	return `{"error":{"code":"unavailable","message":"no host outside wasm"}}`
}

func hostHTTPFetch(req string) string {
	return `{"error":{"code":"unavailable","message":"no host outside wasm"}}`
}
