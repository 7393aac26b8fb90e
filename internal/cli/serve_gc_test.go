package cli

import "testing"

// A node collects garbage at GOGC=200 unless GOGC is set, which then
// stands as Go read it.
func TestServeGCPercent(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if p, ok := serveGCPercent(getenv); !ok || p != 200 {
		t.Fatalf("GOGC unset: %d, %v; want 200, true", p, ok)
	}
	for _, v := range []string{"100", "off", "400"} {
		env["GOGC"] = v
		if _, ok := serveGCPercent(getenv); ok {
			t.Fatalf("GOGC=%s: the node set its own percent over it", v)
		}
	}
}
