-- "Re-run failed jobs": a job that was not run again names the run and job whose success it
-- reuses. A job that stored secret outputs says so (1, else 0): they are erased when its run
-- ends, so a re-run runs it again when a job that needs it runs again. Rows older than this
-- column are NULL: unknown, so they count as having stored some.
ALTER TABLE jobs ADD COLUMN reused_from_run TEXT;
ALTER TABLE jobs ADD COLUMN reused_from_job TEXT;
ALTER TABLE jobs ADD COLUMN secret_outputs BIGINT;
