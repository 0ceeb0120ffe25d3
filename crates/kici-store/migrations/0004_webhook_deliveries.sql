-- Every accepted webhook delivery, recorded before it is answered, so processing survives a
-- client that hangs up and an orchestrator that crashes, and an operator can look it up.
-- `body_key` (source id and the body's SHA-256) is claimed in dedup_cache beside the delivery
-- id, so a signed body replayed under a new delivery id is a duplicate.
CREATE TABLE webhook_deliveries (
    delivery_id TEXT PRIMARY KEY,
    source_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body_key TEXT NOT NULL,
    normalized TEXT NOT NULL,
    status TEXT NOT NULL,
    run_ids TEXT NOT NULL,
    detail TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_status ON webhook_deliveries (status);
