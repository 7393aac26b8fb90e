-- Webhook delivery ids seen, so that a replayed delivery runs once.
CREATE TABLE aerofn.webhook_deliveries (
	function_id uuid NOT NULL,
	delivery_id text NOT NULL,
	received_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (function_id, delivery_id)
);
CREATE INDEX webhook_deliveries_received ON aerofn.webhook_deliveries (received_at);
