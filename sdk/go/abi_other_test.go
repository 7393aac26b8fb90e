//go:build !wasip1

package aerofn

import (
	"errors"
	"testing"
)

// Off wasm the SDK must fail calls cleanly, so a function's own unit tests
// see an error rather than a crash.
func TestPlatformHostOffWasm(t *testing.T) {
	_, err := Query("SELECT 1")
	var dbErr *DBError
	if !errors.As(err, &dbErr) || dbErr.Code != CodeUnavailable {
		t.Errorf("Query err = %v", err)
	}
	_, err = Fetch(FetchRequest{URL: "https://example.com"})
	var fe *FetchError
	if !errors.As(err, &fe) || fe.Code != CodeUnavailable {
		t.Errorf("Fetch err = %v", err)
	}
	if _, ok := Env("HOME"); ok {
		t.Error("Env read the process environment")
	}
}
