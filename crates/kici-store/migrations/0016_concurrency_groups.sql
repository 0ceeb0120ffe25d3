-- Workflow concurrency groups: the runs that hold a place in a group of a repository
-- (`active`, or `queued` for their turn) and the jobs of queued runs waiting on their agent
-- for the answer. Rows go when their run completes.
CREATE TABLE concurrency_slots (
    run_id TEXT PRIMARY KEY,
    repo TEXT NOT NULL,
    group_key TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX concurrency_slots_group ON concurrency_slots (repo, group_key, created_at);

CREATE TABLE concurrency_waiters (
    job_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    agent_id TEXT NOT NULL
);
CREATE INDEX concurrency_waiters_run ON concurrency_waiters (run_id);
