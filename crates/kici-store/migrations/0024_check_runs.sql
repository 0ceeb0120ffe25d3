-- The GitHub check runs created for a run (`kici/<workflow>`, `…/job/<job>`, `…/setup`), so an
-- orchestrator that restarts, or another one, updates them instead of creating new ones.
CREATE TABLE check_runs (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    check_run_id BIGINT NOT NULL,
    PRIMARY KEY (run_id, name)
);
