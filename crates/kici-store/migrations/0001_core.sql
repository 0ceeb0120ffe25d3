-- Core tables. Portable between SQLite and PostgreSQL: TEXT ids and JSON, BIGINT epoch-ms times
-- and 0/1 flags.

CREATE TABLE sources (
    source_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    path TEXT,
    git_url TEXT,
    preset TEXT,
    verification TEXT NOT NULL,
    secret TEXT,
    max_payload_bytes BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    source_id TEXT NOT NULL,
    repo TEXT NOT NULL,
    workflow_name TEXT NOT NULL,
    git_ref TEXT NOT NULL,
    sha TEXT NOT NULL,
    trigger_type TEXT NOT NULL,
    provider TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    status TEXT NOT NULL,
    failure_reason TEXT,
    init_failure TEXT,
    event TEXT NOT NULL,
    repo_url TEXT NOT NULL,
    lock_workflow TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    completed_at BIGINT,
    duration_ms BIGINT
);
CREATE INDEX runs_status ON runs (status);
CREATE INDEX runs_created_at ON runs (created_at);

CREATE TABLE jobs (
    job_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    job_name TEXT NOT NULL,
    base_job_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    matrix TEXT,
    status TEXT NOT NULL,
    agent_id TEXT,
    runs_on TEXT NOT NULL,
    exclude_labels TEXT NOT NULL,
    needs TEXT NOT NULL,
    error_message TEXT,
    init_failure TEXT,
    last_seq BIGINT NOT NULL DEFAULT 0,
    position BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    completed_at BIGINT,
    duration_ms BIGINT,
    last_heartbeat_at BIGINT
);
CREATE INDEX jobs_run_id ON jobs (run_id);
CREATE INDEX jobs_status ON jobs (status);

CREATE TABLE steps (
    job_id TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
    step_index BIGINT NOT NULL,
    step_name TEXT NOT NULL,
    step_type TEXT NOT NULL,
    status TEXT NOT NULL,
    exit_code BIGINT,
    error_message TEXT,
    started_at BIGINT,
    completed_at BIGINT,
    duration_ms BIGINT,
    PRIMARY KEY (job_id, step_index)
);

CREATE TABLE dispatch_queue (
    job_id TEXT PRIMARY KEY REFERENCES jobs (job_id) ON DELETE CASCADE,
    run_id TEXT NOT NULL,
    status TEXT NOT NULL,
    agent_id TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    enqueued_at BIGINT NOT NULL,
    expires_at BIGINT,
    ack_deadline BIGINT,
    recovery_deadline BIGINT,
    last_provisioning_error TEXT,
    dispatch TEXT NOT NULL
);
CREATE INDEX dispatch_queue_status ON dispatch_queue (status);

CREATE TABLE dedup_cache (
    delivery_id TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE TABLE event_log (
    id TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    status TEXT NOT NULL,
    matched_count BIGINT NOT NULL,
    run_ids TEXT NOT NULL,
    error_message TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX event_log_delivery ON event_log (delivery_id);

CREATE TABLE admin_tokens (
    token_id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);

CREATE TABLE agent_tokens (
    token_id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    token_prefix TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    labels TEXT NOT NULL,
    agent_type TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    last_seen_at BIGINT
);

CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY,
    token_id TEXT,
    labels TEXT NOT NULL,
    hostname TEXT NOT NULL,
    platform TEXT NOT NULL,
    arch TEXT NOT NULL,
    version TEXT NOT NULL,
    build_info TEXT NOT NULL,
    connected BIGINT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
