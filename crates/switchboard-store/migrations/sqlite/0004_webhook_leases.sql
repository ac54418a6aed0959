-- Delivery leases: the node delivering a stream's oldest entry holds it until `lease_until`, so
-- nodes sharing the database never deliver one stream at once, and a node that dies loses its
-- streams when its leases run out.

ALTER TABLE webhook_outbox ADD COLUMN leased_by TEXT;
ALTER TABLE webhook_outbox ADD COLUMN lease_until BIGINT;
