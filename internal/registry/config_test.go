package registry

import (
	"errors"
	"testing"
)

// allowed_hosts entries that can never match a host are refused at deploy,
// naming the field, instead of silently allowing nothing.
func TestValidateAllowedHosts(t *testing.T) {
	for _, h := range []string{"api.stripe.com", "*.stripe.com", "localhost", "10.0.0.1", "API.Example.COM", "*.com", "x_y.example"} {
		if err := (Config{AllowedHosts: []string{h}}).Validate(nil); err != nil {
			t.Errorf("%q refused: %v", h, err)
		}
	}
	for _, h := range []string{"", "*", "*.", "**.example.com", "a.*.example.com", "*example.com", "example.com.", ".example.com",
		"a..b", "exa mple.com", "example.com/x", "example.com:443", "*.*"} {
		err := (Config{AllowedHosts: []string{"ok.example", h}}).Validate(nil)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != "config.allowed_hosts" {
			t.Errorf("%q: got %v, want a config.allowed_hosts validation error", h, err)
		}
	}
}
