-- What an init job's functions returned (`{environments?, env?}` as JSON), on the init job's row.
ALTER TABLE jobs ADD COLUMN init_result TEXT;

-- Secret outputs of a run's jobs (`ctx.setSecretOutput`), encrypted by the orchestrator
-- (bound to `output:<run>:<job>:<key>`) and deleted when the run ends.
CREATE TABLE run_secret_outputs (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    job_id TEXT NOT NULL,
    base_job_name TEXT NOT NULL,
    output_key TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, output_key)
);
CREATE INDEX run_secret_outputs_run_id ON run_secret_outputs (run_id);
