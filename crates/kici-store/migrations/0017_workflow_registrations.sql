-- The triggers that fire without a git event (schedules, for now), registered from the lock
-- file of each push to a repository's default branch, which replaces the repository's rows.
-- `last_fired_at` is the last schedule tick fired (or the registration time): a tick is claimed
-- by moving it forward, so each tick fires once across restarts and instances; a replaced
-- registration keeps it when its workflow and trigger are unchanged.
CREATE TABLE workflow_registrations (
    registration_id TEXT PRIMARY KEY,
    source_id TEXT NOT NULL,
    repo TEXT NOT NULL,
    workflow_name TEXT NOT NULL,
    trigger_index BIGINT NOT NULL,
    kind TEXT NOT NULL,
    trigger_json TEXT NOT NULL,
    git_ref TEXT NOT NULL,
    sha TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    last_fired_at BIGINT NOT NULL,
    registered_at BIGINT NOT NULL
);
CREATE INDEX workflow_registrations_repo ON workflow_registrations (source_id, repo);
CREATE INDEX workflow_registrations_kind ON workflow_registrations (kind);
