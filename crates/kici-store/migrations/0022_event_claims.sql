-- Internal events announced once: a finished job or run (`job_complete:<jobId>`,
-- `workflow_complete:<runId>`) is claimed before the workflows listening to it are started.
CREATE TABLE event_claims (
    claim_key TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
