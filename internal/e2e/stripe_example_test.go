package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/testenv"
)

// stripeSignature signs body the way Stripe documents for webhook endpoints
// (https://docs.stripe.com/webhooks#verify-manually): the signed payload is
// "<t>.<raw body>", v1 is its hex HMAC-SHA256 under the endpoint's signing
// secret ("whsec_…", used as is), and the header also carries a v0 test-mode
// signature that receivers ignore.
func stripeSignature(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil)) + ",v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
}

// TestUseCaseStripeWebhook is the seed's use case 4 end to end: a Stripe
// payment_intent.succeeded delivery, signed with Stripe's scheme and sent as
// Stripe sends it, activates the user's subscription through the Go-SDK
// function examples/stripe-webhook.
func TestUseCaseStripeWebhook(t *testing.T) {
	e := testenv.Start(t)
	ctx := context.Background()
	if _, err := e.Admin.Exec(ctx, `CREATE TABLE subscriptions (user_id uuid PRIMARY KEY, status text NOT NULL);
		INSERT INTO subscriptions VALUES ('7f0c8a52-9f8e-4c0b-9d59-3f1f3c1c2a01', 'incomplete'), ('0a4c3b1e-6a55-4c52-8a8e-1f5e9c0d7b02', 'incomplete');
		GRANT SELECT, UPDATE ON subscriptions TO service_role`); err != nil {
		t.Fatal(err)
	}
	const secret = "whsec_5f1ad6c4b8e3d2f7a9c0e1b2d3f4a5b6"
	setSecret(t, e, "STRIPE_WEBHOOK_SECRET", secret)
	e.MustDeploy("stripe-webhook", testenv.Example(t, "stripe-webhook"), map[string]any{
		"run_as": "service_role", "triggers": []map[string]any{{"type": "webhook", "secret": "STRIPE_WEBHOOK_SECRET"}}})

	body := []byte(`{
  "id": "evt_3PqXkZ2eZvKYlo2C1ABCDEF0",
  "object": "event",
  "api_version": "2024-06-20",
  "created": 1724000000,
  "type": "payment_intent.succeeded",
  "livemode": false,
  "pending_webhooks": 1,
  "request": {"id": null, "idempotency_key": null},
  "data": {"object": {"id": "pi_3PqXkZ2eZvKYlo2C1XYZ", "object": "payment_intent", "amount": 2000, "currency": "usd",
    "status": "succeeded", "metadata": {"user_id": "7f0c8a52-9f8e-4c0b-9d59-3f1f3c1c2a01"}}}
}`)
	stripe := func(h map[string]string, b []byte) testenv.Response {
		// Stripe's delivery headers, as its webhook client sends them.
		hd := map[string]string{"User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)", "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-cache", "Accept": "*/*; q=0.5, application/xml"}
		for k, v := range h {
			hd[k] = v
		}
		return postWebhook(t, e.HTTP, e.URL, "stripe-webhook", hd, b)
	}
	status := func(user string) string {
		var s string
		if err := e.Admin.QueryRow(ctx, `SELECT status FROM subscriptions WHERE user_id = $1`, user).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	sig := stripeSignature(secret, time.Now(), body)
	r := stripe(map[string]string{"Stripe-Signature": sig}, body)
	if r.Status != 200 || r.JSON(t)["activated"] != float64(1) {
		t.Fatalf("Stripe delivery: %d %s", r.Status, r.Body)
	}
	if s := status("7f0c8a52-9f8e-4c0b-9d59-3f1f3c1c2a01"); s != "active" {
		t.Fatalf("subscription is %q after payment", s)
	}
	if s := status("0a4c3b1e-6a55-4c52-8a8e-1f5e9c0d7b02"); s != "incomplete" {
		t.Fatalf("another user's subscription is %q", s)
	}
	// The same delivery again (a replay, or Stripe resending a request it
	// saw no answer to) does not run twice.
	if r := stripe(map[string]string{"Stripe-Signature": sig}, body); r.Status != 200 || !strings.Contains(string(r.Body), `"duplicate":true`) {
		t.Fatalf("replayed delivery: %d %s", r.Status, r.Body)
	}
	// A secret being rolled: Stripe signs with both; one matching is enough.
	other := []byte(`{"id":"evt_2","object":"event","type":"customer.created","data":{"object":{"id":"cus_1"}}}`)
	rolled := stripeSignature("whsec_old_secret_value", time.Now(), other) + "," + strings.Split(stripeSignature(secret, time.Now(), other), ",")[1]
	if r := stripe(map[string]string{"Stripe-Signature": rolled}, other); r.Status != 200 || r.JSON(t)["ignored"] != "customer.created" {
		t.Fatalf("event of another type, secret being rolled: %d %s", r.Status, r.Body)
	}
	for name, h := range map[string]map[string]string{
		"no signature":       {},
		"other secret":       {"Stripe-Signature": stripeSignature("whsec_someone_else", time.Now(), body)},
		"outside tolerance":  {"Stripe-Signature": stripeSignature(secret, time.Now().Add(-6*time.Minute), body)},
		"from the future":    {"Stripe-Signature": stripeSignature(secret, time.Now().Add(6*time.Minute), body)},
		"v0 only":            {"Stripe-Signature": "t=" + strconv.FormatInt(time.Now().Unix(), 10) + ",v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"},
		"service key no use": {"Authorization": "Bearer " + e.ServiceKey},
	} {
		if r := stripe(h, body); r.Status != http.StatusUnauthorized || r.Code() != "invalid_signature" {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	tampered := []byte(strings.Replace(string(body), "7f0c8a52-9f8e-4c0b-9d59-3f1f3c1c2a01", "0a4c3b1e-6a55-4c52-8a8e-1f5e9c0d7b02", 1))
	if r := stripe(map[string]string{"Stripe-Signature": stripeSignature(secret, time.Now(), body)}, tampered); r.Status != http.StatusUnauthorized {
		t.Fatalf("tampered body: %d %s", r.Status, r.Body)
	}
	if s := status("0a4c3b1e-6a55-4c52-8a8e-1f5e9c0d7b02"); s != "incomplete" {
		t.Fatalf("a refused delivery changed a subscription: %q", s)
	}
}
