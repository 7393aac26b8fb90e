-- A webhook delivery is claimed for one attempt with a lease, and counts as
-- a duplicate only once it is done (internal/webhook). delivery_id now holds
-- the delivery's key, a hash of what its signature covers, instead of an
-- unsigned header a replayer could change; rows of the old form can never
-- match a key and are dropped.
DELETE FROM aerofn.webhook_deliveries;
ALTER TABLE aerofn.webhook_deliveries
	ADD COLUMN done        boolean NOT NULL DEFAULT false,
	ADD COLUMN lease_until timestamptz,
	ADD COLUMN attempt     uuid;
COMMENT ON COLUMN aerofn.webhook_deliveries.delivery_id IS 'the delivery key: sha256 of the scheme and what the signature covers';
