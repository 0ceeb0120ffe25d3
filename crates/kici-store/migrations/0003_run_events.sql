-- The run timeline: milestones that are not status changes (provisioning an agent, for now),
-- as the dashboard's Timeline tab shows them. `metadata` is a JSON object.
CREATE TABLE run_events (
    event_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    job_id TEXT,
    event_type TEXT NOT NULL,
    source_service TEXT NOT NULL,
    timestamp_ms BIGINT NOT NULL,
    metadata TEXT
);
CREATE INDEX run_events_by_run ON run_events (run_id, timestamp_ms);
