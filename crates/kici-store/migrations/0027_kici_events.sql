-- Internal events (spec `authoring.md` §2.4): a finished job or run, a step's `ctx.emit`, a
-- generic webhook, an operator's `event emit`. Each is stored once (its id names what
-- happened), then delivered at least once by the event router: claimed under a lease, retried
-- with backoff, and after the last attempt kept as `dead` (the dead-letter list) until an
-- operator retries or discards it.
CREATE TABLE kici_events (
    event_id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    envelope TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    last_error TEXT,
    run_ids TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX kici_events_due ON kici_events (status, next_attempt_at);
