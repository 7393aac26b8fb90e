package webhook

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	const secret = "whsec_test"
	body := []byte(`{"a":1}`)
	now := time.Unix(1_800_000_000, 0)
	h := func(k, v string) http.Header { x := http.Header{}; x.Set(k, v); return x }
	ok := []http.Header{
		h("X-Aerofn-Signature", Sign(secret, now, body)),
		h("X-Aerofn-Signature", Sign(secret, now.Add(-4*time.Minute), body)),
		// Several v1 values (a secret being rotated): one matching is enough.
		h("X-Aerofn-Signature", Sign(secret, now, body)+",v1=00"),
		h("X-Hub-Signature-256", "sha256="+mac(secret, body)),
	}
	for i, hd := range ok {
		if err := Verify(hd, body, secret, now); err != nil {
			t.Errorf("ok %d: %v", i, err)
		}
	}
	bad := map[string]http.Header{
		"none":             {},
		"too old":          h("X-Aerofn-Signature", Sign(secret, now.Add(-6*time.Minute), body)),
		"from the future":  h("X-Aerofn-Signature", Sign(secret, now.Add(6*time.Minute), body)),
		"other secret":     h("X-Aerofn-Signature", Sign("nope", now, body)),
		"no timestamp":     h("X-Aerofn-Signature", "v1="+mac(secret, body)),
		"github wrong":     h("X-Hub-Signature-256", "sha256="+mac("nope", body)),
		"github no prefix": h("X-Hub-Signature-256", mac(secret, body)),
	}
	for name, hd := range bad {
		if err := Verify(hd, body, secret, now); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := Verify(ok[0], body, "", now); !errors.Is(err, ErrSignature) {
		t.Errorf("empty secret: %v", err)
	}
}
