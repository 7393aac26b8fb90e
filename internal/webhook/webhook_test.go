package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// stripeHeader builds a Stripe-Signature the way Stripe documents it
// (https://docs.stripe.com/webhooks#verify-manually): t=<unix>, then one
// v1=<hex HMAC-SHA256(endpoint secret, "<t>.<raw body>")> per secret, and a
// v0 test-mode signature that verifiers ignore.
func stripeHeader(t time.Time, body []byte, secrets ...string) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	h := "t=" + ts
	for _, s := range secrets {
		m := hmac.New(sha256.New, []byte(s))
		m.Write([]byte(ts + "." + string(body)))
		h += ",v1=" + hex.EncodeToString(m.Sum(nil))
	}
	return h + ",v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
}

func TestVerify(t *testing.T) {
	const secret = "whsec_test"
	body := []byte(`{"a":1}`)
	now := time.Unix(1_800_000_000, 0)
	gh := hmac.New(sha256.New, []byte(secret))
	gh.Write(body)
	ghSig := "sha256=" + hex.EncodeToString(gh.Sum(nil))
	ok := map[string]http.Header{
		"aerofn":               header("X-Aerofn-Signature", Sign(secret, now, body)),
		"aerofn 4 min old":     header("X-Aerofn-Signature", Sign(secret, now.Add(-4*time.Minute), body)),
		"aerofn rotating":      header("X-Aerofn-Signature", Sign(secret, now, body)+",v1=00"),
		"github":               header("X-Hub-Signature-256", ghSig),
		"stripe":               header("Stripe-Signature", stripeHeader(now, body, secret)),
		"stripe rotating":      header("Stripe-Signature", stripeHeader(now, body, "whsec_old", secret)),
		"stripe 4 min ahead":   header("Stripe-Signature", stripeHeader(now.Add(4*time.Minute), body, secret)),
		"stripe spaces":        header("Stripe-Signature", "t="+strconv.FormatInt(now.Unix(), 10)+", v1="+Sign(secret, now, body)[len("t=1800000000,v1="):]),
		"stripe and aerofn id": header("Stripe-Signature", stripeHeader(now, body, secret), "X-Aerofn-Delivery", "d-1"),
	}
	for name, hd := range ok {
		if _, err := Verify(hd, body, secret, now); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := map[string]http.Header{
		"none":                 {},
		"too old":              header("X-Aerofn-Signature", Sign(secret, now.Add(-6*time.Minute), body)),
		"from the future":      header("X-Aerofn-Signature", Sign(secret, now.Add(6*time.Minute), body)),
		"other secret":         header("X-Aerofn-Signature", Sign("nope", now, body)),
		"no timestamp":         header("X-Aerofn-Signature", "v1="+hex.EncodeToString(mac([]byte(secret), body))),
		"github wrong":         header("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac([]byte("nope"), body))),
		"github no prefix":     header("X-Hub-Signature-256", hex.EncodeToString(gh.Sum(nil))),
		"stripe other secret":  header("Stripe-Signature", stripeHeader(now, body, "whsec_other")),
		"stripe too old":       header("Stripe-Signature", stripeHeader(now.Add(-6*time.Minute), body, secret)),
		"stripe v0 only":       header("Stripe-Signature", "t=1800000000,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"),
		"stripe tampered body": header("Stripe-Signature", stripeHeader(now, []byte(`{"a":2}`), secret)),
		// A valid GitHub signature does not save a present but wrong
		// Stripe-Signature: the first scheme present decides.
		"stripe wrong, github right": header("Stripe-Signature", stripeHeader(now, body, "x"), "X-Hub-Signature-256", ghSig),
	}
	for name, hd := range bad {
		if _, err := Verify(hd, body, secret, now); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Verify(ok["aerofn"], body, "", now); !errors.Is(err, ErrSignature) {
		t.Errorf("empty secret: %v", err)
	}
}

// The Standard Webhooks test vector (standard-webhooks specification and
// Svix's documentation): secret, id, timestamp, payload and signature.
func TestVerifyStandardWebhooks(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"test": 2432232314}`)
	ts := time.Unix(1614265330, 0)
	h := header("Webhook-Id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "Webhook-Timestamp", "1614265330",
		"Webhook-Signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	d, err := Verify(h, body, secret, ts.Add(time.Minute))
	if err != nil || d.Scheme != "standard" || d.ID != "msg_p5jXN8AQM9LWM0D4loKWxJek" {
		t.Fatalf("test vector: %+v %v", d, err)
	}
	if got, _ := SignStandard(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body); got != h.Get("Webhook-Signature") {
		t.Fatalf("SignStandard = %s", got)
	}
	// Several signatures, space-separated, other versions ignored.
	h2 := h.Clone()
	h2.Set("Webhook-Signature", "v1a,AAAA v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	if _, err := Verify(h2, body, secret, ts); err != nil {
		t.Fatalf("several signatures: %v", err)
	}
	// A retry carries the same id with a new timestamp and signature: the
	// same key.
	later := ts.Add(time.Hour)
	sig, _ := SignStandard(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", later, body)
	h3 := header("Webhook-Id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "Webhook-Timestamp", strconv.FormatInt(later.Unix(), 10), "Webhook-Signature", sig)
	if d3, err := Verify(h3, body, secret, later); err != nil || d3.Key != d.Key {
		t.Fatalf("retry: %+v %v (key %s)", d3, err, d.Key)
	}
	for name, c := range map[string]struct {
		h      http.Header
		secret string
		now    time.Time
	}{
		"too old":      {h, secret, ts.Add(6 * time.Minute)},
		"future":       {h, secret, ts.Add(-6 * time.Minute)},
		"other id":     {header("Webhook-Id", "msg_other", "Webhook-Timestamp", "1614265330", "Webhook-Signature", h.Get("Webhook-Signature")), secret, ts},
		"no id":        {header("Webhook-Timestamp", "1614265330", "Webhook-Signature", h.Get("Webhook-Signature")), secret, ts},
		"other secret": {h, "whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ts},
		"not base64":   {h, "whsec_not base64!", ts},
	} {
		if _, err := Verify(c.h, body, c.secret, c.now); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The key covers what the signature covers and nothing else: unsigned
// delivery headers do not change it, the signed timestamp and body do.
func TestDeliveryKey(t *testing.T) {
	const secret = "s3cret-value"
	body := []byte(`{"a":1}`)
	now := time.Unix(1_800_000_000, 0)
	gh := "sha256=" + hex.EncodeToString(mac([]byte(secret), body))
	k := func(h http.Header, b []byte) string {
		d, err := Verify(h, b, secret, now)
		if err != nil {
			t.Fatal(err)
		}
		return d.Key
	}
	base := k(header("X-Hub-Signature-256", gh, "X-GitHub-Delivery", "a"), body)
	if k(header("X-Hub-Signature-256", gh, "X-GitHub-Delivery", "b"), body) != base || k(header("X-Hub-Signature-256", gh), body) != base {
		t.Fatal("an unsigned delivery id changed the key")
	}
	s1 := k(header("Stripe-Signature", stripeHeader(now, body, secret)), body)
	if s1 == base || k(header("Stripe-Signature", stripeHeader(now.Add(time.Second), body, secret)), body) == s1 {
		t.Fatal("the signed timestamp does not change a Stripe key")
	}
	if k(header("X-Aerofn-Signature", Sign(secret, now, body)), body) == s1 {
		t.Fatal("schemes share keys")
	}
	if d, _ := Verify(header("X-Hub-Signature-256", gh, "X-GitHub-Delivery", "bad\x00id"), body, secret, now); d.ID != "" {
		t.Fatalf("unprintable delivery id kept: %q", d.ID)
	}
}
