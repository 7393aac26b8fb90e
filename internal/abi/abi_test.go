package abi

import (
	"encoding/json"
	"testing"
)

func TestErrorReply(t *testing.T) {
	for _, tc := range []struct{ code, message, want string }{
		{"unavailable", "db_query is not available", `{"error":{"code":"unavailable","message":"db_query is not available"}}`},
		{"42501", `permission denied for table "t" <x> & y`, `{"error":{"code":"42501","message":"permission denied for table \"t\" <x> & y"}}`},
		{"x", "line\nbreak\x00\xff", `{"error":{"code":"x","message":"line\nbreak\u0000\ufffd"}}`},
	} {
		got := ErrorReply(tc.code, tc.message)
		if string(got) != tc.want {
			t.Errorf("ErrorReply(%q, %q) = %s, want %s", tc.code, tc.message, got, tc.want)
		}
		var back struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(got, &back); err != nil || back.Error.Code != tc.code {
			t.Errorf("ErrorReply(%q, ...) does not decode back: %v %+v", tc.code, err, back)
		}
	}
}
