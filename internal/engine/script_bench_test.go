package engine

import (
	"testing"

	"github.com/aerodb/aerofn/internal/jsbundle"
)

// BenchmarkScriptHello is a call of the TypeScript hello (bundled as a
// deploy bundles it) on the runtime's reused instances; compare it with
// BenchmarkColdStartGo/preinit, the Go hello, in the same run.
func BenchmarkScriptHello(b *testing.B) {
	bundle, err := jsbundle.Bundle(map[string]string{"fn.ts": "export async function handler(request: { name?: string }) {\n" +
		"  return { statusCode: 200, body: JSON.stringify({ message: `Hello, ${request.name}!` }) };\n}\n"}, "fn.ts")
	if err != nil {
		b.Fatal(err)
	}
	e := newJSEngine(b, Config{})
	m := loadScript(b, e, "ts-hello", string(bundle))
	input := []byte(`{"trigger":"http","method":"POST","path":"/","headers":{},"query":{},"body":{"name":"World"},"user_id":null,"role":"anon","request_id":"r"}`)
	benchColdStart(b, e, m, input)
}
