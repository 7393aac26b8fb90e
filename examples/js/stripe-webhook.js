// Webhook: Stripe payment success
export async function handleStripeWebhook(event) {
  if (event.type === "payment_intent.succeeded") {
    await db.query("UPDATE subscriptions SET status = 'active' WHERE user_id = $1",
      [event.data.object.metadata.user_id]);
  }
}
