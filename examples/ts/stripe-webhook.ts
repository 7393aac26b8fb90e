// The seed's use case 4. Webhook: Stripe payment success. The argument's
// fields are the delivery's JSON body (event.type, event.metadata).
export async function handleStripeWebhook(event: AerofnEvent & { type: string; metadata: { user_id: string } }) {
  if (event.type === "payment_intent.succeeded") {
    await db.query("UPDATE subscriptions SET status = 'active' WHERE user_id = $1",
      [event.metadata.user_id]);
  }
}
