-- Scoped secrets, plain variables, environments with protection rules, the audit log of every
-- change to them, and holds (jobs waiting for approvals). Secret values are encrypted by the
-- orchestrator (`enc:v1:<key id>:<base64>`, bound to `<org>:<scope>:<key>`); SQL never sees a
-- plaintext.

CREATE TABLE scoped_secrets (
    org_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    secret_key TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (org_id, scope, secret_key)
);

CREATE TABLE variables (
    org_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (org_id, scope, name)
);

-- `definition` is the engine's `Environment` as JSON (scopes, branches, reviewers, timers).
CREATE TABLE environments (
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, name)
);

CREATE TABLE secret_audit_log (
    entry_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    action TEXT NOT NULL,
    context_name TEXT,
    secret_keys TEXT NOT NULL,
    outcome TEXT NOT NULL,
    run_id TEXT,
    job_id TEXT,
    actor TEXT NOT NULL,
    role TEXT,
    metadata TEXT
);
CREATE INDEX secret_audit_log_timestamp ON secret_audit_log (timestamp);

CREATE TABLE held_runs (
    hold_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    job_id TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    clauses TEXT NOT NULL,
    approvals TEXT NOT NULL,
    reason TEXT,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT,
    decision_reason TEXT
);
CREATE INDEX held_runs_status ON held_runs (status);
CREATE INDEX held_runs_run_id ON held_runs (run_id);

-- A waiting job (wait timer) is queued at `ready_at`; `environments` are the names its gates
-- resolved, for the dashboard and for secret resolution at dispatch.
ALTER TABLE jobs ADD COLUMN ready_at BIGINT;
ALTER TABLE jobs ADD COLUMN environments TEXT;
