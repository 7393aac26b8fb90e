// Command stripe-webhook activates a user's subscription when Stripe reports
// a successful payment (the seed's fourth use case). Deploy it with a webhook
// trigger naming the secret that holds the endpoint's signing secret
// ("whsec_…", set with `aerofn secrets set STRIPE_WEBHOOK_SECRET=…`) and
// run_as "service_role", and point Stripe at POST /webhooks/v1/stripe-webhook:
//
//	{"run_as": "service_role", "triggers": [{"type": "webhook", "secret": "STRIPE_WEBHOOK_SECRET"}]}
//
// aerofn checks the Stripe-Signature header before the function runs, so
// the event here is authentic and recent. The PaymentIntent must carry
// metadata.user_id (set it when creating the PaymentIntent).
//
// Stripe delivers at least once and may send events out of order; setting
// the status to 'active' is idempotent, so a redelivered event does no harm.
// Any error answers non-2xx, and Stripe retries the event later.
package main

import (
	"fmt"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

func init() {
	aerofn.Handle(handleStripeWebhook)
}

// stripeEvent is the part of a Stripe Event this function reads.
type stripeEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data struct {
		Object struct {
			ID       string            `json:"id"`
			Metadata map[string]string `json:"metadata"`
		} `json:"object"`
	} `json:"data"`
}

func handleStripeWebhook(ev aerofn.Event) (any, error) {
	if ev.Trigger != aerofn.TriggerWebhook {
		return aerofn.Response{StatusCode: 400, Body: map[string]string{"error": "deliver Stripe events to /webhooks/v1/{name}"}}, nil
	}
	var se stripeEvent
	if err := ev.DecodeBody(&se); err != nil {
		return nil, fmt.Errorf("decoding Stripe event: %w", err)
	}
	if se.Type != "payment_intent.succeeded" {
		// Acknowledge what this endpoint does not handle, or Stripe retries it.
		return map[string]any{"received": true, "ignored": se.Type}, nil
	}
	userID := se.Data.Object.Metadata["user_id"]
	if userID == "" {
		aerofn.Logf(aerofn.LevelWarn, "event %s: payment intent %s has no metadata.user_id", se.ID, se.Data.Object.ID)
		return map[string]any{"received": true, "ignored": "no metadata.user_id"}, nil
	}
	res, err := aerofn.Query("UPDATE subscriptions SET status = 'active' WHERE user_id = $1", userID)
	if err != nil {
		return nil, fmt.Errorf("event %s: activating the subscription of user %s: %w", se.ID, userID, err)
	}
	aerofn.Logf(aerofn.LevelInfo, "event %s: %d subscription(s) of user %s active", se.ID, res.RowCount, userID)
	return map[string]any{"received": true, "activated": res.RowCount}, nil
}

func main() {}
