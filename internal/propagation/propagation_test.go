package propagation

import (
	"testing"
	"time"
)

func TestAckPayload(t *testing.T) {
	at := time.Date(2026, 12, 7, 1, 2, 3, 456789000, time.UTC)
	a, ok := parseAck(ackPayload(123456, "hello-world", at))
	if !ok || a != (ack{at: at.UnixMicro(), key: 123456, name: "hello-world"}) {
		t.Fatalf("round trip: %+v %v", a, ok)
	}
	for _, bad := range []string{"", "1 2", "1 2 ", "x 2 f", "1 x f", "1 99999999999 f"} {
		if _, ok := parseAck(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}
